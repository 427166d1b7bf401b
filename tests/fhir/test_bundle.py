"""A finished visit as a FHIR R4 transaction bundle (pure mapping, no server)."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pytest

from fhir.bundle import MappingOptions, build_bundle
from fhir.config import IdentifierSystems
from fhir.visit import PatientIdentity
from tests.fhir.sample_visit import RESIDENT, failed_visit, visit

Resource = dict[str, Any]


def _entries(raw: bytes) -> list[Resource]:
    return list(json.loads(raw)["entry"])


def _observations(raw: bytes) -> dict[str, Resource]:
    """Observations by their first LOINC code (the single BP readings under '85354-9#n')."""
    out: dict[str, Resource] = {}
    for entry in _entries(raw):
        resource = entry["resource"]
        if resource["resourceType"] != "Observation":
            continue
        code = resource["code"]["coding"][0]["code"]
        key = code
        n = 1
        while key in out:
            n += 1
            key = f"{code}#{n}"
        out[key] = resource
    return out


def test_the_same_visit_always_gives_the_same_bytes() -> None:
    assert build_bundle(visit()).json == build_bundle(visit()).json
    assert build_bundle(visit()).id == build_bundle(visit()).id


def test_every_resource_but_provenance_is_a_conditional_create() -> None:
    for entry in _entries(build_bundle(visit()).json):
        request = entry["request"]
        assert entry["fullUrl"].startswith("urn:uuid:")
        if entry["resource"]["resourceType"] == "Provenance":
            assert request["method"] == "PUT"
            assert request["url"] == f"Provenance/{entry['resource']['id']}"
        else:
            assert request["method"] == "POST"
            identifier = entry["resource"]["identifier"][0]
            assert (
                request["ifNoneExist"] == f"identifier={identifier['system']}|{identifier['value']}"
            )


def test_every_reference_points_inside_the_bundle() -> None:
    raw = build_bundle(visit()).json
    urls = {entry["fullUrl"] for entry in _entries(raw)}
    references = re.findall(rb'"reference":"([^"]+)"', raw)
    assert references
    assert {ref.decode() for ref in references} <= urls


def test_decimals_keep_their_written_precision() -> None:
    raw = build_bundle(visit()).json
    assert b'"value":72.35,' in raw
    assert b'"value":36.80,' in raw
    assert b'"value":158.0,' in raw
    assert b'"value":127,' in raw
    assert b"120.0" not in raw


def test_vital_sign_codes_units_and_profiles() -> None:
    obs = _observations(build_bundle(visit()).json)
    spo2 = obs["2708-6"]
    assert [c["code"] for c in spo2["code"]["coding"]] == ["2708-6", "59408-5", "150456"]
    assert spo2["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/oxygensat"]
    assert spo2["valueQuantity"] == {
        "value": 97,
        "unit": "%",
        "system": "http://unitsofmeasure.org",
        "code": "%",
    }
    assert obs["8310-5"]["valueQuantity"]["code"] == "Cel"
    assert obs["8867-4"]["valueQuantity"]["code"] == "/min"
    assert all(o["category"][0]["coding"][0]["code"] == "vital-signs" for o in obs.values())
    assert obs["8310-5"]["effectiveDateTime"] == "2025-11-21T11:40:10+07:00"


def test_blood_pressure_mean_with_components_and_its_single_readings() -> None:
    raw = build_bundle(visit()).json
    obs = _observations(raw)
    readings = [obs["85354-9"], obs["85354-9#2"]]
    mean = obs["85354-9#3"]
    assert [c["code"]["coding"][0]["code"] for c in mean["component"]] == [
        "8480-6",
        "8462-4",
        "8478-0",
    ]
    assert mean["component"][0]["valueQuantity"]["value"] == 127
    assert mean["component"][0]["interpretation"][0]["coding"][0]["code"] == "N"
    urls = {
        e["resource"]["identifier"][0]["value"]: e["fullUrl"]
        for e in _entries(raw)
        if e["resource"]["resourceType"] == "Observation"
    }
    member_urls = [m["reference"] for m in mean["hasMember"]]
    assert member_urls == [urls[r["identifier"][0]["value"]] for r in readings]
    assert mean["extension"][-1]["valueString"] == "aha2019"


def test_bmi_is_derived_from_this_visits_height_and_weight() -> None:
    raw = build_bundle(visit()).json
    obs = _observations(raw)
    by_identifier = {
        e["resource"]["identifier"][0]["value"]: e["fullUrl"]
        for e in _entries(raw)
        if e["resource"]["resourceType"] == "Observation"
    }
    sources = [d["reference"] for d in obs["39156-5"]["derivedFrom"]]
    assert sources == [
        by_identifier[obs["8302-2"]["identifier"][0]["value"]],
        by_identifier[obs["29463-7"]["identifier"][0]["value"]],
    ]
    assert "device" not in obs["39156-5"]


def test_the_panel_groups_the_top_level_vitals_only() -> None:
    raw = build_bundle(visit()).json
    obs = _observations(raw)
    panel = obs["85353-1"]
    assert len(panel["hasMember"]) == 7  # temp, weight, height, BMI, SpO2, PR, BP mean
    assert "valueQuantity" not in panel


def test_quality_method_and_questionable_status_travel_with_the_observation() -> None:
    obs = _observations(build_bundle(visit()).json)
    rate = obs["8867-4"]
    assert rate["status"] == "final"
    assert rate["valueQuantity"]["value"] == 72
    assert rate["interpretation"][0]["coding"][0]["code"] == "questionable"
    assert rate["method"] == {"text": "pulse-oximetry"}
    quality = [e for e in rate["extension"] if e["url"].endswith("/signal-quality")]
    assert quality[0]["valueDecimal"] == 0.93
    assert any("waveform rate: 79.5" in n["text"] for n in rate["note"])
    assert any("Tay cử động" in n["text"] or "cử động" in n["text"] for n in rate["note"])


def test_failed_measurements_keep_their_record_with_a_data_absent_reason() -> None:
    obs = _observations(build_bundle(failed_visit()).json)
    temperature = obs["8310-5"]
    assert temperature["status"] == "cancelled"
    assert temperature["dataAbsentReason"]["coding"][0]["code"] == "not-performed"
    rate = obs["8867-4"]
    assert "valueQuantity" not in rate
    assert rate["dataAbsentReason"]["coding"][0]["code"] == "error"
    assert any(n["text"] == "Rejected value: 300 /min" for n in rate["note"])
    bp = obs["85354-9"]
    assert bp["dataAbsentReason"]["coding"][0]["code"] == "error"
    assert all(
        c["dataAbsentReason"]["text"].startswith("The cuff seems loose") for c in bp["component"]
    )


def test_patient_identifiers_use_the_hospitals_systems() -> None:
    options = MappingOptions(
        identifiers=IdentifierSystems(cccd="https://hospital.vn/id/cccd", bhyt="https://bhyt.vn")
    )
    raw = build_bundle(visit(), options).json
    patient = next(e for e in _entries(raw) if e["resource"]["resourceType"] == "Patient")
    assert (
        patient["request"]["ifNoneExist"] == "identifier=https://hospital.vn/id/cccd|079085009876"
    )
    ids = {i["system"]: i["value"] for i in patient["resource"]["identifier"]}
    assert ids == {
        "https://hospital.vn/id/cccd": "079085009876",
        "https://bhyt.vn": "HC4797915123456",
    }
    assert patient["resource"]["name"][0] == {
        "use": "official",
        "text": "Nguyễn Văn Bình",
        "family": "Nguyễn",
        "given": ["Văn", "Bình"],
    }
    assert patient["resource"]["birthDate"] == "1955-04-12"


def test_observation_identifiers_do_not_spell_out_the_citizen_id() -> None:
    for entry in _entries(build_bundle(visit()).json):
        if entry["resource"]["resourceType"] == "Observation":
            assert RESIDENT.cccd not in json.dumps(entry["resource"]["identifier"])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cccd": "07908500987"}, "exactly 12 digits"),
        ({"cccd": "07908500987x"}, "exactly 12 digits"),
        ({"full_name": "  "}, "needs a name"),
        ({"bhyt": "hc123"}, "BHYT"),
    ],
)
def test_bad_identity_is_refused(fields: dict[str, str], message: str) -> None:
    base: dict[str, Any] = {
        "cccd": "079085009876",
        "full_name": "A B",
        "birth_date": date(1950, 1, 1),
    }
    base.update(fields)
    with pytest.raises(ValueError, match=message):
        PatientIdentity(**base)


def test_observation_identifiers_are_unique_even_for_a_mean_and_its_last_reading() -> None:
    values = [
        entry["resource"]["identifier"][0]["value"]
        for entry in _entries(build_bundle(visit()).json)
        if entry["resource"]["resourceType"] == "Observation"
    ]
    assert len(values) == len(set(values)) == 10
