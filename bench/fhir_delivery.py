"""FHIR packaging and delivery: the cost of queuing one visit, and the drain rate to a server.

* **Queue one visit**: map a realistic finished visit (resident, cabin and 5 sensors, 7 vitals
  with a 2-reading BP mean, the panel, the provenance: 19 resources) to a transaction bundle,
  validate it with fhir.resources (R4B), encrypt it (AES-256-GCM) and commit it to the SQLite
  outbox (WAL, synchronous=FULL: one fsync per commit) - p50/p99 over many visits, each step
  timed on its own in the same run (the anchors: which part the 20 ms goal is spent on).
* **Drain**: bundles already in the outbox, delivered oldest-first by the delivery worker
  through the aiohttp client to the Medplum peer on loopback (real validation: base R4 and the
  HL7 vital-signs profiles; and base R4 only).  Anchor, same run and same peer: posting the
  same bundles in a bare aiohttp loop with no outbox (the server's own rate).  Then again with
  20 % of requests failing (the peer answers 503), with the worker's production backoff (1 s
  base, full jitter) and with a short one.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp

from bench import machine
from fhir.bundle import build_bundle, validate
from fhir.client import FhirClient
from fhir.crypto import KeyRing, generate_key
from fhir.delivery import Backoff, DeliveryWorker
from fhir.jsonio import loads
from fhir.outbox import Outbox
from fhir.sink import DirectorySink
from fhir.transport import TransportResponse
from fhir.visit import VisitRecord
from tests.fhir.sample_visit import visit
from tests.peers.medplum import MedplumPeer, peer_availability


def _visits(count: int) -> list[VisitRecord]:
    base = visit()
    out = []
    for n in range(count):
        patient = dataclasses.replace(base.patient, cccd=f"0791{n:08d}")
        out.append(dataclasses.replace(base, patient=patient, visit_id=str(uuid.uuid4())))
    return out


def _ms(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered) * 1e3, ordered[round(0.99 * (len(ordered) - 1))] * 1e3


def queue_costs(count: int) -> str:
    """Markdown table: build, validate, enqueue, and the whole, p50/p99 in ms."""
    visits = _visits(count)
    whole, build, check, enqueue = [], [], [], []
    with tempfile.TemporaryDirectory() as directory:
        outbox = Outbox(Path(directory) / "outbox.db", keys=KeyRing([generate_key()]))
        try:
            for record in visits:
                t0 = time.perf_counter()
                built = build_bundle(record)  # maps and validates
                t1 = time.perf_counter()
                outbox.enqueue("h", built.id, built.json)  # checks, encrypts, commits
                t2 = time.perf_counter()
                validate(loads(built.json))  # validation alone, for the breakdown
                t3 = time.perf_counter()
                whole.append(t2 - t0)
                build.append(t1 - t0)
                enqueue.append(t2 - t1)
                check.append(t3 - t2)
        finally:
            outbox.close()
    rows = [
        ("build + validate + encrypt + enqueue (the goal: p50 ≤ 20 ms)", whole),
        ("  of which: map to FHIR and validate", build),
        ("  of which: validation alone (fhir.resources R4B)", check),
        ("  of which: encrypt and commit (fsync)", enqueue),
    ]
    lines = ["| step | p50 | p99 |", "|---|---:|---:|"]
    for name, values in rows:
        p50, p99 = _ms(values)
        lines.append(f"| {name} | {p50:.2f} ms | {p99:.2f} ms |")
    return "\n".join(lines)


class _Flaky:
    """A transport that makes the peer answer 503 to a share of requests (seeded)."""

    def __init__(self, client: FhirClient, peer: MedplumPeer, share: float) -> None:
        self._client, self._peer, self._share = client, peer, share
        self._rng = random.Random(7)

    async def post_transaction(self, bundle: bytes) -> TransportResponse:
        if self._rng.random() < self._share:
            await asyncio.to_thread(self._peer.fail_next, 1, status=503)
        return await self._client.post_transaction(bundle)


async def _drain(
    peer: MedplumPeer, bundles: list[tuple[str, bytes]], *, share: float, backoff: Backoff
) -> float:
    with tempfile.TemporaryDirectory() as directory:
        outbox = Outbox(Path(directory) / "outbox.db", keys=KeyRing([generate_key()]))
        try:
            for bundle_id, raw in bundles:
                outbox.enqueue("h", bundle_id, raw)
            async with aiohttp.ClientSession() as session:
                client = FhirClient(peer.base_url, session=session)
                transport = _Flaky(client, peer, share) if share else client
                worker = DeliveryWorker(outbox, {"h": transport}, backoff=backoff)
                started = time.perf_counter()
                task = asyncio.create_task(worker.run())
                # the worker signals nothing when the queue empties: poll the outbox
                while any(row.pending for row in await asyncio.to_thread(outbox.status)):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                took = time.perf_counter() - started
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        finally:
            outbox.close()
    return len(bundles) / took


async def _bare(peer: MedplumPeer, bundles: list[tuple[str, bytes]]) -> float:
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        for _, raw in bundles:
            async with session.post(
                peer.base_url, data=raw, headers={"Content-Type": "application/fhir+json"}
            ) as response:
                await response.read()
        return len(bundles) / (time.perf_counter() - started)


def drain_rates(count: int, log_dir: Path) -> str:
    """Markdown table of drain rates (bundles/s) to the Medplum peer."""
    available, why = peer_availability()
    if not available:
        return f"(drain not measured: {why})"
    rows = ["| peer validation | scenario | bundles/s | vs bare POST loop |", "|---|---|---:|---:|"]
    for profiles in (True, False):
        label = "R4 + vital-signs profiles" if profiles else "base R4 only"
        with MedplumPeer(
            check_profiles=profiles, log_path=log_dir / f"peer-{profiles}.log"
        ) as peer:

            def fresh() -> list[tuple[str, bytes]]:
                return [(b.id, b.json) for b in map(build_bundle, _visits(count))]

            asyncio.run(_bare(peer, fresh()[:10]))  # warm the peer (JIT, caches) first
            bare = asyncio.run(_bare(peer, fresh()))
            cases: list[tuple[str, Callable[[], float]]] = [
                (
                    "all succeed",
                    lambda: asyncio.run(_drain(peer, fresh(), share=0.0, backoff=Backoff())),
                ),
                (
                    "20 % fail, production backoff (1 s base)",
                    lambda: asyncio.run(_drain(peer, fresh(), share=0.2, backoff=Backoff())),
                ),
                (
                    "20 % fail, short backoff (10 ms base)",
                    lambda: asyncio.run(
                        _drain(peer, fresh(), share=0.2, backoff=Backoff(base=0.01, cap=0.1))
                    ),
                ),
            ]
            rows.append(f"| {label} | bare POST loop (anchor) | {bare:.0f} | 1.00 |")
            for name, run in cases:
                rate = run()
                rows.append(f"| {label} | {name} | {rate:.0f} | {rate / bare:.2f} |")
    return "\n".join(rows)


async def _sink_drain(bundles: list[tuple[str, bytes]]) -> float:
    with tempfile.TemporaryDirectory() as directory:
        outbox = Outbox(Path(directory) / "outbox.db", keys=KeyRing([generate_key()]))
        try:
            for bundle_id, raw in bundles:
                outbox.enqueue("h", bundle_id, raw)
            sink = DirectorySink(Path(directory) / "sink", hospital_id="h")
            worker = DeliveryWorker(outbox, {"h": sink})
            started = time.perf_counter()
            task = asyncio.create_task(worker.run())
            while any(row.pending for row in await asyncio.to_thread(outbox.status)):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            took = time.perf_counter() - started
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        finally:
            outbox.close()
    return len(bundles) / took


def main(queue_count: int = 300, drain_count: int = 100) -> str:
    with tempfile.TemporaryDirectory() as logs:
        drains = drain_rates(drain_count, Path(logs))
    sink_bundles = [(b.id, b.json) for b in map(build_bundle, _visits(drain_count))]
    sink_rate = asyncio.run(_sink_drain(sink_bundles))
    return "\n".join(
        [
            "### FHIR packaging and delivery",
            "",
            machine.describe(),
            "",
            f"Queuing one visit (19 resources), {queue_count} visits:",
            "",
            queue_costs(queue_count),
            "",
            f"Draining {drain_count} queued visits to the Medplum peer on loopback:",
            "",
            drains,
            "",
            f"The worker's own capacity, draining {drain_count} visits into the directory sink "
            f"(no server, one fsync per bundle): {sink_rate:.0f} bundles/s.",
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--queue", type=int, default=300)
    parser.add_argument("--drain", type=int, default=100)
    arguments = parser.parse_args()
    print(main(arguments.queue, arguments.drain))
