"""The delivery worker: per-hospital isolation, wake-ups and clean shutdown.

The worker runs against a real outbox file, with scripted in-memory transports (answers, delays,
exceptions), and once against real aiohttp servers on loopback ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from fhir.crypto import KeyRing, generate_key
from fhir.delivery import Backoff, DeliveryWorker
from fhir.errors import TransportError
from fhir.outbox import BundleState, Outbox, OutboxEntry
from fhir.transport import BundleTransport, TransportResponse

FAST = Backoff(base=0.01, cap=0.05)
OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid"}]}


def make_bundle(bundle_id: str, *, entries: int = 2) -> bytes:
    entry = [
        {
            "resource": {"resourceType": "Observation", "status": "final"},
            "request": {"method": "POST", "url": "Observation", "ifNoneExist": f"x={n}"},
        }
        for n in range(entries)
    ]
    return json.dumps(
        {"resourceType": "Bundle", "id": bundle_id, "type": "transaction", "entry": entry}
    ).encode()


def transaction_response(statuses: list[str]) -> bytes:
    entries = [{"response": {"status": status}} for status in statuses]
    return json.dumps(
        {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
    ).encode()


def created(bundle: bytes) -> TransportResponse:
    """What a healthy server answers: 200, one ``201 Created`` per entry sent."""
    count = len(json.loads(bundle)["entry"])
    return TransportResponse(200, transaction_response(["201 Created"] * count))


class Hang:
    """A step that never answers (until cancelled)."""


Step = TransportResponse | BaseException | Hang | Callable[[bytes], TransportResponse]


@dataclass
class ScriptedTransport:
    """Answers with ``steps`` in order, then with ``then`` for ever; records every call."""

    steps: list[Step] = field(default_factory=list)
    then: Step = created
    calls: list[tuple[float, str]] = field(default_factory=list)

    async def post_transaction(self, bundle: bytes) -> TransportResponse:
        self.calls.append((time.monotonic(), json.loads(bundle)["id"]))
        step = self.steps.pop(0) if self.steps else self.then
        if isinstance(step, Hang):
            await asyncio.Event().wait()
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, TransportResponse):
            return step
        assert callable(step)
        return step(bundle)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "outbox.db"


@pytest.fixture
def keys() -> KeyRing:
    return KeyRing([generate_key()])


@pytest.fixture
def outbox(path: Path, keys: KeyRing) -> Iterator[Outbox]:
    box = Outbox(path, keys=keys)
    yield box
    box.close()


def enqueue(outbox: Outbox, hospital: str, *bundle_ids: str) -> None:
    for bundle_id in bundle_ids:
        outbox.enqueue(hospital, bundle_id, make_bundle(bundle_id))


@contextlib.asynccontextmanager
async def running(worker: DeliveryWorker) -> AsyncIterator[asyncio.Task[None]]:
    """Run the worker in a task group for the block, then cancel it and wait for the end."""
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(worker.run())
        try:
            yield task
        finally:
            task.cancel()


async def settled(outbox: Outbox, count: int, *, timeout: float = 5.0) -> list[OutboxEntry]:
    """Wait until ``count`` bundles are no longer pending; the entries then."""
    async with asyncio.timeout(timeout):
        while True:
            entries = await asyncio.to_thread(outbox.entries)
            if sum(entry.state is not BundleState.PENDING for entry in entries) >= count:
                return entries
            await asyncio.sleep(0.01)


def worker_for(outbox: Outbox, transports: dict[str, BundleTransport], **options: Any) -> Any:
    options.setdefault("backoff", FAST)
    options.setdefault("send_timeout", 1.0)
    options.setdefault("idle_poll", 5.0)
    return DeliveryWorker(outbox, transports, rng=random.Random(7), **options)


# The worker against scripted transports.


def test_a_bundle_answered_created_is_delivered_with_the_answer_kept(outbox: Outbox) -> None:
    enqueue(outbox, "bv-a", "v1")
    transport = ScriptedTransport()

    async def scenario() -> list[OutboxEntry]:
        async with running(worker_for(outbox, {"bv-a": transport})):
            return await settled(outbox, 1)

    [entry] = asyncio.run(scenario())
    assert (entry.state, entry.answer_status, entry.attempts) == (BundleState.DELIVERED, 200, 1)


def test_server_errors_are_retried_until_delivered(outbox: Outbox) -> None:
    enqueue(outbox, "bv-a", "v1")
    transport = ScriptedTransport([TransportResponse(503, b""), TransportResponse(500, b"")])
    worker = worker_for(outbox, {"bv-a": transport})

    async def scenario() -> list[OutboxEntry]:
        async with running(worker):
            return await settled(outbox, 1)

    [entry] = asyncio.run(scenario())
    assert (entry.state, entry.attempts, entry.last_error) == (
        BundleState.DELIVERED,
        3,
        "HTTP 500",
    )
    stats = worker.stats()["bv-a"]
    assert (stats.delivered, stats.retried, stats.dead, stats.last_error) == (1, 2, 0, "HTTP 500")


def test_retry_after_is_honoured(outbox: Outbox) -> None:
    enqueue(outbox, "bv-a", "v1")
    transport = ScriptedTransport([TransportResponse(429, b"", retry_after=0.4)])

    async def scenario() -> None:
        async with running(worker_for(outbox, {"bv-a": transport})):
            await settled(outbox, 1)

    asyncio.run(scenario())
    (first, _), (second, _) = transport.calls
    assert second - first >= 0.39


def test_no_answer_and_a_timeout_are_retried(outbox: Outbox) -> None:
    enqueue(outbox, "bv-a", "v1")
    transport = ScriptedTransport([TransportError("connection refused"), Hang()])
    worker = worker_for(outbox, {"bv-a": transport}, send_timeout=0.2)

    async def scenario() -> list[OutboxEntry]:
        async with running(worker):
            return await settled(outbox, 1)

    [entry] = asyncio.run(scenario())
    assert (entry.state, entry.attempts) == (BundleState.DELIVERED, 3)
    assert worker.stats()["bv-a"].retried == 2


def test_a_transports_bug_is_retried_and_does_not_stop_the_worker(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    enqueue(outbox, "bv-a", "v1")
    transport = ScriptedTransport([ValueError("a bug in the client")])
    worker = worker_for(outbox, {"bv-a": transport})

    async def scenario() -> list[OutboxEntry]:
        async with running(worker):
            return await settled(outbox, 1)

    with caplog.at_level(logging.ERROR, logger="fhir.delivery"):
        [entry] = asyncio.run(scenario())
    assert entry.state is BundleState.DELIVERED
    assert "transport failed: ValueError" in (worker.stats()["bv-a"].last_error or "")
    assert "a bug in the client" in caplog.text


def test_a_client_error_dead_letters_with_the_outcome_kept_and_the_queue_moves_on(
    outbox: Outbox,
) -> None:
    enqueue(outbox, "bv-a", "v1", "v2")
    transport = ScriptedTransport([TransportResponse(422, json.dumps(OUTCOME).encode())])
    worker = worker_for(outbox, {"bv-a": transport})

    async def scenario() -> list[OutboxEntry]:
        async with running(worker):
            return await settled(outbox, 2)

    dead, delivered = asyncio.run(scenario())
    assert (dead.state, dead.answer_status, dead.last_error) == (BundleState.DEAD, 422, "HTTP 422")
    assert delivered.state is BundleState.DELIVERED
    stream = io.StringIO()
    outbox.export(stream, state=BundleState.DEAD)
    assert json.loads(stream.getvalue())["answer"] == OUTCOME
    assert worker.stats()["bv-a"].dead == 1


def test_a_success_whose_entries_show_a_failure_dead_letters(outbox: Outbox) -> None:
    enqueue(outbox, "bv-a", "v1")
    answer = TransportResponse(200, transaction_response(["201 Created", "400 Bad Request"]))
    transport = ScriptedTransport([answer])

    async def scenario() -> list[OutboxEntry]:
        async with running(worker_for(outbox, {"bv-a": transport})):
            return await settled(outbox, 1)

    [entry] = asyncio.run(scenario())
    assert (entry.state, entry.last_error) == (
        BundleState.DEAD,
        "HTTP 200 but entry 2 answered 400",
    )


def test_a_portal_page_answered_200_is_not_taken_for_delivery(outbox: Outbox) -> None:
    enqueue(outbox, "bv-a", "v1")
    transport = ScriptedTransport([TransportResponse(200, b"<html>Log in to the Wi-Fi</html>")])

    async def scenario() -> list[OutboxEntry]:
        async with running(worker_for(outbox, {"bv-a": transport})):
            return await settled(outbox, 1)

    [entry] = asyncio.run(scenario())
    assert (entry.state, entry.attempts) == (BundleState.DELIVERED, 2)


def test_bundles_are_sent_oldest_first(outbox: Outbox) -> None:
    ids = [f"v{n}" for n in range(8)]
    enqueue(outbox, "bv-a", *ids)
    transport = ScriptedTransport()

    async def scenario() -> None:
        async with running(worker_for(outbox, {"bv-a": transport})):
            await settled(outbox, len(ids))

    asyncio.run(scenario())
    assert [bundle_id for _, bundle_id in transport.calls] == ids


def test_a_hanging_hospital_does_not_hold_up_another(outbox: Outbox) -> None:
    enqueue(outbox, "bv-slow", "s1", "s2")
    enqueue(outbox, "bv-fast", *(f"f{n}" for n in range(5)))
    slow = ScriptedTransport(then=Hang())
    fast = ScriptedTransport()
    worker = worker_for(outbox, {"bv-slow": slow, "bv-fast": fast}, send_timeout=30.0)

    async def scenario() -> float:
        started = time.monotonic()
        async with running(worker):
            await settled(outbox, 5, timeout=2.0)
            return time.monotonic() - started

    elapsed = asyncio.run(scenario())
    assert elapsed < 2.0
    assert [bundle_id for _, bundle_id in slow.calls] == ["s1"]  # still waiting on it
    states = {entry.id: entry.state for entry in outbox.entries()}
    assert states["s1"] is states["s2"] is BundleState.PENDING


def test_the_worker_wakes_at_once_when_a_bundle_is_enqueued(outbox: Outbox) -> None:
    transport = ScriptedTransport()
    worker = worker_for(outbox, {"bv-a": transport}, idle_poll=60.0)

    async def scenario() -> float:
        async with running(worker):
            await asyncio.sleep(0.2)  # the worker has looked, found nothing, and sleeps
            enqueued = time.monotonic()
            await asyncio.to_thread(enqueue, outbox, "bv-a", "v1")  # commits on another thread
            await settled(outbox, 1, timeout=2.0)
            return transport.calls[0][0] - enqueued

    latency = asyncio.run(scenario())
    assert latency < 0.5


def test_a_bundle_enqueued_by_another_process_is_found_by_polling(
    outbox: Outbox, path: Path, keys: KeyRing
) -> None:
    worker = worker_for(outbox, {"bv-a": ScriptedTransport()}, idle_poll=0.2)

    async def scenario() -> list[OutboxEntry]:
        async with running(worker):
            await asyncio.sleep(0.1)
            other = Outbox(path, keys=keys)  # its commits do not reach this worker's wake
            try:
                await asyncio.to_thread(enqueue, other, "bv-a", "v1")
            finally:
                other.close()
            return await settled(outbox, 1, timeout=2.0)

    [entry] = asyncio.run(scenario())
    assert entry.state is BundleState.DELIVERED


def test_cancelling_mid_send_ends_cleanly_and_leaves_the_bundle_pending(outbox: Outbox) -> None:
    enqueue(outbox, "bv-a", "v1")
    transport = ScriptedTransport(then=Hang())
    worker = worker_for(outbox, {"bv-a": transport}, send_timeout=30.0)

    async def scenario() -> tuple[float, set[asyncio.Task[Any]]]:
        task = asyncio.create_task(worker.run())
        async with asyncio.timeout(2.0):
            while not transport.calls:
                await asyncio.sleep(0.01)
        cancelled = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - cancelled, asyncio.all_tasks() - {asyncio.current_task()}

    took, leftover = asyncio.run(scenario())
    assert took < 0.5
    assert leftover == set()
    assert outbox.listeners == []
    [entry] = outbox.entries()
    assert (entry.state, entry.attempts) == (BundleState.PENDING, 1)


def test_a_restarted_worker_delivers_what_a_cancelled_one_left(
    outbox: Outbox, path: Path, keys: KeyRing
) -> None:
    enqueue(outbox, "bv-a", "v1", "v2")
    hanging = ScriptedTransport(then=Hang())

    async def first_run() -> None:
        async with running(worker_for(outbox, {"bv-a": hanging}, send_timeout=30.0)):
            async with asyncio.timeout(2.0):
                while not hanging.calls:
                    await asyncio.sleep(0.01)

    asyncio.run(first_run())
    outbox.close()
    reopened = Outbox(path, keys=keys)
    healthy = ScriptedTransport()

    async def second_run() -> list[OutboxEntry]:
        async with running(worker_for(reopened, {"bv-a": healthy})):
            return await settled(reopened, 2)

    try:
        entries = asyncio.run(second_run())
    finally:
        reopened.close()
    assert [(e.id, e.state, e.attempts) for e in entries] == [
        ("v1", BundleState.DELIVERED, 2),
        ("v2", BundleState.DELIVERED, 1),
    ]


def test_a_bundle_that_does_not_decrypt_is_kept_and_other_hospitals_go_on(
    outbox: Outbox, path: Path
) -> None:
    enqueue(outbox, "bv-a", "a1", "a2")
    enqueue(outbox, "bv-b", "b1")
    raw = sqlite3.connect(path)
    with raw:  # swap two sealed bundles: neither opens in its new row
        one, two = raw.execute("SELECT bundle FROM bundles WHERE hospital = 'bv-a'").fetchall()
        raw.execute("UPDATE bundles SET bundle = ? WHERE id = 'a1'", two)
        raw.execute("UPDATE bundles SET bundle = ? WHERE id = 'a2'", one)
    raw.close()
    transport_a, transport_b = ScriptedTransport(), ScriptedTransport()
    worker = worker_for(outbox, {"bv-a": transport_a, "bv-b": transport_b})

    async def scenario() -> list[OutboxEntry]:
        async with running(worker):
            entries = await settled(outbox, 1)
            await asyncio.sleep(0.2)
            return entries

    entries = asyncio.run(scenario())
    assert [(e.id, e.state) for e in entries] == [
        ("a1", BundleState.PENDING),
        ("a2", BundleState.PENDING),
        ("b1", BundleState.DELIVERED),
    ]
    assert transport_a.calls == []
    assert "bundle a1" in (worker.stats()["bv-a"].last_error or "")


def test_a_worker_runs_once_at_a_time(outbox: Outbox) -> None:
    worker = worker_for(outbox, {"bv-a": ScriptedTransport()})

    async def scenario() -> None:
        async with running(worker):
            await asyncio.sleep(0.05)
            with pytest.raises(RuntimeError, match="already running"):
                await worker.run()

    asyncio.run(scenario())


def test_a_worker_with_no_hospitals_waits_for_cancellation(outbox: Outbox) -> None:
    async def scenario() -> bool:
        async with running(DeliveryWorker(outbox, {})) as task:
            await asyncio.sleep(0.1)
            return task.done()

    assert asyncio.run(scenario()) is False


class LoopGuardedOutbox(Outbox):
    """An outbox that fails any call made on the event loop's thread (SQLite blocks)."""

    def __init__(self, path: Path, *, keys: KeyRing) -> None:
        super().__init__(path, keys=keys)
        self.guarded_calls = 0

    def _guard(self) -> None:
        with contextlib.suppress(RuntimeError):  # raised when no loop runs here: as it should be
            asyncio.get_running_loop()
            raise AssertionError("a blocking outbox call ran on the event loop")
        self.guarded_calls += 1

    def claim_due(self, hospital_id: str) -> Any:
        self._guard()
        return super().claim_due(hospital_id)

    def next_due_at(self, hospital_id: str) -> Any:
        self._guard()
        return super().next_due_at(hospital_id)

    def mark_delivered(self, *args: Any, **kwargs: Any) -> bool:
        self._guard()
        return super().mark_delivered(*args, **kwargs)

    def mark_retry(self, *args: Any, **kwargs: Any) -> bool:
        self._guard()
        return super().mark_retry(*args, **kwargs)

    def mark_dead(self, *args: Any, **kwargs: Any) -> bool:
        self._guard()
        return super().mark_dead(*args, **kwargs)


