"""Measurements as Observations conforming to the HL7 FHIR R4 vital-signs profiles (pure).

| measurement | profile | LOINC (+ MDC) |
|---|---|---|
| SpO2 | oxygensat | 2708-6 and 59408-5 (+ 150456) |
| pulse rate | heartrate | 8867-4 (+ 149530) |
| blood pressure | bp | 85354-9, components 8480-6, 8462-4 (+ 8478-0 mean) |
| body temperature | bodytemp | 8310-5 (+ 150364) |
| height | bodyheight | 8302-2 (+ 188740) |
| weight | bodyweight | 29463-7 (+ 188736) |
| BMI | bmi | 39156-5 (+ 188752), ``derivedFrom`` height and weight |
| the visit's panel | vitalspanel | 85353-1, ``hasMember`` every top-level vital |

A measurement that failed keeps its record: no value, a ``dataAbsentReason`` (``error``, or
``not-performed`` when skipped) and the reasons in ``note``.  A questionable one keeps its
value and carries the PHD measurement-status code ``questionable`` in ``interpretation``.
The quality index travels as an extension, the method as ``method``, the clinical
interpretation as an HL7 v3 interpretation code with the plain-language sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from decimal import Decimal
from typing import Any

from fhir.codes import LOINC, MDC, PULSE_OXIMETRY, UCUM, VITAL_CODES, VitalCode
from fhir.jsonio import plain
from fhir.participants import GATEWAY_DEVICE
from vitals.measurement import Component, Interpretation, Measurement, Reason
from vitals.model import Kind, Status

Resource = dict[str, Any]

PROFILE_BASE = "http://hl7.org/fhir/StructureDefinition/"
PROFILES = {
    Kind.SPO2: "oxygensat",
    Kind.PULSE_RATE: "heartrate",
    Kind.BLOOD_PRESSURE: "bp",
    Kind.BODY_TEMPERATURE: "bodytemp",
    Kind.BODY_HEIGHT: "bodyheight",
    Kind.BODY_WEIGHT: "bodyweight",
    Kind.BMI: "bmi",
}
_PANEL_CODES = {
    Kind.BLOOD_PRESSURE: VitalCode(
        "85354-9", "Blood pressure panel", "mm[Hg]", 150020, "MDC_PRESS_BLD_NONINV"
    ),
    Kind.BMI: VitalCode(
        "39156-5", "Body mass index", "kg/m2", 188752, "MDC_RATIO_MASS_BODY_LEN_SQ"
    ),
}
VITAL_SIGNS_CATEGORY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs",
            "display": "Vital Signs",
        }
    ],
    "text": "Vital Signs",
}
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
MEASUREMENT_STATUS = "http://hl7.org/fhir/uv/pocd/CodeSystem/measurement-status"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What every Observation of a visit refers to."""

    patient_url: str
    encounter_url: str
    gateway_url: str
    timezone: tzinfo
    canonical: str
    """Base URL of this product's own StructureDefinitions (extensions)."""


def code_of(kind: Kind) -> VitalCode:
    code = _PANEL_CODES.get(kind) or VITAL_CODES.get(kind)
    if code is None:
        raise ValueError(f"no FHIR code for {kind}")
    return code


def codeable(code: VitalCode, *, extra: tuple[tuple[str, str], ...] = ()) -> Resource:
    codings: list[Resource] = [{"system": LOINC, "code": code.loinc, "display": code.display}]
    codings += [{"system": LOINC, "code": c, "display": d} for c, d in extra]
    if code.mdc is not None:
        codings.append({"system": MDC, "code": str(code.mdc), "display": code.mdc_name})
    return {"coding": codings, "text": code.display}


def quantity(value: Decimal, unit: str) -> Resource:
    return {"value": plain(value), "unit": _UNIT_TEXT.get(unit, unit), "system": UCUM, "code": unit}


_UNIT_TEXT = {"/min": "beats/minute", "mm[Hg]": "mmHg", "Cel": "°C", "kg/m2": "kg/m2"}


