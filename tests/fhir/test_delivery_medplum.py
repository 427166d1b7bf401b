"""The delivery worker against the Medplum peer: retries honour Retry-After, refusals go dead."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from fhir.bundle import build_bundle
from fhir.client import FhirClient
from fhir.crypto import KeyRing, generate_key
from fhir.delivery import Backoff, DeliveryWorker
from fhir.outbox import BundleState, Outbox
from tests.fhir.sample_visit import visit
from tests.fhir.test_medplum_delivery import _fresh
from tests.peers.medplum import MedplumPeer

QUICK = Backoff(base=0.05, cap=0.2)


async def _deliver(
    outbox: Outbox, medplum: MedplumPeer, until: Callable[[], bool], *, limit: float = 20.0
) -> None:
    async with aiohttp.ClientSession() as session:
        worker = DeliveryWorker(
            outbox, {"h": FhirClient(medplum.base_url, session=session)}, backoff=QUICK
        )
        task = asyncio.create_task(worker.run())
        try:
            async with asyncio.timeout(limit):
                while not await asyncio.to_thread(until):
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "outbox.db", keys=KeyRing([generate_key()]))


def test_a_busy_server_is_retried_after_the_time_it_asks_for(
    tmp_path: Path, medplum: MedplumPeer
) -> None:
    outbox = _outbox(tmp_path)
    built = build_bundle(_fresh(visit()))
    try:
        outbox.enqueue("h", built.id, built.json)
        medplum.fail_next(2, status=503, retry_after=1)
        started = time.monotonic()

        def delivered() -> bool:
            entry = outbox.entry(built.id)
            return entry is not None and entry.state is BundleState.DELIVERED

        asyncio.run(_deliver(outbox, medplum, delivered))
        took = time.monotonic() - started
        entry = outbox.entry(built.id)
        assert entry is not None
        assert entry.attempts == 3
        assert entry.answer_status == 200
    finally:
        outbox.close()
    assert took >= 2.0  # two Retry-After: 1 waits


def test_a_bundle_the_server_refuses_is_a_dead_letter_with_its_outcome_kept(
    tmp_path: Path, medplum: MedplumPeer
) -> None:
    document = json.loads(build_bundle(_fresh(visit())).json)
    for entry in document["entry"]:
        if entry["resource"]["resourceType"] == "Observation":
            del entry["resource"]["category"]  # the vital-signs profile requires it
            break
    outbox = _outbox(tmp_path)
    try:
        outbox.enqueue("h", document["id"], json.dumps(document).encode())

        def settled() -> bool:
            entry = outbox.entry(document["id"])
            return entry is not None and entry.state is not BundleState.PENDING

        asyncio.run(_deliver(outbox, medplum, settled))
        entry = outbox.entry(document["id"])
        answer = outbox.answer(document["id"])
    finally:
        outbox.close()
    assert entry is not None
    assert entry.state is BundleState.DEAD
    assert entry.answer_status == 400
    assert entry.attempts == 1
    assert answer is not None
    assert json.loads(answer)["resourceType"] == "OperationOutcome"


def test_many_visits_drain_oldest_first_and_exactly_once(
    tmp_path: Path, medplum: MedplumPeer
) -> None:
    outbox = _outbox(tmp_path)
    built = [build_bundle(_fresh(visit())) for _ in range(8)]
    before = medplum.stats().resources.get("Observation", 0)
    try:
        for bundle in built:
            outbox.enqueue("h", bundle.id, bundle.json)
        outbox.retry(built[0].id)  # a resend queued behind: still harmless
        medplum.fail_next(3, status=502)

        def drained() -> bool:
            return all(row.pending == 0 for row in outbox.status())

        asyncio.run(_deliver(outbox, medplum, drained))
        delivered = [e.id for e in outbox.entries(state=BundleState.DELIVERED)]
    finally:
        outbox.close()
    assert delivered == [b.id for b in built]
    assert medplum.stats().resources.get("Observation", 0) - before == 8 * 10
