"""MaxBotix MaxSonar ultrasonic rangefinders, serial output: 'R', 3 or 4 digits, CR (9600 8N1).

The sensor free-runs and sends one range per reading cycle; it takes no serial commands (its
RX pin is a level trigger, not a UART input).  Each reading is::

    byte   0     1     2     3    (4)    last
          'R'   d     d     d    (d)    CR (0x0D)
          52    3x    3x    3x   (3x)   0D

    LV-MaxSonar-EZ   (MB1000-MB1040): 3 digits, inches,       'R087\\r' is 87 in
    HRLV-MaxSonar-EZ (MB1003-MB1043): 4 digits, millimetres,  'R0620\\r' is 620 mm

The number of digits tells the two apart; a frame's :attr:`RangeFrame.series` is chosen by it.

Range limits, from the datasheets:

    series  reported range   closer targets reported as   nothing detected   readings/s
    LV      6..254 in        6 in                          255 in             ~20 (49 ms cycle)
    HRLV    300..5000 mm     300 mm                        5000 mm            ~10

Sources: MaxBotix LV-MaxSonar-EZ datasheet ("an ASCII capital R, followed by three ASCII
character digits representing the range in inches up to a maximum of 255, followed by a
carriage return (ASCII 13). The baud rate is 9600, 8 bits, no parity, with one stop bit";
ranges 6..254 in; 49 ms cycle; the PW output is high for up to 37.5 ms, i.e. 255 in, when no
target is found); MaxBotix HR-series datasheets (four digits in millimetres up to 5000;
objects closer than the 30 cm minimum reported as 30 cm; TTL or RS232 levels on pin 5); the
"Using the MaxSonar TX output" note (RS232 format at 0-Vcc, inverted unless TTL).  Choices: the
no-target value is the top of each series' scale (255 in, 5000 mm); EnviroDIY's HRXL driver
reports that some 5 m HRXL models send 4999 instead, which this module treats as a distance
(it is beyond any cabin's mount height anyway).  The XL-MaxSonar (3 digits in centimetres) and
the HRUSB / ParkSonar variants with a trailing ' ' or ' P1' are not supported: an XL line is
indistinguishable from an LV line.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from vitals.errors import FrameError
from vitals.link import LinkSettings
from vitals.protocols.framing import NEED_MORE, Found, Framer, Skip, _NeedMore

LINK: Final = LinkSettings(9600)
SYNC: Final = ord("R")
CR: Final = 0x0D
MAX_FRAME: Final = 6


@dataclass(frozen=True, slots=True)
class Series:
    """What one sensor family's numbers mean."""

    name: str
    digits: int
    millimetres_per_unit: Decimal
    minimum: int
    """Targets closer than this are reported as this, in the series' unit."""
    no_target: int
    """The value sent when no echo came back within range."""
    rate_hz: float

    def millimetres(self, value: int) -> Decimal:
        """``value`` (in the series' unit) in millimetres, exactly."""
        return value * self.millimetres_per_unit


LV: Final = Series("LV-MaxSonar-EZ", 3, Decimal("25.4"), minimum=6, no_target=255, rate_hz=20.0)
HRLV: Final = Series("HRLV-MaxSonar-EZ", 4, Decimal(1), minimum=300, no_target=5000, rate_hz=10.0)
SERIES_BY_DIGITS: Final = {LV.digits: LV, HRLV.digits: HRLV}


@dataclass(frozen=True, slots=True)
class RangeFrame:
    """One range reading: ``distance`` in the unit of the series its digit count names."""

    distance: int
    digits: int = HRLV.digits

    def __post_init__(self) -> None:
        if self.digits not in SERIES_BY_DIGITS:
            raise FrameError(f"a range has 3 or 4 digits, not {self.digits}")
        if not 0 <= self.distance < 10**self.digits:
            raise FrameError(f"range {self.distance} does not fit {self.digits} digits")

    @property
    def series(self) -> Series:
        return SERIES_BY_DIGITS[self.digits]

    @property
    def millimetres(self) -> Decimal:
        """The distance in millimetres (inches converted exactly: 87 in is 2209.8 mm)."""
        return self.series.millimetres(self.distance)

    @property
    def no_target(self) -> bool:
        """The sensor heard no echo within its range: the number is not a distance."""
        return self.distance >= self.series.no_target

    @property
    def at_minimum(self) -> bool:
        """The target is at or inside the minimum range: it may be closer than reported."""
        return self.distance <= self.series.minimum

    @classmethod
    def parse(cls, data: bytes) -> RangeFrame:
        """Parse one whole reading including its CR; raises :class:`FrameError` otherwise."""
        if len(data) not in (5, 6):
            raise FrameError(f"a range reading is 5 or 6 bytes, not {len(data)}")
        if data[0] != SYNC:
            raise FrameError("a range reading starts with 'R'")
        if data[-1] != CR:
            raise FrameError("a range reading ends with CR")
        digits = data[1:-1]
        if not digits.isdigit():
            raise FrameError(f"range digits {digits!r} are not all ASCII digits")
        return cls(int(digits), len(digits))

    def __bytes__(self) -> bytes:
        return b"R%0*d\r" % (self.digits, self.distance)


def _is_digit(byte: int) -> bool:
    return 0x30 <= byte <= 0x39


def decode(buffer: bytearray, start: int) -> Found[RangeFrame] | Skip | _NeedMore:
    """Framing rule for :class:`~vitals.protocols.framing.Framer`.

    A reading starts at an 'R'; anything before one is skipped as ``"no sync"``.  An 'R'
    whose digits are not followed by CR after 3 or 4 of them is skipped together with those
    digits (none of which can start a reading), so the next 'R' is always tried.
    """
    end = len(buffer)
    if buffer[start] != SYNC:
        pos = buffer.find(SYNC, start + 1)
        return Skip((end if pos < 0 else pos) - start, "no sync")
    pos = start + 1
    while pos < end and pos - start <= HRLV.digits and _is_digit(buffer[pos]):
        pos += 1
    if pos == end:
        return NEED_MORE
    count = pos - start - 1
    if buffer[pos] != CR:
        return Skip(pos - start, "no CR after the digits")
    if count not in SERIES_BY_DIGITS:
        return Skip(pos - start, "not 3 or 4 digits")
    return Found(pos + 1 - start, RangeFrame(int(buffer[start + 1 : pos]), count))


def framer() -> Framer[RangeFrame]:
    """A new incremental framer for a MaxSonar's serial output."""
    return Framer(decode, max_pending=MAX_FRAME)
