"""Measurements: what the cabin concludes from a procedure's readings, and why.

A :class:`~vitals.model.Reading` is what a device said; a :class:`Measurement` is what the
cabin stands behind after filtering, quality gates, the clinical protocol and plausibility.
A measurement that fails is still a record: its status says how it failed and its
:class:`Reason` values say why, in words a resident can act on (Vietnamese and English).

Blood pressure is one measurement of kind ``BLOOD_PRESSURE`` whose systolic, diastolic and
mean values are :class:`Component` values; an AHA-protocol mean lists the single readings it
averages as ``members``; BMI lists the height and weight it was computed from as
``derived_from``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from vitals.clock import Instant
from vitals.model import DeviceInfo, Kind, Status


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a measurement is not (fully) valid, or what the resident should do.

    ``code`` is stable for machines (FHIR notes, metrics, tests); ``en`` and ``vi`` are one or
    two plain sentences for the resident, saying what happened and what to do about it;
    ``retake`` says whether measuring again can help (an overloaded scale will not).
    """

    code: str
    en: str
    vi: str
    retake: bool = True

    def __post_init__(self) -> None:
        if not (self.code and self.en and self.vi):
            raise ValueError("a reason needs a code and both sentences")


@dataclass(frozen=True, slots=True)
class Interpretation:
    """What a value means, for the resident and the doctor.

    ``code`` is the HL7 v3 ObservationInterpretation code (N, L, H, LL, HH, or A for abnormal
    categories without a direction); ``category`` names the band in its guideline (e.g.
    ``stage-1-hypertension``, ``overweight``); ``urgent`` asks for the emergency path.
    """

    code: str
    category: str
    en: str
    vi: str
    urgent: bool = False
    guideline: str = ""


class Method(StrEnum):
    """How a measurement was obtained (carried to FHIR ``Observation.method``)."""

    PULSE_OXIMETRY = "pulse-oximetry"
    OSCILLOMETRY = "oscillometry"
    INFRARED_FOREHEAD = "infrared-forehead"
    ULTRASONIC = "ultrasonic"
    PLATFORM_SCALE = "platform-scale"
    CALCULATED = "calculated"


@dataclass(frozen=True, slots=True)
class Component:
    """One value inside a panel measurement (systolic, diastolic or mean pressure)."""

    kind: Kind
    value: Decimal | None
    unit: str
    status: Status = Status.VALID
    reasons: tuple[Reason, ...] = ()
    interpretation: Interpretation | None = None

    def __post_init__(self) -> None:
        _check_value(self.kind, self.value, self.status)


@dataclass(frozen=True, slots=True)
class Measurement:
    """One clinical measurement of a visit."""

    kind: Kind
    value: Decimal | None
    unit: str
    at: Instant
    """When the measurement was complete (FHIR effectiveDateTime)."""
    status: Status
    method: Method
    device: DeviceInfo | None = None
    """The measuring device; None for calculated values (BMI)."""
    quality: float | None = None
    """Signal-quality or confidence index, 0 (none) to 1 (best), where the method gives one."""
    reasons: tuple[Reason, ...] = ()
    components: tuple[Component, ...] = ()
    members: tuple[Measurement, ...] = ()
    derived_from: tuple[Measurement, ...] = ()
    interpretation: Interpretation | None = None
    procedure: str = ""
    """The protocol followed, e.g. ``aha2019`` or ``screening``."""
    details: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    """Method-specific facts worth keeping (e.g. the waveform rate a pulse rate was checked
    against), as (name, value) pairs."""

    def __post_init__(self) -> None:
        if self.quality is not None and not 0.0 <= self.quality <= 1.0:
            raise ValueError(f"quality must be within 0..1, not {self.quality}")
        if self.components:
            if self.value is not None:
                raise ValueError(f"a {self.kind} panel carries its values in components")
        else:
            _check_value(self.kind, self.value, self.status)
        if self.status is not Status.VALID and not self.reasons:
            raise ValueError(f"a {self.status} {self.kind} measurement needs a reason")

    @property
    def valid(self) -> bool:
        return self.status is Status.VALID

    @property
    def retake_advised(self) -> bool:
        """Whether the resident should be offered a retake (a reason says it may help)."""
        return not self.valid and any(reason.retake for reason in self.reasons)

    def component(self, kind: Kind) -> Component | None:
        return next((c for c in self.components if c.kind is kind), None)


def _check_value(kind: Kind, value: Decimal | None, status: Status) -> None:
    if value is None and status in (Status.VALID, Status.QUESTIONABLE):
        raise ValueError(f"a {status} {kind} needs a value")
    if value is not None and status is Status.NOT_AVAILABLE:
        raise ValueError(f"a not-available {kind} cannot carry a value")
    if value is not None and not value.is_finite():
        raise ValueError(f"{kind} value must be finite, not {value}")
