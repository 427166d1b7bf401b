"""What the FHIR mapping takes: a finished visit, its resident and its cabin (plain values).

``fhir`` may import only ``vitals``' model, so the identity and the visit are described here
in FHIR-neutral terms; the cabin fills them from the kiosk bridge and its own state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from vitals.measurement import Measurement

_CCCD = re.compile(r"\d{12}")
_BHYT = re.compile(r"[A-Z]{2}\d{13}|\d{10}")


class Sex(StrEnum):
    """FHIR administrative gender."""

    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class PatientIdentity:
    """The resident, as far as the hospital needs to know them."""

    cccd: str
    """The 12-digit citizen ID number (Căn cước công dân)."""
    full_name: str
    birth_date: date | None = None
    sex: Sex = Sex.UNKNOWN
    bhyt: str | None = None
    """Health-insurance number, if the resident has one: the 15-character card code (two
    letters, 13 digits) or the 10-digit social-insurance number that replaces it."""
    assurance: str = "asserted"
    """How the identity was established: asserted, mrz_checked, passive_auth, active_auth."""

    def __post_init__(self) -> None:
        if not _CCCD.fullmatch(self.cccd):
            raise ValueError("a CCCD number is exactly 12 digits")
        if not self.full_name.strip():
            raise ValueError("a patient needs a name")
        if self.bhyt is not None and not _BHYT.fullmatch(self.bhyt):
            raise ValueError("a BHYT number is two capital letters and 13 digits, or 10 digits")


@dataclass(frozen=True, slots=True)
class CabinInfo:
    """The cabin: the gateway device that measured and sent the visit."""

    id: str
    """Stable cabin identifier, e.g. ``dkc-01`` (Đảo Kim Cương, cabin 1)."""
    name: str = "Telehealth cabin"
    site: str = ""
    """Where it stands, e.g. the station's address."""
    software_version: str = ""
    manufacturer: str = ""


class Disposition(StrEnum):
    """What the doctor advised at the end of a video consultation."""

    NO_ACTION = "no-action"
    SEE_GP = "see-gp"
    SEE_SPECIALIST = "see-specialist"
    EMERGENCY_NOW = "emergency-now"


@dataclass(frozen=True, slots=True)
class Consultation:
    """The video consultation of a visit: who the doctor was, when, and what they advised."""

    call_id: str
    doctor_id: str
    """The doctor's subject at their hospital's identity provider, e.g. ``dr-1``."""
    hospital: str
    started: datetime
    ended: datetime
    doctor_name: str | None = None
    note: str | None = None
    disposition: Disposition | None = None
    noted_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.call_id or not self.doctor_id:
            raise ValueError("a consultation needs a call id and a doctor")
        if self.started.tzinfo is None or self.ended.tzinfo is None:
            raise ValueError("consultation times must be timezone-aware")
        if self.ended < self.started:
            raise ValueError("a consultation cannot end before it starts")


@dataclass(frozen=True, slots=True)
class VisitRecord:
    """A finished visit: who, where, when, and every measurement taken (valid or not)."""

    visit_id: str
    cabin: CabinInfo
    patient: PatientIdentity
    started: datetime
    ended: datetime
    measurements: tuple[Measurement, ...] = field(default_factory=tuple)
    consultation: Consultation | None = None

    def __post_init__(self) -> None:
        if not self.visit_id:
            raise ValueError("a visit needs an id")
        if self.started.tzinfo is None or self.ended.tzinfo is None:
            raise ValueError("visit times must be timezone-aware")
        if self.ended < self.started:
            raise ValueError("a visit cannot end before it starts")
