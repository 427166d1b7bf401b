"""What the FHIR mapping takes: a finished visit, its resident and its cabin (plain values).

``fhir`` may import only ``vitals``' model, so the identity, the consent and the visit are
described here in FHIR-neutral terms; the cabin fills them from the kiosk bridge and its own
state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from vitals.measurement import Measurement

_CCCD = re.compile(r"\d{12}")
_BHYT = re.compile(r"[A-Z]{2}\d{13}|\d{10}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


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


class ConsentPurpose(StrEnum):
    """What the resident was asked to agree to, one choice each (the consent text's items)."""

    MEASURING = "measuring"
    HOSPITAL = "hospital"
    """Sending the measurements and the identity to the named hospital."""
    VIDEO_CONSULTATION = "video_consultation"


class ConsentStatus(StrEnum):
    """FHIR ``Consent.status``: ``active`` while it holds, ``inactive`` once withdrawn."""

    ACTIVE = "active"
    INACTIVE = "inactive"


class ProvisionType(StrEnum):
    """FHIR ``Consent.provision.type``: the resident's answer to one purpose."""

    PERMIT = "permit"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class ConsentProvision:
    """One purpose and the resident's answer to it."""

    purpose: ConsentPurpose
    type: ProvisionType


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentInfo:
    """The resident's recorded consent for a visit, as the FHIR ``Consent`` needs it.

    ``policy_uri`` names the versioned consent text and ``text_sha256`` proves which words
    were shown; ``session_id`` is the kiosk session the consent was given in (the Consent's
    identifier is derived from it, hashed).  A withdrawn consent is ``inactive`` and carries
    ``withdrawn_at``.
    """

    session_id: str
    status: ConsentStatus
    date_time: datetime
    """When the resident answered (timezone-aware)."""
    policy_uri: str
    text_sha256: str
    """Hex SHA-256 of the UTF-8 consent text shown."""
    language: str
    """BCP 47 tag of the text shown (``vi``, ``en``)."""
    organization: str
    """The hospital the text names (display only: the cabin knows no Organization id)."""
    provisions: tuple[ConsentProvision, ...]
    withdrawn_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.session_id:
            raise ValueError("a consent needs the session it was given in")
        if self.date_time.tzinfo is None:
            raise ValueError("consent times must be timezone-aware")
        if not _SHA256.fullmatch(self.text_sha256):
            raise ValueError("text_sha256 is 64 lower-case hex digits")
        if not self.policy_uri or not self.language or not self.organization.strip():
            raise ValueError("a consent needs its policy URI, language and organization")
        purposes = [provision.purpose for provision in self.provisions]
        if not purposes or len(set(purposes)) != len(purposes):
            raise ValueError("a consent answers each purpose once")
        if self.withdrawn_at is not None:
            if self.withdrawn_at.tzinfo is None:
                raise ValueError("consent times must be timezone-aware")
            if self.status is not ConsentStatus.INACTIVE:
                raise ValueError("a withdrawn consent is inactive")


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
    consent: ConsentInfo | None = None

    def __post_init__(self) -> None:
        if not self.visit_id:
            raise ValueError("a visit needs an id")
        if self.started.tzinfo is None or self.ended.tzinfo is None:
            raise ValueError("visit times must be timezone-aware")
        if self.ended < self.started:
            raise ValueError("a visit cannot end before it starts")
