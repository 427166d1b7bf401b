"""The interface every device simulator implements, and its shared timing helpers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from vitals.link import LinkSettings
from vitals.sim.truth import Truth

# A stalled runtime catches up at most this much stream time; older frames are dropped,
# as a real UART would drop them with nobody reading.
MAX_CATCH_UP_S = 1.0


class Simulator(ABC):
    """A simulated device: the bytes it sends over time and its answers to the host.

    ``t`` is scenario time in seconds since the simulator started, never decreasing.
    ``fast`` shortens slow physical processes (BP cycles, settling) for tests.
    """

    name: ClassVar[str]
    """The matching driver's ``spec.name``."""
    link: ClassVar[LinkSettings]

    def __init__(self, truth: Truth, *, seed: int = 0, fast: bool = False) -> None:
        self.truth = truth
        self.fast = fast
        self.rng = np.random.default_rng(seed)

    @abstractmethod
    def emit(self, t: float) -> bytes:
        """Bytes the device sends on its own up to scenario time ``t``."""

    def receive(self, data: bytes, t: float) -> bytes:
        """Bytes the host sent at ``t``; returns the device's immediate reply, if any."""
        return b""


class FrameClock:
    """Counts how many periodic frames are due: ``due(t)`` frames at ``rate`` per second."""

    def __init__(self, rate: float, *, start: float = 0.0) -> None:
        self.rate = rate
        self._next = start

    def due(self, t: float) -> int:
        """Number of frames whose time has come by ``t`` (bounded by the catch-up limit)."""
        if t < self._next:
            return 0
        period = 1.0 / self.rate
        count = int((t - self._next) / period) + 1
        limit = int(MAX_CATCH_UP_S * self.rate)
        if count > limit:
            self._next += (count - limit) * period
            count = limit
        self._next += count * period
        return count

    def restart(self, t: float) -> None:
        self._next = t
