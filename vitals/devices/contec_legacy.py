"""Driver for the Contec CMS50D+ speaking its legacy 5-byte live protocol (19200 8O1).

The device streams as soon as it is powered with a finger in; no command is needed.
"""

from __future__ import annotations

from vitals.clock import Instant
from vitals.devices.driver import DeviceSpec
from vitals.devices.oximetry import OximeterDriver, OximeterSample
from vitals.model import Flag, Reading
from vitals.protocols import contec_legacy as proto
from vitals.protocols.framing import Framer


class Cms50LegacyDriver(OximeterDriver[proto.LiveFrame]):
    """Contec CMS50D+ (legacy protocol)."""

    spec = DeviceSpec(
        name="cms50d-legacy",
        model="Contec CMS50D+ (legacy protocol)",
        link=proto.LINK,
        silence_timeout=2.0,
        frame_rate=proto.SAMPLE_RATE_HZ,
    )

    def _new_framer(self) -> Framer[proto.LiveFrame]:
        return proto.framer()

    def _on_frame(self, frame: proto.LiveFrame, at: Instant) -> list[Reading]:
        return self._reporter.readings(sample_of(frame), at)


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
