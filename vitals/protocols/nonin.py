"""Nonin OEM III module, serial data format #2: 5-byte frames, 25-frame packets, 9600 8N1.

The module streams 75 frames a second, unprompted.  Every frame carries one pleth sample; the
fourth byte of a frame carries one byte of the numbers, chosen by the frame's position in its
packet of 25 frames (three packets a second).  The first frame of a packet has the SYNC bit::

    byte 0   0 0 0 0 0 0 0 1    start, always 01
    byte 1   1 D A O S P P Y    status: bit 7 always set; D SNSD sensor disconnected,
                                A ARTF artifact, O OOT out of track, S SNSA sensor alarm,
                                PP perfusion (bit 2 RPRF red, bit 1 GPRF green, both = yellow),
                                Y SYNC: first frame of a packet
    byte 2   w w w w w w w w    pleth sample 0..255
    byte 3   d d d d d d d d    data byte: meaning set by the frame number (table below)
    byte 4   c c c c c c c c    checksum = (byte 0 + byte 1 + byte 2 + byte 3) mod 256

    frame  data byte             frame  data byte               frame  data byte
      1    HR MSB (bits 8..7)      10   SpO2 fast                 19   reserved
      2    HR LSB (bits 6..0)      11   SpO2 beat-to-beat         20   HR-D MSB
      3    SpO2                    12   reserved                  21   HR-D LSB
      4    software revision       13   reserved                  22   E-HR-D MSB
      5    reserved                14   E-HR MSB                  23   E-HR-D LSB
      6    timer MSB (7 bits)      15   E-HR LSB                  24   reserved
      7    timer LSB (7 bits)      16   E-SpO2                    25   reserved
      8    STAT2                   17   E-SpO2-D
      9    SpO2-D                  18   reserved

Heart rates are 9 bits split over an MSB frame (bits 1..0) and an LSB frame (bits 6..0); 511
means "no heart rate" and SpO2 127 means "no SpO2".  Plain values are 4-beat averages, ``E-``
values 8-beat (extended) averages; values without ``-D`` are formatted for recording (they
turn to the missing-data marker as soon as the signal is lost), ``-D`` values for display (they
hold the last value for 10 s).  The timer counts packets (3 Hz), 14 bits over two 7-bit bytes.
STAT2 bit 0 is low battery and bit 5 SmartPoint on battery-powered Nonin models.

Which Nonin format this is: DESIGN.md calls this layout "format 7", but it is **serial data
format #2**.  Nonin numbers its formats #1 (3 bytes once a second), #2 (this layout, 8-bit
pleth behind a 01 start byte), #7 (the same 25-frame packets with a **16-bit** pleth: byte 0 is
the status, bytes 1-2 the pleth MSB/LSB, no 01 start byte) and #8 (4 bytes once a second).  The
layout DESIGN.md and the issue describe - a 01 start byte, an 8-bit pleth and a checksum over
bytes 1-4 - is #2, and #2 is what this module implements.

Sources: Nonin's OEM III and WristOx2 3150 OEM specifications (format list and frame tables),
as read by three open-source implementations: pez-globo/pufferfish-software (OEM III, 01 start
byte, status bits, frame numbers), mattjlewis/NoninPulseOx (format #2 vs #7 vs #8, a recorded
format #2 packet used in our tests, timer and STAT2), and Oxford IBME's Nonin plugins (format
#7 frames, recording vs display values, 7-bit timer halves, perfusion bits).  Where the sources
disagree (Pufferfish masks the HR MSB with 0x18; Nonin's table and the other two use bits 1..0)
we follow Nonin's table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from vitals.errors import FrameError
from vitals.link import LinkSettings
from vitals.protocols.framing import NEED_MORE, Found, Framer, Skip, _NeedMore, check_range

LINK: Final = LinkSettings(9600)
FRAME_RATE_HZ: Final = 75
FRAME_SIZE: Final = 5
FRAMES_PER_PACKET: Final = 25
START: Final = 0x01
NO_HEART_RATE: Final = 511
NO_SPO2: Final = 127
TIMER_MODULO: Final = 1 << 14

_ALWAYS: Final = 0x80
_SNSD: Final = 0x40
_ARTF: Final = 0x20
_OOT: Final = 0x10
_SNSA: Final = 0x08
_SYNC: Final = 0x01


class Perfusion(IntEnum):
    """Pulse amplitude class, shown for about 160 ms (12 frames) at each detected pulse."""

    NONE = 0
    GREEN = 1
    """High pulse signal quality (GPRF, status bit 1)."""
    RED = 2
    """Low or no pulse signal (RPRF, status bit 2)."""
    YELLOW = 3
    """Low or marginal pulse signal (both bits)."""


def checksum(data: bytes) -> int:
    """Frame checksum: the sum of the first four bytes, modulo 256."""
    return sum(data[:4]) & 0xFF


@dataclass(frozen=True, slots=True)
class Frame:
    """One 5-byte frame: a status, a pleth sample and one data byte of the packet."""

    pleth: int
    data: int
    sync: bool = False
    sensor_disconnected: bool = False
    artifact: bool = False
    out_of_track: bool = False
    sensor_alarm: bool = False
    perfusion: Perfusion = Perfusion.NONE

    def __post_init__(self) -> None:
        check_range("pleth", self.pleth, 255)
        check_range("data byte", self.data, 255)

    @classmethod
    def parse(cls, data: bytes) -> Frame:
        """Parse exactly one frame; raises :class:`FrameError` if ``data`` is not one."""
        if len(data) != FRAME_SIZE:
            raise FrameError(f"a Nonin frame is {FRAME_SIZE} bytes, not {len(data)}")
        if data[0] != START:
            raise FrameError(f"a Nonin frame starts with 01, not {data[0]:02X}")
        status = data[1]
        if not status & _ALWAYS:
            raise FrameError(f"status byte {status:02X} lacks bit 7")
        expected = checksum(data)
        if data[4] != expected:
            raise FrameError(f"checksum {data[4]:02X} does not match bytes 1-4 ({expected:02X})")
        return cls(
            pleth=data[2],
            data=data[3],
            sync=bool(status & _SYNC),
            sensor_disconnected=bool(status & _SNSD),
            artifact=bool(status & _ARTF),
            out_of_track=bool(status & _OOT),
            sensor_alarm=bool(status & _SNSA),
            perfusion=Perfusion((status >> 1) & 0x03),
        )

    @property
    def status(self) -> int:
        """The status byte."""
        return (
            _ALWAYS
            | (_SNSD if self.sensor_disconnected else 0)
            | (_ARTF if self.artifact else 0)
            | (_OOT if self.out_of_track else 0)
            | (_SNSA if self.sensor_alarm else 0)
            | (self.perfusion << 1)
            | (_SYNC if self.sync else 0)
        )

    def __bytes__(self) -> bytes:
        head = bytes((START, self.status, self.pleth, self.data))
        return head + bytes((checksum(head),))


_VALUE_LIMITS: Final = (
    ("heart_rate", NO_HEART_RATE),
    ("spo2", NO_SPO2),
    ("software_revision", 255),
    ("timer", TIMER_MODULO - 1),
    ("stat2", 255),
    ("spo2_display", NO_SPO2),
    ("spo2_fast", NO_SPO2),
    ("spo2_beat_to_beat", NO_SPO2),
    ("extended_heart_rate", NO_HEART_RATE),
    ("extended_spo2", NO_SPO2),
    ("extended_spo2_display", NO_SPO2),
    ("heart_rate_display", NO_HEART_RATE),
    ("extended_heart_rate_display", NO_HEART_RATE),
)


@dataclass(frozen=True, slots=True)
class PacketValues:
    """The numbers one packet carries in its data bytes (markers 511 and 127 kept as sent)."""

    heart_rate: int = NO_HEART_RATE
    spo2: int = NO_SPO2
    software_revision: int = 0
    timer: int = 0
    stat2: int = 0
    spo2_display: int = NO_SPO2
    spo2_fast: int = NO_SPO2
    spo2_beat_to_beat: int = NO_SPO2
    extended_heart_rate: int = NO_HEART_RATE
    extended_spo2: int = NO_SPO2
    extended_spo2_display: int = NO_SPO2
    heart_rate_display: int = NO_HEART_RATE
    extended_heart_rate_display: int = NO_HEART_RATE

    def __post_init__(self) -> None:
        for name, maximum in _VALUE_LIMITS:
            check_range(name.replace("_", " "), getattr(self, name), maximum)

    @property
    def low_battery(self) -> bool:
        return bool(self.stat2 & 0x01)

    def data_bytes(self) -> tuple[int, ...]:
        """The 25 data bytes, in frame order (reserved bytes are 0)."""
        out = [0] * FRAMES_PER_PACKET
        for index, value in (
            (0, self.heart_rate),
            (13, self.extended_heart_rate),
            (19, self.heart_rate_display),
            (21, self.extended_heart_rate_display),
        ):
            out[index], out[index + 1] = value >> 7, value & 0x7F
        out[2] = self.spo2
        out[3] = self.software_revision
        out[5], out[6] = self.timer >> 7, self.timer & 0x7F
        out[7] = self.stat2
        out[8], out[9], out[10] = self.spo2_display, self.spo2_fast, self.spo2_beat_to_beat
        out[15], out[16] = self.extended_spo2, self.extended_spo2_display
        return tuple(out)

    @classmethod
    def from_data_bytes(cls, data: tuple[int, ...]) -> PacketValues:
        """Read the numbers from a packet's 25 data bytes (reserved bits are ignored)."""

        def rate(msb: int) -> int:
            return ((data[msb] & 0x03) << 7) | (data[msb + 1] & 0x7F)

        return cls(
            heart_rate=rate(0),
            spo2=data[2] & 0x7F,
            software_revision=data[3],
            timer=((data[5] & 0x7F) << 7) | (data[6] & 0x7F),
            stat2=data[7],
            spo2_display=data[8] & 0x7F,
            spo2_fast=data[9] & 0x7F,
            spo2_beat_to_beat=data[10] & 0x7F,
            extended_heart_rate=rate(13),
            extended_spo2=data[15] & 0x7F,
            extended_spo2_display=data[16] & 0x7F,
            heart_rate_display=rate(19),
            extended_heart_rate_display=rate(21),
        )


