"""Interpretation bands: every boundary, the codes, urgency, and both languages."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from decimal import Decimal

import pytest

from vitals.interpretation import (
    blood_pressure,
    bmi,
    body_temperature,
    diastolic_pressure,
    interpret,
    pulse_rate,
    spo2,
    systolic_pressure,
)
from vitals.measurement import Component, Interpretation, Measurement, Method, Reason
from vitals.model import Kind, Status
from vitals.sim.scenario import ScenarioClock

AT = ScenarioClock().at(0.0)
RETAKE = Reason("x", "Please measure again.", "Vui lòng đo lại.")
VIETNAMESE = re.compile(r"[àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ]")

Classifier = Callable[[Decimal], Interpretation]

# (classifier, value, HL7 code, category, urgent): each boundary and its neighbour.
BOUNDARIES: list[tuple[Classifier, str, str, str, bool]] = [
    (spo2, "89", "LL", "very-low", True),
    (spo2, "89.9", "LL", "very-low", True),
    (spo2, "90", "L", "low", False),
    (spo2, "94", "L", "low", False),
    (spo2, "95", "N", "normal", False),
    (spo2, "100", "N", "normal", False),
    (pulse_rate, "40", "LL", "very-slow", True),
    (pulse_rate, "41", "L", "slow", False),
    (pulse_rate, "49", "L", "slow", False),
    (pulse_rate, "50", "N", "normal", False),
    (pulse_rate, "100", "N", "normal", False),
    (pulse_rate, "101", "H", "fast", False),
    (pulse_rate, "130", "H", "fast", False),
    (pulse_rate, "131", "HH", "very-fast", True),
    (body_temperature, "34.9", "LL", "hypothermia", True),
    (body_temperature, "35.0", "L", "low", False),
    (body_temperature, "35.9", "L", "low", False),
    (body_temperature, "36.0", "N", "normal", False),
    (body_temperature, "37.4", "N", "normal", False),
    (body_temperature, "37.5", "H", "raised", False),
    (body_temperature, "37.9", "H", "raised", False),
    (body_temperature, "38.0", "H", "fever", False),
    (body_temperature, "39.9", "H", "fever", False),
    (body_temperature, "40.0", "HH", "very-high-fever", True),
    (bmi, "18.4", "L", "underweight", False),
    (bmi, "18.5", "N", "normal", False),
    (bmi, "22.9", "N", "normal", False),
    (bmi, "23.0", "H", "overweight", False),
    (bmi, "27.4", "H", "overweight", False),
    (bmi, "27.5", "H", "obese", False),
    (systolic_pressure, "89", "L", "low-blood-pressure", False),
    (systolic_pressure, "90", "N", "normal", False),
    (systolic_pressure, "119", "N", "normal", False),
    (systolic_pressure, "120", "H", "elevated", False),
    (systolic_pressure, "129", "H", "elevated", False),
    (systolic_pressure, "130", "H", "stage-1-hypertension", False),
    (systolic_pressure, "139", "H", "stage-1-hypertension", False),
    (systolic_pressure, "140", "H", "stage-2-hypertension", False),
    (systolic_pressure, "179", "H", "stage-2-hypertension", False),
    (systolic_pressure, "180", "HH", "hypertensive-crisis", True),
    (diastolic_pressure, "59", "L", "low-blood-pressure", False),
    (diastolic_pressure, "60", "N", "normal", False),
    (diastolic_pressure, "79", "N", "normal", False),
    (diastolic_pressure, "80", "H", "stage-1-hypertension", False),
    (diastolic_pressure, "89", "H", "stage-1-hypertension", False),
    (diastolic_pressure, "90", "H", "stage-2-hypertension", False),
    (diastolic_pressure, "119", "H", "stage-2-hypertension", False),
    (diastolic_pressure, "120", "HH", "hypertensive-crisis", True),
]


@pytest.mark.parametrize(("classify", "value", "code", "category", "urgent"), BOUNDARIES)
def test_every_band_boundary(
    classify: Classifier, value: str, code: str, category: str, urgent: bool
) -> None:
    meaning = classify(Decimal(value))
    assert (meaning.code, meaning.category, meaning.urgent) == (code, category, urgent)


@pytest.mark.parametrize(
    ("systolic", "diastolic", "category"),
    [
        (119, 79, "normal"),
        (120, 79, "elevated"),
        (129, 79, "elevated"),
        (125, 80, "stage-1-hypertension"),  # the higher category of the two applies
        (130, 70, "stage-1-hypertension"),
        (139, 89, "stage-1-hypertension"),
        (140, 70, "stage-2-hypertension"),
        (118, 90, "stage-2-hypertension"),
        (179, 119, "stage-2-hypertension"),
        (180, 100, "hypertensive-crisis"),
        (160, 120, "hypertensive-crisis"),
        (89, 60, "low-blood-pressure"),
        (100, 59, "low-blood-pressure"),
        (125, 55, "elevated"),  # high wins over low
        (90, 60, "normal"),
    ],
)
def test_blood_pressure_category_of_a_reading(systolic: int, diastolic: int, category: str) -> None:
    assert blood_pressure(Decimal(systolic), Decimal(diastolic)).category == category


def test_hypertensive_crisis_is_urgent_and_says_what_to_do() -> None:
    crisis = blood_pressure(Decimal(182), Decimal(95))
    assert crisis.code == "HH"
    assert crisis.urgent
    assert "115" in crisis.vi
    assert crisis.guideline == "ACC/AHA 2017"


def _all_interpretations() -> list[Interpretation]:
    singles = [classify(Decimal(value)) for classify, value, *_ in BOUNDARIES]
    panels = [
        blood_pressure(Decimal(s), Decimal(d))
        for s, d in [(85, 55), (110, 70), (125, 75), (135, 85), (150, 95), (190, 125)]
    ]
    return singles + panels


@pytest.mark.parametrize(
    "meaning", _all_interpretations(), ids=lambda m: f"{m.guideline}-{m.category}"
)
def test_each_meaning_is_one_plain_sentence_in_each_language(meaning: Interpretation) -> None:
    for text in (meaning.en, meaning.vi):
        assert text.endswith(".")
        assert ". " not in text  # one sentence
        assert len(text) <= 170
    assert VIETNAMESE.search(meaning.vi), meaning.vi
    assert meaning.code in {"N", "L", "H", "LL", "HH", "A"}
    assert meaning.urgent == (meaning.code in {"LL", "HH"})
    assert meaning.guideline


def measurement(kind: Kind, value: str, unit: str, *, status: Status = Status.VALID) -> Measurement:
    return Measurement(
        kind=kind,
        value=Decimal(value),
        unit=unit,
        at=AT,
        status=status,
        method=Method.PULSE_OXIMETRY,
        reasons=() if status is Status.VALID else (RETAKE,),
    )


def test_interpret_attaches_the_band_to_a_valid_measurement() -> None:
    low = interpret(measurement(Kind.SPO2, "88", "%"))
    assert low.interpretation is not None
    assert low.interpretation.code == "LL"
    assert low.interpretation.urgent
    assert interpret(measurement(Kind.BMI, "24.1", "kg/m2")).interpretation == bmi(Decimal("24.1"))


@pytest.mark.parametrize("status", [Status.QUESTIONABLE, Status.INVALID])
def test_a_measurement_the_cabin_does_not_stand_behind_gets_no_interpretation(
    status: Status,
) -> None:
    doubtful = measurement(Kind.SPO2, "85", "%", status=status)
    assert interpret(doubtful).interpretation is None


def test_weight_and_height_alone_are_not_interpreted() -> None:
    assert interpret(measurement(Kind.BODY_WEIGHT, "120.00", "kg")).interpretation is None


def test_a_value_in_another_unit_is_a_wiring_error() -> None:
    with pytest.raises(ValueError, match="Cel"):
        interpret(measurement(Kind.BODY_TEMPERATURE, "99.5", "[degF]"))


def _panel(*components: Component, status: Status = Status.VALID) -> Measurement:
    return Measurement(
        kind=Kind.BLOOD_PRESSURE,
        value=None,
        unit="mm[Hg]",
        at=AT,
        status=status,
        method=Method.OSCILLOMETRY,
        components=components,
        reasons=() if status is Status.VALID else (RETAKE,),
    )


def test_blood_pressure_panel_and_its_components_are_interpreted() -> None:
    panel = interpret(
        _panel(
            Component(Kind.SYSTOLIC_BP, Decimal(184), "mm[Hg]"),
            Component(Kind.DIASTOLIC_BP, Decimal(78), "mm[Hg]"),
            Component(Kind.MEAN_BP, Decimal(113), "mm[Hg]"),
        )
    )
    assert panel.interpretation is not None
    assert panel.interpretation.category == "hypertensive-crisis"
    upper, lower, mean = panel.components
    assert upper.interpretation is not None
    assert upper.interpretation.urgent
    assert "Số trên" in upper.interpretation.vi
    assert lower.interpretation is not None
    assert lower.interpretation.code == "N"
    assert lower.interpretation.vi == "Số dưới (huyết áp tâm trương) ở mức bình thường."
    assert mean.interpretation is None


def test_a_panel_with_a_doubtful_component_gets_no_category() -> None:
    doubtful = Component(Kind.DIASTOLIC_BP, Decimal(70), "mm[Hg]", Status.QUESTIONABLE, (RETAKE,))
    panel = interpret(_panel(Component(Kind.SYSTOLIC_BP, Decimal(150), "mm[Hg]"), doubtful))
    assert panel.interpretation is None
    assert panel.components[0].interpretation is not None
    assert panel.components[1].interpretation is None
    failed = _panel(Component(Kind.SYSTOLIC_BP, Decimal(150), "mm[Hg]"), status=Status.INVALID)
    assert interpret(failed) == failed


def test_interpretation_keeps_everything_else() -> None:
    original = measurement(Kind.PULSE_RATE, "72", "/min")
    interpreted = interpret(original)
    assert dataclasses.replace(interpreted, interpretation=None) == original
