"""Vital-sign bands for SpO2, pulse rate, body temperature and BMI (sources in the package doc).

Each band table is ordered from low to high; a value falls in the first band whose upper limit
it does not pass.  Limits are exact :class:`~decimal.Decimal` values, so a boundary such as
37.5 °C or 23.0 kg/m2 is never blurred by binary rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from vitals.measurement import Interpretation

BMI_GUIDELINE: Final = "WHO 2004 (Asian populations)"
SPO2_GUIDELINE: Final = "cabin bands; BTS 2017, NEWS2"
PULSE_GUIDELINE: Final = "NEWS2 (RCP 2017); AHA ACLS"
TEMPERATURE_GUIDELINE: Final = "NEWS2 (RCP 2017); IDSA 2009"


@dataclass(frozen=True, slots=True)
class Band:
    """Values up to ``upper`` (inclusive or not; None: no limit) mean ``meaning``."""

    upper: Decimal | None
    inclusive: bool
    meaning: Interpretation

    def holds(self, value: Decimal) -> bool:
        if self.upper is None:
            return True
        return value <= self.upper if self.inclusive else value < self.upper


def classify(value: Decimal, bands: tuple[Band, ...]) -> Interpretation:
    """The meaning of the first band ``value`` falls in."""
    return next(entry.meaning for entry in bands if entry.holds(value))


def band(upper: str | None, meaning: Interpretation, *, inclusive: bool = False) -> Band:
    """A band up to ``upper`` (exclusive unless ``inclusive``; None: the top band)."""
    return Band(None if upper is None else Decimal(upper), inclusive, meaning)


def means(
    code: str, category: str, en: str, vi: str, guideline: str, *, urgent: bool = False
) -> Interpretation:
    """An interpretation (positional, to keep the tables below readable)."""
    return Interpretation(code, category, en, vi, urgent=urgent, guideline=guideline)


# -- SpO2, pulse, temperature, BMI ---------------------------------------------------------

_SPO2: Final = (
    band(
        "90",
        means(
            "LL",
            "very-low",
            "Your blood oxygen level is too low; talk to the doctor now.",
            "Nồng độ oxy trong máu của bạn quá thấp; hãy nói chuyện với bác sĩ ngay.",
            SPO2_GUIDELINE,
            urgent=True,
        ),
    ),
    band(
        "95",
        means(
            "L",
            "low",
            "Your blood oxygen level is a little low; tell the doctor, especially if you are "
            "short of breath.",
            "Nồng độ oxy trong máu của bạn hơi thấp; hãy báo bác sĩ, nhất là khi bạn thấy khó thở.",
            SPO2_GUIDELINE,
        ),
    ),
    band(
        None,
        means(
            "N",
            "normal",
            "Your blood oxygen level is normal.",
            "Nồng độ oxy trong máu của bạn bình thường.",
            SPO2_GUIDELINE,
        ),
    ),
)

_PULSE: Final = (
    band(
        "40",
        means(
            "LL",
            "very-slow",
            "Your pulse is very slow; talk to the doctor now.",
            "Nhịp mạch của bạn rất chậm; hãy nói chuyện với bác sĩ ngay.",
            PULSE_GUIDELINE,
            urgent=True,
        ),
        inclusive=True,
    ),
    band(
        "50",
        means(
            "L",
            "slow",
            "Your pulse is slow; tell the doctor, especially if you feel dizzy or tired.",
            "Nhịp mạch của bạn chậm; hãy báo bác sĩ, nhất là khi bạn thấy chóng mặt hay mệt.",
            PULSE_GUIDELINE,
        ),
    ),
    band(
        "100",
        means(
            "N",
            "normal",
            "Your pulse is normal.",
            "Nhịp mạch của bạn bình thường.",
            PULSE_GUIDELINE,
        ),
        inclusive=True,
    ),
    band(
        "130",
        means(
            "H",
            "fast",
            "Your pulse is fast; sit and rest for a few minutes, then tell the doctor.",
            "Nhịp mạch của bạn nhanh; hãy ngồi nghỉ vài phút rồi báo bác sĩ.",
            PULSE_GUIDELINE,
        ),
        inclusive=True,
    ),
    band(
        None,
        means(
            "HH",
            "very-fast",
            "Your pulse is very fast; talk to the doctor now.",
            "Nhịp mạch của bạn rất nhanh; hãy nói chuyện với bác sĩ ngay.",
            PULSE_GUIDELINE,
            urgent=True,
        ),
    ),
)

_TEMPERATURE: Final = (
    band(
        "35.0",
        means(
            "LL",
            "hypothermia",
            "Your body temperature is too low; keep warm and talk to the doctor now.",
            "Thân nhiệt của bạn quá thấp; hãy giữ ấm và nói chuyện với bác sĩ ngay.",
            TEMPERATURE_GUIDELINE,
            urgent=True,
        ),
    ),
    band(
        "36.0",
        means(
            "L",
            "low",
            "Your temperature is a little low; keep warm and measure it again later.",
            "Nhiệt độ của bạn hơi thấp; hãy giữ ấm và đo lại sau.",
            TEMPERATURE_GUIDELINE,
        ),
    ),
    band(
        "37.5",
        means(
            "N",
            "normal",
            "Your temperature is normal.",
            "Nhiệt độ của bạn bình thường.",
            TEMPERATURE_GUIDELINE,
        ),
    ),
    band(
        "38.0",
        means(
            "H",
            "raised",
            "Your temperature is slightly raised; rest, drink water and measure it again later.",
            "Nhiệt độ của bạn hơi cao; hãy nghỉ ngơi, uống nhiều nước và đo lại sau.",
            TEMPERATURE_GUIDELINE,
        ),
    ),
    band(
        "40.0",
        means(
            "H",
            "fever",
            "You have a fever; please tell the doctor.",
            "Bạn đang bị sốt; hãy báo cho bác sĩ.",
            TEMPERATURE_GUIDELINE,
        ),
    ),
    band(
        None,
        means(
            "HH",
            "very-high-fever",
            "You have a very high fever; talk to the doctor now.",
            "Bạn đang sốt rất cao; hãy nói chuyện với bác sĩ ngay.",
            TEMPERATURE_GUIDELINE,
            urgent=True,
        ),
    ),
)

_BMI: Final = (
    band(
        "18.5",
        means(
            "L",
            "underweight",
            "You are underweight for your height; eat well and ask the doctor for advice.",
            "Bạn đang nhẹ cân so với chiều cao; hãy ăn uống đủ chất và hỏi ý kiến bác sĩ.",
            BMI_GUIDELINE,
        ),
    ),
    band(
        "23",
        means(
            "N",
            "normal",
            "Your weight is healthy for your height.",
            "Cân nặng của bạn phù hợp với chiều cao.",
            BMI_GUIDELINE,
        ),
    ),
    band(
        "27.5",
        means(
            "H",
            "overweight",
            "You are overweight for your height, which raises the risk of diabetes and heart "
            "disease.",
            "Bạn đang thừa cân so với chiều cao, dễ mắc bệnh tiểu đường và bệnh tim hơn.",
            BMI_GUIDELINE,
        ),
    ),
    band(
        None,
        means(
            "H",
            "obese",
            "Your weight is very high for your height (obesity); please talk to the doctor "
            "about it.",
            "Bạn bị béo phì so với chiều cao; hãy trao đổi với bác sĩ về việc này.",
            BMI_GUIDELINE,
        ),
    ),
)


def spo2(value: Decimal) -> Interpretation:
    """The band of an oxygen saturation in %."""
    return classify(value, _SPO2)


def pulse_rate(value: Decimal) -> Interpretation:
    """The band of a pulse rate in beats per minute."""
    return classify(value, _PULSE)


def body_temperature(value: Decimal) -> Interpretation:
    """The band of a body temperature in °C."""
    return classify(value, _TEMPERATURE)


def bmi(value: Decimal) -> Interpretation:
    """The WHO Asian band of a body-mass index in kg/m2."""
    return classify(value, _BMI)
