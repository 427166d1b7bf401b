"""GY-MCU90615 infrared thermometer module (MLX90615 + MCU), binary UART at 115200 8N1.

The module answers 3-byte commands and sends 9-byte temperature frames::

    command (host -> module)         frame (module -> host)
    byte 0   0xA5  header            byte 0   0x5A  header
    byte 1   code                    byte 1   0x5A  header
    byte 2   checksum                byte 2   0x45  data type: temperatures
                                     byte 3   0x04  data bytes that follow
                                     byte 4   TO high    object temperature x 100,
                                     byte 5   TO low     signed 16-bit, big-endian
                                     byte 6   TA high    ambient (sensor) temperature x 100
                                     byte 7   TA low
                                     byte 8   checksum

    checksum = low byte of the sum of every byte before it, in both directions.

    example  5A 5A 45 04 0C 78 0D 19 A7   TO = 0x0C78 = 3192 -> 31.92 °C,
                                          TA = 0x0D19 = 3353 -> 33.53 °C

    codes    0x45  continuous output          A5 45 EA   (frames until power-off)
             0x15  query: one frame           A5 15 BA
             0xAE  9600 baud   } after the    A5 AE 53
             0xAF  115200 baud } next power-up A5 AF 54
             0x51  stream at power-up on      A5 51 F6
             0x52  stream at power-up off     A5 52 F7

Sources: the module's protocol sheet as published by its sellers (Electrodragon's
"MCU-90615 serial" page, and the identical text on GY-MLX90615 product pages: command list,
frame layout, checksum rule and the worked example above; 115200 baud default, 9600
configurable); an Arduino sketch for the module (sends A5 45 EA once, then reads a frame
starting 0x5A every cycle, TO = (b4 << 8 | b5) / 100, checksum over bytes 0-7); the Melexis
MLX90615 datasheet (calibrated -40..115 °C object and -40..85 °C sensor temperature, 0.02 °C
resolution).  Note: every source lists 0x45 as *continuous* output and 0x15 as the *query*;
DESIGN.md's "request A5 45 EA" is the continuous command.  Choices where the sources are
silent: the values are read as signed (two's complement) so that the sensor's sub-zero range
is representable; the module's continuous rate is taken as 10 frames/s (not documented for
the 90615; the sibling GY-MCU90614 sheet says 14 Hz); commands with a bad checksum or an
unknown code get no answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum
from typing import Final

from vitals.errors import FrameError
from vitals.link import LinkSettings
from vitals.protocols.framing import NEED_MORE, Found, Framer, Skip, _NeedMore

LINK: Final = LinkSettings(115200)
FRAME_HEADER: Final = 0x5A
HEADER_PAIR: Final = bytes((FRAME_HEADER, FRAME_HEADER))
DATA_TYPE_TEMPERATURE: Final = 0x45
DATA_LENGTH: Final = 4
FRAME_SIZE: Final = 9
COMMAND_HEADER: Final = 0xA5
COMMAND_SIZE: Final = 3
CONTINUOUS_RATE_HZ: Final = 10.0
OBJECT_RANGE: Final = (Decimal(-40), Decimal(115))
"""The MLX90615's calibrated object temperature range, °C."""
AMBIENT_RANGE: Final = (Decimal(-40), Decimal(85))
"""The MLX90615's calibrated sensor (ambient) temperature range, °C."""


def checksum(data: bytes) -> int:
    """The low byte of the sum of ``data``: the last byte of every frame and command."""
    return sum(data) & 0xFF


def _signed(high: int, low: int) -> int:
    return int.from_bytes(bytes((high, low)), "big", signed=True)


def _check_centi(name: str, value: int) -> None:
    if not -0x8000 <= value <= 0x7FFF:
        raise FrameError(f"{name} {value} does not fit a signed 16-bit field")


@dataclass(frozen=True, slots=True)
class TemperatureFrame:
    """One temperature frame; temperatures in hundredths of a degree Celsius."""

    object_centi: int
    ambient_centi: int

    def __post_init__(self) -> None:
        _check_centi("object temperature", self.object_centi)
        _check_centi("ambient temperature", self.ambient_centi)

    @property
    def object_celsius(self) -> Decimal:
        """Object temperature with the module's two decimals, e.g. ``Decimal("36.80")``."""
        return Decimal(self.object_centi).scaleb(-2)

    @property
    def ambient_celsius(self) -> Decimal:
        return Decimal(self.ambient_centi).scaleb(-2)

    @classmethod
    def parse(cls, data: bytes) -> TemperatureFrame:
        """Parse exactly one frame; raises :class:`FrameError` if ``data`` is not one."""
        if len(data) != FRAME_SIZE:
            raise FrameError(f"a temperature frame is {FRAME_SIZE} bytes, not {len(data)}")
        if data[0] != FRAME_HEADER or data[1] != FRAME_HEADER:
            raise FrameError("a temperature frame starts with 5A 5A")
        if data[2] != DATA_TYPE_TEMPERATURE:
            raise FrameError(f"data type 0x{data[2]:02X} is not temperatures (0x45)")
        if data[3] != DATA_LENGTH:
            raise FrameError(f"data length {data[3]} is not {DATA_LENGTH}")
        expected = checksum(data[:-1])
        if data[-1] != expected:
            raise FrameError(f"checksum 0x{data[-1]:02X} should be 0x{expected:02X}")
        return cls(_signed(data[4], data[5]), _signed(data[6], data[7]))

    def __bytes__(self) -> bytes:
        body = bytes((FRAME_HEADER, FRAME_HEADER, DATA_TYPE_TEMPERATURE, DATA_LENGTH))
        body += self.object_centi.to_bytes(2, "big", signed=True)
        body += self.ambient_centi.to_bytes(2, "big", signed=True)
        return body + bytes((checksum(body),))


