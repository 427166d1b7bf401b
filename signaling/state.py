"""The signaling state machine: sessions, waiting queues, doctors' presence and calls.

Pure: no I/O, no clock (every transition takes ``now``), no message sending. Each method is
one atomic transition and returns what changed, so the caller knows whom to tell. The
in-memory backplane wraps one :class:`HubState`; the Redis backplane implements the same
transitions as Lua scripts, and the backplane contract tests hold both to this behaviour.

Transitions::

    open ──▶ live ──drop──▶ parked ──resume──▶ live (same session, new connection)
                 │              └──grace over──▶ closed (ticket cancelled, call ended)
                 └──bye──▶ closed

    cabin:  enqueue ──▶ ticket waiting ──accept──▶ call ──hang up──▶ idle
                               └──cancel──▶ idle
    doctor: presence available | busy | away; busy while in a call, back to what it was after.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from signaling.codes import ErrorCode
from signaling.errors import ProtocolError
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
)


@dataclass(slots=True)
class HubState:
    """All of one deployment's signaling state, held by a single node."""

    node: str
    sessions: dict[str, SessionRecord] = field(default_factory=dict)
    tickets: dict[str, Ticket] = field(default_factory=dict)
    calls: dict[str, Call] = field(default_factory=dict)
    presence_before_call: dict[str, Presence] = field(default_factory=dict)
    claimed_tokens: dict[str, float] = field(default_factory=dict)

    # -- tokens ------------------------------------------------------------------------------

    def claim_token(self, token_id: str, *, until: float, now: float) -> bool:
        """Record a token id as used; False when it was used before (a replay).

        A remembered id that has expired counts as unknown; :meth:`expire` forgets them.
        """
        end = self.claimed_tokens.get(token_id)
        if end is not None and end >= now:
            return False
        self.claimed_tokens[token_id] = until
        return True

    # -- sessions ----------------------------------------------------------------------------

    def open_session(self, record: SessionRecord, *, max_per_identity: int) -> None:
        """Register a new session; refuses past the identity's connection limit."""
        if record.id in self.sessions:
            raise ProtocolError(ErrorCode.INTERNAL, "session id reused")
        count = sum(1 for s in self.sessions.values() if s.identity == record.identity)
        if count >= max_per_identity:
            raise ProtocolError(ErrorCode.TOO_MANY_CONNECTIONS)
        presence = Presence.AWAY if record.role is Role.DOCTOR else None
        self.sessions[record.id] = replace(record, presence=presence, parked_until=None)

    def session(self, session_id: str) -> SessionRecord | None:
        return self.sessions.get(session_id)

    def park(self, session_id: str, *, until: float) -> Parked | None:
        """The connection dropped: keep the session, its ticket and its call until ``until``."""
        record = self.sessions.get(session_id)
        if record is None:
            return None
        record = replace(record, parked_until=until)
        self.sessions[session_id] = record
        return Parked(
            session=record,
            call=self.calls.get(record.call) if record.call else None,
            ticket=self.tickets.get(record.ticket) if record.ticket else None,
        )

    def resume(self, resume_hash: str, *, node: str, new_resume_hash: str) -> Resumed | None:
        """Hand the session holding this resume token to a new connection on ``node``.

        Works whether the old connection is parked or still open somewhere (a half-open TCP
        connection): the old one is told it was replaced. The token is single-use: the session
        gets ``new_resume_hash``.
        """
        record = next((s for s in self.sessions.values() if s.resume_hash == resume_hash), None)
        if record is None:
            return None
        previous_node, was_parked = record.node, record.parked
        record = replace(record, node=node, resume_hash=new_resume_hash, parked_until=None)
        self.sessions[record.id] = record
        return Resumed(
            session=record,
            previous_node=previous_node,
            was_parked=was_parked,
            call=self.calls.get(record.call) if record.call else None,
            ticket=self.tickets.get(record.ticket) if record.ticket else None,
        )

    def close(self, session_id: str, *, now: float) -> Closed | None:
        """End the session: cancel its ticket, end its call, forget it."""
        record = self.sessions.pop(session_id, None)
        if record is None:
            return None
        ticket = self.tickets.pop(record.ticket, None) if record.ticket else None
        call = self._end_call(record.call) if record.call else None
        self.presence_before_call.pop(session_id, None)
        return Closed(session=record, ended_call=call, cancelled_ticket=ticket)

    def expire(self, *, now: float) -> list[Closed]:
        """Close every parked session whose grace window is over; forget expired token ids."""
        for stale in [jti for jti, end in self.claimed_tokens.items() if end < now]:
            del self.claimed_tokens[stale]
        due = [
            s.id
            for s in self.sessions.values()
            if s.parked_until is not None and s.parked_until <= now
        ]
        return [closed for sid in due if (closed := self.close(sid, now=now)) is not None]

    # -- queue -------------------------------------------------------------------------------

    def enqueue(self, ticket: Ticket) -> Ticket:
        """Put a cabin's resident in the waiting queue."""
        ticket = replace(ticket, notify_after=max(ticket.notify_after, ticket.enqueued_at))
        record = self._live(ticket.session, Role.CABIN)
        if record.call is not None:
            raise ProtocolError(ErrorCode.IN_CALL)
        if record.ticket is not None:
            raise ProtocolError(ErrorCode.ALREADY_QUEUED)
        self.tickets[ticket.id] = ticket
        self.sessions[record.id] = replace(record, ticket=ticket.id)
        return ticket

    def cancel(self, session_id: str) -> Ticket:
        """The cabin no longer wants a doctor."""
        record = self._live(session_id, Role.CABIN)
        ticket = self.tickets.pop(record.ticket, None) if record.ticket else None
        if ticket is None:
            raise ProtocolError(ErrorCode.NOT_QUEUED)
        self.sessions[record.id] = replace(record, ticket=None)
        return ticket

    def renew(self, session_id: str, *, now: float) -> Ticket:
        """The cabin chose to keep waiting after being told no doctor came: restart the timer.

        The place in the queue is kept (``enqueued_at`` is unchanged): waiting longer must not
        move a resident back.
        """
        record = self._live(session_id, Role.CABIN)
        ticket = self.tickets.get(record.ticket) if record.ticket else None
        if ticket is None:
            raise ProtocolError(ErrorCode.NOT_QUEUED)
        renewed = replace(ticket, no_doctor_notified=False, notify_after=now)
        self.tickets[ticket.id] = renewed
        return renewed

    def overdue(self, *, now: float, wait_s: float) -> list[Ticket]:
        """Tickets that have waited ``wait_s`` with no doctor, each returned once."""
        due = [
            t
            for t in self.tickets.values()
            if not t.no_doctor_notified and now - t.notify_after >= wait_s
        ]
        for ticket in due:
            self.tickets[ticket.id] = replace(ticket, no_doctor_notified=True)
        return due

    def queue(self, hospitals: tuple[str, ...]) -> QueueView:
        """The tickets these hospitals' doctors see, most urgent and longest waiting first.

        The doctor counts are of the doctors of these hospitals; a view that includes
        :data:`ANY_HOSPITAL` counts every doctor, since any of them may take those tickets.
        """
        tickets = sorted(
            (t for t in self.tickets.values() if t.visible_to(hospitals)),
            key=lambda t: t.sort_key,
        )
        counts = dict.fromkeys(Presence, 0)
        everyone = ANY_HOSPITAL in hospitals  # any hospital's doctor may take a `*` ticket
        for record in self.sessions.values():
            if (
                record.role is Role.DOCTOR
                and record.presence is not None
                and record.parked_until is None
                and (everyone or any(h in hospitals for h in record.hospitals))
            ):
                counts[record.presence] += 1
        return QueueView(
            hospitals=hospitals,
            tickets=tuple(tickets),
            available=counts[Presence.AVAILABLE],
            busy=counts[Presence.BUSY],
            away=counts[Presence.AWAY],
        )

    # -- doctors and calls -------------------------------------------------------------------

    def set_presence(self, session_id: str, presence: Presence) -> SessionRecord:
        """A doctor says whether they can take residents; in a call it is remembered for after."""
        record = self._live(session_id, Role.DOCTOR)
        if record.call is not None:
            self.presence_before_call[session_id] = presence
            return record
        record = replace(record, presence=presence)
        self.sessions[session_id] = record
        return record

    def accept(self, *, ticket_id: str, doctor_session: str, call_id: str, now: float) -> Call:
        """A doctor takes a waiting resident: one atomic step, so only one doctor wins."""
        doctor = self._live(doctor_session, Role.DOCTOR)
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            taken = any(c.ticket == ticket_id for c in self.calls.values())
            raise ProtocolError(ErrorCode.ALREADY_TAKEN if taken else ErrorCode.NO_SUCH_TICKET)
        if not ticket.visible_to(doctor.hospitals):
            raise ProtocolError(ErrorCode.FORBIDDEN, "that resident is in another hospital's queue")
        if doctor.call is not None:
            raise ProtocolError(ErrorCode.DOCTOR_BUSY)
        cabin = self.sessions[ticket.session]
        hospital = (
            ticket.hospital
            if ticket.hospital in doctor.hospitals or not doctor.hospitals
            else doctor.hospitals[0]
        )
        call = Call(
            id=call_id,
            ticket=ticket.id,
            cabin_session=cabin.id,
            doctor_session=doctor.id,
            hospital=hospital,
            started_at=now,
            waited_s=max(0.0, now - ticket.enqueued_at),
            queue=ticket.hospital,
        )
        del self.tickets[ticket.id]
        self.calls[call.id] = call
        self.sessions[cabin.id] = replace(cabin, ticket=None, call=call.id)
        self.presence_before_call[doctor.id] = doctor.presence or Presence.AVAILABLE
        self.sessions[doctor.id] = replace(doctor, call=call.id, presence=Presence.BUSY)
        return call

    def hang_up(self, *, session_id: str, call_id: str) -> Call:
        """Either party ends the call."""
        record = self._live(session_id, None)
        if record.call != call_id:
            raise ProtocolError(ErrorCode.NOT_IN_CALL)
        call = self._end_call(call_id)
        if call is None:  # pragma: no cover - record.call always names a live call
            raise ProtocolError(ErrorCode.NOT_IN_CALL)
        return call

    def call(self, call_id: str) -> Call | None:
        return self.calls.get(call_id)

    def stats(self) -> Stats:
        roles = dict.fromkeys((r.value for r in Role), 0)
        queued: dict[str, int] = {}
        for record in self.sessions.values():
            roles[record.role.value] += 1
        for ticket in self.tickets.values():
            queued[ticket.hospital] = queued.get(ticket.hospital, 0) + 1
        return Stats(
            sessions=roles,
            parked=sum(1 for s in self.sessions.values() if s.parked),
            queued=queued,
            calls=len(self.calls),
            nodes=(self.node,),
        )

    # -- helpers -----------------------------------------------------------------------------

    def _live(self, session_id: str, role: Role | None) -> SessionRecord:
        record = self.sessions.get(session_id)
        if record is None:
            raise ProtocolError(ErrorCode.NOT_AUTHENTICATED, "the session has ended")
        if role is not None and record.role is not role:
            raise ProtocolError(ErrorCode.FORBIDDEN, f"only a {role} may do that")
        return record

    def _end_call(self, call_id: str) -> Call | None:
        call = self.calls.pop(call_id, None)
        if call is None:
            return None
        cabin = self.sessions.get(call.cabin_session)
        if cabin is not None:
            self.sessions[cabin.id] = replace(cabin, call=None)
        doctor = self.sessions.get(call.doctor_session)
        if doctor is not None:
            before = self.presence_before_call.pop(doctor.id, Presence.AVAILABLE)
            self.sessions[doctor.id] = replace(doctor, call=None, presence=before)
        return call
