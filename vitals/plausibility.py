"""Physiological plausibility: the values a person in the cabin can have at all.

A value outside these ranges is not an alarming finding but a measurement error (a cuff
slipping, a finger half out, the thermometer aimed at the wall): the measurement becomes
invalid, with a retake reason.  The ranges are wide on purpose - the interpretation bands,
not these, decide what is abnormal - and configurable per installation.

| kind | range | why |
|---|---|---|
| SpO2 | 50-100 % | below 50 % oximeters are unvalidated (ISO 80601-2-61 accuracy range 70-100 %) |
| pulse rate | 25-250 /min | the span of adult bradycardia to supraventricular tachycardia |
| systolic | 60-260 mmHg | NIBP modules' adult measuring range (e.g. SunTech 40-260) |
| diastolic | 30-160 mmHg | idem; and below systolic by at least 10 mmHg |
| mean | 40-200 mmHg | |
| body temperature | 34.0-43.0 °C | beyond these, the reading is of the room or of a hot object |
| height | 80-230 cm | a standing resident of any age the cabin serves |
| weight | 20-250 kg | within the platform scale's capacity |
| BMI | 10-80 kg/m2 | |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from vitals.measurement import Reason
from vitals.model import Kind
from vitals.reasons import implausible

_DEFAULTS: Mapping[Kind, tuple[Decimal, Decimal]] = MappingProxyType(
    {
        Kind.SPO2: (Decimal(50), Decimal(100)),
        Kind.PULSE_RATE: (Decimal(25), Decimal(250)),
        Kind.SYSTOLIC_BP: (Decimal(60), Decimal(260)),
        Kind.DIASTOLIC_BP: (Decimal(30), Decimal(160)),
        Kind.MEAN_BP: (Decimal(40), Decimal(200)),
        Kind.BODY_TEMPERATURE: (Decimal("34.0"), Decimal("43.0")),
        Kind.BODY_HEIGHT: (Decimal(80), Decimal(230)),
        Kind.BODY_WEIGHT: (Decimal(20), Decimal(250)),
        Kind.BMI: (Decimal(10), Decimal(80)),
    }
)
MIN_PULSE_PRESSURE = Decimal(10)


@dataclass(frozen=True, slots=True)
class PlausibleRanges:
    """Inclusive [low, high] per kind; kinds not listed are not checked."""

    ranges: Mapping[Kind, tuple[Decimal, Decimal]] = field(default_factory=lambda: _DEFAULTS)
    min_pulse_pressure: Decimal = MIN_PULSE_PRESSURE

    def check(self, kind: Kind, value: Decimal, unit: str) -> Reason | None:
        """None if ``value`` is plausible for ``kind``, else the reason it is not."""
        bounds = self.ranges.get(kind)
        if bounds is None:
            return None
        low, high = bounds
        return None if low <= value <= high else implausible(kind, value, unit)

    def check_pressures(self, systolic: Decimal, diastolic: Decimal) -> Reason | None:
        """Each pressure in range, and systolic above diastolic by a real pulse pressure."""
        for kind, value in ((Kind.SYSTOLIC_BP, systolic), (Kind.DIASTOLIC_BP, diastolic)):
            reason = self.check(kind, value, "mmHg")
            if reason is not None:
                return reason
        if systolic - diastolic < self.min_pulse_pressure:
            return Reason(
                "implausible-pulse-pressure",
                f"The blood pressure reading ({systolic}/{diastolic} mmHg) is not possible, so "
                "it was not kept. Please measure again.",
                f"Kết quả huyết áp ({systolic}/{diastolic} mmHg) không hợp lý nên không được "
                "ghi nhận. Vui lòng đo lại.",
            )
        return None


DEFAULT_RANGES = PlausibleRanges()
