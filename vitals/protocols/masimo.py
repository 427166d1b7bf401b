"""Masimo "ASCII 1" serial output (Rad-8, Radical-7): one text line per second, 9600 8N1.

The oximeter prints a line each second and takes no host input.  A Rad-8 line::

    03/19/16 13:37:12 SN=0000093112 SPO2=098% BPM=097 PI=03.60% SPCO=--.-% SPMET=--.-%
    DESAT=-- PIDELTA=+-- ALARM=0000 EXC=000800<CR><LF>          (one line on the wire)

    MM/DD/YY HH:MM:SS   device clock (two-digit year: 20YY)
    SN=nnnnnnnnnn       serial number, 10 characters (dashes when unknown)
    SPO2=nnn%           SpO2, 3 digits               ---%    = no value
    BPM=nnn             pulse rate, 3 digits         ---     = no value
    PI=nn.nn%           perfusion index              --.--%  = no value
    SPCO, SPMET, DESAT, PIDELTA (and PVI, SPHB ... on other models): kept verbatim, unused
    ALARM=hhhh          alarm bits, hexadecimal
    EXC=hhhhhh          exception bits, hexadecimal

Exception bits (Rad-8 manual, "trend data format"; bits above 0x800 from the Radical-7 table
in MD PnP's OpenICE driver): 001 no sensor, 002 defective sensor, 004 low perfusion, 008 pulse
search, 010 interference, 020 sensor off, 040 ambient light, 080 unrecognised sensor, 100
incompatible sensor, 400 low signal IQ, 800 Masimo SET (full SET processing: normal), 1000 no
cable, 2000 cable life expired, 4000 incompatible cable, 8000 unrecognised cable, 10000
defective cable, 20000 sensor calibrating, 40000 sensor life expired, 80000 emitter temperature
out of range, 100000 sensor current limit, 200000 SpCO low confidence, 400000 SpMET low
confidence.  Alarm bits (OpenICE; confirmed bit by bit on a Rad-8 by remkolems/nmenon's
masimo-datacapture): 0001 SpO2 high, 0002 SpO2 low, 0004 pulse rate high, 0008 pulse rate low,
0010 alarm active, 0020 alarm silenced, 0040 low battery, 0100/0200 SpCO high/low, 0400/0800
SpMET high/low, 1000 desaturation index, 2000 PI rate of change.

Fields are found by name, never by position: firmware adds fields (Radical-7: PVI; Rad-7:
SPHB, SPOC, EXC1 ...), Radical-5 has no SN, and widths vary (ALARM=20, EXC=800).  A line must
start with the date and time (the sync pattern) and carry SPO2 and BPM.  The line ends in
CR LF; a bare LF is accepted too.  ``bytes(record)`` rebuilds the line with single spaces and
CR LF, so a device line round-trips exactly; the builder :meth:`AsciiRecord.build` writes the
Rad-8 layout above.

Sources: Masimo Rad-8 operator's manual (serial output, ASCII 1/2 modes, exception table) as
quoted by remkolems/masimo-datacapture; MD PnP OpenICE ``poxrad_discrete.h`` (Radical-5/7
example lines, alarm and exception tables, 1 Hz, CR LF); upenn openicelite ``MasimoRecord``
(field widths and dash forms).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import IntFlag
from types import MappingProxyType
from typing import Final

from vitals.errors import FrameError
from vitals.link import LinkSettings
from vitals.protocols.framing import Found, Framer, Skip, _NeedMore, text_line

LINK: Final = LinkSettings(9600)
LINE_RATE_HZ: Final = 1.0
MAX_LINE_LENGTH: Final = 320
SYNC: Final = re.compile(rb"\d\d/\d\d/\d\d \d\d:\d\d:\d\d")

_STAMP = re.compile(r"(\d\d)/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d)\Z")
_KEY = re.compile(r"[A-Z][A-Z0-9]*\Z")
_VALUE = re.compile(r"[!-~]+\Z")
_NO_VALUE = re.compile(r"[+-]?-+(\.-+)?%?\Z")
_INTEGER = re.compile(r"(\d{1,3})%?\Z")
_DECIMAL = re.compile(r"(\d{1,3}(\.\d{1,3})?)%?\Z")
_HEX = re.compile(r"[0-9A-Fa-f]{1,8}\Z")


class ExceptionCode(IntFlag):
    """The EXC field's bits."""

    NO_SENSOR = 0x000001
    DEFECTIVE_SENSOR = 0x000002
    LOW_PERFUSION = 0x000004
    PULSE_SEARCH = 0x000008
    INTERFERENCE = 0x000010
    SENSOR_OFF = 0x000020
    AMBIENT_LIGHT = 0x000040
    UNRECOGNIZED_SENSOR = 0x000080
    INCOMPATIBLE_SENSOR = 0x000100
    LOW_SIGNAL_IQ = 0x000400
    MASIMO_SET = 0x000800
    NO_CABLE = 0x001000
    CABLE_EXPIRED = 0x002000
    INCOMPATIBLE_CABLE = 0x004000
    UNRECOGNIZED_CABLE = 0x008000
    DEFECTIVE_CABLE = 0x010000
    SENSOR_CALIBRATING = 0x020000
    SENSOR_EXPIRED = 0x040000
    EMITTER_TEMPERATURE = 0x080000
    SENSOR_CURRENT_LIMIT = 0x100000
    SPCO_LOW_CONFIDENCE = 0x200000
    SPMET_LOW_CONFIDENCE = 0x400000


