"""Per-connection limits as pure counters: message rate, repeated faults, outbound queue.

None of these reads a clock: the caller passes ``now`` (a monotonic float in seconds), so
the connection handler decides what time is and tests need no sleeping. Each instance
belongs to one connection and is not shared between tasks.
"""

from __future__ import annotations

from collections import deque

__all__ = ["SendBudget", "StrikeCounter", "TokenBucket"]


class TokenBucket:
    """Allows ``rate_per_s`` events per second on average with bursts of up to ``burst``.

    The bucket starts full. A clock that goes backwards adds no tokens.
    """

    def __init__(self, rate_per_s: float, burst: float) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self._rate = rate_per_s
        self._burst = burst
        self._tokens = burst
        self._last: float | None = None

    def allow(self, now: float) -> bool:
        """Take one token if there is one; False means the event exceeds the rate."""
        if self._last is None or now > self._last:
            if self._last is not None:
                self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class StrikeCounter:
    """Counts faults (bad messages, rate overruns); ``limit`` of them within ``window_s`` is out.

    A client's occasional mistake is answered with an error; a client that keeps making
    them is disconnected.
    """

    def __init__(self, limit: int, window_s: float) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self._limit = limit
        self._window_s = window_s
        self._strikes: deque[float] = deque(maxlen=limit)

    def strike(self, now: float) -> bool:
        """Record a fault at ``now``; True when ``limit`` faults fall within the window."""
        self._strikes.append(now)
        while self._strikes and self._strikes[0] <= now - self._window_s:
            self._strikes.popleft()
        return len(self._strikes) >= self._limit


class SendBudget:
    """Bounds a connection's outbound queue in messages and bytes.

    ``reserve`` before queueing a message, ``release`` once it is written. A refused
    reservation means the client reads too slowly: disconnect it rather than buffer.
    """

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        if max_messages < 1 or max_bytes < 1:
            raise ValueError("max_messages and max_bytes must be >= 1")
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._messages = 0
        self._bytes = 0

    @property
    def messages(self) -> int:
        """Messages reserved and not yet released."""
        return self._messages

    @property
    def bytes(self) -> int:
        """Bytes reserved and not yet released."""
        return self._bytes

    def reserve(self, nbytes: int) -> bool:
        """Account one message of ``nbytes``; False (nothing changed) if it does not fit."""
        if nbytes < 0:
            raise ValueError("nbytes must be >= 0")
        if self._messages + 1 > self._max_messages or self._bytes + nbytes > self._max_bytes:
            return False
        self._messages += 1
        self._bytes += nbytes
        return True

    def release(self, nbytes: int) -> None:
        """Give back one message of ``nbytes``; releasing more than reserved is a bug."""
        if nbytes < 0 or self._messages < 1 or nbytes > self._bytes:
            raise ValueError("release without a matching reserve")
        self._messages -= 1
        self._bytes -= nbytes
