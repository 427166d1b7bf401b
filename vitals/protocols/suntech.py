"""SunTech Advantage (2.0) OEM blood-pressure module: host commands and module packets, 9600 8N1.

The host speaks first.  Every message ends with a checksum byte chosen so that *all* its bytes,
start character included, sum to 0 modulo 256::

    host -> module   ':' opcode data.. cs     no length byte: the opcode fixes how many data
                                              bytes follow (COMMAND_DATA_LENGTHS)
                     3A  20           A6      start an adult BP cycle
                     3A  79  05 00    48      get cuff pressure
                     3A  79  03 00    4A      get BP data (the last result)
                     3A  79  01 00    4C      abort the cycle (dump the cuff)
                     3A  79  10 03    3A      get module status (self-test word)
                     3A  79  02 40    0B      get return string (firmware text)

    module -> host   '>' LL data.. cs         LL counts every byte of the packet, '>', LL
                                              and cs included; cs covers '>' and LL too
      LL=4   acknowledgement  3E 04 cc cs     cc = ASCII letter: 'O' received (BP start
                                              accepted), 'K' done (sent unprompted when a
                                              cycle ends), 'A' abort received, 'B' busy,
                                              'N'/'D' refused (bad checksum or command)...
      LL=5   word             3E 05 lo hi cs  u16 LE: cuff pressure, mmHg (FFFF = none), or
                                              the status word, by what was asked
      LL=24  BP data          3E 18 .. cs     at packet offsets: 2-3 systolic, 4-5 diastolic
                                              (u16 LE mmHg), 6 beats detected, 7 BP status,
                                              8-15 test codes TC[0..7], 16 heart rate (u8,
                                              /min), 17 spare, 18-19 MAP (u16 LE), 20 error
                                              code (0 = valid; ERROR_CODES), 21-22 spare
      LL=67  return string    3E 43 .. cs     64 bytes of NUL-padded ASCII fields

Sources.  SunTech's "Advantage Series OEM NIBP module" interface manual is not public; its
layout is quoted by public drivers: ak-git/DesktopFX (Java: tests quote the manual's field
table of the 24-byte BP data packet, the example ``3E 05 02 01 BA`` = 258 mmHg, the commands
``3A 20 A6``, ``3A 79 05 00 48``, ``3A 79 03 00 4A``, and read ``3E 04 4B 73`` ('K') as
"measurement completed") and BLMed's nPM monitor ``SuntechProvider`` (C++: the checksum rule,
the length counting every byte, the letters O/K/A/B/E/N/D/S/T, abort ``79 01 00``, status
``79 10 03``, return string ``79 02 40`` answered with 67 bytes, the opcode list and the
decimal error codes 1-4, 85-91, 97, 99).

Choices where the sources are silent or disagree: the heart rate is the byte at offset 16,
a spare byte follows (as the manual's table says; nPM's u16 reading agrees while the spare is
0); spare bytes, BP status and test codes are kept so ``bytes()`` gives the packet back.  nPM
switches on ``0x85``-style labels where its enum has decimal 85: decimal it is.  Unknown
acknowledgement letters and lengths other than 4, 5, 24, 67 are skipped.  A packet cut short
is skipped when a whole valid packet starts inside the bytes it claims.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Final, TypeVar

from vitals.errors import FrameError
from vitals.link import LinkSettings
from vitals.protocols.framing import NEED_MORE, Found, Framer, Skip, _NeedMore, check_range

LINK: Final = LinkSettings(9600)
HOST_START: Final = 0x3A
MODULE_START: Final = 0x3E
NO_PRESSURE: Final = 0xFFFF
"""Cuff-pressure word meaning "no pressure available" (nPM ignores it as -1)."""

COMMAND_DATA_LENGTHS: Final[Mapping[int, int]] = MappingProxyType(
    {
        0x00: 0, 0x04: 1, 0x0C: 3, 0x17: 2, 0x20: 0, 0x28: 0,
        0x79: 2, 0x81: 4, 0x86: 3, 0x87: 0, 0x8A: 0,
    }
)  # fmt: skip
"""Data bytes after each opcode (nPM): 00 get module data, 04 calibrate transducer, 0C control
pneumatics, 17 set initial inflate (u16 LE), 20/28/87 start BP adult/neonate/paediatric, 79
data request or abort, 81 sleep mode, 86 venous stasis, 8A reset."""
ACK_SIZE, WORD_SIZE, BP_DATA_SIZE, RETURN_STRING_SIZE = 4, 5, 24, 67
MAX_PACKET_SIZE: Final = RETURN_STRING_SIZE

_BP_LAYOUT: Final = struct.Struct("<HHBB8sBBHBBB")
"""BP data between length byte and checksum: sys, dia, beats, status, codes, HR, spare, MAP,
error, spare, spare."""
T = TypeVar("T")


def checksum(body: bytes) -> int:
    """The byte that makes ``body`` plus itself sum to 0 modulo 256."""
    return -sum(body) & 0xFF


def checksum_ok(message: bytes) -> bool:
    """True when every byte of ``message``, checksum included, sums to 0 modulo 256."""
    return sum(message) & 0xFF == 0


class AckCode(IntEnum):
    """The letter in a 4-byte acknowledgement packet."""

    RECEIVED = 0x4F  # 'O'
    COMPLETED = 0x4B  # 'K'
    ABORTED = 0x41  # 'A'
    BUSY = 0x42  # 'B'
    ERROR = 0x45  # 'E'
    NOT_ACKNOWLEDGED = 0x4E  # 'N'
    UNRECOGNISED = 0x44  # 'D'
    SLEEPING = 0x53  # 'S'
    TIMEOUT = 0x54  # 'T'
    RESET = 0x52  # 'R'


ERROR_CODES: Final[Mapping[int, str]] = MappingProxyType(
    {
        1: "Weak or no pulse signal: check that the cuff is on the bare upper arm and snug.",
        2: "Erratic signal: the arm moved or was tensed during the measurement.",
        3: "Blood pressure outside the range the module can measure.",
        4: "The measurement took longer than the module allows.",
        85: "Pneumatic blockage: the cuff hose is kinked or blocked.",
        86: "The measurement was aborted on request.",
        87: "Air leak, loose cuff or inflation timeout: the cuff could not be inflated.",
        88: "Safety timeout: the cuff stayed inflated too long and was released.",
        89: "Cuff over-pressure: the pressure passed the safety limit and was released.",
        90: "Power supply out of range or another hardware fault in the module.",
        91: "Safety check failed (safety override installed or auto-zero out of range).",
        97: "Pressure transducer out of range: the module needs service.",
        99: "Calibration data (EEPROM) failure: the module needs service.",
    }
)


def describe_error(code: int) -> str:
    """A plain-English note for a BP data error code."""
    return ERROR_CODES.get(code, f"Module error code {code} (not documented).")


@dataclass(frozen=True, slots=True)
class Command:
    """One host command: an opcode and the data bytes that opcode takes."""

    opcode: int
    data: bytes = b""

    def __post_init__(self) -> None:
        expected = COMMAND_DATA_LENGTHS.get(self.opcode)
        if expected is None:
            raise FrameError(f"unknown command opcode 0x{self.opcode:02X}")
        if len(self.data) != expected:
            raise FrameError(
                f"command 0x{self.opcode:02X} takes {expected} data bytes, not {len(self.data)}"
            )

    @classmethod
    def parse(cls, data: bytes) -> Command:
        """Parse exactly one command; raises :class:`FrameError` if ``data`` is not one."""
        if len(data) < 3:
            raise FrameError(f"a command is at least 3 bytes, not {len(data)}")
        if data[0] != HOST_START:
            raise FrameError(f"a command starts with 0x3A, not 0x{data[0]:02X}")
        command = cls(data[1], bytes(data[2:-1]))
        if not checksum_ok(data):
            raise FrameError(
                f"bad checksum 0x{data[-1]:02X} (expected 0x{checksum(data[:-1]):02X})"
            )
        return command

    def __bytes__(self) -> bytes:
        body = bytes((HOST_START, self.opcode)) + self.data
        return body + bytes((checksum(body),))


START_BP: Final = Command(0x20)
ABORT: Final = Command(0x79, b"\x01\x00")
GET_BP_DATA: Final = Command(0x79, b"\x03\x00")
GET_CUFF_PRESSURE: Final = Command(0x79, b"\x05\x00")
GET_STATUS: Final = Command(0x79, b"\x10\x03")
GET_RETURN_STRING: Final = Command(0x79, b"\x02\x40")


def _unwrap(data: bytes, size: int, what: str) -> bytes:
    """The bytes between length and checksum of a module packet of ``size`` bytes."""
    if len(data) != size:
        raise FrameError(f"a {what} packet is {size} bytes, not {len(data)}")
    if data[0] != MODULE_START:
        raise FrameError(f"a module packet starts with 0x3E, not 0x{data[0]:02X}")
    if data[1] != size:
        raise FrameError(f"length byte {data[1]} does not match a {what} packet ({size})")
    if not checksum_ok(data):
        raise FrameError(f"bad checksum 0x{data[-1]:02X} (expected 0x{checksum(data[:-1]):02X})")
    return data[2:-1]


def _wrap(body: bytes) -> bytes:
    head = bytes((MODULE_START, len(body) + 3)) + body
    return head + bytes((checksum(head),))


@dataclass(frozen=True, slots=True)
class Ack:
    """A 4-byte acknowledgement: ``'O'`` received, ``'K'`` done, ``'N'`` refused..."""

    code: AckCode

    @classmethod
    def parse(cls, data: bytes) -> Ack:
        (letter,) = _unwrap(data, ACK_SIZE, "acknowledgement")
        try:
            return cls(AckCode(letter))
        except ValueError:
            raise FrameError(f"unknown acknowledgement 0x{letter:02X}") from None

    def __bytes__(self) -> bytes:
        return _wrap(bytes((self.code,)))


@dataclass(frozen=True, slots=True)
class WordReply:
    """A 5-byte reply carrying one u16: the cuff pressure or the status word asked for."""

    value: int

    def __post_init__(self) -> None:
        check_range("word", self.value, 0xFFFF)

    @classmethod
    def parse(cls, data: bytes) -> WordReply:
        return cls(int.from_bytes(_unwrap(data, WORD_SIZE, "word"), "little"))

    def __bytes__(self) -> bytes:
        return _wrap(self.value.to_bytes(2, "little"))

    @property
    def has_pressure(self) -> bool:
        """False for the "no pressure" marker (only meaningful for a cuff-pressure reply)."""
        return self.value != NO_PRESSURE


@dataclass(frozen=True, slots=True)
class BpData:
    """The 24-byte result of the last BP cycle.  Values mean nothing when ``error_code`` != 0."""

    systolic: int
    diastolic: int
    mean: int
    heart_rate: int
    error_code: int = 0
    beats: int = 0
    bp_status: int = 0
    test_codes: bytes = bytes(8)
    spare: bytes = bytes(3)

    def __post_init__(self) -> None:
        for name, value, top in (
            ("systolic", self.systolic, 0xFFFF), ("diastolic", self.diastolic, 0xFFFF),
            ("mean", self.mean, 0xFFFF), ("heart rate", self.heart_rate, 0xFF),
            ("error code", self.error_code, 0xFF), ("beats", self.beats, 0xFF),
            ("BP status", self.bp_status, 0xFF),
        ):  # fmt: skip
            check_range(name, value, top)
        if len(self.test_codes) != 8 or len(self.spare) != 3:
            raise FrameError("BP data needs 8 test codes and 3 spare bytes")

    @classmethod
    def parse(cls, data: bytes) -> BpData:
        body = _unwrap(data, BP_DATA_SIZE, "BP data")
        sys, dia, beats, status, codes, rate, s0, mean, error, s1, s2 = _BP_LAYOUT.unpack(body)
        return cls(sys, dia, mean, rate, error, beats, status, codes, bytes((s0, s1, s2)))

    def __bytes__(self) -> bytes:
        s0, s1, s2 = self.spare
        return _wrap(
            _BP_LAYOUT.pack(
                self.systolic, self.diastolic, self.beats, self.bp_status, self.test_codes,
                self.heart_rate, s0, self.mean, self.error_code, s1, s2,
            )
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ReturnString:
    """The 67-byte return-string packet: 64 bytes of NUL-padded ASCII (firmware identity)."""

    text: bytes

    def __post_init__(self) -> None:
        if len(self.text) != RETURN_STRING_SIZE - 3:
            raise FrameError(f"a return string holds 64 bytes, not {len(self.text)}")

    @classmethod
    def parse(cls, data: bytes) -> ReturnString:
        return cls(_unwrap(data, RETURN_STRING_SIZE, "return string"))

    def __bytes__(self) -> bytes:
        return _wrap(self.text)

    @property
    def fields(self) -> tuple[str, ...]:
        """The printable, non-empty NUL-separated fields (e.g. firmware name and version)."""
        parts = (p.decode("ascii", "replace") for p in self.text.split(b"\0"))
        return tuple(p for p in parts if p and p.isprintable())


ModulePacket = Ack | WordReply | BpData | ReturnString
_PARSERS: Final[Mapping[int, Callable[[bytes], ModulePacket]]] = MappingProxyType(
    {4: Ack.parse, 5: WordReply.parse, 24: BpData.parse, 67: ReturnString.parse}
)


def parse_packet(data: bytes) -> ModulePacket:
    """Parse one whole module packet of any kind, chosen by its length byte."""
    if len(data) < 2:
        raise FrameError(f"a module packet is at least 4 bytes, not {len(data)}")
    parser = _PARSERS.get(data[1])
    if parser is None:
        raise FrameError(f"unknown packet length {data[1]}")
    return parser(bytes(data))


def _packet_size(buffer: bytearray, start: int) -> int | None:
    size = buffer[start + 1]
    return size if size in _PARSERS else None


def _command_size(buffer: bytearray, start: int) -> int | None:
    extra = COMMAND_DATA_LENGTHS.get(buffer[start + 1])
    return None if extra is None else extra + 3


def _whole(buffer: bytearray, start: int, size: int, parse: Callable[[bytes], object]) -> bool:
    try:
        return (
            start + size <= len(buffer) and parse(bytes(buffer[start : start + size])) is not None
        )
    except FrameError:
        return False


def _decode_framed(
    buffer: bytearray,
    start: int,
    *,
    marker: int,
    size_of: Callable[[bytearray, int], int | None],
    parse: Callable[[bytes], T],
    what: str,
) -> Found[T] | Skip | _NeedMore:
    """Framing shared by both directions: a marker byte, a size known from byte 1, a checksum."""
    end = len(buffer)
    if buffer[start] != marker:
        pos = buffer.find(bytes((marker,)), start + 1)
        return Skip((end if pos < 0 else pos) - start, "no sync")
    if end - start < 2:
        return NEED_MORE
    size = size_of(buffer, start)
    if size is None:
        return Skip(1, f"unknown {what}")
    if end - start < size:
        # a whole valid message starting inside this one means this one was cut short
        pos = buffer.find(bytes((marker,)), start + 2)
        while 0 <= pos < end - 1:
            inner = size_of(buffer, pos)
            if inner is not None and _whole(buffer, pos, inner, parse):
                return Skip(pos - start, "truncated")
            pos = buffer.find(bytes((marker,)), pos + 1)
        return NEED_MORE
    data = bytes(buffer[start : start + size])
    if not checksum_ok(data):
        return Skip(1, "bad checksum")
    try:
        return Found(size, parse(data))
    except FrameError as exc:
        return Skip(1, str(exc))


def decode(buffer: bytearray, start: int) -> Found[ModulePacket] | Skip | _NeedMore:
    """Framing rule for module -> host packets (see the module docstring)."""
    return _decode_framed(
        buffer, start, marker=MODULE_START, size_of=_packet_size, parse=parse_packet, what="length"
    )


def decode_command(buffer: bytearray, start: int) -> Found[Command] | Skip | _NeedMore:
    """Framing rule for host -> module commands, sized by their opcode."""
    return _decode_framed(
        buffer, start, marker=HOST_START, size_of=_command_size, parse=Command.parse, what="opcode"
    )


def framer() -> Framer[ModulePacket]:
    """A new incremental framer for what the module sends."""
    return Framer(decode, max_pending=MAX_PACKET_SIZE)


def command_framer() -> Framer[Command]:
    """A new incremental framer for what the host sends (used by the simulator)."""
    return Framer(decode_command, max_pending=16)