class AlarmCode(IntFlag):
    """The ALARM field's bits."""

    SPO2_HIGH = 0x0001
    SPO2_LOW = 0x0002
    PULSE_RATE_HIGH = 0x0004
    PULSE_RATE_LOW = 0x0008
    ACTIVE = 0x0010
    SILENCED = 0x0020
    LOW_BATTERY = 0x0040
    SPCO_HIGH = 0x0100
    SPCO_LOW = 0x0200
    SPMET_HIGH = 0x0400
    SPMET_LOW = 0x0800
    DESATURATION = 0x1000
    PI_DELTA = 0x2000


EXCEPTION_TEXT: Final = MappingProxyType(
    {
        ExceptionCode.NO_SENSOR: "no sensor connected",
        ExceptionCode.DEFECTIVE_SENSOR: "defective sensor",
        ExceptionCode.LOW_PERFUSION: "low perfusion",
        ExceptionCode.PULSE_SEARCH: "searching for a pulse",
        ExceptionCode.INTERFERENCE: "interference",
        ExceptionCode.SENSOR_OFF: "sensor off the finger",
        ExceptionCode.AMBIENT_LIGHT: "too much ambient light",
        ExceptionCode.UNRECOGNIZED_SENSOR: "unrecognised sensor",
        ExceptionCode.INCOMPATIBLE_SENSOR: "incompatible sensor",
        ExceptionCode.LOW_SIGNAL_IQ: "low signal quality",
        ExceptionCode.MASIMO_SET: "full Masimo SET processing",
        ExceptionCode.NO_CABLE: "no patient cable connected",
        ExceptionCode.CABLE_EXPIRED: "patient cable life expired",
        ExceptionCode.INCOMPATIBLE_CABLE: "incompatible patient cable",
        ExceptionCode.UNRECOGNIZED_CABLE: "unrecognised patient cable",
        ExceptionCode.DEFECTIVE_CABLE: "defective patient cable",
        ExceptionCode.SENSOR_CALIBRATING: "sensor calibrating",
        ExceptionCode.SENSOR_EXPIRED: "sensor life expired",
        ExceptionCode.EMITTER_TEMPERATURE: "sensor emitter temperature out of range",
        ExceptionCode.SENSOR_CURRENT_LIMIT: "sensor current limit exceeded",
        ExceptionCode.SPCO_LOW_CONFIDENCE: "SpCO low confidence",
        ExceptionCode.SPMET_LOW_CONFIDENCE: "SpMET low confidence",
    }
)


def describe(exceptions: int) -> str:
    """The exception bits in plain words, e.g. ``"sensor off the finger"``."""
    words = [text for bit, text in EXCEPTION_TEXT.items() if exceptions & bit]
    unknown = exceptions & ~sum(EXCEPTION_TEXT)
    if unknown:
        words.append(f"unknown exception bits {unknown:06X}")
    return "; ".join(words) or "no exceptions"


def _field_number(key: str, text: str, pattern: re.Pattern[str], maximum: int) -> str | None:
    """The digits of a numeric field, or None for dashes; raises FrameError otherwise."""
    if _NO_VALUE.match(text):
        return None
    match = pattern.match(text)
    if match is None:
        raise FrameError(f"{key}={text} is neither a number nor dashes")
    if Decimal(match.group(1)) > maximum:
        raise FrameError(f"{key}={text} outside 0..{maximum}")
    return match.group(1)


def _field_hex(key: str, text: str) -> int:
    if not _HEX.match(text):
        raise FrameError(f"{key}={text} is not hexadecimal")
    return int(text, 16)


_NUMBERS: Final = MappingProxyType(
    {"SPO2": (_INTEGER, 100), "BPM": (_INTEGER, 240), "PI": (_DECIMAL, 100)}
)
_BITS: Final = ("ALARM", "EXC")


def _check_field(key: str, text: str) -> None:
    if key in _NUMBERS:
        pattern, maximum = _NUMBERS[key]
        _field_number(key, text, pattern, maximum)
    elif key in _BITS:
        _field_hex(key, text)


