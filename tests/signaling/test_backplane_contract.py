"""The backplane contract: MemoryBackplane and RedisBackplane behave like HubState.

Layout of this file:

1. harness — ``Store`` (which backplane, which Redis prefix), ``Deployment`` (the nodes of one
   scenario, each with the deliveries and queue changes it received), record builders;
2. behaviour every backplane shares, run against both through the ``store`` fixture:
   tokens, sessions, queue, presence, calls, resume, expiry, stats, messages, concurrency;
3. what only several nodes on one Redis can show (the ``redis_store`` fixture): deliveries
   and announcements crossing nodes, resume on another node, orphan adoption, failures;
4. a differential test: random sequences of transitions give identical answers from both.

Redis tests use the machine's Redis (``tests.peers.redis``) under a private key prefix that
is deleted afterwards; without Redis they skip, or fail under ``CI=true``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signaling.backplane import Backplane, Control, ControlAction, Delivery
from signaling.backplane.memory import MemoryBackplane
from signaling.backplane.redis import RedisBackplane
from signaling.codes import ErrorCode
from signaling.errors import BackplaneError, ProtocolError, SignalingError
from signaling.model import (
    ANY_HOSPITAL,
    Call,
    Closed,
    Parked,
    Presence,
    QueueView,
    Resumed,
    Role,
    SessionRecord,
    Stats,
    Ticket,
    Triage,
    Urgency,
)
from tests.peers.redis import delete_prefix, redis_prefix, require_redis, unique_prefix

T0 = 1_760_000_000.123456
"""A realistic epoch time with a sub-millisecond part, so truncated floats show."""
NODE_A, NODE_B = "node-a", "node-b"
LIMIT = 3
"""Connections per identity in these tests."""
SCENARIO_TIMEOUT_S = 15.0


# == 1. harness ==================================================================================


@dataclass
class Node:
    """One node's backplane and what its handlers received."""

    backplane: Backplane
    deliveries: list[Delivery] = field(default_factory=list)
    queue_changes: list[str] = field(default_factory=list)


class Deployment:
    """The nodes of one scenario, sharing one store; closes them all at the end."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.nodes: list[Node] = []

    @property
    def multi_node(self) -> bool:
        return self.store.kind == "redis"

    async def node(self, name: str = NODE_A, *, node_ttl_s: float = 10.0) -> Node:
        backplane: Backplane
        if self.store.kind == "memory":
            assert not self.nodes, "the memory backplane is one node"
            backplane = MemoryBackplane(node=name)
        else:
            backplane = RedisBackplane(
                url=self.store.url, node=name, prefix=self.store.prefix, node_ttl_s=node_ttl_s
            )
        node = Node(backplane)
        await backplane.start(
            on_delivery=node.deliveries.append, on_queue_changed=node.queue_changes.append
        )
        self.nodes.append(node)
        return node

    async def close(self) -> None:
        for node in self.nodes:
            await node.backplane.close()


@dataclass(frozen=True)
class Store:
    """Which backplane a test runs against (and, for Redis, where)."""

    kind: Literal["memory", "redis"]
    url: str = ""
    prefix: str = ""

    def run(self, scenario: Callable[[Deployment], Awaitable[None]]) -> None:
        """Run one scenario in a fresh event loop, bounded in time, closing every node."""

        async def bounded() -> None:
            deployment = Deployment(self)
            try:
                async with asyncio.timeout(SCENARIO_TIMEOUT_S):
                    await scenario(deployment)
            finally:
                await deployment.close()

        asyncio.run(bounded())


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "memory":
        yield Store("memory")
        return
    url = require_redis()
    with redis_prefix(url) as prefix:
        yield Store("redis", url, prefix)


@pytest.fixture
def redis_server() -> str:
    """The URL of a Redis that answers (the test skips, or fails under CI, otherwise)."""
    return require_redis()


@pytest.fixture
def redis_store() -> Iterator[Store]:
    url = require_redis()
    with redis_prefix(url) as prefix:
        yield Store("redis", url, prefix)


def cabin(sid: str = "cab-1", *, identity: str | None = None, node: str = NODE_A) -> SessionRecord:
    return SessionRecord(
        id=sid,
        role=Role.CABIN,
        identity=identity or f"fleet|{sid}",
        subject=sid,
        hospitals=(),
        node=node,
        resume_hash=f"resume-{sid}",
    )


def doctor(
    sid: str = "doc-1",
    hospitals: tuple[str, ...] = ("H1",),
    *,
    identity: str | None = None,
    node: str = NODE_A,
) -> SessionRecord:
    return SessionRecord(
        id=sid,
        role=Role.DOCTOR,
        identity=identity or f"idp|{sid}",
        subject=sid,
        hospitals=hospitals,
        node=node,
        resume_hash=f"resume-{sid}",
    )


def ticket(
    tid: str = "t-1",
    session: str = "cab-1",
    *,
    hospital: str | None = "H1",
    urgency: Urgency = Urgency.ROUTINE,
    at: float = T0,
) -> Ticket:
    triage = Triage(
        urgency=urgency,
        flags=("spo2-low",) if urgency is not Urgency.ROUTINE else (),
        hospital=hospital,
        summary="Chóng mặt, SpO2 91 %",
        age=78,
        sex="female",
    )
    return Ticket(id=tid, session=session, cabin=f"kiosk-{session}", triage=triage, enqueued_at=at)


async def open_all(backplane: Backplane, *records: SessionRecord) -> None:
    for record in records:
        await backplane.open_session(record, max_per_identity=LIMIT)


async def refused(code: ErrorCode, pending: Awaitable[object]) -> ProtocolError:
    """Awaits ``pending`` and returns the ProtocolError it must raise with ``code``."""
    with pytest.raises(ProtocolError) as caught:
        await pending
    assert caught.value.code is code, caught.value
    return caught.value


async def eventually(condition: Callable[[], bool], *, timeout_s: float = 3.0) -> None:
    """Waits until ``condition()`` holds (messages from Redis arrive a moment later)."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.002)


