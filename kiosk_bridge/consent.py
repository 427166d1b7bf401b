"""Consent: the versioned text the resident is shown, their separate choices, and the record.

Before any measurement the resident reads an explicit consent text (Vietnamese or English)
naming three purposes, and answers each one separately::

    ConsentText(version, locale) ──shown──▶ resident ──▶ ConsentChoices (one per purpose)
        │                                                       │
        └── SHA-256 of the exact text shown ────────────────────┴──▶ ConsentRecord
                                                                        │
        VisitPort.record_consent, event consent.recorded ◀──────────────┤
        fhir_consent_values() (plain values for a FHIR Consent) ◀───────┘

The record carries everything a FHIR ``Consent`` needs as plain values (the ``fhir`` package
builds the resource; this package imports nothing else of the project).  Personal data law
(Law 91/2025/QH15, Decree 356/2025) asks for consent that is explicit, specific to each
purpose, recorded, and withdrawable: withdrawal is a separate record, never an edit.

Pure: values in, values out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Final

CONSENT_VERSION: Final = "2026-11-01"
"""The version of the consent texts below; a changed word means a new version."""


class Locale(StrEnum):
    """The languages the kiosk and the cabin speak to the resident in."""

    VI = "vi"
    EN = "en"


class ConsentPurpose(StrEnum):
    """What the resident is asked to agree to, one choice each."""

    MEASURING = "measuring"
    HOSPITAL = "hospital"
    VIDEO_CONSULTATION = "video_consultation"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentText:
    """The exact text shown to the resident, in one language, at one version."""

    version: str
    locale: Locale
    hospital: str
    text: str

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the UTF-8 text: proves later which words the resident saw."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


_TEXTS: Final = MappingProxyType(
    {
        Locale.VI: (
            "Đồng ý sử dụng dữ liệu sức khỏe (phiên bản {version})\n"
            "Buồng khám sức khỏe cần sự đồng ý của bạn cho từng mục dưới đây. "
            "Bạn có thể chọn riêng từng mục và rút lại sự đồng ý bất cứ lúc nào; "
            "khi rút lại, lượt khám dừng và dữ liệu chưa gửi sẽ bị xóa.\n"
            "1. Đo các chỉ số sức khỏe (huyết áp, nhịp tim, SpO2, nhiệt độ, cân nặng) "
            "trong buồng khám.\n"
            "2. Gửi kết quả đo và thông tin nhận dạng (số CCCD, họ tên, ngày sinh, giới tính, "
            "số thẻ BHYT) đến {hospital}.\n"
            "3. Tư vấn qua video với bác sĩ của {hospital}."
        ),
        Locale.EN: (
            "Consent to the use of your health data (version {version})\n"
            "The health cabin needs your consent for each item below. "
            "You may choose each item separately and withdraw your consent at any time; "
            "if you withdraw, the visit stops and data not yet sent is deleted.\n"
            "1. Measuring your vital signs (blood pressure, pulse, SpO2, temperature, weight) "
            "in the cabin.\n"
            "2. Sending the measurements and your identity (CCCD number, full name, birth date, "
            "sex, health-insurance number) to {hospital}.\n"
            "3. A video consultation with a doctor of {hospital}."
        ),
    }
)


def consent_text(*, locale: Locale, hospital: str, version: str = CONSENT_VERSION) -> ConsentText:
    """The consent text of ``version`` in ``locale``, naming ``hospital``."""
    if version != CONSENT_VERSION:
        raise ValueError(f"unknown consent text version {version!r}")
    if not hospital.strip():
        raise ValueError("the consent text must name the hospital")
    text = _TEXTS[locale].format(version=version, hospital=hospital.strip())
    return ConsentText(version=version, locale=locale, hospital=hospital.strip(), text=text)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentChoices:
    """The resident's answer to each purpose, separately."""

    measuring: bool
    hospital: bool
    video_consultation: bool

    def granted(self) -> frozenset[ConsentPurpose]:
        """The purposes answered "yes"."""
        answers = {
            ConsentPurpose.MEASURING: self.measuring,
            ConsentPurpose.HOSPITAL: self.hospital,
            ConsentPurpose.VIDEO_CONSULTATION: self.video_consultation,
        }
        return frozenset(purpose for purpose, yes in answers.items() if yes)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentRecord:
    """What the resident agreed to, to which words, when, in which session.

    ``withdrawn_at`` is set only on the record that withdraws an earlier one.
    """

    session_id: str
    text_version: str
    text_sha256: str
    locale: Locale
    hospital: str
    choices: ConsentChoices
    recorded_at: datetime
    withdrawn_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.recorded_at.tzinfo is None:
            raise ValueError("recorded_at must be timezone-aware")
        if len(self.text_sha256) != 64:
            raise ValueError("text_sha256 is a hex SHA-256")

    def event_data(self) -> dict[str, object]:
        """The ``data`` of a ``consent.recorded`` event: choices and text identity, no PHI."""
        return {
            "text_version": self.text_version,
            "text_sha256": self.text_sha256,
            "locale": self.locale.value,
            "choices": {
                ConsentPurpose.MEASURING.value: self.choices.measuring,
                ConsentPurpose.HOSPITAL.value: self.choices.hospital,
                ConsentPurpose.VIDEO_CONSULTATION.value: self.choices.video_consultation,
            },
            "recorded_at": self.recorded_at.isoformat(),
            "withdrawn": self.withdrawn_at is not None,
        }

    def fhir_consent_values(self) -> dict[str, object]:
        """Plain values for a FHIR R4 ``Consent`` (built by the ``fhir`` package).

        ``status`` is ``active`` or ``inactive`` (withdrawn); one ``provision`` per purpose,
        ``permit`` or ``deny``; the text shown is identified by version and hash.
        """
        return {
            "status": "inactive" if self.withdrawn_at is not None else "active",
            "scope": "patient-privacy",
            "category": "59284-0",  # LOINC "Patient Consent"
            "dateTime": self.recorded_at.isoformat(),
            "policy_uri": f"urn:telehealth-cabin:consent:{self.text_version}",
            "source_hash_sha256": self.text_sha256,
            "language": self.locale.value,
            "organization": self.hospital,
            "session_id": self.session_id,
            "provisions": [
                {"purpose": purpose.value, "type": "permit" if yes else "deny"}
                for purpose, yes in (
                    (ConsentPurpose.MEASURING, self.choices.measuring),
                    (ConsentPurpose.HOSPITAL, self.choices.hospital),
                    (ConsentPurpose.VIDEO_CONSULTATION, self.choices.video_consultation),
                )
            ],
            "withdrawn_at": None if self.withdrawn_at is None else self.withdrawn_at.isoformat(),
        }


def record_consent(
    *, session_id: str, shown: ConsentText, choices: ConsentChoices, now: datetime
) -> ConsentRecord:
    """The record of ``choices`` made on the text ``shown`` at ``now``."""
    return ConsentRecord(
        session_id=session_id,
        text_version=shown.version,
        text_sha256=shown.sha256,
        locale=shown.locale,
        hospital=shown.hospital,
        choices=choices,
        recorded_at=now,
    )


def withdrawal(record: ConsentRecord, *, now: datetime) -> ConsentRecord:
    """The record that withdraws ``record`` at ``now`` (every choice becomes "no")."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return ConsentRecord(
        session_id=record.session_id,
        text_version=record.text_version,
        text_sha256=record.text_sha256,
        locale=record.locale,
        hospital=record.hospital,
        choices=ConsentChoices(measuring=False, hospital=False, video_consultation=False),
        recorded_at=record.recorded_at,
        withdrawn_at=now,
    )
