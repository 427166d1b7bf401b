"""Helpers for driver tests: a hand-driven clock and a simulator-to-driver pump (no ports)."""

from __future__ import annotations

import pytest

from vitals.clock import Clock, Instant
from vitals.devices.driver import DeviceDriver
from vitals.model import Reading
from vitals.sim.simulator import Simulator


class ManualClock:
    """A :class:`Clock` whose monotonic time moves only when told."""

    def __init__(self) -> None:
        self.ns = 1_000_000_000
        self.clock = Clock(monotonic_ns=lambda: self.ns, wall_ns=lambda: 1_763_700_000 * 10**9)

    def at(self, seconds: float) -> Instant:
        self.ns = 1_000_000_000 + int(seconds * 1e9)
        return self.clock.now()


def pump(
    sim: Simulator, driver: DeviceDriver, clock: ManualClock, *, until: float, step: float = 0.02
) -> list[Reading]:
    """Run simulator and driver against each other in scenario time, as a session would."""
    readings: list[Reading] = []
    driver.connect(clock.at(0.0))
    t = 0.0
    next_tick = 0.0
    while t <= until:
        at = clock.at(t)
        if t >= next_tick:
            readings += driver.tick(at)
            next_tick += driver.spec.tick_interval
        reply = sim.receive(driver.take_output(), t)
        readings += driver.receive(sim.emit(t) + reply, at)
        t += step
    return readings


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()
