"""The Medplum FHIR peer itself, over plain HTTP: what it accepts, refuses and injects."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.peers import require
from tests.peers.medplum import MedplumPeer, PeerStartError, peer_availability

FHIR_JSON = "application/fhir+json"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CCCD_SYSTEM = "https://hospital.example/sid/cccd"
OBSERVATION_ID_SYSTEM = "https://cabin.example/sid/observation"
VITAL_SIGNS = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs",
            }
        ]
    }
]


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: Any


def call(method: str, url: str, body: object = None, *, content_type: str = FHIR_JSON) -> Reply:
    """One HTTP request; an error status is a reply like any other."""
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, error.headers, error.read()
    return Reply(
        status=status,
        headers={key.lower(): value for key, value in headers.items()},
        body=json.loads(raw) if raw else None,
    )


@pytest.fixture
def peer(medplum: MedplumPeer) -> MedplumPeer:
    """The session's Medplum peer (tests/conftest.py)."""
    return medplum


def new_cccd() -> str:
    return f"0790{uuid.uuid4().int % 10**8:08d}"


def vital(loinc: str, subject: str, cccd: str, **value: object) -> dict[str, Any]:
    """An Observation shaped to the HL7 vital-signs profile for ``loinc``."""
    return {
        "resourceType": "Observation",
        "identifier": [
            {"system": OBSERVATION_ID_SYSTEM, "value": f"dev1-{cccd}-{loinc}-20250301T0930"}
        ],
        "status": "final",
        "category": VITAL_SIGNS,
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": subject},
        "effectiveDateTime": "2025-03-01T09:30:00+07:00",
        **value,
    }


def quantity(value: float, code: str, unit: str | None = None) -> dict[str, Any]:
    return {"value": value, "unit": unit or code, "system": UCUM, "code": code}


def bp_component(loinc: str, value: int) -> dict[str, Any]:
    return {
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "valueQuantity": quantity(value, "mm[Hg]", "mmHg"),
    }


def conditional_entry(resource: dict[str, Any]) -> dict[str, Any]:
    """A transaction entry that creates ``resource`` unless one with its identifier exists."""
    identifier = resource["identifier"][0]
    return {
        "fullUrl": f"urn:uuid:{uuid.uuid4()}",
        "resource": resource,
        "request": {
            "method": "POST",
            "url": resource["resourceType"],
            "ifNoneExist": f"identifier={identifier['system']}|{identifier['value']}",
        },
    }


def visit_bundle(cccd: str) -> dict[str, Any]:
    """A visit's transaction: the patient, seven vital signs and their panel (9 entries)."""
    patient = conditional_entry(
        {
            "resourceType": "Patient",
            "identifier": [{"system": CCCD_SYSTEM, "value": cccd}],
            "name": [{"family": "Nguyen", "given": ["Van", "Binh"]}],
        }
    )
    subject = patient["fullUrl"]
    weight = conditional_entry(vital("29463-7", subject, cccd, valueQuantity=quantity(72.35, "kg")))
    height = conditional_entry(vital("8302-2", subject, cccd, valueQuantity=quantity(170, "cm")))
    bmi = vital("39156-5", subject, cccd, valueQuantity=quantity(25.0, "kg/m2"))
    bmi["derivedFrom"] = [{"reference": weight["fullUrl"]}, {"reference": height["fullUrl"]}]
    spo2 = vital("2708-6", subject, cccd, valueQuantity=quantity(97, "%"))
    spo2["code"]["coding"].append({"system": LOINC, "code": "59408-5"})
    members = [
        weight,
        height,
        conditional_entry(bmi),
        conditional_entry(vital("8867-4", subject, cccd, valueQuantity=quantity(72, "/min"))),
        conditional_entry(spo2),
        conditional_entry(vital("8310-5", subject, cccd, valueQuantity=quantity(36.8, "Cel"))),
        conditional_entry(
            vital(
                "85354-9",
                subject,
                cccd,
                component=[bp_component("8480-6", 128), bp_component("8462-4", 82)],
            )
        ),
    ]
    panel = vital(
        "85353-1", subject, cccd, hasMember=[{"reference": m["fullUrl"]} for m in members]
    )
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [patient, *members, conditional_entry(panel)],
    }


