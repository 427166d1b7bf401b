"""Blood-pressure procedure against the real SunTech driver and simulator, in scenario time."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from vitals.devices.contec_legacy import Cms50LegacyDriver
from vitals.devices.driver import DeviceDriver
from vitals.devices.suntech import SunTechDriver
from vitals.measurement import Measurement, Method
from vitals.model import Kind, Status
from vitals.procedures.base import Command
from vitals.procedures.blood_pressure import BloodPressureProcedure
from vitals.procedures.blood_pressure_cycle import PRESSURES
from vitals.procedures.blood_pressure_reasons import (
    DEVICE_FAULT,
    LOOSE_CUFF,
    MOTION,
    WEAK_PULSE,
    for_error_code,
)
from vitals.protocols import suntech as proto
from vitals.reasons import DEVICE_SILENT, TIMED_OUT
from vitals.sim.contec_legacy import Cms50LegacySimulator
from vitals.sim.scenario import Scenario
from vitals.sim.simulator import Simulator
from vitals.sim.suntech import Envelope, SunTechSimulator, _Cycle
from vitals.sim.truth import Truth

FAST = {"rest": 2.0, "interval": 3.0, "retake_after": 2.0}
"""Protocol times shortened like the simulator's fast cycles (a cycle takes about 9 s)."""


class Varying(SunTechSimulator):
    """A resident whose pressure changes from one cycle to the next (the cuff signal follows)."""

    def __init__(self, truths: list[Truth], *, seed: int = 1, fast: bool = True) -> None:
        super().__init__(truths[0], seed=seed, fast=fast)
        self.truths = truths

    def _plan(self, t: float) -> _Cycle:
        self.truth = self.truths[min(self.cycles, len(self.truths) - 1)]
        self.envelope = Envelope.of(self.truth.sys, self.truth.dia)
        return super()._plan(t)


class Misreporting(SunTechSimulator):
    """A module whose result is 25/15 mmHg above what its own cuff signal shows."""

    def _result_of(self, cycle: _Cycle) -> proto.BpData:
        packet = super()._result_of(cycle)
        return dataclasses.replace(
            packet, systolic=packet.systolic + 25, diastolic=packet.diastolic + 15
        )


class Mute(SunTechSimulator):
    """A module that never answers."""

    def receive(self, data: bytes, t: float) -> bytes:
        return b""


def measure(
    sim: SunTechSimulator, *others: tuple[Simulator, DeviceDriver], **options: Any
) -> tuple[BloodPressureProcedure, Scenario]:
    """Run the procedure on the simulated module (and ``others``) until it finishes."""
    procedure = BloodPressureProcedure(**options)
    scenario = Scenario([(sim, SunTechDriver(port="sim")), *others])
    scenario.run(procedure.time_limit + 1, procedure=procedure)
    assert procedure.done
    return procedure, scenario


def pressures(measurement: Measurement) -> tuple[int | None, ...]:
    """SYS, DIA, MAP as whole numbers (None where the component has no value)."""
    components = [measurement.component(kind) for kind in PRESSURES]
    return tuple(None if c is None or c.value is None else int(c.value) for c in components)


def details(measurement: Measurement) -> dict[str, str]:
    return dict(measurement.details)


def test_screening_keeps_the_module_reading_and_the_cuff_pulse_rate() -> None:
    sim = SunTechSimulator(Truth(sys=128, dia=82, hr=72), seed=1, fast=True)
    procedure, _ = measure(sim, mode="screening")
    pressure, pulse = procedure.results
    assert pressure.kind is Kind.BLOOD_PRESSURE
    assert pressure.status is Status.VALID
    assert pressures(pressure) == (128, 82, 97)
    assert pressure.method is Method.OSCILLOMETRY
    assert pressure.procedure == "screening"
    assert pressure.unit == "mm[Hg]"
    assert pressure.device is not None
    assert pressure.device.protocol == "suntech-advantage"
    assert {"envelope-method", "envelope-beats", "cross-check"} <= details(pressure).keys()
    assert (pulse.kind, pulse.value, pulse.status) == (Kind.PULSE_RATE, Decimal(72), Status.VALID)
    assert details(pulse)["source"] == "bp-cuff"
    assert sim.cycles == 1


def test_aha_rests_then_averages_two_close_readings() -> None:
    sim = Varying([Truth(sys=128, dia=82), Truth(sys=131, dia=84)])
    procedure, _ = measure(sim, mode="aha2019", **FAST)
    pressure, pulse = procedure.results
    assert sim.cycles == 2
    assert [pressures(m)[:2] for m in pressure.members] == [(128, 82), (131, 84)]
    assert pressures(pressure)[:2] == (130, 83)  # 129.5 rounds half up
    assert pressure.status is Status.VALID
    assert pressure.procedure == "aha2019"
    assert details(pressure)["readings"] == "2"
    assert pulse.value == Decimal(72)
    first, second = pressure.members
    assert second.at.seconds_since(first.at) >= FAST["interval"] + 1.0  # pause, then a cycle


