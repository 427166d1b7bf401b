"""Events to the kiosk: the pure core (shape, signature, retry schedule, receipt) and delivery
to a real test kiosk server on a loopback port (order, retries, restart, giving up)."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kiosk_bridge.consent import (
    ConsentChoices,
    Locale,
    consent_text,
    record_consent,
)
from kiosk_bridge.events import (
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CompletedVisit,
    DeliveryState,
    EventSender,
    EventType,
    FhirDelivery,
    RetryPolicy,
    SigningKey,
    build_event,
    encode_event,
    expired,
    receipt_html,
    retry_delay,
    sign_body,
    verify_signature,
)
from kiosk_bridge.identity import Assurance, Identity, Sex, Source
from kiosk_bridge.sessions import KioskSessions, MemoryVisits, Service, VisitState

KEY = SigningKey("cabin-events-1", b"k" * 32)
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
FAST = RetryPolicy(first=timedelta(milliseconds=10), longest=timedelta(milliseconds=50), jitter=0.1)
RESIDENT = Identity(
    cccd="099085001234",
    full_name="Nguyễn Thử Nghiệm An",
    birth_date=date(1985, 4, 12),
    sex=Sex.MALE,
    assurance=Assurance.ASSERTED,
    source=Source.KIOSK_ASSERTION,
    issuer="kiosk-test-01",
)


def wall_clock() -> datetime:
    return datetime.now(UTC)


# --- a test kiosk: a real aiohttp server that checks what it receives -----------------------


@dataclass
class KioskPeer:
    """Receives events like the kiosk would: checks each signature, acknowledges with 204,
    or answers 503 to the first ``fail_first`` posts."""

    key: SigningKey = KEY
    fail_first: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    posts: int = 0
    bad_signatures: int = 0
    url: str = ""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.posts += 1
        if self.posts <= self.fail_first:
            return web.Response(status=503)
        if (
            request.headers.get(KEY_ID_HEADER) != self.key.key_id
            or not request.headers.get(TIMESTAMP_HEADER, "").isdigit()
            or not verify_signature(body, request.headers.get(SIGNATURE_HEADER, ""), key=self.key)
        ):
            self.bad_signatures += 1
            return web.Response(status=401)
        event = json.loads(body)
        if all(seen["id"] != event["id"] for seen in self.received):
            self.received.append(event)
        self.arrived.set()
        return web.Response(status=204)

    def types(self, session_id: str | None = None) -> list[str]:
        return [
            event["type"].removeprefix("vn.tramcongdanso.cabin.")
            for event in self.received
            if session_id is None or event["subject"] == session_id
        ]

    async def wait_for(self, count: int, *, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()


@asynccontextmanager
async def kiosk_peer(*, fail_first: int = 0, port: int = 0) -> AsyncIterator[KioskPeer]:
    """A :class:`KioskPeer` listening on 127.0.0.1 (a free port unless ``port`` is given)."""
    peer = KioskPeer(fail_first=fail_first)
    app = web.Application()
    app.router.add_post("/kiosk/events", peer.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    peer.url = f"http://127.0.0.1:{bound}/kiosk/events"
    try:
        yield peer
    finally:
        await runner.cleanup()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def sender(path: Path, *, policy: RetryPolicy = FAST) -> EventSender:
    return EventSender(
        store_path=path,
        key=KEY,
        source="cabin-test-01",
        clock=wall_clock,
        policy=policy,
        attempt_timeout=2.0,
        idle_poll=0.05,
    )


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


# --- the pure core --------------------------------------------------------------------------


def test_event_is_cloudevents_1_0_with_uuid_id_and_session_subject() -> None:
    event = build_event(
        EventType.SESSION_STARTED, source="cabin-1", session_id="s-1", now=NOW, data={"a": 1}
    )
    document = json.loads(encode_event(event))
    assert document == {
        "specversion": "1.0",
        "id": event.id,
        "source": "cabin-1",
        "type": "vn.tramcongdanso.cabin.session.started",
        "time": "2026-11-22T03:00:00Z",
        "subject": "s-1",
        "datacontenttype": "application/json",
        "data": {"a": 1},
    }
    assert uuid.UUID(event.id).version == 4


def test_every_event_type_lives_under_the_cabin_prefix() -> None:
    suffixes = {member.value.removeprefix("vn.tramcongdanso.cabin.") for member in EventType}
    assert suffixes == {
        "session.started",
        "consent.recorded",
        "measurement.completed",
        "consult.queued",
        "consult.started",
        "consult.ended",
        "sos.raised",
        "session.completed",
        "session.wiped",
    }


def test_encoding_is_deterministic_and_utf8() -> None:
    event = build_event(
        EventType.SOS_RAISED, source="c", session_id="s", now=NOW, data={"b": "Ấn", "a": 2}
    )
    assert encode_event(event) == encode_event(event)
    assert "Ấn".encode() in encode_event(event)


def test_signature_is_hmac_sha256_of_the_body_and_detects_tampering() -> None:
    body = b'{"id":"1"}'
    signature = sign_body(body, key=KEY)
    assert signature.startswith("sha256=")
    assert len(signature) == 7 + 64
    assert verify_signature(body, signature, key=KEY)
    assert not verify_signature(body + b" ", signature, key=KEY)
    assert not verify_signature(body, signature, key=SigningKey("other", b"x" * 32))


def test_a_short_signing_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SigningKey("k", b"short")


def test_retry_delays_grow_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(first=timedelta(seconds=1), longest=timedelta(seconds=30), jitter=0.2)
    delays = [retry_delay(n, policy=policy, spread=0.5).total_seconds() for n in range(1, 8)]
    assert delays == [1, 2, 4, 8, 16, 30, 30]


def test_jitter_spreads_each_delay_within_its_bounds() -> None:
    policy = RetryPolicy(first=timedelta(seconds=10), jitter=0.2)
    low = retry_delay(1, policy=policy, spread=0.0).total_seconds()
    high = retry_delay(1, policy=policy, spread=0.999999).total_seconds()
    assert low == pytest.approx(8.0)
    assert high == pytest.approx(12.0, abs=1e-3)


def test_retry_delay_counts_attempts_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        retry_delay(0, policy=RetryPolicy(), spread=0.5)


def test_an_event_older_than_the_give_up_age_has_expired() -> None:
    policy = RetryPolicy(give_up_after=timedelta(hours=1))
    assert not expired(NOW, now=NOW + timedelta(minutes=59), policy=policy)
    assert expired(NOW, now=NOW + timedelta(minutes=61), policy=policy)


def test_receipt_escapes_every_value() -> None:
    visit = CompletedVisit(
        summary=("<script>alert(1)</script>", 'Huyết áp "bình thường" & ổn'),
        fhir_delivery=FhirDelivery.DELIVERED,
        hospital="<b>Bệnh viện</b>",
        cabin_name="Cabin & <i>1</i>",
        finished_at=NOW,
    )
    page = receipt_html(visit, session_id="<s>", locale="vi")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>" not in page
    assert "<i>" not in page
    assert "<s>" not in page
    assert "&amp; ổn" in page
    assert "Đã gửi kết quả đến bệnh viện." in page


def test_completed_event_carries_summary_fhir_state_and_receipt() -> None:
    visit = CompletedVisit(
        summary=("Blood pressure normal.",),
        fhir_delivery=FhirDelivery.QUEUED,
        hospital="Test Hospital",
        cabin_name="Cabin 1",
        finished_at=NOW,
    )
    data = visit.event_data(session_id="s-1", locale="en")
    assert data["summary"] == ["Blood pressure normal."]
    assert data["fhir_delivery"] == "queued"
    assert "Results waiting to be sent" in data["receipt_html"]


# --- delivery to a real kiosk server --------------------------------------------------------


async def simulated_visit(
    sessions: KioskSessions, visits: MemoryVisits, callback_url: str, *, measurements: int
) -> str:
    """Open a session, record consent and ``measurements`` measurements (what the cabin does)."""
    session = await sessions.open(
        identity=RESIDENT, service=Service.BOTH, callback_url=callback_url, locale=Locale.VI
    )
    shown = consent_text(locale=Locale.VI, hospital="Bệnh viện Thử Nghiệm")
    choices = ConsentChoices(measuring=True, hospital=True, video_consultation=True)
    await sessions.record_consent(
        record_consent(session_id=session.session_id, shown=shown, choices=choices, now=NOW)
    )
    for step in range(measurements):
        visits.advance(session.session_id, VisitState.MEASURING)
        await sessions.publish(
            session.session_id,
            EventType.MEASUREMENT_COMPLETED,
            {"measurement": f"step-{step}", "summary": "Measured."},
        )
    return session.session_id


FULL_SEQUENCE = [
    "session.started",
    "consent.recorded",
    "measurement.completed",
    "measurement.completed",
    "measurement.completed",
    "consult.queued",
    "consult.started",
    "consult.ended",
    "session.completed",
]


async def full_session(sessions: KioskSessions, visits: MemoryVisits, url: str) -> str:
    session_id = await simulated_visit(sessions, visits, url, measurements=3)
    for event_type in (
        EventType.CONSULT_QUEUED,
        EventType.CONSULT_STARTED,
        EventType.CONSULT_ENDED,
    ):
        await sessions.publish(session_id, event_type, {})
    await sessions.complete(
        session_id,
        CompletedVisit(
            summary=("Huyết áp 120/80 mmHg: bình thường.",),
            fhir_delivery=FhirDelivery.DELIVERED,
            hospital="Bệnh viện Thử Nghiệm",
            cabin_name="Cabin thử nghiệm",
            finished_at=NOW,
        ),
    )
    return session_id


def test_kiosk_receives_the_full_signed_sequence_in_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with kiosk_peer() as peer, sender(tmp_path / "events.db").running() as events:
            visits = MemoryVisits()
            sessions = KioskSessions(visits=visits, events=events, clock=wall_clock)
            session_id = await full_session(sessions, visits, peer.url)
            await peer.wait_for(len(FULL_SEQUENCE))
            assert peer.types(session_id) == FULL_SEQUENCE
            assert peer.bad_signatures == 0
            assert {event["source"] for event in peer.received} == {"cabin-test-01"}
            completed = peer.received[-1]["data"]
            assert completed["fhir_delivery"] == "delivered"
            assert "Huyết áp 120/80 mmHg" in completed["receipt_html"]

    run(scenario)


def test_card_removed_mid_measurement_ends_with_session_wiped(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with kiosk_peer() as peer, sender(tmp_path / "events.db").running() as events:
            visits = MemoryVisits()
            sessions = KioskSessions(visits=visits, events=events, clock=wall_clock)
            session_id = await simulated_visit(sessions, visits, peer.url, measurements=1)
            await sessions.wipe(session_id)
            await peer.wait_for(4)
            assert peer.types(session_id) == [
                "session.started",
                "consent.recorded",
                "measurement.completed",
                "session.wiped",
            ]
            assert peer.received[-1]["data"] == {"reason": "kiosk_request"}
            assert not visits.holds(session_id)

    run(scenario)


def test_events_carry_no_identity_numbers_or_names(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with kiosk_peer() as peer, sender(tmp_path / "events.db").running() as events:
            visits = MemoryVisits()
            sessions = KioskSessions(visits=visits, events=events, clock=wall_clock)
            await full_session(sessions, visits, peer.url)
            await peer.wait_for(len(FULL_SEQUENCE))
            everything = json.dumps(peer.received, ensure_ascii=False)
            assert RESIDENT.cccd not in everything
            assert RESIDENT.cccd[-9:] not in everything
            assert "Thử Nghiệm An" not in everything
            assert "1985-04-12" not in everything

    run(scenario)


def test_a_failing_kiosk_still_gets_everything_once_in_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            kiosk_peer(fail_first=4) as peer,
            sender(tmp_path / "events.db").running() as events,
        ):
            visits = MemoryVisits()
            sessions = KioskSessions(visits=visits, events=events, clock=wall_clock)
            session_id = await full_session(sessions, visits, peer.url)
            await peer.wait_for(len(FULL_SEQUENCE))
            await asyncio.sleep(0.1)  # nothing more arrives, and the last ack is recorded
            assert peer.types(session_id) == FULL_SEQUENCE
            assert peer.posts == 4 + len(FULL_SEQUENCE)
            stored = await events.stored(session_id=session_id)
            assert [row.state for row in stored] == [DeliveryState.DELIVERED] * len(stored)
            assert stored[0].attempts == 5

    run(scenario)


def test_sessions_are_delivered_independently(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with kiosk_peer() as peer, sender(tmp_path / "events.db").running() as events:
            dead = f"http://127.0.0.1:{free_port()}/gone"
            visits = MemoryVisits()
            sessions = KioskSessions(visits=visits, events=events, clock=wall_clock)
            await sessions.open(
                identity=RESIDENT, service=Service.CONSULT, callback_url=dead, locale=Locale.EN
            )
            other = Identity(
                cccd="099185004321",
                full_name="Trần Thử Nghiệm Bình",
                birth_date=date(1985, 1, 1),
                sex=Sex.FEMALE,
                assurance=Assurance.PASSIVE_AUTH,
                source=Source.CHIP,
            )
            live = await sessions.open(
                identity=other, service=Service.CONSULT, callback_url=peer.url, locale=Locale.EN
            )
            await peer.wait_for(1)
            assert peer.types() == ["session.started"]
            assert peer.received[0]["subject"] == live.session_id

    run(scenario)


def test_a_restarted_sender_resumes_the_queue_in_order(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    port = free_port()
    url = f"http://127.0.0.1:{port}/kiosk/events"
    slow = RetryPolicy(first=timedelta(milliseconds=20), longest=timedelta(milliseconds=40))

    async def before_restart() -> list[str]:
        async with sender(path, policy=slow).running() as events:
            ids = []
            for event_type in (EventType.SESSION_STARTED, EventType.CONSENT_RECORDED):
                event = build_event(event_type, source="cabin-test-01", session_id="s-1", now=NOW)
                await events.publish(event, callback_url=url)
                ids.append(event.id)
            await asyncio.sleep(0.1)  # a few refused attempts: the kiosk is down
            rows = await events.stored()
            assert [row.state for row in rows] == [DeliveryState.PENDING] * 2
            assert rows[0].attempts >= 1
            assert rows[1].attempts == 0
            return ids

    async def after_restart(ids: list[str]) -> None:
        async with kiosk_peer(port=port) as peer, sender(path).running() as events:
            event = build_event(
                EventType.SESSION_WIPED, source="cabin-test-01", session_id="s-1", now=NOW
            )
            await events.publish(event, callback_url=url)
            await peer.wait_for(3)
            assert [received["id"] for received in peer.received] == [*ids, event.id]
            assert peer.types() == ["session.started", "consent.recorded", "session.wiped"]

    ids = asyncio.run(before_restart())
    asyncio.run(after_restart(ids))


def test_an_event_too_old_is_abandoned_and_recorded_and_the_next_goes_on(tmp_path: Path) -> None:
    async def scenario() -> None:
        policy = RetryPolicy(
            first=timedelta(milliseconds=10),
            longest=timedelta(milliseconds=20),
            give_up_after=timedelta(milliseconds=150),
        )
        async with (
            kiosk_peer(fail_first=1000) as peer,
            sender(tmp_path / "events.db", policy=policy).running() as events,
        ):
            first = build_event(EventType.SESSION_STARTED, source="c", session_id="s", now=NOW)
            await events.publish(first, callback_url=peer.url)
            async with asyncio.timeout(5):
                while (await events.stored())[0].state is DeliveryState.PENDING:
                    await asyncio.sleep(0.02)
            peer.fail_first = 0
            second = build_event(EventType.SESSION_WIPED, source="c", session_id="s", now=NOW)
            await events.publish(second, callback_url=peer.url)
            await peer.wait_for(1)
            async with asyncio.timeout(5):
                while (await events.stored())[1].state is DeliveryState.PENDING:
                    await asyncio.sleep(0.01)
            rows = await events.stored()
            assert rows[0].state is DeliveryState.ABANDONED
            assert rows[0].last_error is not None
            assert "gave up" in rows[0].last_error
            assert rows[1].state is DeliveryState.DELIVERED
            assert [event["id"] for event in peer.received] == [second.id]

    run(scenario)


def test_publishing_twice_with_one_id_stores_it_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with sender(tmp_path / "events.db").running() as events:
            event = build_event(EventType.SOS_RAISED, source="c", session_id="s", now=NOW)
            dead = f"http://127.0.0.1:{free_port()}/"
            await events.publish(event, callback_url=dead)
            await events.publish(event, callback_url=dead)
            assert len(await events.stored()) == 1

    run(scenario)


def test_the_store_uses_write_ahead_logging(tmp_path: Path) -> None:
    import sqlite3

    async def scenario() -> None:
        async with sender(tmp_path / "events.db").running():
            pass

    run(scenario)
    with sqlite3.connect(tmp_path / "events.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_shutdown_with_pending_events_is_prompt(tmp_path: Path) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        async with sender(tmp_path / "events.db").running() as events:
            dead = f"http://127.0.0.1:{free_port()}/"
            for _ in range(3):
                event = build_event(EventType.SOS_RAISED, source="c", session_id="s", now=NOW)
                await events.publish(event, callback_url=dead)
            started = loop.time()
        assert loop.time() - started < 1.0

    run(scenario)


def test_publishing_needs_a_running_sender(tmp_path: Path) -> None:
    event = build_event(EventType.SOS_RAISED, source="c", session_id="s", now=NOW)
    with pytest.raises(RuntimeError, match="not running"):
        asyncio.run(sender(tmp_path / "e.db").publish(event, callback_url="http://x/"))