def search(peer: MedplumPeer, query: str) -> list[dict[str, Any]]:
    reply = call("GET", f"{peer.base_url}/{query}")
    assert reply.status == 200, reply.body
    return [entry["resource"] for entry in reply.body.get("entry", [])]


def identifier_query(system: str, value: str) -> str:
    return "identifier=" + urllib.parse.quote(f"{system}|{value}")


def assert_refused(reply: Reply, *, mentioning: str) -> None:
    assert reply.status == 400, reply.body
    assert reply.headers["content-type"].startswith(FHIR_JSON)
    assert reply.body["resourceType"] == "OperationOutcome"
    assert mentioning in json.dumps(reply.body), reply.body


def test_metadata_declares_fhir_4_0_1_and_transactions(peer: MedplumPeer) -> None:
    reply = call("GET", f"{peer.base_url}/metadata")

    assert reply.status == 200
    assert reply.headers["content-type"].startswith(FHIR_JSON)
    assert reply.body["resourceType"] == "CapabilityStatement"
    assert reply.body["fhirVersion"] == "4.0.1"
    interactions = {i["code"] for i in reply.body["rest"][0]["interaction"]}
    assert {"transaction", "batch"} <= interactions


def test_valid_patient_is_created_and_read_back(peer: MedplumPeer) -> None:
    cccd = new_cccd()
    patient = {"resourceType": "Patient", "identifier": [{"system": CCCD_SYSTEM, "value": cccd}]}

    created = call("POST", f"{peer.base_url}/Patient", patient)

    assert created.status == 201, created.body
    assert created.headers["location"].startswith(f"{peer.base_url}/Patient/{created.body['id']}/")
    assert created.headers["etag"] == f'W/"{created.body["meta"]["versionId"]}"'
    read = call("GET", f"{peer.base_url}/Patient/{created.body['id']}")
    assert read.status == 200
    assert read.body["identifier"] == [{"system": CCCD_SYSTEM, "value": cccd}]


def test_update_is_validated_and_makes_a_new_version(peer: MedplumPeer) -> None:
    created = call("POST", f"{peer.base_url}/Patient", {"resourceType": "Patient"}).body
    url = f"{peer.base_url}/Patient/{created['id']}"

    updated = call("PUT", url, {**created, "birthDate": "1985-04-12"})
    refused = call("PUT", url, {**created, "birthDate": "1985-13-12"})

    assert updated.status == 200, updated.body
    assert updated.body["meta"]["versionId"] != created["meta"]["versionId"]
    assert_refused(refused, mentioning="Patient.birthDate")
    assert call("GET", url).body["birthDate"] == "1985-04-12"


def test_visit_bundle_is_accepted_and_a_resend_creates_nothing(peer: MedplumPeer) -> None:
    cccd = new_cccd()
    bundle = visit_bundle(cccd)

    first = call("POST", peer.base_url, bundle)
    resources_after_first = peer.stats().resources
    second = call("POST", peer.base_url, bundle)

    assert first.status == 200, first.body
    assert first.body["type"] == "transaction-response"
    assert [e["response"]["status"] for e in first.body["entry"]] == ["201"] * 9
    patient_ref = first.body["entry"][0]["response"]["location"]
    assert {e["resource"]["subject"]["reference"] for e in first.body["entry"][1:]} == {patient_ref}
    assert second.status == 200, second.body
    assert [e["response"]["status"] for e in second.body["entry"]] == ["200"] * 9
    assert [e["response"]["location"] for e in second.body["entry"]] == [
        e["response"]["location"] for e in first.body["entry"]
    ]
    assert peer.stats().resources == resources_after_first
    assert len(search(peer, f"Observation?subject={patient_ref}")) == 8


def test_the_same_bundle_sent_concurrently_is_stored_once(peer: MedplumPeer) -> None:
    bundle = visit_bundle(new_cccd())
    before = Counter(peer.stats().resources)

    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda _: call("POST", peer.base_url, bundle), range(8)))

    assert [r.status for r in replies] == [200] * 8
    assert Counter(peer.stats().resources) - before == Counter(Patient=1, Observation=8)


