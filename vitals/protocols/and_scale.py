"""A&D weighing indicator, "A&D standard format": ASCII lines at 2400 baud 7E1, CR LF.

The indicator (AD-4329A, AD-4402, AD-4406 and their kin under a platform scale) streams one
line per display update, or answers host commands in command mode.  A weight line is 16
characters plus CR LF::

    pos   1  2  3  4  5  6  7  8  9 10 11 12 13 14 15 16 17 18
          S  T  ,  G  S  ,  +  0  0  7  2  .  3  5  k  g CR LF
          └h1┘     └h2┘     └── value, 8 chars ──┘  └u─┘ └end┘

    header 1   ST stable, US unstable (in motion), OL out of range (overload),
               HD held value (hold/averaging function)
    header 2   GS gross, NT net, TR tare
    value      '+' or '-', then 7 characters: zero-padded digits with at most one '.'
               ('+0072.35' is 72.35).  On OL the digits are blanked with spaces (format 1)
               or set to 9s (format 2); the '.' stays.  OL never yields a value.
    unit       'kg', ' g', ' t', 'lb', or two spaces (no unit)

Host commands and replies (command mode; each line ends CR LF)::

    RW              -> the displayed weight line        RG / RN / RT -> gross / net / tare line
    MZ  zero        -> echo 'MZ', or 'I' if it cannot be done now (load outside the zero
    MT  tare        -> echo 'MT', or 'I'                  range, in motion, overload)
    CT  clear tare  -> echo 'CT'
    anything else   -> '?'

Sources: A&D AD-4406 instruction manual §13 (RS-232C specification, data format, command
list, "I" for an unperformed command and "?" for an unknown one); AD-4329A manual §11-12
(format 1 blanks an overload with spaces, format 2 with 9s; RS-232C fixed at 7 data bits, even
parity); A&D OP-05 manual ("A&D standard format": 8 characters including polarity and decimal
point, example ``OL,GS,+    .  kg``); AD-4402 manual (stream mode outputs at every display
update).  Choices where the sources are silent or vary by model: 2400 baud 7E1 (the
factory setting of A&D's serial interfaces; the indicators offer 600-9600 baud and some 8N1),
10 lines/s in stream mode (the display rate; at 2400 baud an 18-character line takes 75 ms),
CR LF terminators, two-character units and a '.' decimal point (the indicators' defaults; the
three-character units, the ',' decimal point, '@nn' addresses and the QT counting header of
A&D balances are not supported).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final

from vitals.errors import FrameError
from vitals.link import LinkSettings, Parity
from vitals.protocols.framing import Found, Framer, Skip, _NeedMore, text_line

LINK: Final = LinkSettings(2400, bytesize=7, parity=Parity.EVEN)
STREAM_RATE_HZ: Final = 10.0
TERMINATOR: Final = b"\r\n"
VALUE_WIDTH: Final = 8
UNITS: Final = frozenset({"kg", " g", " t", "lb", "  "})
MAX_LINE: Final = 48
"""Longest line kept while waiting for its terminator.  A weight line is 16 characters; the
margin lets a line cut short (up to 17 bytes, CR included) glued to a whole one still be
resynchronised instead of being dropped whole as "line too long"."""

_NUMBER = re.compile(r"[+-](?:\d{7}|(?=[\d.]{7}$)\d+\.\d+)")
_BLANKED = re.compile(r"[+-][ 9]*\.?[ 9]*")
DEVICE_SYNC: Final = re.compile(rb"(?:ST|US|OL|HD),|MZ|MT|CT|I|\?")
"""Where a line from the indicator can start: a weight header, an echo, or an error reply."""


class Stability(StrEnum):
    """Header 1: the state of the weight."""

    STABLE = "ST"
    UNSTABLE = "US"
    OVERLOAD = "OL"
    HOLD = "HD"


class WeighMode(StrEnum):
    """Header 2: which weight the line carries."""

    GROSS = "GS"
    NET = "NT"
    TARE = "TR"


class CommandCode(StrEnum):
    """Host commands this module speaks."""

    READ_WEIGHT = "RW"
    READ_GROSS = "RG"
    READ_NET = "RN"
    READ_TARE = "RT"
    ZERO = "MZ"
    TARE = "MT"
    CLEAR_TARE = "CT"


class ErrorCode(StrEnum):
    """One-character replies to a command the indicator did not carry out."""

    UNPERFORMED = "I"
    """Understood but not possible now (in motion, outside the zero range, busy)."""
    UNKNOWN = "?"
    """Not a command the indicator knows."""


def _split_line(data: bytes, what: str) -> str:
    """The ASCII text of one line given with its CR LF terminator."""
    if not data.endswith(TERMINATOR):
        raise FrameError(f"{what} must end with CR LF")
    return _ascii(data[: -len(TERMINATOR)], what)


def _ascii(line: bytes, what: str) -> str:
    if not line.isascii() or not line.decode("ascii").isprintable():
        raise FrameError(f"{what} holds bytes that are not printable ASCII")
    return line.decode("ascii")


@dataclass(frozen=True, slots=True)
class WeightLine:
    """One weight line, with its value field kept exactly as the indicator wrote it."""

    stability: Stability
    mode: WeighMode
    value_text: str
    """The 8-character value field, sign and decimal point included, e.g. ``+0072.35``."""
    unit: str = "kg"

    def __post_init__(self) -> None:
        if len(self.value_text) != VALUE_WIDTH:
            raise FrameError(
                f"the value field is {VALUE_WIDTH} characters, not {len(self.value_text)}"
            )
        if self.unit not in UNITS:
            raise FrameError(f"unknown unit {self.unit!r}")
        if self.stability is Stability.OVERLOAD:
            ok = bool(_BLANKED.fullmatch(self.value_text) or _NUMBER.fullmatch(self.value_text))
        else:
            ok = bool(_NUMBER.fullmatch(self.value_text))
        if not ok:
            raise FrameError(f"malformed value {self.value_text!r} in a {self.stability} line")

    @classmethod
    def of(
        cls, stability: Stability, mode: WeighMode, weight: Decimal, unit: str = "kg"
    ) -> WeightLine:
        """The line for ``weight``, written with as many decimals as ``weight`` has."""
        sign = "-" if weight < 0 else "+"
        digits = format(abs(weight), "f").rjust(VALUE_WIDTH - 1, "0")
        if len(digits) != VALUE_WIDTH - 1:
            raise FrameError(f"weight {weight} does not fit the {VALUE_WIDTH}-character field")
        return cls(stability, mode, sign + digits, unit)

    @classmethod
    def overload(
        cls, mode: WeighMode, unit: str = "kg", *, decimals: int = 2, negative: bool = False
    ) -> WeightLine:
        """An OL line with its digits blanked (format 1), e.g. ``OL,GS,+    .  kg``."""
        if not 0 <= decimals <= VALUE_WIDTH - 3:
            raise FrameError(f"an overload line cannot have {decimals} decimals")
        if decimals == 0:
            body = " " * (VALUE_WIDTH - 1)
        else:
            body = " " * (VALUE_WIDTH - 2 - decimals) + "." + " " * decimals
        return cls(Stability.OVERLOAD, mode, ("-" if negative else "+") + body, unit)

    @property
    def weight(self) -> Decimal | None:
        """The value with its written precision; None on overload."""
        if self.stability is Stability.OVERLOAD:
            return None
        return Decimal(self.value_text)

    @classmethod
    def parse(cls, data: bytes) -> WeightLine:
        """Parse one whole line including CR LF; raises :class:`FrameError` if it is not one."""
        return cls.from_text(_split_line(data, "a weight line"))

    @classmethod
    def from_text(cls, text: str) -> WeightLine:
        """Parse the line's text without its terminator."""
        if len(text) != 16:
            raise FrameError(f"a weight line is 16 characters before CR LF, not {len(text)}")
        if text[2] != "," or text[5] != ",":
            raise FrameError("a weight line separates its headers with ','")
        try:
            stability = Stability(text[0:2])
        except ValueError:
            raise FrameError(f"unknown header 1 {text[0:2]!r}") from None
        try:
            mode = WeighMode(text[3:5])
        except ValueError:
            raise FrameError(f"unknown header 2 {text[3:5]!r}") from None
        return cls(stability, mode, text[6:14], text[14:16])

    def __bytes__(self) -> bytes:
        text = f"{self.stability},{self.mode},{self.value_text}{self.unit}"
        return text.encode("ascii") + TERMINATOR


