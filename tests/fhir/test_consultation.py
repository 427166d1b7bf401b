"""A visit's video consultation: a virtual Encounter and the doctor's ClinicalImpression."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import timedelta
from typing import Any

from fhir.bundle import build_bundle
from fhir.visit import Consultation, Disposition, VisitRecord
from tests.fhir.sample_visit import visit
from tests.fhir.test_medplum_delivery import _fresh, _post, _search
from tests.peers.medplum import MedplumPeer


def _with_consultation(record: VisitRecord, **changes: Any) -> VisitRecord:
    consultation = Consultation(
        call_id=f"call-{record.visit_id}",
        doctor_id="dr-1",
        doctor_name="BS. Lê Văn An",
        hospital="bv-a",
        started=record.ended - timedelta(minutes=6),
        ended=record.ended - timedelta(minutes=1),
        note="Huyết áp hơi cao. Đo lại sau 2 tuần; giảm muối.",
        disposition=Disposition.SEE_GP,
    )
    return dataclasses.replace(record, consultation=dataclasses.replace(consultation, **changes))


def _resources(raw: bytes, kind: str) -> list[dict[str, Any]]:
    document = json.loads(raw)
    return [e["resource"] for e in document["entry"] if e["resource"]["resourceType"] == kind]


def test_the_consultation_is_a_virtual_encounter_within_the_visit() -> None:
    built = build_bundle(_with_consultation(visit()))
    encounters = [
        e for e in json.loads(built.json)["entry"] if e["resource"]["resourceType"] == "Encounter"
    ]
    visit_encounter, consult = (e["resource"] for e in encounters)
    assert visit_encounter["class"]["code"] == "AMB"
    assert consult["class"]["code"] == "VR"
    assert consult["partOf"]["reference"] == encounters[0]["fullUrl"]
    assert consult["participant"][0]["individual"]["identifier"]["value"] == "dr-1"
    disposition = consult["hospitalization"]["dischargeDisposition"]
    assert disposition["coding"][0]["code"] == "see-gp"
    assert disposition["text"] == "Đi khám bác sĩ đa khoa"
    [impression] = _resources(built.json, "ClinicalImpression")
    assert impression["summary"].startswith("Huyết áp hơi cao")
    assert impression["assessor"]["display"] == "BS. Lê Văn An"
    assert built.resource_counts["ClinicalImpression"] == 1
    [provenance] = _resources(built.json, "Provenance")
    targets = {t["reference"] for t in provenance["target"]}
    assert len(targets) == built.resource_counts["Observation"] + 3


def test_a_consultation_without_a_note_has_no_impression() -> None:
    built = build_bundle(_with_consultation(visit(), note=None, disposition=None))
    assert "ClinicalImpression" not in built.resource_counts
    _, consult = _resources(built.json, "Encounter")
    assert "hospitalization" not in consult


def test_the_medplum_peer_accepts_the_consultation_once(medplum: MedplumPeer) -> None:
    record = _with_consultation(_fresh(visit()))
    built = build_bundle(record)
    status, answer = asyncio.run(_post(medplum, built.json))
    assert status == 200, answer
    again, _ = asyncio.run(_post(medplum, built.json))
    assert again == 200
    consultation = record.consultation
    assert consultation is not None
    query = {"identifier": f"urn:consultation-note:{consultation.call_id}"}
    impressions = asyncio.run(_search(medplum, "ClinicalImpression", query))
    assert len(impressions) == 1
    assert impressions[0]["summary"] == consultation.note