@dataclass(frozen=True, slots=True)
class AsciiRecord:
    """One ASCII 1 line: the device's clock reading and its ``KEY=VALUE`` fields, in order."""

    taken_at: datetime
    """The oximeter's own clock (local time, no zone; not the host's receive time)."""
    fields: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        if self.taken_at.tzinfo is not None or self.taken_at.microsecond:
            raise FrameError("the device clock is a naive time to the second")
        if not 2000 <= self.taken_at.year <= 2099:
            raise FrameError(f"device year {self.taken_at.year} outside 2000..2099")
        seen: set[str] = set()
        for key, value in self.fields:
            if not _KEY.match(key):
                raise FrameError(f"field name {key!r} is not upper-case letters and digits")
            if not _VALUE.match(value) or "=" in value:
                raise FrameError(f"field {key} has an empty or malformed value {value!r}")
            if key in seen:
                raise FrameError(f"field {key} appears twice")
            seen.add(key)
            _check_field(key, value)
        for required in ("SPO2", "BPM"):
            if required not in seen:
                raise FrameError(f"line has no {required} field")

    @classmethod
    def parse(cls, data: bytes) -> AsciiRecord:
        """Parse one line (its CR LF optional); raises :class:`FrameError` if it is not one."""
        try:
            text = data.decode("ascii").rstrip("\r\n")
        except UnicodeDecodeError:
            raise FrameError("line is not ASCII") from None
        words = text.split()
        stamp = _STAMP.match(" ".join(words[:2]))
        if stamp is None:
            raise FrameError("line does not start with MM/DD/YY HH:MM:SS")
        month, day, year, hour, minute, second = (int(part) for part in stamp.groups())
        try:
            taken_at = datetime(2000 + year, month, day, hour, minute, second)
        except ValueError:
            raise FrameError(f"device clock {stamp.group(0)!r} is not a valid time") from None
        fields = []
        for word in words[2:]:
            key, sep, value = word.partition("=")
            if not sep:
                raise FrameError(f"field {word!r} is not KEY=VALUE")
            fields.append((key, value))
        return cls(taken_at, tuple(fields))

    @classmethod
    def build(
        cls,
        *,
        taken_at: datetime,
        serial_number: str | None,
        spo2: int | None,
        pulse_rate: int | None,
        perfusion_index: Decimal | None,
        alarm: int = 0,
        exceptions: int = 0,
    ) -> AsciiRecord:
        """A line in the Rad-8 ASCII 1 layout (fields it cannot measure are dashes)."""
        return cls(
            taken_at,
            (
                ("SN", serial_number or "-" * 10),
                ("SPO2", "---%" if spo2 is None else f"{spo2:03d}%"),
                ("BPM", "---" if pulse_rate is None else f"{pulse_rate:03d}"),
                ("PI", "--.--%" if perfusion_index is None else f"{perfusion_index:05.2f}%"),
                ("SPCO", "--.-%"),
                ("SPMET", "--.-%"),
                ("DESAT", "--"),
                ("PIDELTA", "+--"),
                ("ALARM", f"{alarm:04X}"),
                ("EXC", f"{exceptions:06X}"),
            ),
        )

    def __bytes__(self) -> bytes:
        words = [self.taken_at.strftime("%m/%d/%y %H:%M:%S")]
        words += [f"{key}={value}" for key, value in self.fields]
        return (" ".join(words) + "\r\n").encode("ascii")

    def get(self, key: str) -> str | None:
        """A field's text as written, or None when the line has no such field."""
        for name, value in self.fields:
            if name == key:
                return value
        return None

    @property
    def serial_number(self) -> str | None:
        text = self.get("SN")
        return None if text is None or _NO_VALUE.match(text) else text

    def _number(self, key: str) -> str | None:
        text = self.get(key)
        if text is None:
            return None
        pattern, maximum = _NUMBERS[key]
        return _field_number(key, text, pattern, maximum)

    @property
    def spo2(self) -> int | None:
        digits = self._number("SPO2")
        return None if digits is None else int(digits)

    @property
    def pulse_rate(self) -> int | None:
        digits = self._number("BPM")
        return None if digits is None else int(digits)

    @property
    def perfusion_index(self) -> Decimal | None:
        """PI with the precision the device wrote: ``PI=03.60%`` gives ``Decimal("3.60")``."""
        digits = self._number("PI")
        return None if digits is None else Decimal(digits)

    @property
    def alarm(self) -> AlarmCode:
        text = self.get("ALARM")
        return AlarmCode(0 if text is None else int(text, 16))

    @property
    def exceptions(self) -> ExceptionCode:
        text = self.get("EXC")
        return ExceptionCode(0 if text is None else int(text, 16))


def _build(line: bytes) -> AsciiRecord:
    return AsciiRecord.parse(line.rstrip(b"\r"))


def decode(buffer: bytearray, start: int) -> Found[AsciiRecord] | Skip | _NeedMore:
    """Framing rule for :class:`~vitals.protocols.framing.Framer`: one line from its date."""
    return text_line(buffer, start, _build, max_length=MAX_LINE_LENGTH, terminator=b"\n", sync=SYNC)


def framer() -> Framer[AsciiRecord]:
    """A new incremental framer for the ASCII 1 line stream."""
    return Framer(decode, max_pending=MAX_LINE_LENGTH + 1)
