"""The chaos test's child: makes visits and delivers them to a FHIR server until it is killed.

    python -m tests.fhir.chaos_child OUTBOX KEY_FILE FHIR_URL --run N [--interval S]
    python -m tests.fhir.chaos_child OUTBOX KEY_FILE FHIR_URL --drain [--timeout S]

It opens the outbox (``fhir.outbox``, keys from KEY_FILE) and runs a ``DeliveryWorker`` whose
``FhirClient`` posts to FHIR_URL with a short backoff.  Unless ``--drain``, it also keeps making
visits, about one every ``--interval`` seconds: synthetic measurements (no devices) for a
resident and visit of their own, built with ``build_bundle`` and stored in an outbox
transaction, as a cabin closes a visit.  ``tests/fhir/test_chaos.py`` SIGKILLs it while it
works and starts it again.  It stops by itself after ``--max-seconds``.

It says what it does on stdout, one line per event, each written by one ``os.write`` (so a
kill never leaves half a line) and flushed at once::

    ready                          the outbox is open and the worker runs (run N, or drain)
    enqueue ID / committed ID      before / after the transaction that stores a bundle
    send ID / answered ID STATUS   before / after one HTTP attempt (failed ID: no answer)
    mark ID OUTCOME / marked ID    before / after recording the attempt's outcome
    drained                        --drain: no bundle is pending (exit 0)
    pending N                      --drain: N still pending after --timeout seconds (exit 1)

``committed ID`` comes only after the commit: a bundle announced so must never be lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from fhir.bundle import VisitBundle, build_bundle
from fhir.client import FhirClient
from fhir.crypto import load_key_file
from fhir.delivery import Backoff, DeliveryWorker
from fhir.outbox import ClaimedBundle, Outbox
from fhir.transport import BundleTransport, TransportResponse
from fhir.visit import CabinInfo, PatientIdentity, Sex, VisitRecord
from vitals.clock import Instant
from vitals.measurement import Component, Measurement, Method
from vitals.model import Kind, Status

HOSPITAL = "chaos-hospital"
BACKOFF = Backoff(base=0.05, cap=0.5, retry_after_cap=1.0)
CABIN = CabinInfo("chaos-01", name="Chaos cabin", software_version="0.1.0")


def announce(*words: object) -> None:
    """One whole line on stdout, unbuffered."""
    os.write(1, (" ".join(str(word) for word in words) + "\n").encode())


def synthetic_visit(run: int, number: int, rng: random.Random) -> VisitRecord:
    """Visit ``number`` of child run ``run``: ten measurements, all valid, none from a device.

    The CCCD and the visit id are made of the run and visit numbers, so no two visits of a
    test share a resident, an Encounter or an Observation identifier (cabin-patient-type-time).
    """
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=6)

    def at(seconds: int) -> Instant:
        return Instant(seconds * 10**9, started + timedelta(seconds=seconds))

    def single(kind: Kind, number: Decimal, unit: str, seconds: int, method: Method) -> Measurement:
        return Measurement(kind, number, unit, at(seconds), Status.VALID, method)

    def pressure(seconds: int, systolic: int, diastolic: int, *members: Measurement) -> Measurement:
        components = (
            Component(Kind.SYSTOLIC_BP, Decimal(systolic), "mm[Hg]"),
            Component(Kind.DIASTOLIC_BP, Decimal(diastolic), "mm[Hg]"),
            Component(Kind.MEAN_BP, Decimal((systolic + 2 * diastolic) // 3), "mm[Hg]"),
        )
        return Measurement(
            Kind.BLOOD_PRESSURE,
            None,
            "mm[Hg]",
            at(seconds),
            Status.VALID,
            Method.OSCILLOMETRY,
            components=components,
            members=members,
            procedure="aha2019",
        )

    weight_kg = Decimal(rng.randrange(4500, 9500)) / 100
    height_cm = Decimal(rng.randrange(1500, 1850)) / 10
    bmi = (weight_kg / (height_cm / 100) ** 2).quantize(Decimal("0.1"))
    weight = single(Kind.BODY_WEIGHT, weight_kg, "kg", 20, Method.PLATFORM_SCALE)
    height = single(Kind.BODY_HEIGHT, height_cm, "cm", 30, Method.ULTRASONIC)
    readings = [(rng.randrange(105, 150), rng.randrange(65, 95)) for _ in range(2)]
    first, second = (pressure(t, *r) for t, r in zip((200, 260), readings, strict=True))
    systolic, diastolic = (sum(pair) // 2 for pair in zip(*readings, strict=True))
    temperature = Decimal(rng.randrange(360, 375)) / 10
    measurements = (
        single(Kind.BODY_TEMPERATURE, temperature, "Cel", 10, Method.INFRARED_FOREHEAD),
        weight,
        height,
        Measurement(
            Kind.BMI,
            bmi,
            "kg/m2",
            at(31),
            Status.VALID,
            Method.CALCULATED,
            derived_from=(height, weight),
        ),
        single(Kind.SPO2, Decimal(rng.randrange(94, 100)), "%", 90, Method.PULSE_OXIMETRY),
        single(Kind.PULSE_RATE, Decimal(rng.randrange(55, 100)), "/min", 90, Method.PULSE_OXIMETRY),
        pressure(260, systolic, diastolic, first, second),
    )
    resident = PatientIdentity(
        cccd=f"0{run:04d}{number:07d}", full_name=f"Chaos Resident {run}-{number}", sex=Sex.OTHER
    )
    ended = started + timedelta(minutes=6)
    return VisitRecord(f"chaos-{run}-{number}", CABIN, resident, started, ended, measurements)


class AnnouncingOutbox(Outbox):
    """The outbox, saying when the worker starts and ends recording an attempt's outcome."""

    def mark_retry(self, claimed: ClaimedBundle, *, at: float, error: str) -> bool:
        announce("mark", claimed.id, "retry")
        settled = super().mark_retry(claimed, at=at, error=error)
        announce("marked", claimed.id)
        return settled

    def mark_delivered(self, claimed: ClaimedBundle, *, status: int, answer: bytes) -> bool:
        announce("mark", claimed.id, "delivered")
        settled = super().mark_delivered(claimed, status=status, answer=answer)
        announce("marked", claimed.id)
        return settled

    def mark_dead(
        self, claimed: ClaimedBundle, *, error: str, status: int | None, answer: bytes | None
    ) -> bool:
        announce("mark", claimed.id, "dead")
        settled = super().mark_dead(claimed, error=error, status=status, answer=answer)
        announce("marked", claimed.id)
        return settled


