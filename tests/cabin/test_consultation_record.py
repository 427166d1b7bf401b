"""The doctor's note from the call reaches the visit's FHIR bundle."""

from __future__ import annotations

import dataclasses
import json

from cabin.call import CallEnd, CallOutcome, DoctorNote
from cabin.consultation_record import consultation_of
from fhir.bundle import build_bundle
from tests.fhir.sample_visit import visit

T0 = 1_795_000_000.0


def _outcome(**changes: object) -> CallOutcome:
    outcome = CallOutcome(
        end=CallEnd.DOCTOR_HUNG_UP,
        call_id="call-1",
        doctor="dr-1",
        hospital="bv-a",
        started_at=T0,
        ended_at=T0 + 300,
        notes=(
            DoctorNote("n1", "Draft", "no-action", "BS. An", T0 + 100),
            DoctorNote("n2", "Đo lại huyết áp sau 2 tuần.", "see-gp", "BS. An", T0 + 200),
        ),
    )
    return dataclasses.replace(outcome, **changes)  # type: ignore[arg-type]


def test_the_last_note_and_its_disposition_are_the_consultation() -> None:
    consultation = consultation_of(_outcome())
    assert consultation is not None
    assert consultation.note == "Đo lại huyết áp sau 2 tuần."
    assert consultation.disposition is not None
    assert consultation.disposition.value == "see-gp"
    assert consultation.doctor_name == "BS. An"
    record = dataclasses.replace(visit(), consultation=consultation)
    document = json.loads(build_bundle(record).json)
    kinds = [e["resource"]["resourceType"] for e in document["entry"]]
    assert kinds.count("ClinicalImpression") == 1
    assert kinds.count("Encounter") == 2


def test_no_doctor_means_no_consultation() -> None:
    assert consultation_of(_outcome(call_id=None, doctor=None, started_at=None)) is None


def test_a_call_without_a_note_is_still_a_consultation() -> None:
    consultation = consultation_of(_outcome(notes=()))
    assert consultation is not None
    assert consultation.note is None
    assert consultation.disposition is None
