"""Patient, Device, Encounter and Provenance resources of a visit (pure, plain dicts).

Each resource the transaction creates conditionally carries the identifier its
``ifNoneExist`` searches for: the CCCD for the Patient, the cabin-and-model key for each
Device, the visit id for the Encounter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir.config import IdentifierSystems
from fhir.ids import stable_uuid
from fhir.visit import CabinInfo, PatientIdentity
from vitals.model import DeviceInfo

Resource = dict[str, Any]

MDC = "urn:iso:std:iso:11073:10101"
GATEWAY_DEVICE = "http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice"

# ISO/IEEE 11073-10101 device-type codes (MDS / specialisation profiles) by vitals protocol.
_DEVICE_TYPES: dict[str, tuple[int, str]] = {
    "pulse-oximeter": (528388, "MDC_DEV_SPEC_PROFILE_PULS_OXIM"),
    "blood-pressure": (528391, "MDC_DEV_SPEC_PROFILE_BPM"),
    "thermometer": (528392, "MDC_DEV_SPEC_PROFILE_TEMP"),
    "scale": (528399, "MDC_DEV_SPEC_PROFILE_SCALE"),
}
_PROTOCOL_TYPES = {
    "cms50d-legacy": "pulse-oximeter",
    "cms50ew": "pulse-oximeter",
    "berrymed-bci": "pulse-oximeter",
    "nonin-oem3": "pulse-oximeter",
    "masimo-ascii1": "pulse-oximeter",
    "suntech-advantage": "blood-pressure",
    "gy-mcu90615": "thermometer",
    "and-scale": "scale",
}


@dataclass(frozen=True, slots=True)
class Entry:
    """One transaction entry: the resource, its placeholder URL and how to create it."""

    full_url: str
    resource: Resource
    method: str
    url: str
    if_none_exist: str | None = None

    def as_json(self) -> Resource:
        request: Resource = {"method": self.method, "url": self.url}
        if self.if_none_exist is not None:
            request["ifNoneExist"] = self.if_none_exist
        return {"fullUrl": self.full_url, "resource": self.resource, "request": request}


def identifier_query(system: str, value: str) -> str:
    """The conditional-create search for one identifier."""
    return f"identifier={system}|{value}"


def patient_entry(patient: PatientIdentity, systems: IdentifierSystems) -> Entry:
    identifiers: list[Resource] = [
        {
            "use": "official",
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                        "code": "NI",
                        "display": "National unique individual identifier",
                    }
                ],
                "text": "CCCD",
            },
            "system": systems.cccd,
            "value": patient.cccd,
        }
    ]
    if patient.bhyt:
        identifiers.append(
            {
                "use": "secondary",
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                            "code": "SN",
                            "display": "Subscriber Number",
                        }
                    ],
                    "text": "BHYT",
                },
                "system": systems.bhyt,
                "value": patient.bhyt,
            }
        )
    words = patient.full_name.split()
    name: Resource = {"use": "official", "text": " ".join(words)}
    if len(words) > 1:  # Vietnamese order: family name first, then middle and given names
        name["family"] = words[0]
        name["given"] = words[1:]
    resource: Resource = {
        "resourceType": "Patient",
        "identifier": identifiers,
        "name": [name],
        "gender": patient.sex.value,
    }
    if patient.birth_date is not None:
        resource["birthDate"] = patient.birth_date.isoformat()
    return Entry(
        full_url=f"urn:uuid:{stable_uuid('patient', systems.cccd, patient.cccd)}",
        resource=resource,
        method="POST",
        url="Patient",
        if_none_exist=identifier_query(systems.cccd, patient.cccd),
    )


def device_key(cabin: CabinInfo, device: DeviceInfo) -> str:
    """A device's stable identifier: its serial number when it reports one, else the
    cabin and the model's protocol (one device of each model per cabin)."""
    if device.serial_number:
        return f"{device.protocol}:{device.serial_number}"
    return f"{cabin.id}/{device.protocol}"