@dataclass(frozen=True, slots=True)
class AnnouncingTransport:
    """A transport saying when each attempt starts and what came of it."""

    inner: BundleTransport

    async def post_transaction(self, bundle: bytes) -> TransportResponse:
        bundle_id = json.loads(bundle)["id"]
        announce("send", bundle_id)
        try:
            response = await self.inner.post_transaction(bundle)
        except BaseException:
            announce("failed", bundle_id)
            raise
        announce("answered", bundle_id, response.status)
        return response


def store(outbox: Outbox, built: VisitBundle) -> None:
    """Close the visit: its bundle is stored in one transaction, and only then announced."""
    announce("enqueue", built.id)
    with outbox.transaction() as tx:
        tx.enqueue(HOSPITAL, built.id, built.json)
    announce("committed", built.id)


async def produce(outbox: Outbox, *, run: int, interval: float) -> None:
    """Make, build and store visits, one about every ``interval`` seconds, forever."""
    rng = random.Random(run)
    for number in itertools.count():
        built = await asyncio.to_thread(build_bundle, synthetic_visit(run, number, rng))
        await asyncio.to_thread(store, outbox, built)
        await asyncio.sleep(rng.uniform(0, 2 * interval))


async def drained(outbox: Outbox, *, timeout: float) -> bool:
    """Wait until no bundle is pending (True) or ``timeout`` seconds have passed (False)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        pending = sum(h.pending for h in await asyncio.to_thread(outbox.status))
        if pending == 0:
            announce("drained")
            return True
        if loop.time() >= deadline:
            announce("pending", pending)
            return False
        await asyncio.sleep(0.05)


async def serve(options: argparse.Namespace) -> int:
    """Deliver (and produce, unless draining) until killed, drained or out of time."""
    outbox = AnnouncingOutbox(options.outbox, keys=load_key_file(options.key_file))
    try:
        async with FhirClient(options.fhir_url, timeout=5.0) as client:
            worker = DeliveryWorker(
                outbox,
                {HOSPITAL: AnnouncingTransport(client)},
                backoff=BACKOFF,
                send_timeout=5.0,
                idle_poll=0.25,
            )
            async with asyncio.TaskGroup() as tasks:
                delivery = tasks.create_task(worker.run())
                announce("ready")
                if options.drain:
                    done = await drained(outbox, timeout=options.timeout)
                else:
                    done = True
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(options.max_seconds):
                            await produce(outbox, run=options.run, interval=options.interval)
                delivery.cancel()
    finally:
        outbox.close()
    return 0 if done else 1


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fhir.chaos_child")
    parser.add_argument("outbox", type=Path)
    parser.add_argument("key_file", type=Path)
    parser.add_argument("fhir_url")
    parser.add_argument("--run", type=int, default=0, help="this run's number (visit ids)")
    parser.add_argument("--interval", type=float, default=0.05, help="mean seconds per visit")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="stop producing then")
    parser.add_argument("--drain", action="store_true", help="make no visits; exit when drained")
    parser.add_argument("--timeout", type=float, default=30.0, help="--drain gives up then")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return asyncio.run(serve(options))


if __name__ == "__main__":
    sys.exit(main())
