"""``cabin visit --simulate``: one visit end to end without a screen.

The simulated devices run on pseudo-terminals (fast timing unless ``--real-time``) and are read
through the real serial path; the measurement procedures run one after another; the results
become a FHIR bundle that is written to the outbox in one transaction and delivered to the
configured hospital (a directory sink by default, any FHIR server with ``--fhir-url``).  What
the server answered is printed at the end; a bundle that could not be delivered in time stays
queued for the cabin service (``cabin outbox status``).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from cabin.config import CabinConfig
from cabin.operator import deliver_until, open_outbox
from cabin.transports import client_for
from fhir.bundle import MappingOptions, build_bundle
from fhir.config import HospitalConfig
from fhir.errors import FhirError
from fhir.outbox import BundleState, Outbox, OutboxEntry
from fhir.visit import PatientIdentity, Sex, VisitRecord
from vitals.clock import Clock
from vitals.devices.catalog import DriverOptions, create_driver
from vitals.interpretation import interpret
from vitals.measurement import Measurement
from vitals.model import Kind
from vitals.procedures.base import Procedure, Progress
from vitals.procedures.blood_pressure import BloodPressureProcedure
from vitals.procedures.bmi import body_mass_index
from vitals.procedures.height import HeightProcedure
from vitals.procedures.oximetry import OximetryProcedure
from vitals.procedures.runner import ReadingHub, run_procedure
from vitals.procedures.temperature import TemperatureProcedure
from vitals.procedures.weight import WeightProcedure
from vitals.session import DeviceSession
from vitals.sim.catalog import SIMULATORS
from vitals.sim.runtime import serve
from vitals.sim.truth import Truth

TEST_RESIDENT = PatientIdentity(
    cccd="079155001234",
    full_name="Trần Thị Mai",
    birth_date=date(1955, 3, 8),
    sex=Sex.FEMALE,
    bhyt="HT2797900001234",
    assurance="asserted",
)
"""A made-up resident for simulated visits (not a real person's data)."""

DELIVERY_WAIT_S = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class VisitOptions:
    seed: int = 0
    real_time: bool = False
    oximeter: str = "cms50d-legacy"
    bp_protocol: str = "screening"
    identity: PatientIdentity = TEST_RESIDENT
    truth: Truth = field(default_factory=Truth)


@dataclass(frozen=True, slots=True)
class Step:
    title: str
    make: Callable[[], Procedure]


def load_identity(path: Path) -> PatientIdentity:
    """A resident from a JSON file: cccd, full_name, birth_date (YYYY-MM-DD), sex, bhyt."""
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    birth = document.get("birth_date")
    return PatientIdentity(
        cccd=str(document["cccd"]),
        full_name=str(document["full_name"]),
        birth_date=None if birth is None else date.fromisoformat(birth),
        sex=Sex(document.get("sex", "unknown")),
        bhyt=document.get("bhyt"),
        assurance=str(document.get("assurance", "asserted")),
    )


def masked(cccd: str) -> str:
    """The citizen ID as a screen may show it: the last four digits only."""
    return "********" + cccd[-4:]


async def simulate_visit(config: CabinConfig, options: VisitOptions, out: TextIO) -> int:
    """Run one simulated visit; 0 when its bundle was delivered, 1 when it stays queued."""
    visit_id = str(uuid.uuid4())
    identity = options.identity
    out.write(
        f"Visit {visit_id} at {config.cabin.id}: {identity.full_name} "
        f"(CCCD {masked(identity.cccd)}), devices {'real-time' if options.real_time else 'fast'}\n"
    )
    started = datetime.now(UTC)
    measurements = await _measure(config, options, out)
    ended = datetime.now(UTC)
    record = VisitRecord(visit_id, config.cabin, identity, started, ended, tuple(measurements))
    return await _deliver(config, record, out)


async def _measure(config: CabinConfig, options: VisitOptions, out: TextIO) -> list[Measurement]:
    names = ["gy-mcu90615", "and-scale", "maxbotix", options.oximeter, "suntech-advantage"]
    sims = [
        SIMULATORS[name](options.truth, seed=options.seed + i, fast=not options.real_time)
        for i, name in enumerate(names)
    ]
    mount = options.truth.mount_height_mm
    driver_options = DriverOptions(mount_height_mm=mount)
    fast = not options.real_time
    steps = [
        Step("temperature", TemperatureProcedure),
        Step("weight", WeightProcedure),
        Step("height", lambda: HeightProcedure(mount_height_mm=mount)),
        Step("oximetry", OximetryProcedure),
        Step(
            "blood pressure",
            lambda: BloodPressureProcedure(
                mode="aha2019" if options.bp_protocol == "aha2019" else "screening",
                rest=5.0 if fast else 300.0,
                interval=10.0 if fast else 60.0,
                retake_after=5.0 if fast else 30.0,
            ),
        ),
    ]
    hub = ReadingHub()
    clock = Clock()
    results: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="cabin-visit-") as directory:
        async with serve(sims, Path(directory)) as devices, asyncio.TaskGroup() as group:
            sessions = [
                DeviceSession(
                    create_driver(name, port=str(device.path), options=driver_options),
                    str(device.path),
                    clock=clock,
                    on_reading=hub.publish,
                )
                for name, device in devices.items()
            ]
            tasks = [group.create_task(session.run()) for session in sessions]
            try:
                for step in steps:
                    results += await _run_step(step, hub, sessions, clock, out)
            finally:
                for task in tasks:
                    task.cancel()
    height = _first(results, Kind.BODY_HEIGHT)
    weight = _first(results, Kind.BODY_WEIGHT)
    bmi = interpret(body_mass_index(height=height, weight=weight))
    _show("BMI", bmi, out)
    return [*results, bmi]


