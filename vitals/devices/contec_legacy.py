"""Driver for the Contec CMS50D+ speaking its legacy 5-byte live protocol (19200 8O1).

The device streams as soon as it is powered with a finger in; no command is needed.
"""

from __future__ import annotations

from vitals.clock import Instant
from vitals.devices.driver import DeviceDriver, DeviceSpec
from vitals.devices.oximetry import OximeterReporter, OximeterSample
from vitals.model import Flag, Reading
from vitals.protocols import contec_legacy as proto
from vitals.protocols.framing import FramerStats


class Cms50LegacyDriver(DeviceDriver):
    """Contec CMS50D+ (legacy protocol)."""

    spec = DeviceSpec(
        name="cms50d-legacy",
        model="Contec CMS50D+ (legacy protocol)",
        link=proto.LINK,
        silence_timeout=2.0,
        frame_rate=proto.SAMPLE_RATE_HZ,
    )

    def __init__(self, *, port: str) -> None:
        super().__init__(port=port)
        self._framer = proto.framer()
        self._reporter = OximeterReporter(self)

    @property
    def stats(self) -> FramerStats:
        return self._framer.stats

    def connect(self, at: Instant) -> None:
        super().connect(at)
        self._framer.reset()
        self._reporter.reset()

    def receive(self, data: bytes, at: Instant) -> list[Reading]:
        readings: list[Reading] = []
        for frame in self._framer.feed(data):
            readings += self._reporter.readings(sample_of(frame), at)
        return readings


def sample_of(frame: proto.LiveFrame) -> OximeterSample:
    """The device-neutral content of a legacy frame."""
    flags: set[Flag] = set()
    if frame.finger_out:
        flags.add(Flag.FINGER_OUT)
    if frame.probe_error:
        flags.add(Flag.PROBE_ERROR)
    if frame.searching:
        flags.add(Flag.SEARCHING)
    if frame.spo2_dropping:
        flags.add(Flag.SPO2_DROPPING)
    return OximeterSample(
        spo2=frame.spo2 if frame.has_spo2 else None,
        pulse_rate=frame.pulse_rate if frame.has_pulse_rate else None,
        pleth=frame.pleth,
        flags=frozenset(flags),
        pulse_beep=frame.pulse_beep,
    )
