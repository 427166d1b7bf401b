"""Visit bundles against a real FHIR server: Medplum's router, validating R4 and vital signs."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from typing import Any

from fhir.bundle import build_bundle
from fhir.client import FhirClient
from fhir.config import IdentifierSystems
from fhir.visit import VisitRecord
from tests.fhir.sample_visit import failed_visit, visit
from tests.peers.medplum import MedplumPeer

SYSTEMS = IdentifierSystems()


def _fresh(record: VisitRecord) -> VisitRecord:
    """The same visit for a resident and visit id of its own (tests share one server)."""
    cccd = f"0790{uuid.uuid4().int % 10**8:08d}"
    patient = dataclasses.replace(record.patient, cccd=cccd)
    return dataclasses.replace(record, patient=patient, visit_id=str(uuid.uuid4()))


async def _post(medplum: MedplumPeer, raw: bytes) -> tuple[int, dict[str, Any]]:
    async with FhirClient(medplum.base_url) as client:
        answer = await client.post_transaction(raw)
    return answer.status, json.loads(answer.body)


async def _search(medplum: MedplumPeer, kind: str, params: dict[str, str]) -> list[dict[str, Any]]:
    async with FhirClient(medplum.base_url) as client:
        return await client.search(kind, params)


def test_a_visit_is_accepted_with_every_observation_conforming(medplum: MedplumPeer) -> None:
    record = _fresh(visit())
    built = build_bundle(record)
    status, answer = asyncio.run(_post(medplum, built.json))
    assert status == 200, answer
    statuses = [entry["response"]["status"] for entry in answer["entry"]]
    assert len(statuses) == sum(built.resource_counts.values())
    assert all(s.startswith(("201", "200")) for s in statuses), statuses


def test_sending_the_same_visit_twice_creates_nothing_new(medplum: MedplumPeer) -> None:
    record = _fresh(visit())
    built = build_bundle(record)
    asyncio.run(_post(medplum, built.json))
    before = medplum.stats()
    status, answer = asyncio.run(_post(medplum, built.json))
    after = medplum.stats()
    assert status == 200
    creates = [
        e["response"]["status"]
        for e in answer["entry"]
        if e["response"]["status"].startswith("201")
    ]
    assert creates == []
    assert before.resources == after.resources


def test_the_patient_and_all_observations_are_found_by_the_citizen_id(medplum: MedplumPeer) -> None:
    record = _fresh(visit())
    asyncio.run(_post(medplum, build_bundle(record).json))
    patients = asyncio.run(
        _search(medplum, "Patient", {"identifier": f"{SYSTEMS.cccd}|{record.patient.cccd}"})
    )
    assert len(patients) == 1
    observations = asyncio.run(
        _search(medplum, "Observation", {"subject": f"Patient/{patients[0]['id']}"})
    )
    # 7 vitals + 2 single BP readings + the panel
    assert len(observations) == 10
    weight = next(o for o in observations if o["code"]["coding"][0]["code"] == "29463-7")
    assert weight["valueQuantity"]["value"] == 72.35


def test_a_visit_whose_measurements_all_failed_is_accepted_too(medplum: MedplumPeer) -> None:
    status, answer = asyncio.run(_post(medplum, build_bundle(_fresh(failed_visit())).json))
    assert status == 200, answer


def test_a_bundle_the_profiles_refuse_is_rejected_whole(medplum: MedplumPeer) -> None:
    record = _fresh(visit())
    document = json.loads(build_bundle(record).json)
    weight = next(
        e["resource"]
        for e in document["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and e["resource"]["code"]["coding"][0]["code"] == "29463-7"
    )
    del weight["category"]  # the vital-signs profile requires it
    status, answer = asyncio.run(_post(medplum, json.dumps(document).encode()))
    assert status == 400
    assert answer["resourceType"] == "OperationOutcome"
    patients = asyncio.run(
        _search(medplum, "Patient", {"identifier": f"{SYSTEMS.cccd}|{record.patient.cccd}"})
    )
    assert patients == []  # nothing of the refused transaction was stored
