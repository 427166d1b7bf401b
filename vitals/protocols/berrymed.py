"""BerryMed BCI protocol (BM1000-series oximeters and OEM modules): 5-byte frames at 100 Hz.

The oximeter streams one frame per pleth sample with no command from the host.  Bit 7 is set
in the first byte of a frame and clear in every other byte::

    byte 0   1 B U N s s s s    sync=1, B pulse beep, U probe unplugged, N no signal,
                                ssss signal strength 0..15
    byte 1   0 w w w w w w w    pleth 0..100
    byte 2   0 P R F g g g g    P pulse rate bit 7, R pulse research (searching),
                                F no finger, gggg bar graph 0..15
    byte 3   0 p p p p p p p    pulse rate bits 0..6 (255 = no pulse rate)
    byte 4   0 o o o o o o o    SpO2 % (127 = no SpO2)

    e.g. 85 3c 06 48 61: signal 5, pleth 60, bar 6, PR 72, SpO2 97

Sources: BerryMed's "BCI Protocol V1.2" (github.com/zh2x/BCI_Protocol, for its Bluetooth and
USB oximeters), as decoded by BerryMed's own demos (zh2x/SpO2-USB-for-Android: 5-byte
packages found by bit 7, PR bit 7 in byte 2, 127 and 255 invalid) and by Adafruit's
adafruit_ble_berrymed_pulse_oximeter, ehborisov/BerryMed-Pulse-Oximeter-tool,
bgould/berrymed-pulseox-reader and ScheindorfHyenetics/berrymedBluetoothOxymeter (bit
meanings, pleth 0..100, "the sensor updates the readings at 100 Hz").

Link settings: the only readable source that sets a baud rate is BerryMed's own USB demo,
which opens the port at 115200 8N1; 9600 8N1 (enough bandwidth for 5 bytes at 100 Hz) could
not be confirmed in any public source, so ``LINK`` is 115200 8N1.  An OEM module strapped
differently only needs another ``LinkSettings``; the framing is the same.

How it differs from the Contec legacy layout (vitals.protocols.contec_legacy), which looks
alike but must be told apart by the probe:

=====================  ==========================  ==========================
                       BerryMed BCI                Contec CMS50D+ legacy
=====================  ==========================  ==========================
link                   115200 8N1                  19200 8O1 (odd parity)
frame rate             100 Hz                      60 Hz
pleth range            0..100 (above: not a frame) 0..127
byte 0 bit 4           no signal                   finger out
byte 0 bit 5           probe unplugged             SpO2 dropping
byte 2 bit 4           no finger                   probe error
=====================  ==========================  ==========================

Choices: SpO2 0 and pulse rate 0 are treated as "no value" like the sentinels (the device
sends 1..100 or 127, and a zero is never a measurement); the protocol carries no checksum, so
the sync bit, the frame length and the pleth range are the only checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from vitals.link import LinkSettings
from vitals.protocols.framing import (
    Found,
    Framer,
    Skip,
    _NeedMore,
    check_range,
    check_sync_bits,
    sync_bit_frame,
)

LINK: Final = LinkSettings(115200)
SAMPLE_RATE_HZ: Final = 100
FRAME_SIZE: Final = 5
PLETH_MAX: Final = 100
NO_PULSE_RATE: Final = 255
NO_SPO2: Final = 127


@dataclass(frozen=True, slots=True)
class LiveFrame:
    """One BCI frame."""

    signal_strength: int
    pleth: int
    bar_graph: int
    pulse_rate: int
    spo2: int
    no_signal: bool = False
    probe_unplugged: bool = False
    pulse_beep: bool = False
    no_finger: bool = False
    searching: bool = False

    def __post_init__(self) -> None:
        check_range("signal strength", self.signal_strength, 15)
        check_range("pleth", self.pleth, PLETH_MAX)
        check_range("bar graph", self.bar_graph, 15)
        check_range("pulse rate", self.pulse_rate, 255)
        check_range("SpO2", self.spo2, 127)

    @classmethod
    def parse(cls, data: bytes) -> LiveFrame:
        """Parse exactly one frame; raises :class:`FrameError` if ``data`` is not one."""
        check_sync_bits(data, FRAME_SIZE, "BCI")
        b0, b1, b2, b3, b4 = data
        return cls(
            signal_strength=b0 & 0x0F,
            no_signal=bool(b0 & 0x10),
            probe_unplugged=bool(b0 & 0x20),
            pulse_beep=bool(b0 & 0x40),
            pleth=b1,
            bar_graph=b2 & 0x0F,
            no_finger=bool(b2 & 0x10),
            searching=bool(b2 & 0x20),
            pulse_rate=((b2 & 0x40) << 1) | b3,
            spo2=b4,
        )

    def __bytes__(self) -> bytes:
        b0 = (
            0x80
            | self.signal_strength
            | (0x10 if self.no_signal else 0)
            | (0x20 if self.probe_unplugged else 0)
            | (0x40 if self.pulse_beep else 0)
        )
        b2 = (
            self.bar_graph
            | (0x10 if self.no_finger else 0)
            | (0x20 if self.searching else 0)
            | ((self.pulse_rate & 0x80) >> 1)
        )
        return bytes((b0, self.pleth, b2, self.pulse_rate & 0x7F, self.spo2))

    @property
    def has_pulse_rate(self) -> bool:
        return 0 < self.pulse_rate < NO_PULSE_RATE

    @property
    def has_spo2(self) -> bool:
        return 0 < self.spo2 <= 100


def decode(buffer: bytearray, start: int) -> Found[LiveFrame] | Skip | _NeedMore:
    """Framing rule for :class:`~vitals.protocols.framing.Framer` (see the module docstring)."""
    return sync_bit_frame(buffer, start, FRAME_SIZE, LiveFrame.parse)


def framer() -> Framer[LiveFrame]:
    """A new incremental framer for the BCI stream."""
    return Framer(decode, max_pending=FRAME_SIZE)