class CommandCode(IntEnum):
    """The module's command codes (byte 1 of a command)."""

    CONTINUOUS = 0x45
    QUERY = 0x15
    BAUD_9600 = 0xAE
    BAUD_115200 = 0xAF
    STREAM_AT_POWER_UP = 0x51
    NO_STREAM_AT_POWER_UP = 0x52


@dataclass(frozen=True, slots=True)
class ModuleCommand:
    """One host command, e.g. ``bytes(ModuleCommand(CommandCode.QUERY)) == b"\\xa5\\x15\\xba"``."""

    code: CommandCode

    @classmethod
    def parse(cls, data: bytes) -> ModuleCommand:
        if len(data) != COMMAND_SIZE:
            raise FrameError(f"a command is {COMMAND_SIZE} bytes, not {len(data)}")
        if data[0] != COMMAND_HEADER:
            raise FrameError("a command starts with A5")
        expected = checksum(data[:-1])
        if data[-1] != expected:
            raise FrameError(f"checksum 0x{data[-1]:02X} should be 0x{expected:02X}")
        try:
            return cls(CommandCode(data[1]))
        except ValueError:
            raise FrameError(f"unknown command code 0x{data[1]:02X}") from None

    def __bytes__(self) -> bytes:
        body = bytes((COMMAND_HEADER, self.code))
        return body + bytes((checksum(body),))


def _skip_to(
    buffer: bytearray, start: int, stop: int, marker: int, reason: str, *, after: int = 1
) -> Skip:
    """Skip from ``start`` to the next ``marker`` at least ``after`` bytes on and before
    ``stop`` (or to ``stop`` if there is none)."""
    pos = buffer.find(marker, start + after, stop)
    return Skip((stop if pos < 0 else pos) - start, reason)


def decode(buffer: bytearray, start: int) -> Found[TemperatureFrame] | Skip | _NeedMore:
    """Framing rule for the module's frames: 5A 5A 45 04, four data bytes, checksum.

    A header byte that does not lead to a valid frame costs one byte (so ``5A 5A 5A 45 …``
    still finds the frame at the second 5A).  A 5A 5A pair inside the data bytes would mean a
    temperature of 230 °C or more, far outside the MLX90615's range: it is taken for the start
    of a new frame after one cut short, whatever the checksum says.  A bad checksum skips to
    the next 5A inside the frame.  So a frame cut short by a following one hides it only if the
    cut leaves a 5A in the last one or two bytes and the 8-bit sum matches by chance (about
    1 in 256 such cuts), a limit of the protocol's checksum.
    """
    end = len(buffer)
    if buffer[start] != FRAME_HEADER:
        return _skip_to(buffer, start, end, FRAME_HEADER, "no sync")
    prefix = (FRAME_HEADER, FRAME_HEADER, DATA_TYPE_TEMPERATURE, DATA_LENGTH)
    reasons = ("no sync", "no sync", "unknown data type", "bad data length")
    for offset in range(1, len(prefix)):
        if start + offset >= end:
            return NEED_MORE
        byte = buffer[start + offset]
        if byte != prefix[offset]:
            return Skip(1, "no sync" if byte == FRAME_HEADER else reasons[offset])
    if end - start < FRAME_SIZE:
        return NEED_MORE
    frame = bytes(buffer[start : start + FRAME_SIZE])
    restart = frame.find(HEADER_PAIR, 4, 8)
    if restart >= 0:
        return Skip(restart, "frame cut short")
    if frame[-1] != checksum(frame[:-1]):
        # The next frame can start no earlier than byte 2 (byte 1 is followed by 0x45).
        stop = start + FRAME_SIZE
        return _skip_to(buffer, start, stop, FRAME_HEADER, "bad checksum", after=2)
    return Found(FRAME_SIZE, TemperatureFrame.parse(frame))


def decode_command(buffer: bytearray, start: int) -> Found[ModuleCommand] | Skip | _NeedMore:
    """Framing rule for host commands, as the module reads them."""
    end = len(buffer)
    if buffer[start] != COMMAND_HEADER:
        return _skip_to(buffer, start, end, COMMAND_HEADER, "no sync")
    if end - start < COMMAND_SIZE:
        return NEED_MORE
    data = bytes(buffer[start : start + COMMAND_SIZE])
    if data[-1] != checksum(data[:-1]):
        return Skip(1, "bad checksum")
    try:
        return Found(COMMAND_SIZE, ModuleCommand.parse(data))
    except FrameError as exc:
        return Skip(COMMAND_SIZE, str(exc))


def framer() -> Framer[TemperatureFrame]:
    """A new incremental framer for the module's temperature frames."""
    return Framer(decode, max_pending=FRAME_SIZE)


def command_framer() -> Framer[ModuleCommand]:
    """A new incremental framer for host commands (used by the simulator)."""
    return Framer(decode_command, max_pending=COMMAND_SIZE)
