"""Contec CMS50D+ firmware 4.6 / CMS50EW "0x7D" protocol: 9-byte packages, 115200 baud 8N1.

Unlike the legacy firmware, the device is silent until the host asks for live data, and stops
again unless the host keeps telling it that it is still there.  Both directions use the same
package layout (Contec's "Communication protocol of pulse oximeter V7.0")::

    byte 0   0 t t t t t t t    package type (bit 7 always clear: the frame start)
    byte 1   1 h h h h h h h    "high byte": bit i is bit 7 of payload byte i
    byte 2.. 1 d d d d d d d    payload bytes, bit 7 always set on the wire

so a byte with bit 7 clear can only start a package.  Host commands (type 0x7D)::

    7D 81 cc 80 80 80 80 80 80  cc = command code with bit 7 set (its bit 7 travels in
                                byte 1, hence 0x81); the six 0x80 are parameter bytes of 0

    A1 start live data   A2 stop live data (answered 0C 80)   A7 stop stored-data upload
    (answered 0C 80)   AF keep-alive: the host repeats it every 5 s while streaming

Live data (type 0x01), one package per pleth sample at 60 Hz, payload after restoring bit 7::

    p0   E P B T s s s s    E "probe error" (this finger-clip model sets it with no finger),
                            P pulse beep, B SpO2 dropping, T searching too long,
                            ssss signal strength 0..15
    p1   S w w w w w w w    S searching for a pulse, w pleth 0..127
    p2   r r r i g g g g    rrr reserved, i the V7.0 "PI identifier" bit, gggg bar graph 0..15
    p3   pulse rate, 8 bits (255 = no pulse rate)
    p4   SpO2 %, 8 bits (above 100 = no SpO2; the device sends 127)
    p5-6 perfusion index, little endian (0xFFFF = none; the CMS50D+ 4.6 always sends it)

    e.g. 01 E0 85 B3 96 C1 E1 FF FF: signal 5, pleth 51, bar 6, PR 65, SpO2 97, no PI

Sources: Contec's "Communication protocol of pulse oximeter V7.0" (2010; interface 115200
8N1, package layout, high byte, real-time fields, command codes) as implemented by
timegrid/CMS50Dplus7; captures from a CMS50D+ 4.6 in headrotor/contec_data (the 9-byte
stream above, replies ``0C 80`` to A2 and A7, AF sent periodically) and MarkMLl/Contec_cms50dplus
(60 readings a second; "LSB of byte 1 is 1 if finger out"; a stream started with A1 alone
stops after about 30 s); celiponcio/oximeter-CMS50Dplus-v4.6 and AndreasZachariae/cms50dplus-driver
(A1 on connect, keep-alive every 5 s, byte-1 bit 0 = finger out, bit 1 = searching);
OSCAR's cms50f37 loader (7D 81 command form, A2 "stop live data stream", high-byte rule).

Choices where the sources are silent or disagree: byte-0 bit 7 ("probe error" in V7.0) is
named ``finger_out`` because every observer of the CMS50D+ 4.6 saw it set with no finger in;
the PI field's scale is not public, so it is carried raw and never reported; bit 4 of p2
is kept and round-tripped but not interpreted.  The protocol carries no checksum.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, TypeVar

from vitals.errors import FrameError
from vitals.link import LinkSettings
from vitals.protocols.framing import NEED_MORE, Found, Framer, Skip, _NeedMore, check_range

LINK: Final = LinkSettings(115200)
SAMPLE_RATE_HZ: Final = 60
PACKAGE_SIZE: Final = 9
PAYLOAD_SIZE: Final = PACKAGE_SIZE - 2
LIVE_TYPE: Final = 0x01
COMMAND_TYPE: Final = 0x7D
STOP_REPLY: Final = bytes((0x0C, 0x80))
"""What the device answers to STOP_LIVE and STOP_STORAGE (a 2-byte package of type 0x0C)."""
NO_PULSE_RATE: Final = 255
NO_SPO2: Final = 127
NO_PERFUSION: Final = 0xFFFF

F = TypeVar("F")


def pack_package(kind: int, payload: bytes) -> bytes:
    """A whole package: type byte, high byte, then ``payload`` with every bit 7 set."""
    if not 0 <= kind <= 0x7F:
        raise FrameError(f"package type 0x{kind:02x} has bit 7 set")
    if len(payload) != PAYLOAD_SIZE:
        raise FrameError(f"a payload is {PAYLOAD_SIZE} bytes, not {len(payload)}")
    high = 0x80
    for index, byte in enumerate(payload):
        if byte & 0x80:
            high |= 1 << index
    return bytes((kind, high, *(byte | 0x80 for byte in payload)))


def unpack_package(data: bytes, kind: int, what: str) -> bytes:
    """The payload of one whole package of type ``kind``, bit 7 of each byte restored."""
    if len(data) != PACKAGE_SIZE:
        raise FrameError(f"a {what} is {PACKAGE_SIZE} bytes, not {len(data)}")
    if data[0] != kind:
        raise FrameError(f"a {what} starts with 0x{kind:02x}, not 0x{data[0]:02x}")
    for index in range(1, PACKAGE_SIZE):
        if not data[index] & 0x80:
            raise FrameError(f"bit 7 clear in byte {index}")
    high = data[1]
    return bytes(
        (byte & 0x7F) | (0x80 if high & (1 << index) else 0) for index, byte in enumerate(data[2:])
    )


class CommandCode(IntEnum):
    """Host command codes the public sources agree on."""

    START_LIVE = 0xA1
    STOP_LIVE = 0xA2
    STOP_STORAGE = 0xA7
    KEEP_ALIVE = 0xAF


@dataclass(frozen=True, slots=True)
class Command:
    """One host command: ``7D`` + high byte + code + six parameter bytes."""

    code: int
    params: bytes = bytes(PAYLOAD_SIZE - 1)

    def __post_init__(self) -> None:
        check_range("command code", self.code, 0xFF)
        if len(self.params) != PAYLOAD_SIZE - 1:
            raise FrameError(f"a command has {PAYLOAD_SIZE - 1} parameter bytes")

    @classmethod
    def parse(cls, data: bytes) -> Command:
        """Parse exactly one command; raises :class:`FrameError` if ``data`` is not one."""
        payload = unpack_package(data, COMMAND_TYPE, "host command")
        return cls(code=payload[0], params=payload[1:])

    def __bytes__(self) -> bytes:
        return pack_package(COMMAND_TYPE, bytes((self.code, *self.params)))

    @property
    def meaning(self) -> CommandCode | None:
        """The command's meaning, if it is one the sources document."""
        try:
            return CommandCode(self.code)
        except ValueError:
            return None