def reported_heart_rate(value: int) -> int | None:
    """A heart rate from a packet, or None for the 511 "no heart rate" marker."""
    return None if value == NO_HEART_RATE else value


def reported_spo2(value: int) -> int | None:
    """An SpO2 from a packet, or None for the 127 marker (and anything above 100 %)."""
    return value if value <= 100 else None


@dataclass(frozen=True, slots=True)
class Packet:
    """25 frames starting at a SYNC frame: three of these arrive each second."""

    frames: tuple[Frame, ...]

    def __post_init__(self) -> None:
        if len(self.frames) != FRAMES_PER_PACKET:
            raise FrameError(f"a packet is {FRAMES_PER_PACKET} frames, not {len(self.frames)}")
        if not self.frames[0].sync:
            raise FrameError("the first frame of a packet lacks the SYNC bit")
        for number, frame in enumerate(self.frames[1:], start=2):
            if frame.sync:
                raise FrameError(f"frame {number} of a packet has the SYNC bit")

    @classmethod
    def parse(cls, data: bytes) -> Packet:
        """Parse exactly one packet (125 bytes)."""
        size = FRAME_SIZE * FRAMES_PER_PACKET
        if len(data) != size:
            raise FrameError(f"a Nonin packet is {size} bytes, not {len(data)}")
        frames = []
        for number in range(FRAMES_PER_PACKET):
            offset = number * FRAME_SIZE
            try:
                frames.append(Frame.parse(data[offset : offset + FRAME_SIZE]))
            except FrameError as exc:
                raise FrameError(f"frame {number + 1}: {exc}") from None
        return cls(tuple(frames))

    @classmethod
    def build(cls, values: PacketValues, frames: tuple[Frame, ...]) -> Packet:
        """A packet whose data bytes carry ``values``; status and pleth come from ``frames``."""
        data = values.data_bytes()
        return cls(
            tuple(
                Frame(
                    pleth=frame.pleth,
                    data=data[index],
                    sync=index == 0,
                    sensor_disconnected=frame.sensor_disconnected,
                    artifact=frame.artifact,
                    out_of_track=frame.out_of_track,
                    sensor_alarm=frame.sensor_alarm,
                    perfusion=frame.perfusion,
                )
                for index, frame in enumerate(frames)
            )
        )

    def __bytes__(self) -> bytes:
        return b"".join(bytes(frame) for frame in self.frames)

    @property
    def values(self) -> PacketValues:
        return PacketValues.from_data_bytes(tuple(frame.data for frame in self.frames))


