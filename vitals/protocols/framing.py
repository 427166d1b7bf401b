"""The incremental framing engine shared by every protocol.

A protocol supplies one pure function, ``decode(buffer, start)``, that looks at the bytes from
``start`` and answers one of:

* ``Found(size, frame)`` - a whole valid frame of ``size`` bytes starts at ``start``;
* ``Skip(count, reason)`` - the first ``count`` bytes cannot start a frame: discard them;
* ``NEED_MORE`` - the bytes so far are a valid beginning; wait for more.

:class:`Framer` owns the buffer and the bookkeeping: it feeds, resynchronises, counts what it
discarded and why, and bounds its memory.  It never raises on bad input (the decoders are
written, and fuzzed, so that any byte string yields one of the three answers).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

from vitals.errors import FrameError

F = TypeVar("F")


class _NeedMore:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_MORE"


NEED_MORE: Final = _NeedMore()


@dataclass(frozen=True, slots=True)
class Found(Generic[F]):
    """A whole frame of ``size`` bytes."""

    size: int
    frame: F


@dataclass(frozen=True, slots=True)
class Skip:
    """``count`` bytes that cannot start a frame, and why."""

    count: int
    reason: str

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("Skip must discard at least one byte")


Decoded = Found[F] | Skip | _NeedMore
Decoder = Callable[[bytearray, int], "Found[F] | Skip | _NeedMore"]


@dataclass
class FramerStats:
    """What a framer has seen: frames found, bytes discarded, and discarded bytes per reason."""

    frames: int = 0
    discarded_bytes: int = 0
    discards: Counter[str] = field(default_factory=Counter)

    def discard(self, reason: str, count: int) -> None:
        self.discarded_bytes += count
        self.discards[reason] += count


class Framer(Generic[F]):
    """Turns a byte stream, fed in arbitrary pieces, into frames.

    ``max_pending`` bounds the bytes held while waiting for the rest of a frame; a decoder that
    keeps asking for more beyond it (a line with no terminator, say) has its bytes discarded as
    ``"oversize"``.
    """

    def __init__(self, decode: Decoder[F], *, max_pending: int = 4096) -> None:
        self._decode = decode
        self._buffer = bytearray()
        self._max_pending = max_pending
        self.stats = FramerStats()

    @property
    def pending(self) -> int:
        """Bytes held that may yet begin a frame."""
        return len(self._buffer)

    def reset(self) -> None:
        """Forget held bytes (after a reconnect); the statistics are kept."""
        self._buffer.clear()

    def feed(self, data: bytes) -> list[F]:
        """Add ``data`` to the stream and return every frame it completes, in order."""
        buffer = self._buffer
        buffer += data
        frames: list[F] = []
        pos = 0
        end = len(buffer)
        decode = self._decode
        stats = self.stats
        while pos < end:
            result = decode(buffer, pos)
            if isinstance(result, Found):
                frames.append(result.frame)
                pos += result.size
                stats.frames += 1
            elif isinstance(result, Skip):
                count = min(result.count, end - pos)
                stats.discard(result.reason, count)
                pos += count
            else:
                break
        if pos:
            del buffer[:pos]
        if len(buffer) > self._max_pending:
            stats.discard("oversize", len(buffer))
            buffer.clear()
        return frames


def check_range(name: str, value: int, maximum: int) -> None:
    """Raise :class:`FrameError` unless ``0 <= value <= maximum`` (a field's bit width)."""
    if not 0 <= value <= maximum:
        raise FrameError(f"{name} {value} outside 0..{maximum}")


def check_sync_bits(data: bytes, size: int, what: str) -> None:
    """Raise :class:`FrameError` unless ``data`` is ``size`` bytes with bit 7 set in byte 0
    only - the layout of the Contec legacy and BerryMed frames."""
    if len(data) != size:
        raise FrameError(f"a {what} frame is {size} bytes, not {len(data)}")
    if not data[0] & 0x80:
        raise FrameError("sync bit missing in byte 0")
    for index in range(1, size):
        if data[index] & 0x80:
            raise FrameError(f"sync bit set in byte {index}")


def sync_bit_frame(
    buffer: bytearray, start: int, size: int, build: Callable[[bytes], F]
) -> Found[F] | Skip | _NeedMore:
    """Decode a fixed-size frame whose first byte, and only its first byte, has bit 7 set.

    Shared by the Contec legacy and BerryMed layouts.  ``build`` parses the whole frame and may
    raise :class:`FrameError`; the frame is then skipped with that error as its reason.
    """
    if not buffer[start] & 0x80:
        pos = start + 1
        end = len(buffer)
        while pos < end and not buffer[pos] & 0x80:
            pos += 1
        return Skip(pos - start, "no sync")
    available = min(len(buffer) - start, size)
    for offset in range(1, available):
        if buffer[start + offset] & 0x80:
            return Skip(offset, "truncated frame")
    if available < size:
        return NEED_MORE
    try:
        return Found(size, build(bytes(buffer[start : start + size])))
    except FrameError as exc:
        return Skip(size, str(exc))


def text_line(
    buffer: bytearray,
    start: int,
    build: Callable[[bytes], F],
    *,
    max_length: int,
    terminator: bytes = b"\r\n",
    sync: re.Pattern[bytes] | None = None,
) -> Found[F] | Skip | _NeedMore:
    """Decode one ASCII line ended by ``terminator``; ``build`` gets the line without it.

    ``sync`` is the pattern a line starts with: bytes before its first match are skipped as
    ``"no sync"``, so noise glued to the front of a line costs only the noise.  A line that
    ``build`` rejects with :class:`FrameError` is skipped with that error as its reason, up to
    the next place the sync pattern matches (or whole, if none does).  A line with no terminator
    within ``max_length`` bytes is skipped as ``"line too long"``, likewise up to the next sync
    match within it.
    """
    width = len(terminator)
    limit = min(len(buffer), start + max_length + width)
    pos = buffer.find(terminator, start, limit)
    if pos < 0:
        if len(buffer) - start >= max_length + width:
            # skip the runaway line, but not a real line that starts inside it
            again = None if sync is None else sync.search(buffer, start + 1, start + max_length)
            return Skip((again.start() - start) if again else max_length, "line too long")
        return NEED_MORE
    stop = pos + width
    if pos == start:
        return Skip(width, "empty line")
    line = bytes(buffer[start:pos])
    if sync is not None:
        match = sync.search(line)
        if match is None:
            return Skip(stop - start, "no sync")
        if match.start() > 0:
            return Skip(match.start(), "no sync")
    try:
        return Found(stop - start, build(line))
    except FrameError as exc:
        if sync is not None:
            again = sync.search(line, 1)
            if again is not None:
                return Skip(again.start(), str(exc))
        return Skip(stop - start, str(exc))