START_LIVE: Final = Command(CommandCode.START_LIVE)
STOP_LIVE: Final = Command(CommandCode.STOP_LIVE)
STOP_STORAGE: Final = Command(CommandCode.STOP_STORAGE)
KEEP_ALIVE: Final = Command(CommandCode.KEEP_ALIVE)


@dataclass(frozen=True, slots=True)
class LiveFrame:
    """One live-data package (type 0x01): every payload bit, so ``bytes()`` is exact."""

    signal_strength: int
    pleth: int
    bar_graph: int
    pulse_rate: int
    spo2: int
    perfusion: int = NO_PERFUSION
    finger_out: bool = False
    pulse_beep: bool = False
    spo2_dropping: bool = False
    search_too_long: bool = False
    searching: bool = False
    pi_flag: bool = False
    reserved: int = 0

    def __post_init__(self) -> None:
        check_range("signal strength", self.signal_strength, 15)
        check_range("pleth", self.pleth, 127)
        check_range("bar graph", self.bar_graph, 15)
        check_range("pulse rate", self.pulse_rate, 255)
        check_range("SpO2", self.spo2, 255)
        check_range("perfusion index", self.perfusion, 0xFFFF)
        check_range("reserved bits", self.reserved, 7)

    @classmethod
    def parse(cls, data: bytes) -> LiveFrame:
        """Parse exactly one live package; raises :class:`FrameError` if ``data`` is not one."""
        p0, p1, p2, p3, p4, p5, p6 = unpack_package(data, LIVE_TYPE, "live frame")
        return cls(
            signal_strength=p0 & 0x0F,
            search_too_long=bool(p0 & 0x10),
            spo2_dropping=bool(p0 & 0x20),
            pulse_beep=bool(p0 & 0x40),
            finger_out=bool(p0 & 0x80),
            pleth=p1 & 0x7F,
            searching=bool(p1 & 0x80),
            bar_graph=p2 & 0x0F,
            pi_flag=bool(p2 & 0x10),
            reserved=p2 >> 5,
            pulse_rate=p3,
            spo2=p4,
            perfusion=p5 | (p6 << 8),
        )

    def __bytes__(self) -> bytes:
        p0 = (
            self.signal_strength
            | (0x10 if self.search_too_long else 0)
            | (0x20 if self.spo2_dropping else 0)
            | (0x40 if self.pulse_beep else 0)
            | (0x80 if self.finger_out else 0)
        )
        p1 = self.pleth | (0x80 if self.searching else 0)
        p2 = self.bar_graph | (0x10 if self.pi_flag else 0) | (self.reserved << 5)
        payload = (p0, p1, p2, self.pulse_rate, self.spo2, self.perfusion & 0xFF)
        return pack_package(LIVE_TYPE, bytes((*payload, self.perfusion >> 8)))

    @property
    def has_pulse_rate(self) -> bool:
        return 0 < self.pulse_rate < NO_PULSE_RATE

    @property
    def has_spo2(self) -> bool:
        return 0 < self.spo2 <= 100