@dataclass
class PacketStats:
    """What a packet assembler has seen."""

    packets: int = 0
    dropped: int = 0
    """Packets abandoned because a frame was missing (a SYNC frame came too early)."""
    orphan_frames: int = 0
    """Frames received while waiting for a SYNC frame."""


class PacketAssembler:
    """Groups frames into packets: a packet starts at a SYNC frame and ends 25 frames later.

    Frames cut out by the framer (bad checksum, garbage) leave a packet short, so the next SYNC
    frame arrives early: the short packet is dropped and counted, and that SYNC frame starts the
    next one.  Frames before the first SYNC frame are counted as orphans.
    """

    def __init__(self) -> None:
        self._frames: list[Frame] = []
        self.stats = PacketStats()

    def reset(self) -> None:
        """Forget a packet in progress (after a reconnect); the statistics are kept."""
        self._frames.clear()

    def add(self, frame: Frame) -> Packet | None:
        """Add the next frame; returns the packet it completes, if any."""
        frames = self._frames
        stats = self.stats
        if frame.sync:
            if frames:
                stats.dropped += 1
            frames[:] = [frame]
            return None
        if not frames:
            stats.orphan_frames += 1
            return None
        frames.append(frame)
        if len(frames) < FRAMES_PER_PACKET:
            return None
        packet = Packet(tuple(frames))
        frames.clear()
        stats.packets += 1
        return packet


def decode(buffer: bytearray, start: int) -> Found[Frame] | Skip | _NeedMore:
    """Framing rule for :class:`~vitals.protocols.framing.Framer` (see the module docstring).

    A frame starts at a 01 byte followed by a status byte with bit 7 set.  01 can also occur
    inside a frame, so a candidate with a bad checksum costs only its 01 byte: the search for
    the next frame resumes right after it.
    """
    end = len(buffer)
    if buffer[start] != START:
        pos = buffer.find(START, start + 1)
        return Skip((end if pos < 0 else pos) - start, "no start byte")
    if end - start >= 2 and not buffer[start + 1] & _ALWAYS:
        return Skip(1, "status bit 7 clear")
    if end - start < FRAME_SIZE:
        return NEED_MORE
    data = bytes(buffer[start : start + FRAME_SIZE])
    if data[4] != checksum(data):
        return Skip(1, "bad checksum")
    try:
        return Found(FRAME_SIZE, Frame.parse(data))
    except FrameError as exc:  # pragma: no cover - every rule was checked above
        return Skip(1, str(exc))


def framer() -> Framer[Frame]:
    """A new incremental framer for the format #2 frame stream."""
    return Framer(decode, max_pending=FRAME_SIZE)
