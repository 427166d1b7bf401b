"""Vital-sign acquisition: from bytes on a serial port to typed readings.

Layers, bottom up: :mod:`vitals.protocols` (pure framers and frames), :mod:`vitals.devices`
(sans-I/O drivers: commands and frames to readings), :mod:`vitals.transport` and
:mod:`vitals.session` (the serial port and the per-device session that owns it),
:mod:`vitals.sim` (simulators speaking the same bytes).  This package imports nothing else of
the project.
"""

from vitals.clock import Clock, Instant
from vitals.errors import DeviceError, FrameError, PortClosed, PortError, ProbeError, VitalsError
from vitals.link import LinkSettings, Parity
from vitals.model import DeviceInfo, Flag, Kind, Reading, Status

__all__ = [
    "Clock",
    "DeviceError",
    "DeviceInfo",
    "Flag",
    "FrameError",
    "Instant",
    "Kind",
    "LinkSettings",
    "Parity",
    "PortClosed",
    "PortError",
    "ProbeError",
    "Reading",
    "Status",
    "VitalsError",
]
