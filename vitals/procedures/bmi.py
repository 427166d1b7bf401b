"""Body-mass index from this visit's height and weight (a calculation, not a device procedure).

``BMI = weight [kg] / height [m]^2``, rounded half up to 0.1 kg/m2, with method CALCULATED, no
device, and the height and weight measurements it came from as ``derived_from`` (FHIR
``Observation.derivedFrom``).  It is computed only from two *valid* measurements handed in by
the caller, who passes this visit's height and weight and nothing older: a BMI mixing today's
weight with last year's height would look exact and be wrong.  When either is missing or not
valid, the BMI is not available and its reason names what to measure first.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from vitals.clock import Instant
from vitals.measurement import Measurement, Method, Reason
from vitals.model import Kind, Status
from vitals.plausibility import DEFAULT_RANGES, PlausibleRanges
from vitals.reasons import name_en, name_vi

BMI_STEP: Final = Decimal("0.1")
_METRES_PER: Final = {"cm": Decimal("0.01"), "m": Decimal(1), "mm": Decimal("0.001")}
_KILOGRAMS_PER: Final = {"kg": Decimal(1), "g": Decimal("0.001")}


def missing_inputs(kinds: list[Kind]) -> Reason:
    """The reason a BMI could not be worked out: which measurements are missing."""
    what_en = " and ".join(name_en(kind) for kind in kinds)
    what_vi = " và ".join(name_vi(kind) for kind in kinds)
    return Reason(
        "bmi-inputs-missing",
        f"BMI could not be worked out without a good {what_en} measurement. Please measure "
        f"your {what_en} first.",
        f"Chưa tính được chỉ số BMI vì chưa có kết quả đo {what_vi} hợp lệ. Vui lòng đo "
        f"{what_vi} trước.",
    )


def body_mass_index(
    *,
    height: Measurement | None,
    weight: Measurement | None,
    at: Instant | None = None,
    ranges: PlausibleRanges = DEFAULT_RANGES,
) -> Measurement:
    """The BMI measurement of a visit from its height and weight measurements.

    ``at`` is when the BMI was worked out; by default the later of the two inputs (it must be
    given when both are missing).  Inputs of the wrong kind or an unknown unit raise
    ``ValueError``: that is a wiring error, not a resident's.
    """
    given = tuple(m for m in (height, weight) if m is not None)
    for measurement, kind in ((height, Kind.BODY_HEIGHT), (weight, Kind.BODY_WEIGHT)):
        if measurement is not None and measurement.kind is not kind:
            raise ValueError(f"expected a {kind} measurement, got {measurement.kind}")
    when = at or max((m.at for m in given), default=None)
    if when is None:
        raise ValueError("a BMI without any input needs the time it was worked out")
    height_value = height.value if height is not None and height.valid else None
    weight_value = weight.value if weight is not None and weight.valid else None
    if height is None or weight is None or height_value is None or weight_value is None:
        missing = [
            kind
            for value, kind in ((height_value, Kind.BODY_HEIGHT), (weight_value, Kind.BODY_WEIGHT))
            if value is None
        ]
        return _bmi(None, when, given, Status.NOT_AVAILABLE, (missing_inputs(missing),))
    metres = height_value * _factor(_METRES_PER, height.unit, "height")
    kilograms = weight_value * _factor(_KILOGRAMS_PER, weight.unit, "weight")
    value = (kilograms / (metres * metres)).quantize(BMI_STEP, rounding=ROUND_HALF_UP)
    reason = ranges.check(Kind.BMI, value, "kg/m2")
    if reason is not None:
        return _bmi(value, when, given, Status.INVALID, (reason,))
    return _bmi(value, when, given, Status.VALID, ())


def _factor(table: dict[str, Decimal], unit: str, what: str) -> Decimal:
    factor = table.get(unit)
    if factor is None:
        raise ValueError(f"unknown {what} unit {unit!r}")
    return factor


def _bmi(
    value: Decimal | None,
    at: Instant,
    sources: tuple[Measurement, ...],
    status: Status,
    reasons: tuple[Reason, ...],
) -> Measurement:
    return Measurement(
        kind=Kind.BMI,
        value=value,
        unit="kg/m2",
        at=at,
        status=status,
        method=Method.CALCULATED,
        reasons=reasons,
        derived_from=sources,
        procedure="bmi",
    )