def _decode_package(
    buffer: bytearray, start: int, kind: int, build: Callable[[bytes], F]
) -> Found[F] | Skip | _NeedMore:
    """Find one package of type ``kind`` at ``start``; skip anything else with its reason."""
    first = buffer[start]
    end = len(buffer)
    pos = start + 1
    if first & 0x80:
        while pos < end and buffer[pos] & 0x80:
            pos += 1
        return Skip(pos - start, "no sync")
    limit = min(end, start + PACKAGE_SIZE)
    while pos < limit and buffer[pos] & 0x80:
        pos += 1
    if first != kind:
        if pos == end and pos < start + PACKAGE_SIZE:
            return NEED_MORE  # its length is unknown: wait for the next package start
        return Skip(pos - start, f"unsupported package type 0x{first:02x}")
    if pos < limit:
        return Skip(pos - start, "truncated frame")
    if pos - start < PACKAGE_SIZE:
        return NEED_MORE
    try:
        return Found(PACKAGE_SIZE, build(bytes(buffer[start:pos])))
    except FrameError as exc:
        return Skip(PACKAGE_SIZE, str(exc))


def decode(buffer: bytearray, start: int) -> Found[LiveFrame] | Skip | _NeedMore:
    """Device-to-host framing rule: live frames; other package types are skipped."""
    return _decode_package(buffer, start, LIVE_TYPE, LiveFrame.parse)


def decode_command(buffer: bytearray, start: int) -> Found[Command] | Skip | _NeedMore:
    """Host-to-device framing rule: 9-byte commands of type 0x7D."""
    return _decode_package(buffer, start, COMMAND_TYPE, Command.parse)


def framer() -> Framer[LiveFrame]:
    """A new incremental framer for what the device sends."""
    return Framer(decode, max_pending=PACKAGE_SIZE)


def command_framer() -> Framer[Command]:
    """A new incremental framer for what the host sends (used by the simulator)."""
    return Framer(decode_command, max_pending=PACKAGE_SIZE)