def observation(
    measurement: Measurement,
    *,
    context: Context,
    identifier: Resource,
    device_url: str | None,
    members: Sequence[str] = (),
    derived_from: Sequence[str] = (),
) -> Resource:
    """The Observation for one measurement (its references are placeholder URLs)."""
    kind = measurement.kind
    code = code_of(kind)
    extra = ((PULSE_OXIMETRY, "Oxygen saturation in Arterial blood by Pulse oximetry"),)
    resource: Resource = {
        "resourceType": "Observation",
        "meta": {"profile": [PROFILE_BASE + PROFILES[kind]]},
        "identifier": [identifier],
        "status": "cancelled" if _skipped(measurement.reasons) else "final",
        "category": [VITAL_SIGNS_CATEGORY],
        "code": codeable(code, extra=extra if kind is Kind.SPO2 else ()),
        "subject": {"reference": context.patient_url},
        "encounter": {"reference": context.encounter_url},
        "effectiveDateTime": measurement.at.utc.astimezone(context.timezone).isoformat(
            timespec="seconds"
        ),
        "extension": _extensions(measurement, context),
        "method": {"text": measurement.method.value},
    }
    if device_url is not None:
        resource["device"] = {"reference": device_url}
    if measurement.components:
        resource["component"] = [_component(c) for c in measurement.components]
        if all(c.status is not Status.VALID for c in measurement.components) and not members:
            resource["dataAbsentReason"] = _absent(measurement.status, measurement.reasons)
    elif measurement.value is not None and measurement.status in (
        Status.VALID,
        Status.QUESTIONABLE,
    ):
        resource["valueQuantity"] = quantity(measurement.value, measurement.unit)
    elif not members:
        resource["dataAbsentReason"] = _absent(measurement.status, measurement.reasons)
    interpretations = _interpretations(measurement.status, measurement.interpretation)
    if interpretations:
        resource["interpretation"] = interpretations
    notes = _notes(measurement)
    if notes:
        resource["note"] = notes
    if members:
        resource["hasMember"] = [{"reference": url} for url in members]
    if derived_from:
        resource["derivedFrom"] = [{"reference": url} for url in derived_from]
    return resource


def panel(
    *, context: Context, identifier: Resource, effective: str, members: Sequence[str]
) -> Resource:
    """The vital-signs panel (85353-1) grouping the visit's vitals."""
    return {
        "resourceType": "Observation",
        "meta": {"profile": [PROFILE_BASE + "vitalspanel"]},
        "identifier": [identifier],
        "status": "final",
        "category": [VITAL_SIGNS_CATEGORY],
        "code": {
            "coding": [{"system": LOINC, "code": "85353-1", "display": "Vital signs panel"}],
            "text": "Vital signs panel",
        },
        "subject": {"reference": context.patient_url},
        "encounter": {"reference": context.encounter_url},
        "effectiveDateTime": effective,
        "extension": [
            {"url": GATEWAY_DEVICE, "valueReference": {"reference": context.gateway_url}}
        ],
        "hasMember": [{"reference": url} for url in members],
    }


def _component(component: Component) -> Resource:
    code = code_of(component.kind)
    out: Resource = {"code": codeable(code)}
    if component.value is not None and component.status in (Status.VALID, Status.QUESTIONABLE):
        out["valueQuantity"] = quantity(component.value, component.unit)
    else:
        out["dataAbsentReason"] = _absent(component.status, component.reasons)
    interpretations = _interpretations(component.status, component.interpretation)
    if interpretations:
        out["interpretation"] = interpretations
    return out


def _extensions(measurement: Measurement, context: Context) -> list[Resource]:
    extensions: list[Resource] = [
        {"url": GATEWAY_DEVICE, "valueReference": {"reference": context.gateway_url}}
    ]
    if measurement.quality is not None:
        extensions.append(
            {
                "url": f"{context.canonical}/StructureDefinition/signal-quality",
                "valueDecimal": Decimal(f"{measurement.quality:.2f}"),
            }
        )
    if measurement.procedure:
        extensions.append(
            {
                "url": f"{context.canonical}/StructureDefinition/measurement-protocol",
                "valueString": measurement.procedure,
            }
        )
    return extensions


def _skipped(reasons: tuple[Reason, ...]) -> bool:
    return any(reason.code == "skipped" for reason in reasons)


def _absent(status: Status, reasons: tuple[Reason, ...]) -> Resource:
    code, display = ("not-performed", "Not Performed") if _skipped(reasons) else ("error", "Error")
    text = "; ".join(reason.en for reason in reasons) or status.value
    return {"coding": [{"system": DATA_ABSENT, "code": code, "display": display}], "text": text}


def _interpretations(status: Status, interpretation: Interpretation | None) -> list[Resource]:
    out: list[Resource] = []
    if status is Status.QUESTIONABLE:
        out.append(
            {
                "coding": [
                    {
                        "system": MEASUREMENT_STATUS,
                        "code": "questionable",
                        "display": "Questionable",
                    }
                ],
                "text": "questionable measurement",
            }
        )
    if interpretation is not None and status is Status.VALID:
        out.append(
            {
                "coding": [{"system": INTERPRETATION, "code": interpretation.code}],
                "text": f"{interpretation.category}: {interpretation.en}",
            }
        )
    return out


def _notes(measurement: Measurement) -> list[Resource]:
    notes = [{"text": f"{reason.en} / {reason.vi}"} for reason in measurement.reasons]
    if measurement.status is Status.INVALID and measurement.value is not None:
        notes.append({"text": f"Rejected value: {measurement.value} {measurement.unit}"})
    notes += [{"text": f"{name}: {value}"} for name, value in measurement.details]
    if measurement.interpretation is not None and measurement.status is Status.VALID:
        notes.append({"text": measurement.interpretation.vi})
    return notes
