"""Driver for BerryMed oximeters speaking the BCI protocol (5-byte frames at 100 Hz).

The device streams as soon as it is powered; no command is needed and none is sent.
"""

from __future__ import annotations

from vitals.clock import Instant
from vitals.devices.driver import DeviceSpec
from vitals.devices.oximetry import OximeterDriver, OximeterSample
from vitals.model import Flag, Reading
from vitals.protocols import berrymed as proto
from vitals.protocols.framing import Framer


class BerryMedDriver(OximeterDriver[proto.LiveFrame]):
    """BerryMed BM1000-series oximeter or OEM module (BCI protocol)."""

    spec = DeviceSpec(
        name="berrymed-bci",
        model="BerryMed BM1000-series (BCI protocol)",
        link=proto.LINK,
        silence_timeout=2.0,
        frame_rate=proto.SAMPLE_RATE_HZ,
    )

    def _new_framer(self) -> Framer[proto.LiveFrame]:
        return proto.framer()

    def _on_frame(self, frame: proto.LiveFrame, at: Instant) -> list[Reading]:
        return self._reporter.readings(sample_of(frame), at)


def sample_of(frame: proto.LiveFrame) -> OximeterSample:
    """The device-neutral content of a BCI frame.

    "No finger" is a finger out and "probe unplugged" a disconnected sensor (both leave the
    numbers meaningless); "no signal" makes them doubtful; "pulse research" is searching.
    """
    flags: set[Flag] = set()
    if frame.no_finger:
        flags.add(Flag.FINGER_OUT)
    if frame.probe_unplugged:
        flags.add(Flag.SENSOR_DISCONNECTED)
    if frame.no_signal:
        flags.add(Flag.LOW_SIGNAL_QUALITY)
    if frame.searching:
        flags.add(Flag.SEARCHING)
    return OximeterSample(
        spo2=frame.spo2 if frame.has_spo2 else None,
        pulse_rate=frame.pulse_rate if frame.has_pulse_rate else None,
        pleth=frame.pleth,
        flags=frozenset(flags),
        pulse_beep=frame.pulse_beep,
    )