def device_entry(
    cabin: CabinInfo, device: DeviceInfo, systems: IdentifierSystems, gateway_url: str
) -> Entry:
    key = device_key(cabin, device)
    resource: Resource = {
        "resourceType": "Device",
        "identifier": [{"system": systems.device, "value": f"urn:cabin-device:{key}"}],
        "status": "active",
        "deviceName": [{"name": device.model, "type": "model-name"}],
        "property": [
            {"type": {"text": "serial protocol"}, "valueCode": [{"text": device.protocol}]}
        ],
        "parent": {"reference": gateway_url},
    }
    kind = _PROTOCOL_TYPES.get(device.protocol)
    if kind is not None:
        code, display = _DEVICE_TYPES[kind]
        resource["type"] = {
            "coding": [{"system": MDC, "code": str(code), "display": display}],
            "text": kind.replace("-", " "),
        }
    if device.serial_number:
        resource["serialNumber"] = device.serial_number
    if device.firmware:
        resource["version"] = [{"type": {"text": "firmware"}, "value": device.firmware}]
    return Entry(
        full_url=f"urn:uuid:{stable_uuid('device', key)}",
        resource=resource,
        method="POST",
        url="Device",
        if_none_exist=identifier_query(systems.device, f"urn:cabin-device:{key}"),
    )


def gateway_entry(cabin: CabinInfo, systems: IdentifierSystems) -> Entry:
    """The cabin itself, as the personal health gateway every Observation came through."""
    value = f"urn:cabin:{cabin.id}"
    resource: Resource = {
        "resourceType": "Device",
        "identifier": [{"system": systems.device, "value": value}],
        "status": "active",
        "deviceName": [{"name": cabin.name, "type": "user-friendly-name"}],
        "type": {
            "coding": [{"system": MDC, "code": "531981", "display": "MDC_MOC_VMS_MDS_AHD"}],
            "text": "personal health gateway",
        },
    }
    if cabin.manufacturer:
        resource["manufacturer"] = cabin.manufacturer
    if cabin.software_version:
        resource["version"] = [{"type": {"text": "software"}, "value": cabin.software_version}]
    if cabin.site:
        resource["note"] = [{"text": cabin.site}]
    return Entry(
        full_url=f"urn:uuid:{stable_uuid('gateway', cabin.id)}",
        resource=resource,
        method="POST",
        url="Device",
        if_none_exist=identifier_query(systems.device, value),
    )


def encounter_entry(
    visit_id: str,
    *,
    started: str,
    ended: str,
    patient_url: str,
    cabin: CabinInfo,
    systems: IdentifierSystems,
) -> Entry:
    value = f"urn:visit:{visit_id}"
    resource: Resource = {
        "resourceType": "Encounter",
        "identifier": [{"system": systems.encounter, "value": value}],
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "AMB",
            "display": "ambulatory",
        },
        "type": [{"text": "Self-service vital-sign check at a health cabin"}],
        "subject": {"reference": patient_url},
        "period": {"start": started, "end": ended},
    }
    if cabin.site:
        resource["location"] = [{"location": {"display": cabin.site}}]
    return Entry(
        full_url=f"urn:uuid:{stable_uuid('encounter', visit_id)}",
        resource=resource,
        method="POST",
        url="Encounter",
        if_none_exist=identifier_query(systems.encounter, value),
    )


def provenance_entry(
    visit_id: str, *, recorded: datetime, targets: list[str], gateway_url: str
) -> Entry:
    """Who assembled the records: the cabin.  Provenance has no identifier to create it
    conditionally, so it is written with PUT to an id derived from the visit: a resend
    updates it in place instead of adding another."""
    provenance_id = stable_uuid("provenance", visit_id)
    resource: Resource = {
        "resourceType": "Provenance",
        "id": provenance_id,
        "target": [{"reference": target} for target in targets],
        "recorded": recorded.isoformat(timespec="seconds"),
        "activity": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                    "code": "CREATE",
                    "display": "create",
                }
            ]
        },
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "assembler",
                            "display": "Assembler",
                        }
                    ]
                },
                "who": {"reference": gateway_url},
            }
        ],
    }
    return Entry(
        full_url=f"urn:uuid:{provenance_id}",
        resource=resource,
        method="PUT",
        url=f"Provenance/{provenance_id}",
    )
