"""Driver for the Contec CMS50D+ 4.6 / CMS50EW speaking the "0x7D" protocol (115200 8N1).

The device streams live data only after the host sends START_LIVE, and only while the host
repeats KEEP_ALIVE; so the driver sends START_LIVE on connect, KEEP_ALIVE every 5 s, and
START_LIVE again whenever the stream has been silent for a while (the finger-clip model powers
itself off when the finger is removed and forgets that it was asked to stream).
"""

from __future__ import annotations

from vitals.clock import Instant
from vitals.devices.driver import DeviceSpec
from vitals.devices.oximetry import OximeterDriver, OximeterSample
from vitals.model import Flag, Reading
from vitals.protocols import contec_7d as proto
from vitals.protocols.framing import Framer

KEEP_ALIVE_INTERVAL_S = 5.0
"""How often the host says it is still there (every public driver uses 5 s)."""
RESTART_AFTER_S = 2.0
"""Stream silent this long since the last START_LIVE: ask again."""


class Cms50ewDriver(OximeterDriver[proto.LiveFrame]):
    """Contec CMS50D+ firmware 4.6 / CMS50EW (0x7D command protocol)."""

    spec = DeviceSpec(
        name="cms50ew",
        model="Contec CMS50D+ 4.6 / CMS50EW (0x7D protocol)",
        link=proto.LINK,
        silence_timeout=3.0,
        frame_rate=proto.SAMPLE_RATE_HZ,
    )

    def __init__(self, *, port: str) -> None:
        super().__init__(port=port)
        self._last_keep_alive_ns = 0
        self._last_start_ns = 0
        self._last_frame_ns = 0

    def _new_framer(self) -> Framer[proto.LiveFrame]:
        return proto.framer()

    def connect(self, at: Instant) -> None:
        super().connect(at)
        self._last_frame_ns = 0
        self._start(at)

    def tick(self, at: Instant) -> list[Reading]:
        now = at.monotonic_ns
        if now - self._last_keep_alive_ns >= KEEP_ALIVE_INTERVAL_S * 1e9:
            self._send(bytes(proto.KEEP_ALIVE))
            self._last_keep_alive_ns = now
        last_heard = max(self._last_start_ns, self._last_frame_ns)
        if now - last_heard >= RESTART_AFTER_S * 1e9:
            self._start(at)
        return []

    def _on_frame(self, frame: proto.LiveFrame, at: Instant) -> list[Reading]:
        self._last_frame_ns = at.monotonic_ns
        return self._reporter.readings(sample_of(frame), at)

    def _start(self, at: Instant) -> None:
        self._send(bytes(proto.START_LIVE))
        self._last_start_ns = at.monotonic_ns
        self._last_keep_alive_ns = at.monotonic_ns


def sample_of(frame: proto.LiveFrame) -> OximeterSample:
    """The device-neutral content of a live frame (PI is never reported: its scale is unknown)."""
    flags: set[Flag] = set()
    if frame.finger_out:
        flags.add(Flag.FINGER_OUT)
    if frame.searching:
        flags.add(Flag.SEARCHING)
    if frame.search_too_long:
        flags.add(Flag.SEARCH_TOO_LONG)
    if frame.spo2_dropping:
        flags.add(Flag.SPO2_DROPPING)
    return OximeterSample(
        spo2=frame.spo2 if frame.has_spo2 else None,
        pulse_rate=frame.pulse_rate if frame.has_pulse_rate else None,
        pleth=frame.pleth,
        flags=frozenset(flags),
        pulse_beep=frame.pulse_beep,
    )