@dataclass(frozen=True, slots=True)
class ScaleCommand:
    """A host command; the indicator echoes MZ, MT and CT back in the same bytes."""

    code: CommandCode

    @classmethod
    def parse(cls, data: bytes) -> ScaleCommand:
        """Parse one command line including CR LF."""
        return cls.from_text(_split_line(data, "a command"))

    @classmethod
    def from_text(cls, text: str) -> ScaleCommand:
        try:
            return cls(CommandCode(text))
        except ValueError:
            raise FrameError(f"unknown command {text!r}") from None

    def __bytes__(self) -> bytes:
        return self.code.encode("ascii") + TERMINATOR


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """'I' (not performed now) or '?' (unknown command)."""

    code: ErrorCode

    @classmethod
    def parse(cls, data: bytes) -> ErrorReply:
        text = _split_line(data, "an error reply")
        try:
            return cls(ErrorCode(text))
        except ValueError:
            raise FrameError(f"{text!r} is not an error reply") from None

    def __bytes__(self) -> bytes:
        return self.code.encode("ascii") + TERMINATOR


@dataclass(frozen=True, slots=True)
class UnknownCommand:
    """A host line the indicator does not understand (it answers '?')."""

    text: str

    def __post_init__(self) -> None:
        if not self.text or not self.text.isascii() or not self.text.isprintable():
            raise FrameError("an unknown command is one non-empty line of printable ASCII")

    @classmethod
    def parse(cls, data: bytes) -> UnknownCommand:
        return cls(_split_line(data, "a command"))

    def __bytes__(self) -> bytes:
        return self.text.encode("ascii") + TERMINATOR


