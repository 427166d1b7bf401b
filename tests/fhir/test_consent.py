"""The resident's consent as a FHIR R4 Consent: mapping, validation, and a real server taking it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cabin.consent_map import consent_info
from fhir.bundle import build_bundle
from fhir.consent import consent_identifier
from fhir.visit import (
    ConsentInfo,
    ConsentProvision,
    ConsentPurpose,
    ConsentStatus,
    ProvisionType,
    VisitRecord,
)
from kiosk_bridge.consent import (
    ConsentChoices,
    Locale,
    consent_text,
    record_consent,
    withdrawal,
)
from tests.fhir.sample_visit import visit
from tests.fhir.test_medplum_delivery import _fresh, _post, _search
from tests.peers.medplum import MedplumPeer

RECORDED = datetime(2026, 11, 21, 3, 15, 7, tzinfo=UTC)
HOSPITAL = "Bệnh viện Thành phố Thủ Đức"


def _record(session_id: str = "s-8mQ2rX_c4", **choices: bool) -> Any:
    shown = consent_text(locale=Locale.VI, hospital=HOSPITAL)
    answers = {"measuring": True, "hospital": True, "video_consultation": False} | choices
    return record_consent(
        session_id=session_id, shown=shown, choices=ConsentChoices(**answers), now=RECORDED
    )


def _with_consent(record: VisitRecord, consent: ConsentInfo) -> VisitRecord:
    return dataclasses.replace(record, consent=consent)


def _consent_of(raw: bytes) -> dict[str, Any]:
    [entry] = [e for e in json.loads(raw)["entry"] if e["resource"]["resourceType"] == "Consent"]
    return dict(entry)


def test_a_consent_record_maps_to_one_provision_per_purpose() -> None:
    record = _record()
    info = consent_info(record)
    assert info.session_id == record.session_id
    assert info.status is ConsentStatus.ACTIVE
    assert info.date_time == RECORDED
    assert info.policy_uri == "urn:telehealth-cabin:consent:2026-11-01"
    assert info.text_sha256 == consent_text(locale=Locale.VI, hospital=HOSPITAL).sha256
    assert info.language == "vi"
    assert info.organization == HOSPITAL
    assert info.provisions == (
        ConsentProvision(ConsentPurpose.MEASURING, ProvisionType.PERMIT),
        ConsentProvision(ConsentPurpose.HOSPITAL, ProvisionType.PERMIT),
        ConsentProvision(ConsentPurpose.VIDEO_CONSULTATION, ProvisionType.DENY),
    )
    assert info.withdrawn_at is None


def test_a_withdrawal_maps_to_an_inactive_consent_denying_everything() -> None:
    later = RECORDED + timedelta(minutes=4)
    info = consent_info(withdrawal(_record(), now=later))
    assert info.status is ConsentStatus.INACTIVE
    assert info.withdrawn_at == later
    assert {p.type for p in info.provisions} == {ProvisionType.DENY}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"date_time": datetime(2026, 11, 21, 3, 15)}, "timezone-aware"),
        ({"text_sha256": "ABC"}, "64 lower-case hex"),
        ({"session_id": ""}, "session"),
        ({"provisions": ()}, "each purpose once"),
        ({"withdrawn_at": RECORDED}, "withdrawn consent is inactive"),
    ],
)
def test_an_inconsistent_consent_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(consent_info(_record()), **change)


def test_the_same_purpose_twice_is_refused() -> None:
    permit = ConsentProvision(ConsentPurpose.MEASURING, ProvisionType.PERMIT)
    with pytest.raises(ValueError, match="each purpose once"):
        dataclasses.replace(consent_info(_record()), provisions=(permit, permit))


def test_the_bundle_carries_a_conditional_consent_for_the_patient() -> None:
    info = consent_info(_record())
    built = build_bundle(_with_consent(visit(), info))
    entry = _consent_of(built.json)
    consent = entry["resource"]
    patient_url = next(
        e["fullUrl"]
        for e in json.loads(built.json)["entry"]
        if e["resource"]["resourceType"] == "Patient"
    )
    assert built.resource_counts["Consent"] == 1
    assert consent["status"] == "active"
    assert consent["scope"]["coding"][0]["code"] == "patient-privacy"
    assert consent["category"][0]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "59284-0",
        "display": "Patient Consent",
    }
    assert consent["patient"] == {"reference": patient_url}
    assert consent["performer"] == [{"reference": patient_url}]
    assert consent["dateTime"] == "2026-11-21T10:15:07+07:00"
    assert consent["organization"] == [{"display": HOSPITAL}]
    assert consent["policy"] == [{"uri": info.policy_uri}]
    attachment = consent["sourceAttachment"]
    assert attachment["language"] == "vi"
    assert attachment["extension"][0]["valueString"] == info.text_sha256
    identifier = consent_identifier(info.session_id)
    assert consent["identifier"] == [{"system": "urn:ietf:rfc:3986", "value": identifier}]
    assert entry["request"] == {
        "method": "POST",
        "url": "Consent",
        "ifNoneExist": f"identifier=urn:ietf:rfc:3986|{identifier}",
    }
    assert info.session_id not in built.json.decode()


def test_each_purpose_is_a_nested_provision_with_its_own_code() -> None:
    consent = _consent_of(build_bundle(_with_consent(visit(), consent_info(_record()))).json)
    root = consent["resource"]["provision"]
    assert root["type"] == "deny"
    assert root["period"] == {"start": "2026-11-21T10:15:07+07:00"}
    answers = {
        p["purpose"][0]["code"]: (p["type"], p["action"][0]["coding"][0]["code"])
        for p in root["provision"]
    }
    assert answers == {
        "PATRQT": ("permit", "collect"),
        "COC": ("permit", "disclose"),
        "TREAT": ("deny", "access"),
    }
    [hospital] = [p for p in root["provision"] if p["purpose"][0]["code"] == "COC"]
    assert hospital["actor"][0]["reference"] == {"display": HOSPITAL}
    assert hospital["actor"][0]["role"]["coding"][0]["code"] == "IRCP"


def test_a_withdrawn_consent_is_inactive_with_its_period_ended() -> None:
    later = RECORDED + timedelta(minutes=4)
    info = consent_info(withdrawal(_record(), now=later))
    consent = _consent_of(build_bundle(_with_consent(visit(), info)).json)["resource"]
    assert consent["status"] == "inactive"
    assert consent["provision"]["period"] == {
        "start": "2026-11-21T10:15:07+07:00",
        "end": "2026-11-21T10:19:07+07:00",
    }


def test_the_consent_validates_as_an_r4_consent_and_is_named_by_the_provenance() -> None:
    from fhir.resources.R4B.consent import Consent

    built = build_bundle(_with_consent(visit(), consent_info(_record())))
    entry = _consent_of(built.json)
    Consent.model_validate(entry["resource"])
    [provenance] = [
        e["resource"]
        for e in json.loads(built.json)["entry"]
        if e["resource"]["resourceType"] == "Provenance"
    ]
    assert {"reference": entry["fullUrl"]} in provenance["target"]


def test_a_visit_without_consent_maps_as_before_and_the_mapping_is_stable() -> None:
    plain = build_bundle(visit())
    assert "Consent" not in plain.resource_counts
    with_consent = _with_consent(visit(), consent_info(_record()))
    assert build_bundle(with_consent).json == build_bundle(with_consent).json


def test_the_medplum_peer_accepts_the_consent_once(medplum: MedplumPeer) -> None:
    record = _fresh(visit())
    info = consent_info(_record(session_id=f"s-{record.visit_id}"))
    built = build_bundle(_with_consent(record, info))
    status, answer = asyncio.run(_post(medplum, built.json))
    assert status == 200, answer
    again, _ = asyncio.run(_post(medplum, built.json))
    assert again == 200
    query = {"identifier": consent_identifier(info.session_id)}
    consents = asyncio.run(_search(medplum, "Consent", query))
    assert len(consents) == 1
    stored = consents[0]
    assert stored["status"] == "active"
    assert stored["patient"]["reference"].startswith("Patient/")
    assert len(stored["provision"]["provision"]) == 3


def test_the_medplum_peer_accepts_a_withdrawn_consent(medplum: MedplumPeer) -> None:
    record = _fresh(visit())
    later = RECORDED + timedelta(minutes=2)
    info = consent_info(withdrawal(_record(session_id=f"s-{record.visit_id}"), now=later))
    status, answer = asyncio.run(_post(medplum, build_bundle(_with_consent(record, info)).json))
    assert status == 200, answer
    [stored] = asyncio.run(
        _search(medplum, "Consent", {"identifier": consent_identifier(info.session_id)})
    )
    assert stored["status"] == "inactive"
    assert stored["provision"]["period"]["end"].startswith("2026-11-21T10:17:07")


def test_the_medplum_peer_validates_consents(medplum: MedplumPeer) -> None:
    """The peer checks Consent too: without its required scope the transaction is refused."""
    record = _fresh(visit())
    info = consent_info(_record(session_id=f"s-{record.visit_id}"))
    document = json.loads(build_bundle(_with_consent(record, info)).json)
    for entry in document["entry"]:
        if entry["resource"]["resourceType"] == "Consent":
            del entry["resource"]["scope"]
    status, answer = asyncio.run(_post(medplum, json.dumps(document).encode()))
    assert status == 400, answer
    assert "scope" in json.dumps(answer)