async def _run_step(
    step: Step, hub: ReadingHub, sessions: Sequence[DeviceSession], clock: Clock, out: TextIO
) -> list[Measurement]:
    shown: list[str] = []

    def on_progress(progress: Progress) -> None:
        if progress.phase not in shown:
            shown.append(progress.phase)
            out.write(f"  [{step.title}] {progress.en}\n")
            out.flush()

    results = await run_procedure(
        step.make(), hub=hub, sessions=sessions, clock=clock, on_progress=on_progress
    )
    interpreted = [interpret(m) for m in results]
    for measurement in interpreted:
        _show(step.title, measurement, out)
    return interpreted


def _show(title: str, measurement: Measurement, out: TextIO) -> None:
    out.write(f"  [{title}] {describe(measurement)}\n")
    out.flush()


def describe(measurement: Measurement) -> str:
    """One line: the value, its status and its meaning or the reason it failed."""
    label = measurement.kind.value.replace("-", " ")
    if measurement.components:
        systolic = measurement.component(Kind.SYSTOLIC_BP)
        diastolic = measurement.component(Kind.DIASTOLIC_BP)
        value = f"{getattr(systolic, 'value', None)}/{getattr(diastolic, 'value', None)} mmHg"
        if measurement.members:
            value += f" (mean of {len(measurement.members)})"
    elif measurement.value is None:
        value = "--"
    else:
        value = f"{measurement.value} {measurement.unit}"
    text = f"{label}: {value}, {measurement.status.value}"
    if measurement.interpretation is not None:
        urgent = " URGENT" if measurement.interpretation.urgent else ""
        text += f" - {measurement.interpretation.en}{urgent}"
    if measurement.reasons:
        text += " - " + " ".join(reason.en for reason in measurement.reasons)
    return text


def _first(results: list[Measurement], kind: Kind) -> Measurement | None:
    return next((m for m in results if m.kind is kind), None)


async def _deliver(config: CabinConfig, record: VisitRecord, out: TextIO) -> int:
    hospital = config.hospital()
    built = build_bundle(record, MappingOptions(identifiers=hospital.identifiers))
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(built.resource_counts.items()))
    outbox = await asyncio.to_thread(open_outbox, config)
    try:
        await asyncio.to_thread(_enqueue, outbox, hospital.id, built.id, built.json)
        out.write(f"Bundle {built.id} ({counts}) committed to the outbox for {hospital.id}\n")
        out.write(f"Delivering to {hospital.base_url} ...\n")
        out.write(await _server_check(hospital))
        out.flush()
        entry = await _deliver_one(config, outbox, built.id)
        summary = await asyncio.to_thread(_answer_summary, outbox, built.id)
    finally:
        await asyncio.to_thread(outbox.close)
    if entry is None or entry.state is BundleState.PENDING:
        error = "" if entry is None or not entry.last_error else f" ({entry.last_error})"
        out.write(
            f"Not delivered within {DELIVERY_WAIT_S:.0f} s{error}; the bundle stays queued "
            "(`cabin outbox status`).\n"
        )
        return 1
    out.write(f"{entry.state.value.capitalize()}: HTTP {entry.answer_status}")
    out.write(f", {entry.attempts} attempt(s)\n" if entry.state is BundleState.DELIVERED else "\n")
    if summary:
        out.write(summary + "\n")
    return 0 if entry.state is BundleState.DELIVERED else 1


def _enqueue(outbox: Outbox, hospital: str, bundle_id: str, bundle: bytes) -> None:
    with outbox.transaction() as tx:  # the visit's other records join this transaction later
        tx.enqueue(hospital, bundle_id, bundle)


async def _deliver_one(config: CabinConfig, outbox: Outbox, bundle_id: str) -> OutboxEntry | None:
    def settled() -> bool:
        entry = outbox.entry(bundle_id)
        return entry is not None and entry.state is not BundleState.PENDING

    await deliver_until(outbox, config.hospitals, done=settled, wait=DELIVERY_WAIT_S)
    return await asyncio.to_thread(outbox.entry, bundle_id)


async def _server_check(hospital: HospitalConfig) -> str:
    """The start-up check of a FHIR server (version, transaction support), as one line."""
    if not hospital.base_url.startswith(("http://", "https://")):
        return ""
    async with aiohttp.ClientSession() as session:
        try:
            found = await client_for(hospital, session).capabilities()
        except FhirError as exc:  # delivery is still tried: the worker's verdicts decide
            return f"Server check failed: {exc}\n"
    software = found.software or "unnamed server"
    return f"Server: {software}, FHIR {found.fhir_version}, transactions supported\n"


def _answer_summary(outbox: Outbox, bundle_id: str) -> str:
    """How the server answered each entry (created / already there), from the kept answer."""
    raw = outbox.answer(bundle_id)
    try:
        answer = json.loads(raw) if raw else None
    except ValueError:
        return ""
    if not isinstance(answer, dict):
        return ""
    statuses = [
        str(entry.get("response", {}).get("status", "?")).split()[0]
        for entry in answer.get("entry", [])
        if isinstance(entry, dict)
    ]
    accepted = sum(s.startswith("2") for s in statuses)
    created = sum(s == "201" for s in statuses)
    return (
        f"Server answer: {accepted} of {len(statuses)} entries accepted, {created} created, "
        f"{accepted - created} already there or updated in place"
    )
