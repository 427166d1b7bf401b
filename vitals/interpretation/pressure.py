"""Blood-pressure categories of the 2017 ACC/AHA guideline, plus low pressure.

Systolic and diastolic pressure are each placed in a category; the reading's category is the
higher of the two (the guideline's rule: 125/85 is stage 1, not elevated).  Low pressure
(systolic < 90 or diastolic < 60) is not an AHA category; it is shown only when neither number
is high.  Limits:

    category               systolic        diastolic     code  urgent
    low                    < 90            < 60          L
    normal                 90-119          60-79         N
    elevated               120-129         (none)        H
    stage 1 hypertension   130-139         80-89         H
    stage 2 hypertension   140-179         90-119        H
    hypertensive crisis    >= 180          >= 120        HH    yes
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from vitals.measurement import Component, Interpretation, Measurement
from vitals.model import Kind, Status

BP_GUIDELINE: Final = "ACC/AHA 2017"


@dataclass(frozen=True, slots=True)
class _Category:
    name: str
    code: str
    rank: int
    """Order of severity among the high categories; low is -1."""
    en: str
    vi: str
    word_en: str
    word_vi: str
    urgent: bool = False


LOW: Final = _Category(
    "low-blood-pressure",
    "L",
    -1,
    "Your blood pressure is low; tell the doctor if you feel dizzy or faint.",
    "Huyết áp của bạn thấp; hãy báo bác sĩ nếu bạn thấy chóng mặt hoặc choáng váng.",
    "low",
    "thấp",
)
NORMAL: Final = _Category(
    "normal",
    "N",
    0,
    "Your blood pressure is normal.",
    "Huyết áp của bạn bình thường.",
    "normal",
    "ở mức bình thường",
)
ELEVATED: Final = _Category(
    "elevated",
    "H",
    1,
    "Your blood pressure is a little high; eat less salt, stay active and check it again.",
    "Huyết áp của bạn hơi cao; hãy ăn nhạt hơn, vận động đều và đo lại sau.",
    "a little high",
    "hơi cao",
)
STAGE_1: Final = _Category(
    "stage-1-hypertension",
    "H",
    2,
    "Your blood pressure is high (stage 1 hypertension); please talk to a doctor about it.",
    "Huyết áp của bạn cao (tăng huyết áp giai đoạn 1); bạn nên trao đổi với bác sĩ.",
    "high (stage 1)",
    "cao (giai đoạn 1)",
)
STAGE_2: Final = _Category(
    "stage-2-hypertension",
    "H",
    3,
    "Your blood pressure is high (stage 2 hypertension); please see a doctor soon.",
    "Huyết áp của bạn cao (tăng huyết áp giai đoạn 2); bạn nên đi khám bác sĩ sớm.",
    "high (stage 2)",
    "cao (giai đoạn 2)",
)
CRISIS: Final = _Category(
    "hypertensive-crisis",
    "HH",
    4,
    "Your blood pressure is very high; talk to the doctor now, and call 115 if you have chest "
    "pain, a severe headache, weakness or trouble speaking.",
    "Huyết áp của bạn rất cao; hãy nói chuyện với bác sĩ ngay, và gọi 115 nếu bị đau ngực, "
    "đau đầu dữ dội, yếu tay chân hoặc nói khó.",
    "very high",
    "rất cao",
    urgent=True,
)

_SYSTOLIC: Final = (
    (Decimal(90), LOW),
    (Decimal(120), NORMAL),
    (Decimal(130), ELEVATED),
    (Decimal(140), STAGE_1),
    (Decimal(180), STAGE_2),
)
_DIASTOLIC: Final = (
    (Decimal(60), LOW),
    (Decimal(80), NORMAL),
    (Decimal(90), STAGE_1),
    (Decimal(120), STAGE_2),
)


def _category(value: Decimal, limits: tuple[tuple[Decimal, _Category], ...]) -> _Category:
    return next((category for below, category in limits if value < below), CRISIS)


def _combined(systolic: Decimal, diastolic: Decimal) -> _Category:
    upper = _category(systolic, _SYSTOLIC)
    lower = _category(diastolic, _DIASTOLIC)
    worst = max(upper, lower, key=lambda category: category.rank)
    if worst.rank > 0:
        return worst
    return LOW if LOW in (upper, lower) else NORMAL


def _interpretation(category: _Category, en: str, vi: str) -> Interpretation:
    return Interpretation(
        category.code, category.name, en, vi, urgent=category.urgent, guideline=BP_GUIDELINE
    )


def blood_pressure(systolic: Decimal, diastolic: Decimal) -> Interpretation:
    """The category of a reading (mmHg): the higher of its two numbers' categories."""
    category = _combined(systolic, diastolic)
    return _interpretation(category, category.en, category.vi)


def systolic_pressure(value: Decimal) -> Interpretation:
    """The category of the systolic number alone (for the systolic component)."""
    category = _category(value, _SYSTOLIC)
    return _interpretation(
        category,
        f"The upper number (systolic pressure) is {category.word_en}.",
        f"Số trên (huyết áp tâm thu) {category.word_vi}.",
    )


def diastolic_pressure(value: Decimal) -> Interpretation:
    """The category of the diastolic number alone (for the diastolic component)."""
    category = _category(value, _DIASTOLIC)
    return _interpretation(
        category,
        f"The lower number (diastolic pressure) is {category.word_en}.",
        f"Số dưới (huyết áp tâm trương) {category.word_vi}.",
    )


def interpret_pressure(measurement: Measurement) -> Measurement:
    """A valid BP panel with its category and its systolic/diastolic components' own.

    The panel is categorised only when both its systolic and diastolic components are valid;
    a panel that is not valid comes back unchanged.
    """
    if not measurement.valid:
        return measurement
    components = tuple(_component(component) for component in measurement.components)
    upper = _valid_value(measurement.component(Kind.SYSTOLIC_BP))
    lower = _valid_value(measurement.component(Kind.DIASTOLIC_BP))
    panel = None
    if upper is not None and lower is not None:
        panel = blood_pressure(upper, lower)
    return dataclasses.replace(measurement, components=components, interpretation=panel)


def _component(component: Component) -> Component:
    value = _valid_value(component)
    if value is None:
        return component
    if component.kind is Kind.SYSTOLIC_BP:
        return dataclasses.replace(component, interpretation=systolic_pressure(value))
    if component.kind is Kind.DIASTOLIC_BP:
        return dataclasses.replace(component, interpretation=diastolic_pressure(value))
    return component


def _valid_value(component: Component | None) -> Decimal | None:
    if component is None or component.status is not Status.VALID:
        return None
    return component.value