def test_aha_takes_a_third_reading_when_two_differ_by_more_than_5_mmhg() -> None:
    truths = [Truth(sys=128, dia=82), Truth(sys=136, dia=84), Truth(sys=130, dia=83)]
    sim = Varying(truths)
    procedure, _ = measure(sim, mode="aha2019", **FAST)
    pressure = procedure.results[0]
    assert sim.cycles == 3
    assert [pressures(m)[0] for m in pressure.members] == [128, 136, 130]
    assert pressures(pressure)[:2] == (131, 83)
    assert pressure.status is Status.VALID


def test_aha_needs_no_third_reading_at_exactly_5_mmhg() -> None:
    sim = Varying([Truth(sys=128, dia=82), Truth(sys=133, dia=77)])
    procedure, _ = measure(sim, mode="aha2019", **FAST)
    assert sim.cycles == 2
    assert len(procedure.results[0].members) == 2


def test_module_error_is_retaken_once_then_its_reason_given() -> None:
    sim = SunTechSimulator(Truth(cuff_error=2), seed=4, fast=True)
    procedure, _ = measure(sim, mode="screening", **FAST)
    (pressure,) = procedure.results
    assert sim.cycles == 2
    assert pressure.status is Status.NOT_AVAILABLE
    assert pressure.reasons == (MOTION,)
    assert pressure.retake_advised
    assert all(c.value is None and c.reasons == (MOTION,) for c in pressure.components)


def test_a_retake_after_an_error_can_succeed() -> None:
    sim = Varying([Truth(cuff_error=87), Truth(sys=122, dia=78)])
    procedure, _ = measure(sim, mode="screening", **FAST)
    pressure = procedure.results[0]
    assert sim.cycles == 2
    assert pressure.status is Status.VALID
    assert pressures(pressure)[:2] == (122, 78)


def test_hardware_fault_is_not_retaken_and_asks_for_staff() -> None:
    sim = SunTechSimulator(Truth(cuff_error=90), seed=2, fast=True)
    procedure, _ = measure(sim, mode="screening", **FAST)
    (pressure,) = procedure.results
    assert sim.cycles == 1
    assert pressure.reasons == (DEVICE_FAULT,)
    assert not pressure.retake_advised
    assert "nhân viên" in pressure.reasons[0].vi


def test_envelope_that_disagrees_with_the_module_makes_the_reading_questionable() -> None:
    sim = Misreporting(Truth(sys=128, dia=82), seed=3)  # a real-length deflation
    procedure, _ = measure(sim, mode="screening")
    pressure = procedure.results[0]
    assert pressures(pressure)[:2] == (153, 97)
    assert pressure.status is Status.QUESTIONABLE
    assert [r.code for r in pressure.reasons] == ["bp-unconfirmed"]
    assert details(pressure)["cross-check"] == "disagrees"
    assert abs(float(details(pressure)["envelope-sys-mmhg"]) - 128) < 10
    assert pressure.retake_advised


def test_envelope_that_agrees_leaves_the_reading_valid() -> None:
    sim = SunTechSimulator(Truth(sys=128, dia=82), seed=3)
    procedure, _ = measure(sim, mode="screening")
    pressure = procedure.results[0]
    assert pressure.status is Status.VALID
    assert details(pressure)["cross-check"] == "agrees"
    assert pressure.quality is not None
    assert pressure.quality >= 0.3


def test_a_wider_margin_accepts_the_same_disagreement() -> None:
    sim = Misreporting(Truth(sys=128, dia=82), seed=3)
    procedure, _ = measure(sim, mode="screening", margin=40.0)
    assert procedure.results[0].status is Status.VALID


@pytest.mark.parametrize(
    ("truth", "code"),
    [
        (Truth(sys=275, dia=110), "implausible-systolic-bp"),
        (Truth(sys=100, dia=95), "implausible-pulse-pressure"),
    ],
)
def test_implausible_values_are_invalid_after_one_retake(truth: Truth, code: str) -> None:
    sim = SunTechSimulator(truth, seed=1, fast=True)
    procedure, _ = measure(sim, mode="screening", **FAST)
    pressure = procedure.results[0]
    assert sim.cycles == 2
    assert pressure.status is Status.INVALID
    assert [r.code for r in pressure.reasons] == [code]
    assert pressures(pressure)[:2] == (truth.sys, truth.dia)  # shown, not kept
    assert all(c.status is Status.INVALID for c in pressure.components)


def test_aha_with_one_reading_left_is_questionable() -> None:
    sim = Varying([Truth(sys=128, dia=82), Truth(cuff_error=1)])
    procedure, _ = measure(sim, mode="aha2019", retakes=0, **FAST)
    pressure = procedure.results[0]
    assert sim.cycles == 2
    assert pressure.status is Status.QUESTIONABLE
    assert [r.code for r in pressure.reasons] == ["bp-incomplete", WEAK_PULSE.code]
    assert len(pressure.members) == 1


