"""Weight procedure: stable-window gate, ST flag, overload, progress (simulator and hand-made)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from vitals.devices.and_scale import AndScaleDriver
from vitals.model import DeviceInfo, Flag, Kind, Reading, Status
from vitals.plausibility import PlausibleRanges
from vitals.procedures.base import Progress
from vitals.procedures.weight import NO_LOAD, OVERLOAD, UNSTABLE, WeightProcedure
from vitals.reasons import DEVICE_SILENT
from vitals.sim.and_scale import AndScaleSimulator
from vitals.sim.scenario import Scenario, ScenarioClock
from vitals.sim.truth import Period, Truth

SCALE = DeviceInfo(model="A&D", protocol="and-scale", port="test")


def weigh(
    truth: Truth, *, seed: int = 1, poll: bool = False, **options: object
) -> tuple[WeightProcedure, Scenario]:
    """Run the procedure against the simulated scale until it finishes."""
    procedure = WeightProcedure(**options)  # type: ignore[arg-type]
    sim = AndScaleSimulator(truth, seed=seed, stream=not poll)
    scenario = Scenario([(sim, AndScaleDriver(port="sim", poll=poll))])
    scenario.run(procedure.time_limit + 1, procedure=procedure)
    assert procedure.done
    return procedure, scenario


class Hand:
    """Feeds hand-made scale readings at 10 per second."""

    def __init__(self, procedure: WeightProcedure) -> None:
        self.clock = ScenarioClock()
        self.procedure = procedure
        self.t = 0.0
        procedure.start(self.clock.at(0.0))

    def line(
        self, value: str | None, *, stable: bool = True, flags: frozenset[Flag] = frozenset()
    ) -> None:
        self.t = round(self.t + 0.1, 6)
        at = self.clock.at(self.t)
        if value is None:
            status = Status.INVALID
            flags = flags | {Flag.OVERLOAD}
        else:
            status = Status.VALID if stable else Status.QUESTIONABLE
            flags = flags if stable else flags | {Flag.UNSTABLE}
        number = None if value is None else Decimal(value)
        reading = Reading(Kind.BODY_WEIGHT, number, "kg", at, SCALE, status, flags)
        self.procedure.feed(reading)
        self.procedure.tick(at)


def test_stable_weight_is_kept_at_the_verification_interval() -> None:
    truth = Truth(weight=Decimal("63.43"), scale_settle=2.0)
    procedure, scenario = weigh(truth)
    (weight,) = procedure.results
    assert weight.status is Status.VALID
    assert weight.value is not None
    assert abs(weight.value - truth.weight) <= Decimal("0.05")
    assert str(weight.value) == "63.45"  # at e = 0.05 kg, written with its two decimals
    assert weight.unit == "kg"
    assert weight.device is not None
    assert weight.device.protocol == "and-scale"
    # the scale is at rest only after settling, and then for a whole window
    assert scenario.t >= truth.scale_settle + 1.5 - 0.2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_unstable_scale_is_never_accepted(seed: int) -> None:
    procedure, scenario = weigh(Truth(unstable_scale=True), seed=seed, time_limit=12.0)
    (weight,) = procedure.results
    assert weight.status is Status.NOT_AVAILABLE
    assert weight.value is None
    assert weight.reasons == (UNSTABLE,)
    assert "rail" in UNSTABLE.en
    assert "vịn" in UNSTABLE.vi
    assert weight.retake_advised
    assert scenario.t >= 12.0


def test_moving_resident_is_weighed_once_still() -> None:
    truth = Truth(weight=Decimal("58.2"), motion=(Period(1.0, 5.0),))
    procedure, scenario = weigh(truth)
    (weight,) = procedure.results
    assert weight.status is Status.VALID
    assert weight.value == Decimal("58.20")
    assert scenario.t >= 5.0 + 2.0  # motion ends at 5 s; the sway settles in 2 s more


def test_overload_ends_at_once_with_a_reason_a_retake_cannot_fix() -> None:
    procedure, scenario = weigh(Truth(weight=Decimal(240)))
    (weight,) = procedure.results
    assert weight.status is Status.NOT_AVAILABLE
    assert weight.reasons == (OVERLOAD,)
    assert not weight.retake_advised
    assert scenario.t < 3.0


def test_heavier_than_any_person_is_invalid_not_accepted() -> None:
    # The 200 kg scale weighs 199 kg; a weight plausibility range of 20-150 kg rejects it.
    ranges = PlausibleRanges({Kind.BODY_WEIGHT: (Decimal(20), Decimal(150))})
    procedure, _ = weigh(Truth(weight=Decimal(199)), ranges=ranges)
    (weight,) = procedure.results
    assert weight.status is Status.INVALID
    assert weight.value == Decimal("199.00")
    assert weight.reasons[0].code == "implausible-body-weight"


def test_polled_indicator_is_weighed_too() -> None:
    procedure, _ = weigh(Truth(weight=Decimal("71.05")), poll=True)
    (weight,) = procedure.results
    assert weight.status is Status.VALID
    assert weight.value == Decimal("71.05")


def test_coarser_verification_interval_rounds_the_weight() -> None:
    procedure, _ = weigh(Truth(weight=Decimal("63.38")), division=Decimal("0.1"))
    assert procedure.results[0].value == Decimal("63.4")


def test_unstable_flag_vetoes_a_window_at_rest() -> None:
    hand = Hand(WeightProcedure(time_limit=5.0))
    for _ in range(30):
        hand.line("70.00", stable=False)
    assert not hand.procedure.done
    for _ in range(16):
        hand.line("70.00")
    assert hand.procedure.results[0].value == Decimal("70.00")


def test_stable_flag_alone_is_not_enough() -> None:
    hand = Hand(WeightProcedure(time_limit=5.0))
    while not hand.procedure.done:
        hand.line("70.00" if round(hand.t * 10) % 4 < 2 else "70.10")
    assert hand.procedure.results[0].reasons == (UNSTABLE,)


def test_a_moment_of_overload_is_not_an_overload() -> None:
    hand = Hand(WeightProcedure(time_limit=10.0))
    for _ in range(5):
        hand.line(None)
    for _ in range(20):
        hand.line("82.35")
    assert hand.procedure.results[0].value == Decimal("82.35")


def test_nobody_on_the_scale_and_a_silent_scale_say_so() -> None:
    hand = Hand(WeightProcedure(time_limit=3.0))
    while not hand.procedure.done:
        hand.line("0.00")
    assert hand.procedure.results[0].reasons == (NO_LOAD,)
    silent = WeightProcedure(time_limit=3.0)
    clock = ScenarioClock()
    silent.start(clock.at(0.0))
    silent.tick(clock.at(3.0))
    assert silent.results[0].reasons == (DEVICE_SILENT,)


def test_progress_shows_the_settling_weight_live() -> None:
    truth = Truth(weight=Decimal("63.4"), scale_settle=3.0)
    procedure = WeightProcedure()
    scenario = Scenario([(AndScaleSimulator(truth, seed=5), AndScaleDriver(port="sim"))])
    shown: list[Progress] = [procedure.progress]
    while not procedure.done:
        scenario.run(scenario.t + 0.1, procedure=procedure)
        shown.append(procedure.progress)
    assert shown[0].phase == "waiting"
    assert "Mời bạn bước lên cân" in shown[0].vi
    measuring = [p for p in shown if p.phase == "measuring"]
    lives = {p.live for p in measuring}
    assert len(lives) > 5  # the number moves while the resident sways
    assert measuring[-1].live == Decimal("63.40")
    assert max(p.fraction or 0.0 for p in measuring) > 0.5
    assert all(p.seconds_left is not None and 0 <= p.seconds_left <= 30 for p in measuring)
    assert shown[-1].phase == "done"
