"""Contec CMS50D+ legacy live format: 5-byte frames at 60 Hz, 19200 baud 8O1.

The oximeter streams one frame per pleth sample; no host command is needed.  Bit 7 is set in
the first byte of a frame and clear in every other byte, which is how a reader finds frame
boundaries in the middle of a stream::

    byte 0   1 B S F s s s s    sync=1, B pulse beep, S SpO2 dropping, F finger out,
                                ssss signal strength 0..15
    byte 1   0 w w w w w w w    pleth sample 0..127
    byte 2   0 P R E g g g g    P pulse rate bit 7, R searching, E probe error,
                                gggg bar graph 0..15
    byte 3   0 p p p p p p p    pulse rate bits 0..6 (255 = no pulse rate)
    byte 4   0 o o o o o o o    SpO2 % (127 = no SpO2)

Reverse engineered from the device by the open-source community (atbrask's CMS50Dplus notes);
Contec's own "CMS50D+ communication protocol" document describes the same layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from vitals.link import LinkSettings, Parity
from vitals.protocols.framing import (
    Found,
    Framer,
    Skip,
    _NeedMore,
    check_range,
    check_sync_bits,
    sync_bit_frame,
)

LINK: Final = LinkSettings(19200, parity=Parity.ODD)
SAMPLE_RATE_HZ: Final = 60
FRAME_SIZE: Final = 5
NO_PULSE_RATE: Final = 255
NO_SPO2: Final = 127


@dataclass(frozen=True, slots=True)
class LiveFrame:
    """One legacy live-data frame."""

    signal_strength: int
    pleth: int
    bar_graph: int
    pulse_rate: int
    spo2: int
    finger_out: bool = False
    spo2_dropping: bool = False
    pulse_beep: bool = False
    searching: bool = False
    probe_error: bool = False

    def __post_init__(self) -> None:
        check_range("signal strength", self.signal_strength, 15)
        check_range("pleth", self.pleth, 127)
        check_range("bar graph", self.bar_graph, 15)
        check_range("pulse rate", self.pulse_rate, 255)
        check_range("SpO2", self.spo2, 127)

    @classmethod
    def parse(cls, data: bytes) -> LiveFrame:
        """Parse exactly one frame; raises :class:`FrameError` if ``data`` is not one."""
        check_sync_bits(data, FRAME_SIZE, "legacy")
        b0, b1, b2, b3, b4 = data
        return cls(
            signal_strength=b0 & 0x0F,
            finger_out=bool(b0 & 0x10),
            spo2_dropping=bool(b0 & 0x20),
            pulse_beep=bool(b0 & 0x40),
            pleth=b1,
            bar_graph=b2 & 0x0F,
            probe_error=bool(b2 & 0x10),
            searching=bool(b2 & 0x20),
            pulse_rate=((b2 & 0x40) << 1) | b3,
            spo2=b4,
        )

    def __bytes__(self) -> bytes:
        b0 = (
            0x80
            | self.signal_strength
            | (0x10 if self.finger_out else 0)
            | (0x20 if self.spo2_dropping else 0)
            | (0x40 if self.pulse_beep else 0)
        )
        b2 = (
            self.bar_graph
            | (0x10 if self.probe_error else 0)
            | (0x20 if self.searching else 0)
            | ((self.pulse_rate & 0x80) >> 1)
        )
        return bytes((b0, self.pleth, b2, self.pulse_rate & 0x7F, self.spo2))

    @property
    def has_pulse_rate(self) -> bool:
        return self.pulse_rate != NO_PULSE_RATE

    @property
    def has_spo2(self) -> bool:
        return self.spo2 < NO_SPO2 and self.spo2 <= 100


def decode(buffer: bytearray, start: int) -> Found[LiveFrame] | Skip | _NeedMore:
    """Framing rule for :class:`~vitals.protocols.framing.Framer` (see the module docstring)."""
    return sync_bit_frame(buffer, start, FRAME_SIZE, LiveFrame.parse)


def framer() -> Framer[LiveFrame]:
    """A new incremental framer for the legacy live stream."""
    return Framer(decode, max_pending=FRAME_SIZE)
