"""Checks every framer must pass, shared by the per-protocol tests.

Each protocol test supplies a framer factory and byte fixtures with their parsed frames; these
helpers feed them whole, in halves, byte by byte, truncated at every offset, with garbage in
between, and check the framer's accounting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from vitals.protocols.framing import Framer

F = TypeVar("F")


class _Frame(Protocol):
    def __bytes__(self) -> bytes: ...


def feed_pieces(framer: Framer[F], data: bytes, size: int) -> list[F]:
    """Feed ``data`` in pieces of ``size`` bytes; return every frame, in order."""
    frames: list[F] = []
    for offset in range(0, len(data), size):
        frames += framer.feed(data[offset : offset + size])
    return frames


def assert_frames_any_split(
    make: Callable[[], Framer[F]], data: bytes, expected: Sequence[F]
) -> None:
    """The same frames come out whether ``data`` arrives whole, halved or byte by byte."""
    whole = make().feed(data)
    assert whole == list(expected), "fed whole"
    half = len(data) // 2
    halves_framer = make()
    halves = halves_framer.feed(data[:half]) + halves_framer.feed(data[half:])
    assert halves == list(expected), "fed in halves"
    assert feed_pieces(make(), data, 1) == list(expected), "fed byte by byte"
    for size in (2, 3, 7, 13):
        assert feed_pieces(make(), data, size) == list(expected), f"fed {size} bytes at a time"


def assert_recovers_after_every_truncation(
    make: Callable[[], Framer[F]], frame: bytes, following: bytes, expected_following: F
) -> None:
    """A frame cut short at any offset costs only itself: the next frame is still found."""
    for cut in range(1, len(frame)):
        framer = make()
        frames = framer.feed(frame[:cut] + following)
        assert frames[-1:] == [expected_following], f"cut at {cut}: {frames!r}"
        assert framer.stats.discarded_bytes >= cut or len(frames) > 1, f"cut at {cut}"


def assert_is_subsequence(found: Sequence[Any], expected: Sequence[Any]) -> None:
    """Every expected frame appears in ``found``, in order (noise may add frames of its own)."""
    it = iter(found)
    for item in expected:
        for candidate in it:
            if candidate == item:
                break
        else:
            raise AssertionError(f"frame {item!r} not recovered from {list(found)!r}")


def round_trip(frames: Sequence[_Frame], parse: Callable[[bytes], Any]) -> None:
    """``parse(bytes(frame)) == frame`` for each frame."""
    for frame in frames:
        assert parse(bytes(frame)) == frame
