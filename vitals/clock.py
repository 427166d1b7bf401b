"""Timestamps for readings: a monotonic clock anchored to UTC wall time.

Readings are stamped from the monotonic clock, so intervals between them are exact even when
NTP steps the wall clock; the wall time a reading carries is the anchor's UTC time plus the
monotonic time elapsed since the anchor.  One ``Clock`` per process (or per test) is created and
passed down; nothing here reads global state after construction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, slots=True, order=True)
class Instant:
    """A point in time: monotonic nanoseconds (for intervals) and the matching UTC time."""

    monotonic_ns: int
    utc: datetime

    def __post_init__(self) -> None:
        if self.utc.tzinfo is None or self.utc.utcoffset() != timedelta(0):
            raise ValueError("Instant.utc must be an aware UTC datetime")

    @property
    def monotonic(self) -> float:
        """Monotonic time in seconds."""
        return self.monotonic_ns / 1e9

    def seconds_since(self, earlier: Instant) -> float:
        """Seconds elapsed from ``earlier`` to this instant, by the monotonic clock."""
        return (self.monotonic_ns - earlier.monotonic_ns) / 1e9


class Clock:
    """Maps a monotonic clock onto UTC wall time through one anchor taken at construction.

    ``monotonic_ns`` and ``wall_ns`` are injectable so tests can drive time by hand.
    """

    def __init__(
        self,
        *,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._monotonic_ns = monotonic_ns
        self._anchor_mono = monotonic_ns()
        self._anchor_utc = datetime.fromtimestamp(wall_ns() / 1e9, tz=UTC)

    def now(self) -> Instant:
        """The current instant."""
        return self.at(self._monotonic_ns())

    def at(self, monotonic_ns: int) -> Instant:
        """The instant for a monotonic reading taken earlier (e.g. when bytes arrived)."""
        elapsed = timedelta(microseconds=(monotonic_ns - self._anchor_mono) / 1000)
        return Instant(monotonic_ns, self._anchor_utc + elapsed)