def test_silent_module_is_reported_as_such_after_a_retake() -> None:
    procedure, _ = measure(Mute(Truth(), fast=True), mode="screening", **FAST)
    (pressure,) = procedure.results
    assert pressure.status is Status.NOT_AVAILABLE
    assert pressure.reasons == (DEVICE_SILENT,)
    assert details(pressure) == {}


def test_cycle_running_too_long_is_aborted_and_retaken() -> None:
    sim = SunTechSimulator(Truth(), seed=1, fast=True)
    procedure, _ = measure(sim, mode="screening", cycle_timeout=4.0, **FAST)
    (pressure,) = procedure.results
    assert sim.cycles == 2
    assert [r.code for r in pressure.reasons] == ["bp-cycle-timeout"]


def test_time_limit_aborts_the_cuff_and_says_so() -> None:
    sim = SunTechSimulator(Truth(), seed=1, fast=True)
    procedure, scenario = measure(sim, mode="screening", time_limit=5.0)
    (pressure,) = procedure.results
    assert pressure.reasons == (TIMED_OUT,)
    scenario.run(scenario.t + 2.0)  # the abort is carried out: the cuff dumps and stops
    assert not sim.measuring


def test_pulse_rate_of_another_device_is_not_taken_for_the_cuffs() -> None:
    oximeter = (Cms50LegacySimulator(Truth(hr=95), seed=1), Cms50LegacyDriver(port="ox"))
    sim = SunTechSimulator(Truth(hr=64), seed=2, fast=True)
    procedure, _ = measure(sim, oximeter, mode="screening")
    assert procedure.results[1].value == Decimal(64)


def test_progress_counts_down_the_rest_and_shows_the_cuff() -> None:
    procedure = BloodPressureProcedure(mode="aha2019", rest=10.0, interval=5.0)
    sim = SunTechSimulator(Truth(), seed=1, fast=True)
    scenario = Scenario([(sim, SunTechDriver(port="sim"))])
    scenario.run(3.0, procedure=procedure)
    rest = procedure.progress
    assert (rest.phase, rest.seconds_left) == ("rest", 7)
    assert "7 giây" in rest.vi
    assert sim.cycles == 0
    scenario.run(11.5, procedure=procedure)
    inflating = procedure.progress
    assert inflating.phase == "inflating"
    assert "1 of 2" in inflating.en
    assert inflating.live is not None
    assert inflating.live > 0
    scenario.run(15.0, procedure=procedure)
    assert procedure.progress.phase == "deflating"
    scenario.run(21.0, procedure=procedure)
    pause = procedure.progress
    assert pause.phase == "between-readings"
    assert pause.seconds_left is not None
    assert 0 < pause.seconds_left <= 5
    assert "Lần đo tiếp theo" in pause.vi


def test_retake_progress_says_what_to_do() -> None:
    procedure = BloodPressureProcedure(mode="screening", retake_after=20.0)
    sim = SunTechSimulator(Truth(cuff_error=87), seed=1, fast=True)
    scenario = Scenario([(sim, SunTechDriver(port="sim"))])
    scenario.run(8.0, procedure=procedure)
    progress = procedure.progress
    assert progress.phase == "retake"
    assert progress.en.startswith(LOOSE_CUFF.en)
    assert progress.vi.startswith(LOOSE_CUFF.vi)


def test_start_command_is_given_at_start_in_screening_only() -> None:
    clock = Scenario([]).clock
    assert BloodPressureProcedure(mode="screening").start(clock.at(0.0)) == [Command.START_BP]
    assert BloodPressureProcedure(mode="aha2019").start(clock.at(0.0)) == []


@pytest.mark.parametrize(
    ("code", "reason_code", "retake"),
    [
        (1, "bp-weak-pulse", True),
        (2, "bp-motion", True),
        (3, "bp-out-of-range", True),
        (4, "bp-too-long", True),
        (85, "bp-hose-blocked", True),
        (87, "bp-loose-cuff", True),
        (88, "bp-too-long", True),
        (89, "bp-over-pressure", True),
        (90, "bp-device-fault", False),
        (97, "bp-device-fault", False),
        (99, "bp-device-fault", False),
        (42, "bp-error-42", True),
    ],
)
def test_module_error_codes_become_retake_reasons(
    code: int, reason_code: str, retake: bool
) -> None:
    reason = for_error_code(code)
    assert (reason.code, reason.retake) == (reason_code, retake)
    assert any(not ch.isascii() for ch in reason.vi), "Vietnamese with its diacritics"


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="mode"):
        BloodPressureProcedure(mode="auscultation")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="margin"):
        BloodPressureProcedure(margin=0.0)
