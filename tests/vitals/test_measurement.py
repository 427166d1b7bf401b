"""Measurements, reasons and plausibility."""

from __future__ import annotations

from decimal import Decimal

import pytest

from vitals.measurement import Component, Measurement, Method, Reason
from vitals.model import Kind, Status
from vitals.plausibility import DEFAULT_RANGES
from vitals.reasons import TIMED_OUT, implausible
from vitals.sim.scenario import ScenarioClock

AT = ScenarioClock().at(0.0)


def _measurement(**changes: object) -> Measurement:
    fields: dict[str, object] = {
        "kind": Kind.BODY_WEIGHT,
        "value": Decimal("63.40"),
        "unit": "kg",
        "at": AT,
        "status": Status.VALID,
        "method": Method.PLATFORM_SCALE,
    }
    fields.update(changes)
    return Measurement(**fields)  # type: ignore[arg-type]


def test_a_failed_measurement_must_say_why() -> None:
    with pytest.raises(ValueError, match="needs a reason"):
        _measurement(value=None, status=Status.NOT_AVAILABLE)
    failed = _measurement(value=None, status=Status.NOT_AVAILABLE, reasons=(TIMED_OUT,))
    assert failed.retake_advised


def test_a_reason_that_retaking_cannot_fix_is_not_a_retake() -> None:
    overload = Reason(
        "overload", "Too heavy for the scale.", "Quá tải trọng của cân.", retake=False
    )
    failed = _measurement(value=None, status=Status.INVALID, reasons=(overload,))
    assert not failed.retake_advised


def test_a_valid_measurement_keeps_its_written_precision() -> None:
    assert str(_measurement().value) == "63.40"


def test_a_panel_carries_its_values_in_components() -> None:
    panel = _measurement(
        kind=Kind.BLOOD_PRESSURE,
        value=None,
        unit="mm[Hg]",
        method=Method.OSCILLOMETRY,
        components=(
            Component(Kind.SYSTOLIC_BP, Decimal(128), "mm[Hg]"),
            Component(Kind.DIASTOLIC_BP, Decimal(82), "mm[Hg]"),
        ),
    )
    systolic = panel.component(Kind.SYSTOLIC_BP)
    assert systolic is not None
    assert systolic.value == Decimal(128)
    assert panel.component(Kind.MEAN_BP) is None
    with pytest.raises(ValueError, match="carries its values in components"):
        _measurement(kind=Kind.BLOOD_PRESSURE, components=panel.components)


def test_quality_is_an_index() -> None:
    with pytest.raises(ValueError, match="quality"):
        _measurement(quality=1.5)


@pytest.mark.parametrize(
    ("kind", "value", "plausible"),
    [
        (Kind.SPO2, "49", False),
        (Kind.SPO2, "50", True),
        (Kind.SPO2, "100", True),
        (Kind.PULSE_RATE, "251", False),
        (Kind.BODY_TEMPERATURE, "33.9", False),
        (Kind.BODY_TEMPERATURE, "43.0", True),
        (Kind.BODY_WEIGHT, "250.05", False),
        (Kind.DISTANCE, "99999", True),  # not a vital: not checked
    ],
)
def test_plausible_ranges(kind: Kind, value: str, plausible: bool) -> None:
    assert (DEFAULT_RANGES.check(kind, Decimal(value), kind.unit) is None) is plausible


def test_pulse_pressure_must_be_real() -> None:
    assert DEFAULT_RANGES.check_pressures(Decimal(128), Decimal(82)) is None
    reason = DEFAULT_RANGES.check_pressures(Decimal(90), Decimal(85))
    assert reason is not None
    assert reason.code == "implausible-pulse-pressure"
    assert "90/85 mmHg" in reason.vi


def test_implausible_reason_names_the_value_in_both_languages() -> None:
    reason = implausible(Kind.SPO2, Decimal(30), "%")
    assert reason.code == "implausible-spo2"
    assert "oxygen level reading (30 %)" in reason.en
    assert "nồng độ oxy trong máu (30 %)" in reason.vi
    assert reason.retake
