"""A visit's video consultation as FHIR: a virtual Encounter and a ClinicalImpression (pure).

- The consultation is its own ``Encounter`` (class ``VR``, virtual), ``partOf`` the cabin
  visit's Encounter, with the doctor as participant (a logical reference by identifier: the
  cabin does not know the hospital's Practitioner ids) and the disposition in
  ``hospitalization.dischargeDisposition`` — where R4 records "where the patient goes next".
- The doctor's note is a ``ClinicalImpression`` (status completed, ``summary`` = the note,
  assessor = the doctor, encounter = the consultation). A ``Communication`` would say "a
  message was sent"; the note is the doctor's assessment of this visit, which is what
  ClinicalImpression is for (docs/fhir.md).

Both are conditional creates on identifiers derived from the call id.
"""

from __future__ import annotations

from datetime import tzinfo

from fhir.config import IdentifierSystems
from fhir.ids import stable_uuid
from fhir.participants import Entry, Resource, identifier_query
from fhir.visit import Consultation, Disposition

DISPOSITION_DISPLAY = {
    Disposition.NO_ACTION: ("No further action needed", "Không cần làm gì thêm"),
    Disposition.SEE_GP: ("See a general practitioner", "Đi khám bác sĩ đa khoa"),
    Disposition.SEE_SPECIALIST: ("See a specialist", "Đi khám bác sĩ chuyên khoa"),
    Disposition.EMERGENCY_NOW: ("Go to the emergency department now", "Đến cấp cứu ngay"),
}


def consultation_entries(
    consultation: Consultation,
    *,
    visit_encounter_url: str,
    patient_url: str,
    systems: IdentifierSystems,
    timezone: tzinfo,
    canonical: str,
) -> list[Entry]:
    """The consultation Encounter and, when the doctor wrote a note, its ClinicalImpression."""
    started = consultation.started.astimezone(timezone).isoformat(timespec="seconds")
    ended = consultation.ended.astimezone(timezone).isoformat(timespec="seconds")
    doctor = _doctor(consultation)
    value = f"urn:consultation:{consultation.call_id}"
    encounter: Resource = {
        "resourceType": "Encounter",
        "identifier": [{"system": systems.encounter, "value": value}],
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "VR",
            "display": "virtual",
        },
        "type": [{"text": "Video consultation from a health cabin"}],
        "subject": {"reference": patient_url},
        "participant": [{"individual": doctor, "period": {"start": started, "end": ended}}],
        "period": {"start": started, "end": ended},
        "partOf": {"reference": visit_encounter_url},
        "serviceProvider": {"display": consultation.hospital},
    }
    if consultation.disposition is not None:
        english, vietnamese = DISPOSITION_DISPLAY[consultation.disposition]
        encounter["hospitalization"] = {
            "dischargeDisposition": {
                "coding": [
                    {
                        "system": f"{canonical}/CodeSystem/consultation-disposition",
                        "code": consultation.disposition.value,
                        "display": english,
                    }
                ],
                "text": vietnamese,
            }
        }
    encounter_url = f"urn:uuid:{stable_uuid('consultation', consultation.call_id)}"
    entries = [
        Entry(
            full_url=encounter_url,
            resource=encounter,
            method="POST",
            url="Encounter",
            if_none_exist=identifier_query(systems.encounter, value),
        )
    ]
    if consultation.note:
        noted = (consultation.noted_at or consultation.ended).astimezone(timezone)
        note_value = f"urn:consultation-note:{consultation.call_id}"
        impression: Resource = {
            "resourceType": "ClinicalImpression",
            "identifier": [{"system": systems.encounter, "value": note_value}],
            "status": "completed",
            "description": "Doctor's assessment during a video consultation",
            "subject": {"reference": patient_url},
            "encounter": {"reference": encounter_url},
            "effectivePeriod": {"start": started, "end": ended},
            "date": noted.isoformat(timespec="seconds"),
            "assessor": doctor,
            "summary": consultation.note,
        }
        entries.append(
            Entry(
                full_url=f"urn:uuid:{stable_uuid('consultation-note', consultation.call_id)}",
                resource=impression,
                method="POST",
                url="ClinicalImpression",
                if_none_exist=identifier_query(systems.encounter, note_value),
            )
        )
    return entries


def _doctor(consultation: Consultation) -> Resource:
    reference: Resource = {
        "type": "Practitioner",
        "identifier": {
            "system": f"urn:hospital:{consultation.hospital}:doctor",
            "value": consultation.doctor_id,
        },
    }
    if consultation.doctor_name:
        reference["display"] = consultation.doctor_name
    return reference