def test_search_by_cccd_identifier_finds_the_patient(peer: MedplumPeer) -> None:
    cccd = new_cccd()
    call("POST", peer.base_url, visit_bundle(cccd))
    call("POST", f"{peer.base_url}/Patient", {"resourceType": "Patient"})

    found = search(peer, f"Patient?{identifier_query(CCCD_SYSTEM, cccd)}")

    assert [p["identifier"][0]["value"] for p in found] == [cccd]


def test_observation_without_vital_signs_category_is_refused(peer: MedplumPeer) -> None:
    weight = vital("29463-7", "Patient/x", new_cccd(), valueQuantity=quantity(63.4, "kg"))
    del weight["category"]

    reply = call("POST", f"{peer.base_url}/Observation", weight)

    assert_refused(reply, mentioning="Observation.category")
    assert "StructureDefinition/bodyweight" in json.dumps(reply.body)


def test_body_weight_without_ucum_system_is_refused(peer: MedplumPeer) -> None:
    weight = vital("29463-7", "Patient/x", new_cccd(), valueQuantity={"value": 63.4, "unit": "kg"})

    reply = call("POST", f"{peer.base_url}/Observation", weight)

    assert_refused(reply, mentioning="Observation.value[x].system")


def test_blood_pressure_needs_both_components(peer: MedplumPeer) -> None:
    both = [bp_component("8480-6", 128), bp_component("8462-4", 82)]
    whole = vital("85354-9", "Patient/x", new_cccd(), component=both)
    systolic_only = {**whole, "component": both[:1]}

    accepted = call("POST", f"{peer.base_url}/Observation", whole)
    refused = call("POST", f"{peer.base_url}/Observation", systolic_only)

    assert accepted.status == 201, accepted.body
    assert_refused(refused, mentioning="DiastolicBP")


def test_refused_entry_fails_the_whole_transaction_and_stores_nothing(peer: MedplumPeer) -> None:
    cccd = new_cccd()
    bundle = visit_bundle(cccd)
    bundle["entry"][-2]["resource"]["component"].pop()  # the BP loses its diastolic reading
    before = peer.stats().resources

    reply = call("POST", peer.base_url, bundle)

    assert_refused(reply, mentioning="DiastolicBP")
    assert search(peer, f"Patient?{identifier_query(CCCD_SYSTEM, cccd)}") == []
    assert peer.stats().resources == before


def test_malformed_json_gets_an_operation_outcome(peer: MedplumPeer) -> None:
    reply = call("POST", f"{peer.base_url}/Patient", b'{"resourceType": "Patient",')

    assert_refused(reply, mentioning="not valid JSON")
    assert call("GET", f"{peer.base_url}/metadata").status == 200


def test_injected_503_carries_retry_after_then_the_peer_recovers(peer: MedplumPeer) -> None:
    url = f"{peer.base_url}/metadata"
    injected_before = peer.stats().injected

    peer.fail_next(2, status=503, retry_after=2)
    replies = [call("GET", url) for _ in range(3)]

    assert [r.status for r in replies] == [503, 503, 200]
    assert [r.headers.get("retry-after") for r in replies[:2]] == ["2", "2"]
    assert replies[0].body["resourceType"] == "OperationOutcome"
    assert peer.stats().injected == injected_before + 2


def test_restart_keeps_the_port_and_empties_the_repository(tmp_path: Path) -> None:
    require(*peer_availability())
    with MedplumPeer(log_path=tmp_path / "peer.log") as peer:
        call("POST", f"{peer.base_url}/Patient", {"resourceType": "Patient"})
        port = peer.port

        peer.restart()

        assert peer.port == port
        assert peer.stats().resources == {}
        assert search(peer, "Patient") == []
    assert peer.exit_code == 0
    assert "SIGTERM: stopping" in peer.log_tail()


def test_a_peer_that_cannot_start_says_why(tmp_path: Path) -> None:
    # Python cannot run server.mjs: it exits at once, and says why in the log.
    peer = MedplumPeer(node=sys.executable, start_timeout=5, log_path=tmp_path / "peer.log")

    with pytest.raises(PeerStartError, match=r"exited with code 1 before listening(.|\n)*Syntax"):
        peer.start()
    assert not peer.running


def test_a_missing_peer_skips_but_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="no node"):
        require(False, "no node")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no node"):
        require(False, "no node")