def test_the_worker_never_calls_the_outbox_on_the_event_loop(path: Path, keys: KeyRing) -> None:
    outbox = LoopGuardedOutbox(path, keys=keys)
    enqueue(outbox, "bv-a", "v1", "v2", "v3")
    steps: list[Step] = [TransportResponse(503, b""), TransportResponse(400, b"")]
    worker = worker_for(outbox, {"bv-a": ScriptedTransport(steps)}, idle_poll=0.05)

    async def scenario() -> list[OutboxEntry]:
        async with running(worker):
            entries = await settled(outbox, 3)
            await asyncio.sleep(0.15)  # idle rounds too
            return entries

    try:
        entries = asyncio.run(scenario())
    finally:
        outbox.close()
    assert [e.state for e in entries] == [
        BundleState.DEAD,
        BundleState.DELIVERED,
        BundleState.DELIVERED,
    ]
    assert outbox.guarded_calls > 0
    assert worker.stats()["bv-a"].last_error == "HTTP 400"


# The worker against real HTTP servers on loopback.


class HttpTransport:
    """A minimal aiohttp transport for this test (the real FHIR client lives elsewhere)."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session, self._url = session, url

    async def post_transaction(self, bundle: bytes) -> TransportResponse:
        try:
            async with self._session.post(self._url, data=bundle) as response:
                body = await response.read()
                retry_after = response.headers.get("Retry-After", "")
                seconds = float(retry_after) if retry_after.isdigit() else None
                return TransportResponse(response.status, body, seconds)
        except aiohttp.ClientError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc


def test_over_http_a_busy_server_is_retried_while_a_silent_one_times_out(
    outbox: Outbox,
) -> None:
    enqueue(outbox, "bv-busy", "b1")
    enqueue(outbox, "bv-silent", "s1")
    answered: list[int] = []

    async def scenario() -> list[OutboxEntry]:
        never = asyncio.Event()

        async def busy(request: web.Request) -> web.Response:
            bundle = await request.read()
            answered.append(len(bundle))
            if len(answered) == 1:
                return web.Response(status=503, headers={"Retry-After": "0"})
            return web.Response(status=200, body=created(bundle).body)

        async def silent(request: web.Request) -> web.Response:
            await never.wait()
            return web.Response(status=500)

        app = web.Application()
        app.router.add_post("/busy/fhir", busy)
        app.router.add_post("/silent/fhir", silent)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as session:
                transports: dict[str, BundleTransport] = {
                    "bv-busy": HttpTransport(session, f"http://127.0.0.1:{port}/busy/fhir"),
                    "bv-silent": HttpTransport(session, f"http://127.0.0.1:{port}/silent/fhir"),
                }
                worker = worker_for(outbox, transports, send_timeout=0.3)
                async with running(worker):
                    entries = await settled(outbox, 1, timeout=3.0)
                    await asyncio.sleep(0.4)
                    silent_stats = worker.stats()["bv-silent"]
        finally:
            never.set()
            await runner.cleanup()
        assert silent_stats.retried >= 1
        assert silent_stats.last_error == "no answer within 0.3 s"
        return entries

    entries = asyncio.run(scenario())
    assert [(e.id, e.state) for e in entries] == [
        ("b1", BundleState.DELIVERED),
        ("s1", BundleState.PENDING),
    ]
    assert len(answered) == 2
