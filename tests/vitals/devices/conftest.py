"""Helpers for driver tests: a hand-driven clock and a simulator-to-driver pump (no ports)."""

from __future__ import annotations

import pytest

from vitals.devices.driver import DeviceDriver
from vitals.model import Reading
from vitals.sim.scenario import Scenario, ScenarioClock
from vitals.sim.simulator import Simulator

ManualClock = ScenarioClock


def pump(
    sim: Simulator, driver: DeviceDriver, clock: ManualClock, *, until: float, step: float = 0.02
) -> list[Reading]:
    """Run simulator and driver against each other in scenario time, as a session would."""
    return Scenario([(sim, driver)], step=step, clock=clock).run(until)


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()
