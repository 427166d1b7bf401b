"""Exceptions raised by the vitals package.

One root, so callers can catch everything this package raises with one clause::

    VitalsError
    ├── FrameError          a byte string is not a valid frame of its protocol
    ├── DeviceError         a device answered, but not as its protocol says it should
    ├── PortError           the serial port could not be opened, read or written
    │   └── PortClosed      the port went away (unplugged, pty closed)
    └── ProbeError          no known protocol was recognised on a port

Framers never raise: garbage is counted and discarded. ``FrameError`` comes from the explicit
``parse`` class methods, which callers use on bytes they believe are one whole frame.
Third-party exceptions (``serial.SerialException``, ``OSError``) are translated to
``PortError`` at the transport boundary.
"""

from __future__ import annotations


class VitalsError(Exception):
    """Root of every exception raised by :mod:`vitals`."""


class FrameError(VitalsError, ValueError):
    """A byte string is not a valid frame of the protocol it was parsed as."""


class DeviceError(VitalsError):
    """A device replied in a way its protocol does not allow."""


class PortError(VitalsError, OSError):
    """A serial port could not be opened, configured, read or written."""


class PortClosed(PortError):
    """The port disappeared: the device was unplugged or its pty was closed."""


class ProbeError(VitalsError):
    """No known device protocol was recognised on a port."""
