"""A finished visit as one FHIR R4 transaction Bundle, validated, as JSON bytes (pure).

Entries, in order: the cabin (gateway Device), each measuring Device, the Patient, the
Encounter, the resident's Consent when the visit carries one (``fhir.consent``), every
Observation (single BP readings before the mean that lists them, height and weight before the
BMI derived from them), the vital-signs panel, and a Provenance naming the cabin.  Every full
URL is a ``urn:uuid`` derived from stable identifiers, and every resource but the Provenance
is a conditional create (``ifNoneExist`` on its identifier), so the same visit always yields
the same bytes and resending it creates nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta, timezone, tzinfo
from typing import Any

from pydantic import ValidationError

from fhir.config import IdentifierSystems
from fhir.consent import consent_entry
from fhir.consultation import consultation_entries
from fhir.errors import MappingError
from fhir.ids import stable_uuid
from fhir.jsonio import dumps
from fhir.observations import Context, code_of, observation, panel
from fhir.participants import (
    Entry,
    device_entry,
    device_key,
    encounter_entry,
    gateway_entry,
    identifier_query,
    patient_entry,
    provenance_entry,
)
from fhir.visit import VisitRecord
from vitals.measurement import Measurement

VIETNAM = timezone(timedelta(hours=7), "ICT")
DEFAULT_CANONICAL = "https://fhir.tramcongdanso.vn/cabin"


@dataclass(frozen=True, slots=True, kw_only=True)
class MappingOptions:
    """Per-hospital choices for the mapping."""

    identifiers: IdentifierSystems = field(default_factory=IdentifierSystems)
    timezone: tzinfo = VIETNAM
    """Offset written in effective times (the hospital's local time)."""
    canonical: str = DEFAULT_CANONICAL
    """Base of this product's own extension definitions."""


@dataclass(frozen=True, slots=True)
class VisitBundle:
    """The built bundle: its stable id, its JSON and what it contains."""

    id: str
    json: bytes
    resource_counts: dict[str, int]


def build_bundle(visit: VisitRecord, options: MappingOptions | None = None) -> VisitBundle:
    """Map ``visit`` to a validated transaction Bundle; raises :class:`MappingError`."""
    options = options or MappingOptions()
    systems = options.identifiers
    gateway = gateway_entry(visit.cabin, systems)
    patient = patient_entry(visit.patient, systems)
    local = options.timezone
    encounter = encounter_entry(
        visit.visit_id,
        started=visit.started.astimezone(local).isoformat(timespec="seconds"),
        ended=visit.ended.astimezone(local).isoformat(timespec="seconds"),
        patient_url=patient.full_url,
        cabin=visit.cabin,
        systems=systems,
    )
    context = Context(
        patient_url=patient.full_url,
        encounter_url=encounter.full_url,
        gateway_url=gateway.full_url,
        timezone=local,
        canonical=options.canonical,
    )
    builder = _Observations(visit, context, systems, gateway.full_url)
    top = [builder.add(m) for m in visit.measurements]
    entries: list[Entry] = [gateway, *builder.devices.values(), patient, encounter]
    if visit.consent is not None:
        entries.append(
            consent_entry(
                visit.consent,
                patient_url=patient.full_url,
                timezone=local,
                canonical=options.canonical,
            )
        )
    entries += builder.entries
    if top:
        effective = max(m.at for m in visit.measurements).utc.astimezone(local)
        panel_value = f"urn:observation:{stable_uuid('panel', visit.visit_id)}"
        panel_identifier = {"system": systems.observation, "value": panel_value}
        entries.append(
            Entry(
                full_url=f"urn:uuid:{stable_uuid('panel-entry', visit.visit_id)}",
                resource=panel(
                    context=context,
                    identifier=panel_identifier,
                    effective=effective.isoformat(timespec="seconds"),
                    members=top,
                ),
                method="POST",
                url="Observation",
                if_none_exist=identifier_query(systems.observation, panel_value),
            )
        )
    if visit.consultation is not None:
        entries += consultation_entries(
            visit.consultation,
            visit_encounter_url=encounter.full_url,
            patient_url=patient.full_url,
            systems=systems,
            timezone=local,
            canonical=options.canonical,
        )
    targets = [
        e.full_url
        for e in entries
        if e.resource["resourceType"] in ("Observation", "ClinicalImpression", "Consent")
        or (e.resource["resourceType"] == "Encounter" and e is not encounter)
    ]
    entries.append(
        provenance_entry(
            visit.visit_id,
            recorded=visit.ended.astimezone(local),
            targets=[encounter.full_url, *targets],
            gateway_url=gateway.full_url,
        )
    )
    bundle_id = stable_uuid("bundle", visit.visit_id)
    document: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": bundle_id,
        "type": "transaction",
        "entry": [entry.as_json() for entry in entries],
    }
    validate(document)
    counts: dict[str, int] = {}
    for entry in entries:
        kind = entry.resource["resourceType"]
        counts[kind] = counts.get(kind, 0) + 1
    return VisitBundle(bundle_id, dumps(document), counts)


def validate(document: dict[str, Any]) -> None:
    """Structural validation against the R4 (R4B models) definitions."""
    from fhir.resources.R4B.bundle import Bundle  # noqa: PLC0415 - heavy import, used here only

    try:
        Bundle.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        raise MappingError(f"invalid FHIR at {where}: {first.get('msg')}") from exc


class _Observations:
    """Builds Observation entries, each measurement once, members and sources first."""

    def __init__(
        self,
        visit: VisitRecord,
        context: Context,
        systems: IdentifierSystems,
        gateway_url: str,
    ) -> None:
        self._visit = visit
        self._context = context
        self._systems = systems
        self._gateway_url = gateway_url
        self.devices: dict[str, Entry] = {}
        self.entries: list[Entry] = []
        self._urls: dict[Measurement, str] = {}

    def add(self, measurement: Measurement) -> str:
        """The placeholder URL of ``measurement``'s Observation (created on first use)."""
        known = self._urls.get(measurement)
        if known is not None:
            return known
        members = [self.add(m) for m in measurement.members]
        sources = [self.add(m) for m in measurement.derived_from]
        device_url = None
        key = "calculated"
        if measurement.device is not None:
            key = device_key(self._visit.cabin, measurement.device)
            if key not in self.devices:
                self.devices[key] = device_entry(
                    self._visit.cabin, measurement.device, self._systems, self._gateway_url
                )
            device_url = self.devices[key].full_url
        stamp = measurement.at.utc.isoformat(timespec="milliseconds")
        parts: tuple[str, ...] = (
            key,
            self._visit.patient.cccd,
            code_of(measurement.kind).loinc,
            stamp,
        )
        if measurement.members:  # a mean shares its last reading's device, type and time
            parts += (f"mean-of-{len(measurement.members)}",)
        value = f"urn:observation:{stable_uuid(*parts)}"
        identifier = {"system": self._systems.observation, "value": value}
        url = f"urn:uuid:{stable_uuid('observation-entry', *parts)}"
        try:
            resource = observation(
                measurement,
                context=self._context,
                identifier=identifier,
                device_url=device_url,
                members=members,
                derived_from=sources,
            )
        except ValueError as exc:
            raise MappingError(str(exc)) from exc
        self.entries.append(
            Entry(
                full_url=url,
                resource=resource,
                method="POST",
                url="Observation",
                if_none_exist=identifier_query(self._systems.observation, value),
            )
        )
        self._urls[measurement] = url
        return url