DeviceLine = WeightLine | ScaleCommand | ErrorReply
"""What the indicator sends: weight lines, command echoes and error replies."""
HostLine = ScaleCommand | UnknownCommand
"""What a host sends, as the indicator sees it."""


def _device_line(line: bytes) -> DeviceLine:
    text = _ascii(line, "a line")
    if len(text) == 1:
        try:
            return ErrorReply(ErrorCode(text))
        except ValueError:
            raise FrameError(f"{text!r} is not an error reply") from None
    if len(text) == 2:
        return ScaleCommand.from_text(text)
    return WeightLine.from_text(text)


def _host_line(line: bytes) -> HostLine:
    text = _ascii(line, "a command")
    try:
        return ScaleCommand(CommandCode(text))
    except ValueError:
        return UnknownCommand(text)


def decode(buffer: bytearray, start: int) -> Found[DeviceLine] | Skip | _NeedMore:
    """Framing rule for lines from the indicator (see the module docstring)."""
    return text_line(buffer, start, _device_line, max_length=MAX_LINE, sync=DEVICE_SYNC)


def decode_command(buffer: bytearray, start: int) -> Found[HostLine] | Skip | _NeedMore:
    """Framing rule for lines from the host, as the indicator reads them."""
    return text_line(buffer, start, _host_line, max_length=MAX_LINE)


def framer() -> Framer[DeviceLine]:
    """A new incremental framer for the indicator's output."""
    return Framer(decode, max_pending=MAX_LINE + len(TERMINATOR))


def command_framer() -> Framer[HostLine]:
    """A new incremental framer for host commands (used by the simulator)."""
    return Framer(decode_command, max_pending=MAX_LINE + len(TERMINATOR))
