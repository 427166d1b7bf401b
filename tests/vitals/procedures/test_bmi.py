"""BMI from this visit's height and weight measurements."""

from __future__ import annotations

from decimal import Decimal

import pytest

from vitals.devices.and_scale import AndScaleDriver
from vitals.devices.maxbotix import MaxBotixDriver
from vitals.measurement import Measurement, Method, Reason
from vitals.model import Kind, Status
from vitals.procedures.bmi import body_mass_index
from vitals.procedures.height import HeightProcedure
from vitals.procedures.weight import WeightProcedure
from vitals.sim.and_scale import AndScaleSimulator
from vitals.sim.maxbotix import MaxBotixSimulator
from vitals.sim.scenario import Scenario, ScenarioClock
from vitals.sim.truth import Truth

CLOCK = ScenarioClock()
FAILED = Reason("x", "Failed.", "Không đạt.")


def height(cm: str, *, at: float = 10.0, status: Status = Status.VALID) -> Measurement:
    return Measurement(
        kind=Kind.BODY_HEIGHT,
        value=None if status is Status.NOT_AVAILABLE else Decimal(cm),
        unit="cm",
        at=CLOCK.at(at),
        status=status,
        method=Method.ULTRASONIC,
        reasons=() if status is Status.VALID else (FAILED,),
    )


def weight(kg: str, *, at: float = 20.0, status: Status = Status.VALID) -> Measurement:
    return Measurement(
        kind=Kind.BODY_WEIGHT,
        value=None if status is Status.NOT_AVAILABLE else Decimal(kg),
        unit="kg",
        at=CLOCK.at(at),
        status=status,
        method=Method.PLATFORM_SCALE,
        reasons=() if status is Status.VALID else (FAILED,),
    )


def test_bmi_is_weight_over_height_squared_to_a_tenth() -> None:
    h, w = height("158.0"), weight("63.40")
    bmi = body_mass_index(height=h, weight=w)
    assert bmi.kind is Kind.BMI
    assert bmi.value == Decimal("25.4")  # 63.4 / 1.58^2 = 25.396
    assert bmi.unit == "kg/m2"
    assert bmi.status is Status.VALID
    assert bmi.method is Method.CALCULATED
    assert bmi.device is None
    assert bmi.derived_from == (h, w)
    assert bmi.at == w.at  # the later of the two


def test_bmi_rounds_half_up() -> None:
    assert body_mass_index(height=height("100.0"), weight=weight("22.05")).value == Decimal("22.1")


@pytest.mark.parametrize(
    ("h", "w", "missing_en", "missing_vi"),
    [
        (None, weight("60.00"), "height", "chiều cao"),
        (height("160.0", status=Status.NOT_AVAILABLE), weight("60.00"), "height", "chiều cao"),
        (height("160.0"), weight("60.00", status=Status.INVALID), "weight", "cân nặng"),
        (
            height("160.0", status=Status.QUESTIONABLE),
            None,
            "height and weight",
            "chiều cao và cân nặng",
        ),
    ],
)
def test_missing_or_failed_inputs_make_bmi_not_available(
    h: Measurement | None, w: Measurement | None, missing_en: str, missing_vi: str
) -> None:
    bmi = body_mass_index(height=h, weight=w)
    assert bmi.status is Status.NOT_AVAILABLE
    assert bmi.value is None
    (reason,) = bmi.reasons
    assert reason.code == "bmi-inputs-missing"
    assert f"measure your {missing_en} first" in reason.en
    assert f"đo {missing_vi} trước" in reason.vi


def test_without_any_input_the_time_must_be_given() -> None:
    with pytest.raises(ValueError, match="time"):
        body_mass_index(height=None, weight=None)
    bmi = body_mass_index(height=None, weight=None, at=CLOCK.at(5.0))
    assert bmi.derived_from == ()


def test_inputs_of_the_wrong_kind_are_a_wiring_error() -> None:
    with pytest.raises(ValueError, match="body-height"):
        body_mass_index(height=weight("60.00"), weight=weight("60.00"))


def test_implausible_bmi_is_invalid() -> None:
    bmi = body_mass_index(height=height("100.0"), weight=weight("90.00"))
    assert bmi.status is Status.INVALID
    assert bmi.value == Decimal("90.0")
    assert bmi.reasons[0].code == "implausible-bmi"


def test_bmi_from_this_visits_simulated_height_and_weight() -> None:
    truth = Truth(height=158.0, weight=Decimal("63.4"))
    tall = HeightProcedure()
    Scenario([(MaxBotixSimulator(truth), MaxBotixDriver(port="h"))]).run(25, procedure=tall)
    heavy = WeightProcedure()
    Scenario([(AndScaleSimulator(truth), AndScaleDriver(port="w"))]).run(35, procedure=heavy)
    bmi = body_mass_index(height=tall.results[0], weight=heavy.results[0])
    assert bmi.status is Status.VALID
    assert bmi.value is not None
    assert abs(bmi.value - Decimal("25.4")) <= Decimal("0.2")
    assert bmi.derived_from == (tall.results[0], heavy.results[0])
