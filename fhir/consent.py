"""The resident's consent as a FHIR R4 ``Consent`` entry of the visit's bundle (pure).

::

    Consent  status active | inactive (withdrawn), scope patient-privacy, category LOINC 59284-0
    ├── patient, performer      the resident (the visit's Patient entry)
    ├── organization            the hospital the text names (display: no Organization id known)
    ├── policy.uri, sourceAttachment.url   the versioned consent text (urn:telehealth-cabin:…)
    ├── sourceAttachment        language, and the text's SHA-256 in an extension (R4's
    │                           Attachment.hash is SHA-1 of data the cabin does not send)
    ├── policyRule              v3-ActCode OPTIN: nothing is allowed unless chosen
    └── provision  type deny, period start = dateTime (end = withdrawal)
        └── provision per purpose, permit or deny:
              measuring           action collect   purpose v3-ActReason PATRQT
              hospital            action disclose  purpose v3-ActReason COC, actor IRCP = hospital
              video_consultation  action access    purpose v3-ActReason TREAT

The purpose codes come from HL7's PurposeOfUse value set (the binding R4 gives
``provision.purpose``), one distinct code per choice so a hospital can tell them apart:
measuring is *patient requested* (the resident asks the cabin to measure), sending to the
hospital is *coordination of care* (the visit joins the hospital's record), the video
consultation is *treatment*.  The entry is a conditional create on an identifier derived from
the session (hashed, like every other identifier of the bundle), so a resend creates nothing.
"""

from __future__ import annotations

from datetime import tzinfo
from types import MappingProxyType
from typing import Final

from fhir.ids import stable_uuid
from fhir.participants import Entry, Resource, identifier_query
from fhir.visit import ConsentInfo, ConsentPurpose

CONSENT_IDENTIFIER_SYSTEM: Final = "urn:ietf:rfc:3986"
"""The Consent's identifier is a URN (``urn:uuid:`` of the session), so its system is RFC 3986."""
LOINC: Final = "http://loinc.org"
PATIENT_CONSENT: Final = "59284-0"
CONSENT_SCOPE: Final = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON: Final = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
CONSENT_ACTION: Final = "http://terminology.hl7.org/CodeSystem/consentaction"
PARTICIPATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SHA256_EXTENSION: Final = "StructureDefinition/attachment-sha256"
"""Under the mapping's canonical base: the SHA-256 (hex) of the consent text shown."""

PURPOSE_CODES: Final = MappingProxyType(
    {
        ConsentPurpose.MEASURING: ("collect", "PATRQT", "patient requested"),
        ConsentPurpose.HOSPITAL: ("disclose", "COC", "coordination of care"),
        ConsentPurpose.VIDEO_CONSULTATION: ("access", "TREAT", "treatment"),
    }
)
"""Each purpose's consent action and PurposeOfUse code (v3-ActReason) with its display."""


def consent_identifier(session_id: str) -> str:
    """The Consent's identifier value: stable per session, without spelling the session out."""
    return f"urn:uuid:{stable_uuid('consent', session_id)}"


def consent_entry(
    consent: ConsentInfo, *, patient_url: str, timezone: tzinfo, canonical: str
) -> Entry:
    """The Consent of ``consent``, created conditionally on its session-derived identifier."""
    recorded = consent.date_time.astimezone(timezone).isoformat(timespec="seconds")
    period: Resource = {"start": recorded}
    if consent.withdrawn_at is not None:
        period["end"] = consent.withdrawn_at.astimezone(timezone).isoformat(timespec="seconds")
    value = consent_identifier(consent.session_id)
    resource: Resource = {
        "resourceType": "Consent",
        "identifier": [{"system": CONSENT_IDENTIFIER_SYSTEM, "value": value}],
        "status": consent.status.value,
        "scope": {
            "coding": [
                {"system": CONSENT_SCOPE, "code": "patient-privacy", "display": "Privacy Consent"}
            ]
        },
        "category": [
            {"coding": [{"system": LOINC, "code": PATIENT_CONSENT, "display": "Patient Consent"}]}
        ],
        "patient": {"reference": patient_url},
        "dateTime": recorded,
        "performer": [{"reference": patient_url}],
        "organization": [{"display": consent.organization}],
        "sourceAttachment": {
            "extension": [
                {"url": f"{canonical}/{SHA256_EXTENSION}", "valueString": consent.text_sha256}
            ],
            "contentType": "text/plain;charset=utf-8",
            "language": consent.language,
            "url": consent.policy_uri,
            "title": "Consent text shown to the resident at the health cabin",
        },
        "policy": [{"uri": consent.policy_uri}],
        "policyRule": {
            "coding": [{"system": ACT_CODE, "code": "OPTIN", "display": "opt-in"}],
            "text": "Explicit consent for each purpose (Law 91/2025/QH15, Decree 356/2025)",
        },
        "provision": {
            "type": "deny",
            "period": period,
            "provision": [
                _purpose_provision(p.purpose, p.type.value, consent.organization)
                for p in consent.provisions
            ],
        },
    }
    return Entry(
        full_url=f"urn:uuid:{stable_uuid('consent-entry', consent.session_id)}",
        resource=resource,
        method="POST",
        url="Consent",
        if_none_exist=identifier_query(CONSENT_IDENTIFIER_SYSTEM, value),
    )


def _purpose_provision(purpose: ConsentPurpose, answer: str, organization: str) -> Resource:
    action, code, display = PURPOSE_CODES[purpose]
    provision: Resource = {
        "type": answer,
        "action": [{"coding": [{"system": CONSENT_ACTION, "code": action}]}],
        "purpose": [{"system": ACT_REASON, "code": code, "display": display}],
    }
    if purpose is ConsentPurpose.HOSPITAL:
        provision["actor"] = [
            {
                "role": {
                    "coding": [
                        {
                            "system": PARTICIPATION_TYPE,
                            "code": "IRCP",
                            "display": "information recipient",
                        }
                    ]
                },
                "reference": {"display": organization},
            }
        ]
    return provision
