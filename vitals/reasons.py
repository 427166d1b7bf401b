"""Reasons shared by every procedure (each procedure module adds its own).

Sentences are written for an older resident reading a kiosk screen: what happened, then what
to do, in plain words, Vietnamese first in the UI.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from vitals.measurement import Reason
from vitals.model import Kind

DEVICE_SILENT: Final = Reason(
    "device-silent",
    "The measuring device did not respond. Please ask the station staff for help.",
    "Thiết bị đo không phản hồi. Vui lòng nhờ nhân viên tại trạm hỗ trợ.",
    retake=False,
)
TIMED_OUT: Final = Reason(
    "timed-out",
    "The measurement took too long and was stopped. Please try again.",
    "Việc đo mất quá nhiều thời gian nên đã dừng lại. Vui lòng đo lại.",
)
SKIPPED: Final = Reason(
    "skipped",
    "This measurement was skipped.",
    "Bạn đã bỏ qua phép đo này.",
)
MOTION: Final = Reason(
    "motion",
    "You moved during the measurement. Rest your arm on the table, keep still and try again.",
    "Bạn đã cử động trong khi đo. Hãy đặt tay lên bàn, giữ yên và đo lại.",
)

_NAMES_EN: Final = {
    Kind.SPO2: "oxygen level",
    Kind.PULSE_RATE: "pulse rate",
    Kind.SYSTOLIC_BP: "systolic pressure",
    Kind.DIASTOLIC_BP: "diastolic pressure",
    Kind.MEAN_BP: "mean pressure",
    Kind.BODY_TEMPERATURE: "temperature",
    Kind.BODY_HEIGHT: "height",
    Kind.BODY_WEIGHT: "weight",
    Kind.BMI: "BMI",
}
_NAMES_VI: Final = {
    Kind.SPO2: "nồng độ oxy trong máu",
    Kind.PULSE_RATE: "nhịp mạch",
    Kind.SYSTOLIC_BP: "huyết áp tâm thu",
    Kind.DIASTOLIC_BP: "huyết áp tâm trương",
    Kind.MEAN_BP: "huyết áp trung bình",
    Kind.BODY_TEMPERATURE: "nhiệt độ",
    Kind.BODY_HEIGHT: "chiều cao",
    Kind.BODY_WEIGHT: "cân nặng",
    Kind.BMI: "chỉ số BMI",
}


def name_en(kind: Kind) -> str:
    return _NAMES_EN.get(kind, kind.value.replace("-", " "))


def name_vi(kind: Kind) -> str:
    return _NAMES_VI.get(kind, kind.value.replace("-", " "))


def implausible(kind: Kind, value: Decimal, unit: str) -> Reason:
    """A value outside what a person can have: a device or contact error, not a finding."""
    return Reason(
        f"implausible-{kind.value}",
        f"The {name_en(kind)} reading ({value} {unit}) is not possible for a person, so it was "
        "not kept. Please measure again.",
        f"Kết quả {name_vi(kind)} ({value} {unit}) không hợp lý nên không được ghi nhận. "
        "Vui lòng đo lại.",
    )
