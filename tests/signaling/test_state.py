"""The pure signaling state machine: queue, presence, calls, resume — no I/O, no event loop.

Every test builds a :class:`HubState`, drives it with plain method calls and a made-up
clock (``now`` is an argument everywhere), and reads back what changed. The stateful test
at the end runs random sequences of every transition and checks the invariants after each.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from signaling.codes import ErrorCode
from signaling.errors import ProtocolError
from signaling.model import (
    ANY_HOSPITAL,
    Call,
    Presence,
    Role,
    SessionRecord,
    Ticket,
    Triage,
    Urgency,
)
from signaling.state import HubState

T0 = 1_800_000_000.0
GRACE_S = 60.0
LIMIT = 4


# -- building blocks -----------------------------------------------------------------------


def hash_of(session_id: str, generation: int = 0) -> str:
    """A stand-in for the SHA-256 of a resume token: unique per session and rotation."""
    return f"hash-{session_id}-{generation}"


def record(
    session_id: str,
    role: Role,
    *,
    hospitals: tuple[str, ...] = (),
    identity: str | None = None,
    node: str = "node-a",
) -> SessionRecord:
    return SessionRecord(
        id=session_id,
        role=role,
        identity=identity or f"dev|{session_id}",
        subject=session_id,
        hospitals=hospitals,
        node=node,
        resume_hash=hash_of(session_id),
    )


def open_cabin(hub: HubState, session_id: str, *, hospitals: tuple[str, ...] = ()) -> str:
    hub.open_session(record(session_id, Role.CABIN, hospitals=hospitals), max_per_identity=LIMIT)
    return session_id


def open_doctor(
    hub: HubState,
    session_id: str,
    hospitals: tuple[str, ...] = ("bv-a",),
    *,
    presence: Presence | None = Presence.AVAILABLE,
) -> str:
    hub.open_session(record(session_id, Role.DOCTOR, hospitals=hospitals), max_per_identity=LIMIT)
    if presence is not None:
        hub.set_presence(session_id, presence)
    return session_id


def ticket(
    ticket_id: str,
    session: str,
    *,
    hospital: str | None = "bv-a",
    urgency: Urgency = Urgency.ROUTINE,
    at: float = T0,
) -> Ticket:
    return Ticket(
        id=ticket_id,
        session=session,
        cabin=session,
        triage=Triage(urgency=urgency, hospital=hospital),
        enqueued_at=at,
    )


def waiting(
    hub: HubState,
    ticket_id: str,
    *,
    hospital: str | None = "bv-a",
    urgency: Urgency = Urgency.ROUTINE,
    at: float = T0,
) -> Ticket:
    """A new cabin session with a ticket in the queue."""
    session = open_cabin(hub, f"cab-{ticket_id}")
    return hub.enqueue(ticket(ticket_id, session, hospital=hospital, urgency=urgency, at=at))


def in_call(hub: HubState, call_id: str = "call-1") -> Call:
    """A cabin and a bv-a doctor in a call."""
    waiting(hub, f"t-{call_id}")
    doctor = open_doctor(hub, f"dr-{call_id}")
    return hub.accept(ticket_id=f"t-{call_id}", doctor_session=doctor, call_id=call_id, now=T0)


def refused(code: ErrorCode) -> pytest.RaisesExc[ProtocolError]:
    """Expect a :class:`ProtocolError` with exactly this code."""
    return pytest.raises(ProtocolError, check=lambda exc: exc.code is code)


@pytest.fixture
def hub() -> HubState:
    return HubState(node="node-a")


# -- the queue -----------------------------------------------------------------------------


def test_queue_is_sorted_by_urgency_then_waiting_time(hub: HubState) -> None:
    waiting(hub, "routine-early", urgency=Urgency.ROUTINE, at=T0)
    waiting(hub, "urgent-late", urgency=Urgency.URGENT, at=T0 + 30)
    waiting(hub, "emergency-latest", urgency=Urgency.EMERGENCY, at=T0 + 60)
    waiting(hub, "urgent-early", urgency=Urgency.URGENT, at=T0 + 10)
    waiting(hub, "routine-any", hospital=None, urgency=Urgency.ROUTINE, at=T0 + 5)

    view = hub.queue(("bv-a",))

    assert [t.id for t in view.tickets] == [
        "emergency-latest",
        "urgent-early",
        "urgent-late",
        "routine-early",
        "routine-any",
    ]
    assert view.position("urgent-late") == 3
    assert view.position("nobody") is None


def test_equal_urgency_and_time_is_ordered_by_ticket_id(hub: HubState) -> None:
    waiting(hub, "b")
    waiting(hub, "a")
    assert [t.id for t in hub.queue(("bv-a",)).tickets] == ["a", "b"]


def test_any_hospital_tickets_are_seen_by_every_hospitals_doctors(hub: HubState) -> None:
    waiting(hub, "anyone", hospital=None)
    for hospitals in [("bv-a",), ("bv-b",), ("bv-a", "bv-c")]:
        assert [t.id for t in hub.queue(hospitals).tickets] == ["anyone"]
    assert hub.tickets["anyone"].hospital == ANY_HOSPITAL


def test_hospital_tickets_are_seen_only_by_that_hospitals_doctors(hub: HubState) -> None:
    waiting(hub, "for-a", hospital="bv-a")
    waiting(hub, "for-b", hospital="bv-b", at=T0 + 1)

    assert [t.id for t in hub.queue(("bv-a",)).tickets] == ["for-a"]
    assert [t.id for t in hub.queue(("bv-b",)).tickets] == ["for-b"]
    assert [t.id for t in hub.queue(("bv-a", "bv-b")).tickets] == ["for-a", "for-b"]
    assert hub.queue(("bv-c",)).tickets == ()


def test_doctor_counts_are_of_the_viewed_hospitals_only(hub: HubState) -> None:
    open_doctor(hub, "a-available", ("bv-a",), presence=Presence.AVAILABLE)
    open_doctor(hub, "a-busy", ("bv-a",), presence=Presence.BUSY)
    open_doctor(hub, "a-away", ("bv-a",), presence=None)  # a new doctor starts away
    open_doctor(hub, "ab-available", ("bv-a", "bv-b"), presence=Presence.AVAILABLE)
    open_doctor(hub, "b-available", ("bv-b",), presence=Presence.AVAILABLE)
    open_cabin(hub, "cabin", hospitals=("bv-a",))

    view = hub.queue(("bv-a",))
    assert (view.available, view.busy, view.away) == (2, 1, 1)
    view = hub.queue(("bv-b",))
    assert (view.available, view.busy, view.away) == (2, 0, 0)
    view = hub.queue(("bv-c",))
    assert (view.available, view.busy, view.away) == (0, 0, 0)


def test_parked_doctors_are_not_counted(hub: HubState) -> None:
    open_doctor(hub, "here")
    open_doctor(hub, "gone")
    hub.park("gone", until=T0 + GRACE_S)

    assert hub.queue(("bv-a",)).available == 1
    hub.resume(hash_of("gone"), node="node-a", new_resume_hash=hash_of("gone", 1))
    assert hub.queue(("bv-a",)).available == 2


def test_any_hospital_view_holds_only_any_hospital_tickets_and_counts_every_doctor(
    hub: HubState,
) -> None:
    """The view a cabin waiting for "any hospital" gets its position and estimate from."""
    waiting(hub, "for-a", hospital="bv-a", urgency=Urgency.EMERGENCY)
    waiting(hub, "anyone", hospital=None, at=T0 + 1)
    open_doctor(hub, "dr-a", ("bv-a",))
    open_doctor(hub, "dr-b", ("bv-b",), presence=Presence.BUSY)

    view = hub.queue((ANY_HOSPITAL,))

    assert [t.id for t in view.tickets] == ["anyone"]
    assert view.position("anyone") == 1
    assert (view.available, view.busy, view.away) == (1, 1, 0)


# -- enqueue, cancel, renew, overdue -------------------------------------------------------


def test_enqueue_links_the_ticket_to_the_cabin_and_starts_the_timer(hub: HubState) -> None:
    queued = waiting(hub, "t1", at=T0 + 5)
    assert queued.notify_after == T0 + 5
    assert hub.sessions["cab-t1"].ticket == "t1"
    assert hub.tickets["t1"] == queued


def test_a_cabin_cannot_queue_twice(hub: HubState) -> None:
    waiting(hub, "t1")
    with refused(ErrorCode.ALREADY_QUEUED):
        hub.enqueue(ticket("t2", "cab-t1"))
    assert set(hub.tickets) == {"t1"}


def test_a_cabin_in_a_call_cannot_queue(hub: HubState) -> None:
    call = in_call(hub)
    with refused(ErrorCode.IN_CALL):
        hub.enqueue(ticket("t2", call.cabin_session))
    assert hub.tickets == {}


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.ADMIN])
def test_only_a_cabin_may_queue(hub: HubState, role: Role) -> None:
    hub.open_session(record("s", role, hospitals=("bv-a",)), max_per_identity=LIMIT)
    with refused(ErrorCode.FORBIDDEN):
        hub.enqueue(ticket("t1", "s"))
    assert hub.tickets == {}


def test_an_ended_session_cannot_queue(hub: HubState) -> None:
    with refused(ErrorCode.NOT_AUTHENTICATED):
        hub.enqueue(ticket("t1", "never-opened"))


def test_cancel_removes_the_ticket(hub: HubState) -> None:
    waiting(hub, "t1")
    assert hub.cancel("cab-t1").id == "t1"
    assert hub.tickets == {}
    assert hub.sessions["cab-t1"].ticket is None
    with refused(ErrorCode.NOT_QUEUED):
        hub.cancel("cab-t1")


def test_a_doctor_cannot_cancel(hub: HubState) -> None:
    waiting(hub, "t1")
    open_doctor(hub, "dr")
    with refused(ErrorCode.FORBIDDEN):
        hub.cancel("dr")
    assert set(hub.tickets) == {"t1"}


def test_overdue_returns_each_ticket_once(hub: HubState) -> None:
    waiting(hub, "early", at=T0)
    waiting(hub, "late", at=T0 + 100)

    assert hub.overdue(now=T0 + 299, wait_s=300) == []
    assert [t.id for t in hub.overdue(now=T0 + 300, wait_s=300)] == ["early"]
    assert hub.overdue(now=T0 + 301, wait_s=300) == []
    assert [t.id for t in hub.overdue(now=T0 + 1000, wait_s=300)] == ["late"]
    assert hub.overdue(now=T0 + 5000, wait_s=300) == []


def test_renew_keeps_the_place_and_restarts_the_no_doctor_timer(hub: HubState) -> None:
    waiting(hub, "first", at=T0)
    waiting(hub, "second", at=T0 + 10)
    assert [t.id for t in hub.overdue(now=T0 + 300, wait_s=300)] == ["first"]

    renewed = hub.renew("cab-first", now=T0 + 400)

    assert renewed.enqueued_at == T0
    assert renewed.notify_after == T0 + 400
    assert not renewed.no_doctor_notified
    assert hub.queue(("bv-a",)).position("first") == 1
    assert [t.id for t in hub.overdue(now=T0 + 699, wait_s=300)] == ["second"]
    assert [t.id for t in hub.overdue(now=T0 + 700, wait_s=300)] == ["first"]


def test_renew_without_a_ticket_is_refused(hub: HubState) -> None:
    open_cabin(hub, "cab")
    with refused(ErrorCode.NOT_QUEUED):
        hub.renew("cab", now=T0)


# -- accept and presence -------------------------------------------------------------------


def test_accept_starts_a_call_between_the_cabin_and_the_doctor(hub: HubState) -> None:
    waiting(hub, "t1", at=T0)
    open_doctor(hub, "dr")

    call = hub.accept(ticket_id="t1", doctor_session="dr", call_id="c1", now=T0 + 42)

    assert call == Call(
        id="c1",
        ticket="t1",
        cabin_session="cab-t1",
        doctor_session="dr",
        hospital="bv-a",
        started_at=T0 + 42,
        waited_s=42,
        queue="bv-a",
    )
    assert hub.tickets == {}
    assert hub.sessions["cab-t1"].call == "c1"
    assert hub.sessions["cab-t1"].ticket is None
    assert hub.sessions["dr"].call == "c1"
    assert call.peer_of("cab-t1") == "dr"
    assert call.peer_of("dr") == "cab-t1"
    assert call.peer_of("stranger") is None


def test_an_any_hospital_call_belongs_to_the_doctors_hospital(hub: HubState) -> None:
    waiting(hub, "t1", hospital=None)
    open_doctor(hub, "dr", ("bv-b", "bv-c"))
    call = hub.accept(ticket_id="t1", doctor_session="dr", call_id="c1", now=T0)
    assert call.hospital == "bv-b"


def test_only_one_doctor_wins_a_ticket(hub: HubState) -> None:
    waiting(hub, "t1")
    for name in ("dr-1", "dr-2", "dr-3"):
        open_doctor(hub, name)

    hub.accept(ticket_id="t1", doctor_session="dr-1", call_id="c1", now=T0)
    for name in ("dr-2", "dr-3"):
        with refused(ErrorCode.ALREADY_TAKEN):
            hub.accept(ticket_id="t1", doctor_session=name, call_id=f"c-{name}", now=T0)

    assert set(hub.calls) == {"c1"}
    assert hub.sessions["dr-2"].call is None


def test_an_unknown_ticket_is_no_such_ticket_not_already_taken(hub: HubState) -> None:
    open_doctor(hub, "dr")
    with refused(ErrorCode.NO_SUCH_TICKET):
        hub.accept(ticket_id="nope", doctor_session="dr", call_id="c1", now=T0)


def test_a_cancelled_ticket_is_no_such_ticket(hub: HubState) -> None:
    waiting(hub, "t1")
    hub.cancel("cab-t1")
    open_doctor(hub, "dr")
    with refused(ErrorCode.NO_SUCH_TICKET):
        hub.accept(ticket_id="t1", doctor_session="dr", call_id="c1", now=T0)


def test_a_doctor_cannot_take_another_hospitals_resident(hub: HubState) -> None:
    waiting(hub, "t1", hospital="bv-a")
    open_doctor(hub, "dr-b", ("bv-b",))
    with refused(ErrorCode.FORBIDDEN):
        hub.accept(ticket_id="t1", doctor_session="dr-b", call_id="c1", now=T0)
    assert set(hub.tickets) == {"t1"}
    assert hub.calls == {}


@pytest.mark.parametrize("role", [Role.CABIN, Role.ADMIN])
def test_only_a_doctor_may_accept(hub: HubState, role: Role) -> None:
    waiting(hub, "t1")
    hub.open_session(record("s", role, hospitals=("bv-a",)), max_per_identity=LIMIT)
    with refused(ErrorCode.FORBIDDEN):
        hub.accept(ticket_id="t1", doctor_session="s", call_id="c1", now=T0)
    assert hub.calls == {}


def test_a_doctor_in_a_call_cannot_take_another(hub: HubState) -> None:
    call = in_call(hub)
    waiting(hub, "t2")
    with refused(ErrorCode.DOCTOR_BUSY):
        hub.accept(ticket_id="t2", doctor_session=call.doctor_session, call_id="c2", now=T0)
    assert set(hub.tickets) == {"t2"}


def test_a_doctor_is_busy_during_a_call_and_available_after(hub: HubState) -> None:
    call = in_call(hub)
    assert hub.sessions[call.doctor_session].presence is Presence.BUSY
    assert hub.queue(("bv-a",)).busy == 1

    hub.hang_up(session_id=call.cabin_session, call_id=call.id)

    assert hub.sessions[call.doctor_session].presence is Presence.AVAILABLE
    assert hub.queue(("bv-a",)).available == 1


def test_a_presence_set_during_a_call_applies_after_it(hub: HubState) -> None:
    call = in_call(hub)

    shown = hub.set_presence(call.doctor_session, Presence.AWAY)

    assert shown.presence is Presence.BUSY
    assert hub.sessions[call.doctor_session].presence is Presence.BUSY
    hub.hang_up(session_id=call.doctor_session, call_id=call.id)
    assert hub.sessions[call.doctor_session].presence is Presence.AWAY


def test_a_doctor_who_was_away_returns_to_away(hub: HubState) -> None:
    waiting(hub, "t1")
    open_doctor(hub, "dr", presence=Presence.AWAY)
    call = hub.accept(ticket_id="t1", doctor_session="dr", call_id="c1", now=T0)
    hub.hang_up(session_id="dr", call_id=call.id)
    assert hub.sessions["dr"].presence is Presence.AWAY


@pytest.mark.parametrize("role", [Role.CABIN, Role.ADMIN])
def test_only_a_doctor_sets_presence(hub: HubState, role: Role) -> None:
    hub.open_session(record("s", role), max_per_identity=LIMIT)
    with refused(ErrorCode.FORBIDDEN):
        hub.set_presence("s", Presence.AVAILABLE)


# -- hang up -------------------------------------------------------------------------------


def test_either_party_hangs_up_and_both_are_free(hub: HubState) -> None:
    for call_id, by_cabin in (("c1", True), ("c2", False)):
        call = in_call(hub, call_id)
        who = call.cabin_session if by_cabin else call.doctor_session
        assert hub.hang_up(session_id=who, call_id=call.id) == call
        assert call.id not in hub.calls
        assert hub.sessions[call.cabin_session].call is None
        assert hub.sessions[call.doctor_session].call is None


def test_a_stranger_cannot_hang_up_a_call(hub: HubState) -> None:
    call = in_call(hub)
    open_doctor(hub, "stranger")
    with refused(ErrorCode.NOT_IN_CALL):
        hub.hang_up(session_id="stranger", call_id=call.id)
    assert call.id in hub.calls


def test_hanging_up_another_call_id_is_not_in_call(hub: HubState) -> None:
    first = in_call(hub, "c1")
    second = in_call(hub, "c2")
    with refused(ErrorCode.NOT_IN_CALL):
        hub.hang_up(session_id=first.cabin_session, call_id=second.id)
    assert set(hub.calls) == {"c1", "c2"}
    with refused(ErrorCode.NOT_IN_CALL):
        hub.hang_up(session_id=first.cabin_session, call_id="no-such-call")


def test_hanging_up_twice_is_not_in_call(hub: HubState) -> None:
    call = in_call(hub)
    hub.hang_up(session_id=call.cabin_session, call_id=call.id)
    with refused(ErrorCode.NOT_IN_CALL):
        hub.hang_up(session_id=call.doctor_session, call_id=call.id)


def test_an_ended_call_is_no_such_ticket_for_a_late_accept(hub: HubState) -> None:
    call = in_call(hub)
    hub.hang_up(session_id=call.cabin_session, call_id=call.id)
    open_doctor(hub, "late")
    with refused(ErrorCode.NO_SUCH_TICKET):
        hub.accept(ticket_id=call.ticket, doctor_session="late", call_id="c9", now=T0)


# -- park, resume, expire, close -----------------------------------------------------------


def test_park_keeps_the_ticket_and_the_call(hub: HubState) -> None:
    call = in_call(hub)
    waiting(hub, "t2")

    parked_cabin = hub.park(call.cabin_session, until=T0 + GRACE_S)
    parked_queued = hub.park("cab-t2", until=T0 + GRACE_S)

    assert parked_cabin is not None
    assert parked_cabin.call == call
    assert parked_cabin.ticket is None
    assert parked_cabin.session.parked_until == T0 + GRACE_S
    assert parked_queued is not None
    assert parked_queued.ticket == hub.tickets["t2"]
    assert parked_queued.call is None
    assert hub.park("nobody", until=T0) is None
    assert hub.stats().parked == 2


def test_resume_rotates_the_token_and_reports_the_previous_node(hub: HubState) -> None:
    call = in_call(hub)
    hub.park(call.cabin_session, until=T0 + GRACE_S)

    resumed = hub.resume(
        hash_of(call.cabin_session), node="node-b", new_resume_hash=hash_of(call.cabin_session, 1)
    )

    assert resumed is not None
    assert resumed.previous_node == "node-a"
    assert resumed.was_parked
    assert resumed.call == call
    assert resumed.session.node == "node-b"
    assert resumed.session.parked_until is None
    assert resumed.session.resume_hash == hash_of(call.cabin_session, 1)
    # the old token is spent; the new one works once
    assert hub.resume(hash_of(call.cabin_session), node="node-c", new_resume_hash="x") is None
    again = hub.resume(hash_of(call.cabin_session, 1), node="node-c", new_resume_hash="y")
    assert again is not None
    assert again.previous_node == "node-b"


def test_resume_of_a_live_connection_is_not_was_parked(hub: HubState) -> None:
    waiting(hub, "t1")
    resumed = hub.resume(hash_of("cab-t1"), node="node-a", new_resume_hash="new")
    assert resumed is not None
    assert not resumed.was_parked
    assert resumed.ticket == hub.tickets["t1"]


def test_resume_with_an_unknown_token_fails(hub: HubState) -> None:
    open_cabin(hub, "cab")
    assert hub.resume("not-a-hash", node="node-a", new_resume_hash="new") is None


def test_expire_waits_for_the_grace_window(hub: HubState) -> None:
    waiting(hub, "t1")
    hub.park("cab-t1", until=T0 + GRACE_S)

    assert hub.expire(now=T0 + GRACE_S - 0.001) == []
    assert "t1" in hub.tickets

    [closed] = hub.expire(now=T0 + GRACE_S)
    assert closed.cancelled_ticket is not None
    assert closed.cancelled_ticket.id == "t1"
    assert closed.ended_call is None
    assert hub.tickets == {}
    assert "cab-t1" not in hub.sessions
    assert hub.expire(now=T0 + 10 * GRACE_S) == []


def test_expire_ends_the_call_and_frees_the_doctor(hub: HubState) -> None:
    call = in_call(hub)
    hub.park(call.cabin_session, until=T0 + GRACE_S)
    assert hub.expire(now=T0 + 1) == []
    assert call.id in hub.calls

    [closed] = hub.expire(now=T0 + GRACE_S + 1)

    assert closed.ended_call == call
    assert hub.calls == {}
    doctor = hub.sessions[call.doctor_session]
    assert doctor.call is None
    assert doctor.presence is Presence.AVAILABLE
    assert hub.presence_before_call == {}


def test_a_resumed_session_does_not_expire(hub: HubState) -> None:
    waiting(hub, "t1")
    hub.park("cab-t1", until=T0 + GRACE_S)
    hub.resume(hash_of("cab-t1"), node="node-a", new_resume_hash="new")
    assert hub.expire(now=T0 + 10 * GRACE_S) == []
    assert "t1" in hub.tickets


def test_a_parked_doctor_who_expires_ends_the_call_for_the_cabin(hub: HubState) -> None:
    call = in_call(hub)
    hub.park(call.doctor_session, until=T0 + GRACE_S)
    [closed] = hub.expire(now=T0 + GRACE_S)
    assert closed.ended_call == call
    assert hub.sessions[call.cabin_session].call is None
    assert hub.presence_before_call == {}


def test_close_cancels_the_ticket_and_ends_the_call(hub: HubState) -> None:
    call = in_call(hub)
    waiting(hub, "t2")

    closed_call = hub.close(call.doctor_session, now=T0)
    closed_ticket = hub.close("cab-t2", now=T0)

    assert closed_call is not None
    assert closed_call.ended_call == call
    assert closed_call.session.id == call.doctor_session
    assert closed_ticket is not None
    assert closed_ticket.cancelled_ticket is not None
    assert closed_ticket.cancelled_ticket.id == "t2"
    assert hub.calls == {}
    assert hub.tickets == {}
    assert hub.sessions[call.cabin_session].call is None
    assert hub.close("cab-t2", now=T0) is None


# -- sessions and tokens -------------------------------------------------------------------


def test_a_new_doctor_starts_away_and_a_cabin_has_no_presence(hub: HubState) -> None:
    open_doctor(hub, "dr", presence=None)
    open_cabin(hub, "cab")
    assert hub.sessions["dr"].presence is Presence.AWAY
    assert hub.sessions["cab"].presence is None


def test_connections_per_identity_are_limited(hub: HubState) -> None:
    for n in range(2):
        hub.open_session(record(f"s{n}", Role.CABIN, identity="fleet|dkc-01"), max_per_identity=2)
    with refused(ErrorCode.TOO_MANY_CONNECTIONS):
        hub.open_session(record("s2", Role.CABIN, identity="fleet|dkc-01"), max_per_identity=2)
    hub.open_session(record("other", Role.CABIN, identity="fleet|dkc-02"), max_per_identity=2)

    hub.close("s0", now=T0)
    hub.open_session(record("s2", Role.CABIN, identity="fleet|dkc-01"), max_per_identity=2)
    assert {s.id for s in hub.sessions.values() if s.identity == "fleet|dkc-01"} == {"s1", "s2"}


def test_a_parked_session_still_counts_towards_the_limit(hub: HubState) -> None:
    hub.open_session(record("s0", Role.CABIN, identity="fleet|dkc-01"), max_per_identity=1)
    hub.park("s0", until=T0 + GRACE_S)
    with refused(ErrorCode.TOO_MANY_CONNECTIONS):
        hub.open_session(record("s1", Role.CABIN, identity="fleet|dkc-01"), max_per_identity=1)


def test_a_session_id_is_never_reused(hub: HubState) -> None:
    open_cabin(hub, "s")
    with refused(ErrorCode.INTERNAL):
        hub.open_session(record("s", Role.CABIN, identity="other"), max_per_identity=LIMIT)


def test_a_token_id_is_claimed_once(hub: HubState) -> None:
    assert hub.claim_token("jti-1", until=T0 + 600, now=T0)
    assert not hub.claim_token("jti-1", until=T0 + 600, now=T0 + 1)
    assert not hub.claim_token("jti-1", until=T0 + 600, now=T0 + 600)
    assert hub.claim_token("jti-2", until=T0 + 600, now=T0 + 1)


def test_a_claimed_token_id_is_forgotten_after_its_expiry(hub: HubState) -> None:
    hub.claim_token("jti-1", until=T0 + 600, now=T0)
    hub.claim_token("jti-2", until=T0 + 60, now=T0)
    assert hub.claim_token("jti-3", until=T0 + 700, now=T0 + 601)
    hub.expire(now=T0 + 601)  # the sweep forgets expired ids
    assert set(hub.claimed_tokens) == {"jti-3"}
    assert hub.claim_token("jti-1", until=T0 + 1200, now=T0 + 602)


def test_stats_count_sessions_queues_and_calls(hub: HubState) -> None:
    in_call(hub)
    waiting(hub, "t2", hospital=None)
    waiting(hub, "t3", hospital="bv-b")
    hub.open_session(record("ops", Role.ADMIN), max_per_identity=LIMIT)
    hub.park("cab-t3", until=T0 + GRACE_S)

    stats = hub.stats()

    assert stats.sessions == {"cabin": 3, "doctor": 1, "admin": 1}
    assert stats.parked == 1
    assert stats.queued == {ANY_HOSPITAL: 1, "bv-b": 1}
    assert stats.calls == 1
    assert stats.nodes == ("node-a",)


# -- invariants under random sequences -----------------------------------------------------

HOSPITAL_SETS = [("bv-a",), ("bv-b",), ("bv-a", "bv-b")]
TICKET_HOSPITALS = [None, "bv-a", "bv-b", "bv-c"]
VIEWS = [*HOSPITAL_SETS, ("bv-c",), (ANY_HOSPITAL,)]


class HubMachine(RuleBasedStateMachine):
    """Random sessions, tickets, accepts, hang-ups, drops, resumes and expiries."""

    def __init__(self) -> None:
        super().__init__()
        self.hub = HubState(node="node-a")
        self.now = T0
        self.ids: Iterator[int] = itertools.count(1)
        self.generation: dict[str, int] = {}

    @initialize()
    def start(self) -> None:
        for name in ("cab-a", "cab-b", "cab-c"):
            open_cabin(self.hub, name)
        open_doctor(self.hub, "dr-a", ("bv-a",))
        open_doctor(self.hub, "dr-ab", ("bv-a", "bv-b"))

    def _pick(self, data: st.DataObject, *roles: Role) -> str:
        """A live session of one of these roles (any role when none is given)."""
        ids = sorted(s.id for s in self.hub.sessions.values() if not roles or s.role in roles)
        return data.draw(st.sampled_from(ids)) if ids else "gone"

    def _attempt(self, allowed: set[ErrorCode], action: Callable[[], object]) -> None:
        """Run a transition; a refusal must be one of the ``allowed`` codes."""
        try:
            action()
        except ProtocolError as exc:
            refused = exc.code
        else:
            return
        assert refused in allowed, refused

    # -- rules ---------------------------------------------------------------------------------

    @rule(hospitals=st.sampled_from([(), ("bv-a",)]))
    def open_a_cabin(self, hospitals: tuple[str, ...]) -> None:
        open_cabin(self.hub, f"cab-{next(self.ids)}", hospitals=hospitals)

    @rule(
        hospitals=st.sampled_from(HOSPITAL_SETS),
        presence=st.sampled_from([None, *Presence]),
    )
    def open_a_doctor(self, hospitals: tuple[str, ...], presence: Presence | None) -> None:
        open_doctor(self.hub, f"dr-{next(self.ids)}", hospitals, presence=presence)

    @rule()
    def open_an_admin(self) -> None:
        name = f"ops-{next(self.ids)}"
        self.hub.open_session(record(name, Role.ADMIN), max_per_identity=LIMIT)

    @rule(
        data=st.data(),
        hospital=st.sampled_from(TICKET_HOSPITALS),
        urgency=st.sampled_from(Urgency),
    )
    def enqueue(self, data: st.DataObject, hospital: str | None, urgency: Urgency) -> None:
        session = self._pick(data, Role.CABIN)
        before = self.hub.sessions.get(session)
        new = ticket(
            f"t-{next(self.ids)}", session, hospital=hospital, urgency=urgency, at=self.now
        )
        if before is None:
            expected = ErrorCode.NOT_AUTHENTICATED
        elif before.call is not None:
            expected = ErrorCode.IN_CALL
        elif before.ticket is not None:
            expected = ErrorCode.ALREADY_QUEUED
        else:
            assert self.hub.enqueue(new).id == new.id
            return
        with refused(expected):
            self.hub.enqueue(new)

    @rule(data=st.data())
    def someone_else_enqueues(self, data: st.DataObject) -> None:
        session = self._pick(data, Role.DOCTOR, Role.ADMIN)
        allowed = {ErrorCode.FORBIDDEN, ErrorCode.NOT_AUTHENTICATED}
        self._attempt(allowed, lambda: self.hub.enqueue(ticket(f"t-{next(self.ids)}", session)))

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        session = self._pick(data, Role.CABIN)
        before = self.hub.sessions.get(session)
        allowed = {ErrorCode.NOT_QUEUED, ErrorCode.NOT_AUTHENTICATED}
        self._attempt(allowed, lambda: self.hub.cancel(session))
        if before is not None and before.ticket is not None:
            assert before.ticket not in self.hub.tickets

    @rule(data=st.data())
    def renew(self, data: st.DataObject) -> None:
        session = self._pick(data, Role.CABIN)
        before = self.hub.sessions.get(session)
        queued = self.hub.tickets.get(before.ticket) if before and before.ticket else None
        allowed = {ErrorCode.NOT_QUEUED, ErrorCode.NOT_AUTHENTICATED}
        self._attempt(allowed, lambda: self.hub.renew(session, now=self.now))
        if queued is not None:
            renewed = self.hub.tickets[queued.id]
            assert renewed.enqueued_at == queued.enqueued_at
            assert renewed.notify_after == self.now

    @rule(data=st.data(), presence=st.sampled_from(Presence))
    def set_presence(self, data: st.DataObject, presence: Presence) -> None:
        session = self._pick(data)
        allowed = {ErrorCode.FORBIDDEN, ErrorCode.NOT_AUTHENTICATED}
        self._attempt(allowed, lambda: self.hub.set_presence(session, presence))

    @precondition(lambda self: bool(self.hub.tickets) or bool(self.hub.calls))
    @rule(data=st.data())
    def accept(self, data: st.DataObject) -> None:
        doctor_id = self._pick(data, Role.DOCTOR)
        taken = sorted(c.ticket for c in self.hub.calls.values())
        ticket_id = data.draw(st.sampled_from([*sorted(self.hub.tickets), *taken, "t-none"]))
        doctor = self.hub.sessions.get(doctor_id)
        waiting = self.hub.tickets.get(ticket_id)
        call_id = f"c-{next(self.ids)}"

        def accept() -> Call:
            return self.hub.accept(
                ticket_id=ticket_id, doctor_session=doctor_id, call_id=call_id, now=self.now
            )

        if doctor is None:
            expected = ErrorCode.NOT_AUTHENTICATED
        elif waiting is None:
            expected = ErrorCode.ALREADY_TAKEN if ticket_id in taken else ErrorCode.NO_SUCH_TICKET
        elif not waiting.visible_to(doctor.hospitals):
            expected = ErrorCode.FORBIDDEN
        elif doctor.call is not None:
            expected = ErrorCode.DOCTOR_BUSY
        else:
            call = accept()
            assert (call.ticket, call.cabin_session, call.doctor_session) == (
                ticket_id,
                waiting.session,
                doctor_id,
            )
            assert call.hospital in doctor.hospitals
            assert self.hub.presence_before_call[doctor_id] == doctor.presence
            return
        with refused(expected):
            accept()

    def _matches(self) -> list[tuple[str, str]]:
        """(free doctor, ticket it may take) pairs."""
        return [
            (d.id, t.id)
            for d in self.hub.sessions.values()
            if d.role is Role.DOCTOR and d.call is None
            for t in self.hub.tickets.values()
            if t.visible_to(d.hospitals)
        ]

    @precondition(lambda self: bool(self._matches()))
    @rule(data=st.data())
    def a_free_doctor_takes_a_resident(self, data: st.DataObject) -> None:
        doctor, ticket_id = data.draw(st.sampled_from(sorted(self._matches())))
        call = self.hub.accept(
            ticket_id=ticket_id, doctor_session=doctor, call_id=f"c-{next(self.ids)}", now=self.now
        )
        assert self.hub.sessions[doctor].call == call.id

    @precondition(lambda self: bool(self.hub.tickets))
    @rule(data=st.data())
    def someone_else_accepts(self, data: st.DataObject) -> None:
        session = self._pick(data, Role.CABIN, Role.ADMIN)
        ticket_id = data.draw(st.sampled_from(sorted(self.hub.tickets)))
        with refused(ErrorCode.NOT_AUTHENTICATED if session == "gone" else ErrorCode.FORBIDDEN):
            self.hub.accept(ticket_id=ticket_id, doctor_session=session, call_id="c-x", now=0)

    @precondition(lambda self: bool(self.hub.calls))
    @rule(data=st.data(), party=st.booleans())
    def hang_up(self, data: st.DataObject, party: bool) -> None:
        call = self.hub.calls[data.draw(st.sampled_from(sorted(self.hub.calls)))]
        if party:
            session = data.draw(st.sampled_from([call.cabin_session, call.doctor_session]))
            assert self.hub.hang_up(session_id=session, call_id=call.id) == call
            assert call.id not in self.hub.calls
            return
        session = self._pick(data)
        if session in (call.cabin_session, call.doctor_session):
            return
        with refused(ErrorCode.NOT_IN_CALL if session != "gone" else ErrorCode.NOT_AUTHENTICATED):
            self.hub.hang_up(session_id=session, call_id=call.id)

    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        self.hub.park(self._pick(data), until=self.now + GRACE_S)

    @rule(data=st.data(), node=st.sampled_from(["node-a", "node-b"]))
    def resume(self, data: st.DataObject, node: str) -> None:
        session = self._pick(data)
        generation = self.generation.get(session, 0)
        rotated = hash_of(session, generation + 1)
        resumed = self.hub.resume(hash_of(session, generation), node=node, new_resume_hash=rotated)
        if session in self.hub.sessions:
            assert resumed is not None
            assert resumed.session.id == session
            assert not resumed.session.parked
            self.generation[session] = generation + 1
        else:
            assert resumed is None

    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        self.hub.close(self._pick(data), now=self.now)

    @rule(seconds=st.sampled_from([1.0, 30.0, GRACE_S, 300.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        for closed in self.hub.expire(now=self.now):
            assert closed.session.parked_until is not None
            assert closed.session.parked_until <= self.now
        assert all(
            s.parked_until is None or s.parked_until > self.now for s in self.hub.sessions.values()
        )
        notified = self.hub.overdue(now=self.now, wait_s=300.0)
        assert len({t.id for t in notified}) == len(notified)
        assert self.hub.overdue(now=self.now, wait_s=300.0) == []

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def a_ticket_is_never_both_queued_and_in_a_call(self) -> None:
        in_calls = {c.ticket for c in self.hub.calls.values()}
        assert not in_calls & set(self.hub.tickets)

    @invariant()
    def every_call_is_held_by_exactly_its_two_sessions(self) -> None:
        for call in self.hub.calls.values():
            cabin = self.hub.sessions[call.cabin_session]
            doctor = self.hub.sessions[call.doctor_session]
            assert cabin.role is Role.CABIN
            assert doctor.role is Role.DOCTOR
            assert cabin.call == call.id
            assert doctor.call == call.id
        holders = [s.call for s in self.hub.sessions.values() if s.call is not None]
        assert sorted(holders) == sorted([c for c in self.hub.calls for _ in range(2)])

    @invariant()
    def every_ticket_is_held_by_its_cabin(self) -> None:
        for queued in self.hub.tickets.values():
            assert self.hub.sessions[queued.session].ticket == queued.id
        for session in self.hub.sessions.values():
            if session.ticket is not None:
                assert self.hub.tickets[session.ticket].session == session.id

    @invariant()
    def a_session_has_at_most_one_of_ticket_and_call(self) -> None:
        for session in self.hub.sessions.values():
            assert session.ticket is None or session.call is None

    @invariant()
    def a_doctor_in_a_call_is_busy(self) -> None:
        for session in self.hub.sessions.values():
            if session.role is Role.DOCTOR:
                assert session.presence is not None
                if session.call is not None:
                    assert session.presence is Presence.BUSY
        in_calls = {c.doctor_session for c in self.hub.calls.values()}
        assert set(self.hub.presence_before_call) == in_calls

    @invariant()
    def queue_views_are_sorted(self) -> None:
        for hospitals in VIEWS:
            view = self.hub.queue(hospitals)
            keys = [t.sort_key for t in view.tickets]
            assert keys == sorted(keys)
            assert all(t.visible_to(hospitals) for t in view.tickets)
            assert view.available + view.busy + view.away <= sum(
                1 for s in self.hub.sessions.values() if s.role is Role.DOCTOR
            )


HubMachine.TestCase.settings = settings(
    max_examples=80,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_hub_state_invariants = HubMachine.TestCase