async def waiting_resident(backplane: Backplane, *, hospital: str | None = "H1") -> Ticket:
    """A cabin ``cab-1`` waiting with ticket ``t-1`` and an available H1 doctor ``doc-1``."""
    await open_all(backplane, cabin(), doctor())
    await backplane.set_presence("doc-1", Presence.AVAILABLE)
    return await backplane.enqueue(ticket(hospital=hospital))


async def in_call(backplane: Backplane) -> Call:
    """``waiting_resident`` after ``doc-1`` accepted: call ``call-1`` started at T0 + 30."""
    await waiting_resident(backplane)
    return await backplane.accept(
        ticket_id="t-1", doctor_session="doc-1", call_id="call-1", now=T0 + 30
    )


# == 2. behaviour every backplane shares ========================================================

# -- tokens --------------------------------------------------------------------------------------


def test_a_token_id_is_claimed_once(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        assert await bp.claim_token("jti-1", until=T0 + 300, now=T0)
        assert not await bp.claim_token("jti-1", until=T0 + 300, now=T0 + 1)
        assert not await bp.claim_token("jti-1", until=T0 + 300, now=T0 + 300)
        assert await bp.claim_token("jti-2", until=T0 + 300, now=T0 + 1)

    store.run(scenario)


def test_a_claim_is_forgotten_once_its_token_expired(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        assert await bp.claim_token("jti-1", until=T0 + 60, now=T0)
        assert await bp.claim_token("jti-1", until=T0 + 200, now=T0 + 61)
        assert not await bp.claim_token("jti-1", until=T0 + 200, now=T0 + 62)

    store.run(scenario)


# -- sessions ------------------------------------------------------------------------------------


def test_a_new_doctor_is_away_and_a_new_cabin_has_no_presence(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await open_all(bp, cabin(), doctor(hospitals=("H1", "Bệnh viện Quận 2")))
        assert await bp.session("cab-1") == cabin()
        assert await bp.session("doc-1") == replace(
            doctor(hospitals=("H1", "Bệnh viện Quận 2")), presence=Presence.AWAY
        )
        assert await bp.session("nobody") is None

    store.run(scenario)


def test_an_identity_may_hold_only_so_many_sessions(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        same = "idp|dr-lan"
        await open_all(bp, *(doctor(f"doc-{i}", identity=same) for i in range(LIMIT)))
        await refused(ErrorCode.TOO_MANY_CONNECTIONS, open_all(bp, doctor("doc-x", identity=same)))
        await open_all(bp, doctor("doc-other"))  # another identity is not affected

    store.run(scenario)


def test_a_parked_session_still_counts_and_a_closed_one_frees_its_place(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        same = "fleet|dkc-01"
        await open_all(bp, *(cabin(f"cab-{i}", identity=same) for i in range(LIMIT)))
        await bp.park("cab-0", until=T0 + 60)
        await refused(ErrorCode.TOO_MANY_CONNECTIONS, open_all(bp, cabin("cab-x", identity=same)))
        await bp.close_session("cab-0", now=T0)
        await open_all(bp, cabin("cab-x", identity=same))

    store.run(scenario)


def test_a_session_id_is_never_opened_twice(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await open_all(bp, cabin())
        error = await refused(ErrorCode.INTERNAL, open_all(bp, cabin(identity="fleet|other")))
        assert error.detail == "session id reused"

    store.run(scenario)


# -- queue ---------------------------------------------------------------------------------------


def test_enqueue_puts_the_ticket_on_the_cabin_session(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await open_all(bp, cabin())
        queued = await bp.enqueue(ticket())
        assert queued == replace(ticket(), notify_after=T0)
        session = await bp.session("cab-1")
        assert session is not None
        assert session.ticket == "t-1"
        assert (await bp.queue(("H1",))).tickets == (queued,)

    store.run(scenario)


def test_a_cabin_waits_in_one_queue_at_a_time(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await open_all(bp, cabin())
        await bp.enqueue(ticket())
        await refused(ErrorCode.ALREADY_QUEUED, bp.enqueue(ticket("t-2", hospital=None)))
        assert [t.id for t in (await bp.queue(("H1",))).tickets] == ["t-1"]

    store.run(scenario)


def test_only_a_live_cabin_may_enqueue(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await open_all(bp, doctor())
        error = await refused(ErrorCode.FORBIDDEN, bp.enqueue(ticket(session="doc-1")))
        assert error.detail == "only a cabin may do that"
        error = await refused(ErrorCode.NOT_AUTHENTICATED, bp.enqueue(ticket(session="gone")))
        assert error.detail == "the session has ended"

    store.run(scenario)


def test_a_cabin_in_a_call_cannot_enqueue(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await in_call(bp)
        await refused(ErrorCode.IN_CALL, bp.enqueue(ticket("t-2")))

    store.run(scenario)


def test_cancel_takes_the_ticket_out_once(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        queued = await waiting_resident(bp)
        assert await bp.cancel("cab-1") == queued
        assert (await bp.queue(("H1",))).tickets == ()
        session = await bp.session("cab-1")
        assert session is not None
        assert session.ticket is None
        await refused(ErrorCode.NOT_QUEUED, bp.cancel("cab-1"))
        await refused(ErrorCode.FORBIDDEN, bp.cancel("doc-1"))

    store.run(scenario)


def test_renew_restarts_the_no_doctor_timer_and_keeps_the_place(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await open_all(bp, cabin(), cabin("cab-2"))
        await bp.enqueue(ticket())
        await bp.enqueue(ticket("t-2", "cab-2", at=T0 + 5))
        assert [t.id for t in await bp.overdue(now=T0 + 120, wait_s=60)] == ["t-1", "t-2"]
        renewed = await bp.renew("cab-1", now=T0 + 130)
        assert renewed == replace(ticket(), notify_after=T0 + 130)
        assert [t.id for t in (await bp.queue(("H1",))).tickets] == ["t-1", "t-2"]
        await bp.cancel("cab-2")
        await refused(ErrorCode.NOT_QUEUED, bp.renew("cab-2", now=T0 + 130))

    store.run(scenario)


def test_overdue_reports_each_ticket_once_per_wait(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await open_all(bp, cabin())
        queued = await bp.enqueue(ticket())
        assert await bp.overdue(now=T0 + 59.999, wait_s=60) == []
        assert await bp.overdue(now=T0 + 60, wait_s=60) == [queued]
        assert await bp.overdue(now=T0 + 500, wait_s=60) == []
        await bp.renew("cab-1", now=T0 + 600)
        assert await bp.overdue(now=T0 + 659, wait_s=60) == []
        overdue = await bp.overdue(now=T0 + 660, wait_s=60)
        assert overdue == [replace(queued, notify_after=T0 + 600)]

    store.run(scenario)


def test_the_queue_is_sorted_by_urgency_then_waiting_time_then_id(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        entries = [
            ("t-late", Urgency.ROUTINE, T0 + 20),
            ("t-early", Urgency.ROUTINE, T0 + 0.000001),
            ("t-urgent", Urgency.URGENT, T0 + 30),
            ("t-b", Urgency.EMERGENCY, T0 + 40),
            ("t-a", Urgency.EMERGENCY, T0 + 40),
        ]
        for index, (tid, urgency, at) in enumerate(entries):
            await open_all(bp, cabin(f"cab-{index}"))
            await bp.enqueue(ticket(tid, f"cab-{index}", urgency=urgency, at=at))
        view = await bp.queue(("H1",))
        assert [t.id for t in view.tickets] == ["t-a", "t-b", "t-urgent", "t-early", "t-late"]
        assert view.position("t-early") == 4

    store.run(scenario)


def test_a_hospital_queue_is_seen_only_by_its_doctors_and_any_queue_by_all(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await open_all(bp, cabin("cab-1"), cabin("cab-2"), cabin("cab-3"))
        await bp.enqueue(ticket("t-h1", "cab-1", hospital="H1"))
        await bp.enqueue(ticket("t-h2", "cab-2", hospital="H2", at=T0 + 1))
        await bp.enqueue(ticket("t-any", "cab-3", hospital=None, at=T0 + 2))

        def ids(view: QueueView) -> list[str]:
            return [t.id for t in view.tickets]

        assert ids(await bp.queue(("H1",))) == ["t-h1", "t-any"]
        assert ids(await bp.queue(("H2",))) == ["t-h2", "t-any"]
        assert ids(await bp.queue(("H1", "H2"))) == ["t-h1", "t-h2", "t-any"]
        assert ids(await bp.queue(("H3",))) == ["t-any"]
        assert ids(await bp.queue((ANY_HOSPITAL,))) == ["t-any"]

    store.run(scenario)


# -- presence ------------------------------------------------------------------------------------


def test_presence_counts_each_live_doctor_of_the_hospitals_once(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await open_all(
            bp,
            doctor("d-avail"),
            doctor("d-busy"),
            doctor("d-away"),
            doctor("d-both", ("H1", "H2")),
            doctor("d-h2", ("H2",)),
            doctor("d-parked"),
            cabin(),
        )
        await bp.set_presence("d-avail", Presence.AVAILABLE)
        await bp.set_presence("d-busy", Presence.BUSY)
        await bp.set_presence("d-both", Presence.AVAILABLE)
        await bp.set_presence("d-h2", Presence.AVAILABLE)
        await bp.set_presence("d-parked", Presence.AVAILABLE)
        await bp.park("d-parked", until=T0 + 60)

        def counts(view: QueueView) -> tuple[int, int, int]:
            return (view.available, view.busy, view.away)

        assert counts(await bp.queue(("H1",))) == (2, 1, 1)
        assert counts(await bp.queue(("H2",))) == (2, 0, 0)
        assert counts(await bp.queue(("H1", "H2"))) == (3, 1, 1)
        assert counts(await bp.queue(("H9",))) == (0, 0, 0)

    store.run(scenario)


def test_set_presence_is_for_doctors_and_returns_the_record(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await open_all(bp, cabin(), doctor())
        record = await bp.set_presence("doc-1", Presence.AVAILABLE)
        assert record == replace(doctor(), presence=Presence.AVAILABLE)
        assert await bp.session("doc-1") == record
        await refused(ErrorCode.FORBIDDEN, bp.set_presence("cab-1", Presence.AVAILABLE))
        await refused(ErrorCode.NOT_AUTHENTICATED, bp.set_presence("gone", Presence.AWAY))

    store.run(scenario)


# -- calls ---------------------------------------------------------------------------------------


def test_accept_starts_one_call_and_takes_the_resident_off_the_queue(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await waiting_resident(bp)
        now = T0 + 12.5
        call = await bp.accept(ticket_id="t-1", doctor_session="doc-1", call_id="call-1", now=now)
        assert call == Call(
            id="call-1",
            ticket="t-1",
            cabin_session="cab-1",
            doctor_session="doc-1",
            hospital="H1",
            started_at=now,
            waited_s=max(0.0, now - T0),
            queue="H1",
        )
        assert await bp.call("call-1") == call
        assert (await bp.queue(("H1",))).tickets == ()
        resident = await bp.session("cab-1")
        physician = await bp.session("doc-1")
        assert resident is not None
        assert (resident.ticket, resident.call) == (None, "call-1")
        assert physician is not None
        assert (physician.call, physician.presence) == ("call-1", Presence.BUSY)

    store.run(scenario)


def test_accept_of_an_any_hospital_resident_names_the_doctors_first_hospital(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await open_all(bp, cabin(), doctor(hospitals=("H7", "H1")))
        await bp.enqueue(ticket(hospital=None, at=T0 + 50))
        call = await bp.accept(ticket_id="t-1", doctor_session="doc-1", call_id="c", now=T0 + 10)
        assert (call.hospital, call.waited_s) == ("H7", 0.0)

    store.run(scenario)


def test_accept_of_no_ticket_is_no_such_ticket(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await waiting_resident(bp)
        await refused(
            ErrorCode.NO_SUCH_TICKET,
            bp.accept(ticket_id="t-404", doctor_session="doc-1", call_id="c", now=T0),
        )

    store.run(scenario)


def test_accept_of_a_taken_ticket_is_already_taken_until_the_call_ends(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await in_call(bp)
        await open_all(bp, doctor("doc-2"))
        again = bp.accept(ticket_id="t-1", doctor_session="doc-2", call_id="c-2", now=T0 + 31)
        await refused(ErrorCode.ALREADY_TAKEN, again)
        await bp.hang_up(session_id="cab-1", call_id="call-1")
        again = bp.accept(ticket_id="t-1", doctor_session="doc-2", call_id="c-3", now=T0 + 32)
        await refused(ErrorCode.NO_SUCH_TICKET, again)

    store.run(scenario)


def test_accept_of_another_hospitals_resident_is_forbidden(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await waiting_resident(bp, hospital="H2")
        error = await refused(
            ErrorCode.FORBIDDEN,
            bp.accept(ticket_id="t-1", doctor_session="doc-1", call_id="c", now=T0),
        )
        assert error.detail == "that resident is in another hospital's queue"
        assert [t.id for t in (await bp.queue(("H2",))).tickets] == ["t-1"]

    store.run(scenario)


def test_a_doctor_in_a_call_cannot_accept_another(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await in_call(bp)
        await open_all(bp, cabin("cab-2"))
        await bp.enqueue(ticket("t-2", "cab-2"))
        await refused(
            ErrorCode.DOCTOR_BUSY,
            bp.accept(ticket_id="t-2", doctor_session="doc-1", call_id="c-2", now=T0 + 40),
        )
        assert [t.id for t in (await bp.queue(("H1",))).tickets] == ["t-2"]

    store.run(scenario)


def test_only_a_doctor_may_accept(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await waiting_resident(bp)
        await refused(
            ErrorCode.FORBIDDEN,
            bp.accept(ticket_id="t-1", doctor_session="cab-1", call_id="c", now=T0),
        )
        await refused(
            ErrorCode.NOT_AUTHENTICATED,
            bp.accept(ticket_id="t-1", doctor_session="gone", call_id="c", now=T0),
        )

    store.run(scenario)


def test_the_doctor_is_busy_during_a_call_and_as_before_after_it(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await in_call(bp)  # doc-1 was available
        assert (await bp.queue(("H1",))).busy == 1
        await bp.hang_up(session_id="doc-1", call_id="call-1")
        after = await bp.session("doc-1")
        assert after is not None
        assert (after.presence, after.call) == (Presence.AVAILABLE, None)

    store.run(scenario)


def test_presence_set_during_a_call_takes_effect_after_it(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await in_call(bp)
        during = await bp.set_presence("doc-1", Presence.AWAY)
        assert during.presence is Presence.BUSY
        await bp.hang_up(session_id="cab-1", call_id="call-1")
        after = await bp.session("doc-1")
        assert after is not None
        assert after.presence is Presence.AWAY

    store.run(scenario)


def test_hang_up_ends_the_call_for_both_parties(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        call = await in_call(bp)
        assert await bp.hang_up(session_id="cab-1", call_id="call-1") == call
        assert await bp.call("call-1") is None
        for sid in ("cab-1", "doc-1"):
            record = await bp.session(sid)
            assert record is not None
            assert record.call is None

    store.run(scenario)


def test_hang_up_by_someone_not_in_that_call_is_not_in_call(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await in_call(bp)
        await open_all(bp, doctor("doc-2"))
        await refused(ErrorCode.NOT_IN_CALL, bp.hang_up(session_id="doc-2", call_id="call-1"))
        await refused(ErrorCode.NOT_IN_CALL, bp.hang_up(session_id="cab-1", call_id="call-9"))
        await refused(ErrorCode.NOT_AUTHENTICATED, bp.hang_up(session_id="gone", call_id="call-1"))
        assert await bp.call("call-1") is not None

    store.run(scenario)


# -- park, resume, expire, close ---------------------------------------------------------------


def test_park_keeps_the_ticket_and_the_call_and_reports_them(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        call = await in_call(bp)
        await open_all(bp, cabin("cab-2"))
        queued = await bp.enqueue(ticket("t-2", "cab-2"))
        assert await bp.park("doc-1", until=T0 + 90) == Parked(
            session=replace(doctor(), presence=Presence.BUSY, call="call-1", parked_until=T0 + 90),
            call=call,
            ticket=None,
        )
        parked = await bp.park("cab-2", until=T0 + 91)
        assert parked is not None
        assert (parked.ticket, parked.call) == (queued, None)
        assert await bp.park("gone", until=T0) is None
        assert (await bp.queue(("H1",))).busy == 0  # a parked doctor is not counted

    store.run(scenario)


def test_resume_rotates_the_token_and_reports_where_the_session_was(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        call = await in_call(bp)
        await bp.park("cab-1", until=T0 + 60)
        resumed = await bp.resume("resume-cab-1", new_resume_hash="resume-cab-1-2")
        assert resumed == Resumed(
            session=replace(cabin(), resume_hash="resume-cab-1-2", call="call-1"),
            previous_node=NODE_A,
            was_parked=True,
            call=call,
            ticket=None,
        )
        assert await bp.resume("resume-cab-1", new_resume_hash="stolen") is None
        again = await bp.resume("resume-cab-1-2", new_resume_hash="resume-cab-1-3")
        assert again is not None
        assert (again.was_parked, again.session.resume_hash) == (False, "resume-cab-1-3")

    store.run(scenario)


def test_resume_of_a_waiting_cabin_gives_back_its_ticket(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        queued = await waiting_resident(bp)
        await bp.park("cab-1", until=T0 + 60)
        resumed = await bp.resume("resume-cab-1", new_resume_hash="r2")
        assert resumed is not None
        assert (resumed.ticket, resumed.call, resumed.session.parked) == (queued, None, False)
        assert await bp.expire(now=T0 + 61) == []

    store.run(scenario)


def test_resume_with_an_unknown_token_is_none(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await open_all(bp, cabin())
        assert await bp.resume("nonsense", new_resume_hash="x") is None

    store.run(scenario)


def test_expire_cancels_the_ticket_once_the_grace_window_is_over(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        queued = await waiting_resident(bp)
        await bp.park("cab-1", until=T0 + 60)
        assert await bp.expire(now=T0 + 59.999999) == []
        assert await bp.expire(now=T0 + 60) == [
            Closed(
                session=replace(cabin(), ticket="t-1", parked_until=T0 + 60),
                ended_call=None,
                cancelled_ticket=queued,
            )
        ]
        assert await bp.expire(now=T0 + 61) == []
        assert await bp.session("cab-1") is None
        assert (await bp.queue(("H1",))).tickets == ()
        assert await bp.resume("resume-cab-1", new_resume_hash="late") is None

    store.run(scenario)


def test_expire_ends_the_call_and_frees_the_peer(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        call = await in_call(bp)
        await bp.park("doc-1", until=T0 + 60)
        (closed,) = await bp.expire(now=T0 + 60)
        assert closed.ended_call == call
        assert closed.ended_call.peer_of("doc-1") == "cab-1"
        resident = await bp.session("cab-1")
        assert resident is not None
        assert resident.call is None
        assert await bp.call("call-1") is None

    store.run(scenario)


def test_close_session_cancels_the_ticket(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        queued = await waiting_resident(bp)
        closed = await bp.close_session("cab-1", now=T0)
        assert closed == Closed(
            session=replace(cabin(), ticket="t-1"), ended_call=None, cancelled_ticket=queued
        )
        assert await bp.close_session("cab-1", now=T0) is None
        assert (await bp.queue(("H1",))).tickets == ()

    store.run(scenario)


def test_close_session_of_a_cabin_ends_the_call_and_gives_the_doctor_back(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        call = await in_call(bp)
        closed = await bp.close_session("cab-1", now=T0 + 40)
        assert closed is not None
        assert (closed.ended_call, closed.cancelled_ticket) == (call, None)
        physician = await bp.session("doc-1")
        assert physician is not None
        assert (physician.call, physician.presence) == (None, Presence.AVAILABLE)

    store.run(scenario)


def test_close_session_of_a_doctor_ends_the_call(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await in_call(bp)
        closed = await bp.close_session("doc-1", now=T0 + 40)
        assert closed is not None
        assert closed.ended_call is not None
        resident = await bp.session("cab-1")
        assert resident is not None
        assert resident.call is None
        await refused(ErrorCode.NOT_AUTHENTICATED, bp.set_presence("doc-1", Presence.AVAILABLE))

    store.run(scenario)


# -- stats ---------------------------------------------------------------------------------------


def test_stats_count_sessions_parked_queues_calls_and_nodes(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        bp = (await hub.node()).backplane
        await in_call(bp)
        await open_all(bp, cabin("cab-2"), cabin("cab-3"), cabin("cab-4"), doctor("doc-2"))
        await bp.enqueue(ticket("t-2", "cab-2", hospital="H2"))
        await bp.enqueue(ticket("t-3", "cab-3", hospital=None))
        await bp.enqueue(ticket("t-4", "cab-4", hospital="H2"))
        await bp.park("cab-4", until=T0 + 60)
        assert await bp.stats() == Stats(
            sessions={"cabin": 4, "doctor": 2, "admin": 0},
            parked=1,
            queued={"H2": 2, ANY_HOSPITAL: 1},
            calls=1,
            nodes=(NODE_A,),
        )

    store.run(scenario)


# -- messages ------------------------------------------------------------------------------------


def test_deliver_reaches_a_session_attached_on_this_node(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        node = await hub.node()
        bp = node.backplane
        call = await in_call(bp)
        await bp.attach("cab-1")
        message = Delivery(
            session="cab-1",
            text='{"type":"call","v":1,"note":"bác sĩ đã nhận"}',
            control=Control(ControlAction.CALL_STARTED, call),
        )
        assert await bp.deliver(message)
        await eventually(lambda: len(node.deliveries) == 1)
        assert node.deliveries == [message]

    store.run(scenario)


def test_deliver_to_a_session_no_node_holds_is_false(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        node = await hub.node()
        bp = node.backplane
        await open_all(bp, cabin())
        assert not await bp.deliver(Delivery(session="cab-1", text="{}"))
        await bp.attach("cab-1")
        await bp.detach("cab-1")
        assert not await bp.deliver(Delivery(session="cab-1", text="{}"))
        await bp.detach("cab-1")  # detaching twice is harmless
        assert node.deliveries == []

    store.run(scenario)


def test_announce_reaches_this_nodes_queue_listener(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        node = await hub.node()
        await node.backplane.announce("H1")
        await node.backplane.announce(ANY_HOSPITAL)
        await eventually(lambda: len(node.queue_changes) == 2)
        assert node.queue_changes == ["H1", ANY_HOSPITAL]

    store.run(scenario)


def test_close_leaves_no_task_behind_and_may_be_repeated(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        node = await hub.node()
        await node.backplane.attach("cab-1")
        await node.backplane.heartbeat(now=T0)
        await node.backplane.ping()
        await node.backplane.close()
        await node.backplane.close()
        assert asyncio.all_tasks() == {asyncio.current_task()}

    store.run(scenario)


# -- concurrency ---------------------------------------------------------------------------------


def test_a_hundred_concurrent_accepts_have_exactly_one_winner(store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        count = 100
        nodes = [await hub.node(f"node-{i}") for i in range(4 if hub.multi_node else 1)]
        first = nodes[0].backplane
        await open_all(first, cabin())
        await first.enqueue(ticket())
        for i in range(count):
            await open_all(nodes[i % len(nodes)].backplane, doctor(f"doc-{i}"))
        results = await asyncio.gather(
            *(
                nodes[i % len(nodes)].backplane.accept(
                    ticket_id="t-1", doctor_session=f"doc-{i}", call_id=f"call-{i}", now=T0 + 1
                )
                for i in range(count)
            ),
            return_exceptions=True,
        )
        calls = [r for r in results if isinstance(r, Call)]
        refusals = [r for r in results if isinstance(r, ProtocolError)]
        assert len(calls) == 1, results
        assert [r.code for r in refusals] == [ErrorCode.ALREADY_TAKEN] * (count - 1)
        (winner,) = calls
        stats = await first.stats()
        assert stats.calls == 1
        assert stats.queued == {}
        busy = (await first.queue(("H1",))).busy
        assert busy == 1
        resident = await first.session("cab-1")
        assert resident is not None
        assert resident.call == winner.id

    store.run(scenario)


# == 3. several nodes on one Redis ==============================================================


def test_deliver_crosses_to_the_node_holding_the_session(redis_store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        a, b = await hub.node(NODE_A), await hub.node(NODE_B)
        await open_all(a.backplane, cabin())
        await a.backplane.attach("cab-1")
        message = Delivery(session="cab-1", text='{"type":"offer"}')
        assert await b.backplane.deliver(message)
        await eventually(lambda: a.deliveries == [message])
        assert b.deliveries == []
        assert not await b.backplane.deliver(Delivery(session="doc-9", text="{}"))

    redis_store.run(scenario)


def test_announce_reaches_every_node_once(redis_store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        nodes = [await hub.node(f"node-{i}") for i in range(3)]
        await nodes[1].backplane.announce("H1")
        await eventually(lambda: all(n.queue_changes for n in nodes))
        await asyncio.sleep(0.02)
        assert [n.queue_changes for n in nodes] == [["H1"]] * 3

    redis_store.run(scenario)


def test_a_closed_node_receives_nothing(redis_store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        a, b = await hub.node(NODE_A), await hub.node(NODE_B)
        await a.backplane.attach("cab-1")
        await a.backplane.close()
        assert not await b.backplane.deliver(Delivery(session="cab-1", text="{}"))

    redis_store.run(scenario)


def test_state_is_shared_so_a_doctor_on_one_node_takes_a_cabin_from_another(
    redis_store: Store,
) -> None:
    async def scenario(hub: Deployment) -> None:
        a, b = await hub.node(NODE_A), await hub.node(NODE_B)
        await open_all(a.backplane, cabin())
        await open_all(b.backplane, doctor(node=NODE_B))
        await a.backplane.enqueue(ticket())
        assert [t.id for t in (await b.backplane.queue(("H1",))).tickets] == ["t-1"]
        call = await b.backplane.accept(
            ticket_id="t-1", doctor_session="doc-1", call_id="call-1", now=T0 + 5
        )
        assert await a.backplane.call("call-1") == call
        assert (await a.backplane.stats()).nodes == (NODE_A, NODE_B)

    redis_store.run(scenario)


def test_resume_on_another_node_moves_the_session_there(redis_store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        a, b = await hub.node(NODE_A), await hub.node(NODE_B)
        await open_all(a.backplane, cabin())
        await a.backplane.attach("cab-1")
        resumed = await b.backplane.resume("resume-cab-1", new_resume_hash="r-2")
        assert resumed is not None
        assert (resumed.previous_node, resumed.was_parked) == (NODE_A, False)
        assert resumed.session.node == NODE_B
        # The old connection is still live on A: it is told first, then B takes the route.
        replaced = Delivery(session="cab-1", text="", control=Control(ControlAction.REPLACED))
        assert await b.backplane.deliver(replaced)
        await eventually(lambda: a.deliveries == [replaced])
        await a.backplane.detach("cab-1")
        await b.backplane.attach("cab-1")
        hello = Delivery(session="cab-1", text='{"type":"peer-back"}')
        assert await a.backplane.deliver(hello)
        await eventually(lambda: b.deliveries == [hello])
        assert a.deliveries == [replaced]

    redis_store.run(scenario)


def test_a_closed_nodes_live_sessions_are_adopted_once(redis_store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        a, b = await hub.node(NODE_A), await hub.node(NODE_B)
        call = await in_call(a.backplane)
        await open_all(a.backplane, cabin("cab-2"), cabin("cab-3"))
        await open_all(b.backplane, cabin("cab-b", node=NODE_B))
        queued = await a.backplane.enqueue(ticket("t-2", "cab-2"))
        await a.backplane.park("cab-3", until=T0 + 10)  # already parked: left as it is
        await a.backplane.close()  # like a crash: nothing cleaned up but the heartbeat

        adopted = await b.backplane.adopt_orphans(now=T0 + 20, until=T0 + 80)
        by_id = {p.session.id: p for p in adopted}
        assert sorted(by_id) == ["cab-1", "cab-2", "doc-1"]
        assert {p.session.parked_until for p in adopted} == {T0 + 80}
        assert by_id["cab-1"].call == call
        assert by_id["doc-1"].call == call
        assert by_id["cab-2"].ticket == queued
        assert await b.backplane.adopt_orphans(now=T0 + 21, until=T0 + 81) == []
        stats = await b.backplane.stats()
        assert (stats.parked, stats.nodes) == (4, (NODE_B,))

        resumed = await b.backplane.resume("resume-cab-1", new_resume_hash="r-2")
        assert resumed is not None
        assert (resumed.previous_node, resumed.was_parked) == (NODE_A, True)
        assert resumed.session.node == NODE_B
        expired = await b.backplane.expire(now=T0 + 80)
        assert sorted(c.session.id for c in expired) == ["cab-2", "cab-3", "doc-1"]
        assert (await b.backplane.stats()).sessions["cabin"] == 2  # cab-1 (resumed), cab-b

    redis_store.run(scenario)


def test_a_node_whose_heartbeat_lapses_is_adopted_and_a_live_one_never(
    redis_store: Store,
) -> None:
    async def scenario(hub: Deployment) -> None:
        a = await hub.node(NODE_A, node_ttl_s=0.3)
        b = await hub.node(NODE_B)
        await open_all(a.backplane, cabin())
        await open_all(b.backplane, cabin("cab-b", node=NODE_B))
        assert await b.backplane.adopt_orphans(now=T0, until=T0 + 60) == []
        assert await a.backplane.adopt_orphans(now=T0, until=T0 + 60) == []
        async with asyncio.timeout(3.0):
            while NODE_A in (await b.backplane.stats()).nodes:
                await asyncio.sleep(0.05)
        adopted = await b.backplane.adopt_orphans(now=T0, until=T0 + 60)
        assert [p.session.id for p in adopted] == ["cab-1"]
        await a.backplane.heartbeat(now=T0 + 1)
        assert (await b.backplane.stats()).nodes == (NODE_A, NODE_B)

    redis_store.run(scenario)


def test_a_bad_message_on_a_channel_does_not_stop_the_reader(redis_store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        a = await hub.node(NODE_A)
        await a.backplane.attach("cab-1")
        raw = aioredis.Redis.from_url(redis_store.url)
        try:
            assert await raw.publish(f"{redis_store.prefix}s:cab-1", b"not json") == 1
        finally:
            await raw.aclose()
        message = Delivery(session="cab-1", text="{}")
        assert await a.backplane.deliver(message)
        await eventually(lambda: a.deliveries == [message])

    redis_store.run(scenario)


def test_the_reader_resubscribes_after_its_connection_drops(redis_store: Store) -> None:
    async def scenario(hub: Deployment) -> None:
        a, b = await hub.node(NODE_A), await hub.node(NODE_B)
        await a.backplane.attach("cab-1")
        admin = aioredis.Redis.from_url(redis_store.url, decode_responses=True)
        try:
            name = f"signaling:{redis_store.prefix}{NODE_A}"
            subscribers = [
                c for c in await admin.client_list() if c["name"] == name and c["sub"] != "0"
            ]
            assert len(subscribers) == 1
            await admin.client_kill_filter(_id=subscribers[0]["id"])
        finally:
            await admin.aclose()
        message = Delivery(session="cab-1", text="{}")
        async with asyncio.timeout(5.0):
            while not await b.backplane.deliver(message):
                await asyncio.sleep(0.02)
        await eventually(lambda: message in a.deliveries)
        announced = len(a.queue_changes)
        await b.backplane.announce("H1")
        await eventually(lambda: len(a.queue_changes) == announced + 1)

    redis_store.run(scenario)


def test_an_unreachable_redis_is_a_backplane_error() -> None:
    async def scenario() -> None:
        bp = RedisBackplane(
            url="redis://127.0.0.1:1/0", node=NODE_A, prefix=unique_prefix(), command_timeout_s=0.5
        )
        try:
            with pytest.raises(BackplaneError):
                await bp.ping()
            with pytest.raises(BackplaneError):
                await bp.open_session(cabin(), max_per_identity=LIMIT)
            with pytest.raises(BackplaneError):
                await bp.deliver(Delivery(session="cab-1", text="{}"))
            with pytest.raises(BackplaneError) as caught:
                await bp.start(on_delivery=lambda d: None, on_queue_changed=lambda k: None)
            assert isinstance(caught.value, SignalingError)
        finally:
            await bp.close()
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(scenario())


# == 4. differential: random transitions, identical answers ======================================

_CABINS = ("c0", "c1", "c2")
_DOCTORS = {"d0": ("H1",), "d1": ("H2",), "d2": ("H1", "H2")}
_SIDS = (*_CABINS, *_DOCTORS)
_offsets = st.integers(min_value=0, max_value=400).map(lambda n: T0 + n * 0.25)
_mostly_cabins = st.sampled_from((*_CABINS, *_CABINS, "d0"))
_mostly_doctors = st.sampled_from((*_DOCTORS, *_DOCTORS, "c0"))
_recent = st.integers(min_value=0, max_value=3)
"""An index counted from the newest ticket or call handed out (4 and more: a made-up id)."""

_open = st.tuples(st.just("open"), st.sampled_from(_SIDS), st.sampled_from(("same", "own")))
_enqueue = st.tuples(
    st.just("enqueue"),
    _mostly_cabins,
    st.sampled_from((None, "H1", "H2")),
    st.sampled_from(tuple(Urgency)),
    _offsets,
)
_accept = st.tuples(st.just("accept"), _recent, _mostly_doctors, _offsets)
_hang_up = st.tuples(st.just("hang_up"), st.sampled_from(_SIDS), _recent)
_presence = st.tuples(st.just("presence"), _mostly_doctors, st.sampled_from(tuple(Presence)))
_park = st.tuples(st.just("park"), st.sampled_from(_SIDS), _offsets)
_resume = st.tuples(st.just("resume"), st.sampled_from(_SIDS))
_operations = st.sampled_from(
    [
        # Weighted towards the transitions that build up state, so that calls happen.
        *([_open] * 4),
        *([_enqueue] * 4),
        *([_accept] * 4),
        *([_hang_up] * 2),
        *([_presence] * 2),
        _park,
        _resume,
        st.tuples(st.just("claim"), st.sampled_from(("j0", "j1")), st.integers(-2, 3)),
        st.tuples(st.just("cancel"), _mostly_cabins),
        st.tuples(st.just("renew"), _mostly_cabins, _offsets),
        st.tuples(st.just("overdue"), _offsets, st.sampled_from((0.0, 10.0, 60.0))),
        st.tuples(
            st.just("queue"),
            st.lists(st.sampled_from(("H1", "H2", "H3")), max_size=2).map(tuple),
        ),
        st.tuples(st.just("close"), st.sampled_from(_SIDS)),
        st.tuples(st.just("expire"), _offsets),
        st.tuples(st.just("read"), st.sampled_from(_SIDS)),
        st.tuples(st.just("stats")),
    ]
).flatmap(lambda operation: operation)


_OPENING: list[tuple[Any, ...]] = [
    *(("open", sid, "own") for sid in _SIDS),
    *(("presence", sid, Presence.AVAILABLE) for sid in _DOCTORS),
]
"""Every sequence starts from every session open and every doctor available."""


@dataclass
class _Script:
    """Ids handed out while a sequence runs, the same for both backplanes."""

    tickets: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def recent(ids: list[str], back: int) -> str:
        return ids[-1 - back] if back < len(ids) else "made-up"


def _record(sid: str, identity: str, step: int) -> SessionRecord:
    who = "shared" if identity == "same" else sid
    if sid in _DOCTORS:
        record = doctor(sid, _DOCTORS[sid], identity=f"idp|{who}")
    else:
        record = cabin(sid, identity=f"fleet|{who}")
    return replace(record, resume_hash=f"h-{step}")


def _by_id(items: list[Any]) -> list[Any]:
    """Tickets by id, Closed and Parked by session id: the backplanes may list them in any order."""

    def key(item: Any) -> str:
        return str(item.id if isinstance(item, Ticket) else item.session.id)

    return sorted(items, key=key)


async def _apply(bp: Backplane, op: tuple[Any, ...], step: int, ids: _Script) -> object:
    """One operation; what it returned (lists in a canonical order) or how it was refused."""
    name, *args = op
    try:
        if name == "open":
            record = _record(args[0], args[1], step)
            await bp.open_session(record, max_per_identity=2)
            ids.hashes[args[0]] = record.resume_hash
            return None
        if name == "claim":
            # Claims see time move forwards (as HubState's clean-up of stale claims assumes).
            now = T0 + step
            return await bp.claim_token(args[0], until=now + args[1], now=now)
        if name == "enqueue":
            tid = f"t-{step}"
            ids.tickets.append(tid)
            return await bp.enqueue(
                ticket(tid, args[0], hospital=args[1], urgency=args[2], at=args[3])
            )
        if name == "cancel":
            return await bp.cancel(args[0])
        if name == "renew":
            return await bp.renew(args[0], now=args[1])
        if name == "overdue":
            return _by_id(await bp.overdue(now=args[0], wait_s=args[1]))
        if name == "queue":
            return await bp.queue(args[0])
        if name == "presence":
            return await bp.set_presence(args[0], args[1])
        if name == "accept":
            tid = ids.recent(ids.tickets, args[0])
            cid = f"c-{step}"
            ids.calls.append(cid)
            return await bp.accept(ticket_id=tid, doctor_session=args[1], call_id=cid, now=args[2])
        if name == "hang_up":
            cid = ids.recent(ids.calls, args[1])
            return await bp.hang_up(session_id=args[0], call_id=cid)
        if name == "park":
            return await bp.park(args[0], until=args[1])
        if name == "resume":
            new_hash = f"h-{step}"
            resumed = await bp.resume(ids.hashes.get(args[0], "h-none"), new_resume_hash=new_hash)
            if resumed is not None:
                ids.hashes[args[0]] = new_hash
            return resumed
        if name == "close":
            return await bp.close_session(args[0], now=T0)
        if name == "expire":
            return _by_id(await bp.expire(now=args[0]))
        if name == "read":
            return (await bp.session(args[0]), await bp.adopt_orphans(now=T0, until=T0))
        if name == "stats":
            return await bp.stats()
    except ProtocolError as error:
        return ("refused", error.code, error.detail)
    raise AssertionError(f"unknown operation {name}")


@settings(
    max_examples=40,
    deadline=None,
    # redis_server only names the server; each example gets its own prefix.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(operations=st.lists(_operations, min_size=5, max_size=40))
def test_random_transitions_get_the_same_answers_from_both_backplanes(
    redis_server: str, operations: list[tuple[Any, ...]]
) -> None:
    url = redis_server
    prefix = unique_prefix()

    async def scenario() -> None:
        memory = MemoryBackplane(node=NODE_A)
        shared = RedisBackplane(url=url, node=NODE_A, prefix=prefix)
        await memory.start(on_delivery=lambda d: None, on_queue_changed=lambda k: None)
        await shared.start(on_delivery=lambda d: None, on_queue_changed=lambda k: None)
        try:
            memory_ids, shared_ids = _Script(), _Script()
            for step, op in enumerate([*_OPENING, *operations]):
                expected = await _apply(memory, op, step, memory_ids)
                actual = await _apply(shared, op, step, shared_ids)
                assert actual == expected, f"step {step}: {op}"
        finally:
            await shared.close()
            await memory.close()

    try:
        asyncio.run(scenario())
    finally:
        delete_prefix(prefix, url=url)
