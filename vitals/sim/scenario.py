"""Simulators, their drivers and a procedure run against each other in scenario time (pure).

No port, no event loop: each step the drivers tick, the simulators answer what the drivers
sent and emit what is due, the drivers turn that into readings, and the procedure (if any)
takes them and may ask for device actions.  Used by tests and benchmarks to run minutes of
device time in milliseconds, with the same drivers and procedures the cabin runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from vitals.clock import Clock, Instant
from vitals.devices.driver import DeviceDriver
from vitals.model import Reading
from vitals.procedures.base import Procedure
from vitals.procedures.commands import execute
from vitals.sim.simulator import Simulator

WALL_START_NS = 1_763_700_000 * 10**9  # 2025-11-21 04:40:00 UTC
MONOTONIC_START_NS = 10**9


class ScenarioClock:
    """A :class:`Clock` whose time moves only when the scenario says so."""

    def __init__(self) -> None:
        self._ns = MONOTONIC_START_NS
        self.clock = Clock(monotonic_ns=lambda: self._ns, wall_ns=lambda: WALL_START_NS)

    def at(self, seconds: float) -> Instant:
        """Move to ``seconds`` of scenario time and return that instant."""
        self._ns = MONOTONIC_START_NS + round(seconds * 1e9)
        return self.clock.now()


@dataclass
class _Rig:
    sim: Simulator
    driver: DeviceDriver
    next_tick: float = 0.0


@dataclass
class Scenario:
    """Devices (simulator + driver pairs) on one scenario clock."""

    devices: Sequence[tuple[Simulator, DeviceDriver]]
    step: float = 0.02
    clock: ScenarioClock = field(default_factory=ScenarioClock)
    t: float = 0.0
    _rigs: list[_Rig] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rigs = [_Rig(sim, driver) for sim, driver in self.devices]
        at = self.clock.at(self.t)
        for rig in self._rigs:
            rig.driver.connect(at)

    @property
    def drivers(self) -> list[DeviceDriver]:
        return [rig.driver for rig in self._rigs]

    def run(self, until: float, *, procedure: Procedure | None = None) -> list[Reading]:
        """Advance to scenario time ``until`` (or until ``procedure`` is done); return the
        readings produced on the way, in order."""
        readings: list[Reading] = []
        if procedure is not None and procedure.started is None:
            at = self.clock.at(self.t)
            execute(procedure.start(at), self.drivers, at)
        while self.t <= until:
            at = self.clock.at(self.t)
            new: list[Reading] = []
            for rig in self._rigs:
                if self.t >= rig.next_tick:
                    new += rig.driver.tick(at)
                    rig.next_tick += rig.driver.spec.tick_interval
                reply = rig.sim.receive(rig.driver.take_output(), self.t)
                new += rig.driver.receive(rig.sim.emit(self.t) + reply, at)
            readings += new
            if procedure is not None:
                commands = [c for reading in new for c in procedure.feed(reading)]
                commands += procedure.tick(at)
                execute(commands, self.drivers, at)
                if procedure.done:
                    break
            self.t = round(self.t + self.step, 9)
        return readings
