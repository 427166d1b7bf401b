"""The signaling domain as values: triage, tickets in a waiting queue, sessions, calls.

These are what the state machine (``signaling.state``), the backplanes and the connection
handler pass between them. Times are Unix epoch seconds (floats) because several nodes share
them through Redis; every function that needs "now" takes it as an argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

ANY_HOSPITAL = "*"
"""Queue key of a consultation that any hospital's doctor may take."""


class Role(StrEnum):
    """Who is on the other end of a connection (the token's ``role`` claim)."""

    CABIN = "cabin"
    DOCTOR = "doctor"
    ADMIN = "admin"


class Urgency(StrEnum):
    """How soon the resident should be seen; the queue is sorted by this first."""

    EMERGENCY = "emergency"
    URGENT = "urgent"
    ROUTINE = "routine"

    @property
    def rank(self) -> int:
        """0 for the most urgent."""
        return _URGENCY_RANK[self]


_URGENCY_RANK = {Urgency.EMERGENCY: 0, Urgency.URGENT: 1, Urgency.ROUTINE: 2}


class Presence(StrEnum):
    """A doctor's availability; ``busy`` is also set by the service while in a call."""

    AVAILABLE = "available"
    BUSY = "busy"
    AWAY = "away"


@dataclass(frozen=True, slots=True)
class Triage:
    """What the doctors' queue shows about a waiting resident: no name, no ID.

    The signaling service sees no more PHI than this (DESIGN.md); the cabin sends the
    resident's identity and vitals over the call's data channel once a doctor has accepted.
    """

    urgency: Urgency = Urgency.ROUTINE
    flags: tuple[str, ...] = ()
    """Machine codes of the reasons, e.g. ``spo2-low``, ``bp-crisis``, ``sos``."""
    language: str = "vi"
    hospital: str | None = None
    """The hospital the resident asked for; None lets any hospital's doctor take the call."""
    summary: str = ""
    """One short plain sentence for the doctor (≤ 500 characters)."""
    age: int | None = None
    sex: str | None = None

    @property
    def queue_key(self) -> str:
        """The queue the ticket waits in: the hospital, or :data:`ANY_HOSPITAL`."""
        return self.hospital if self.hospital is not None else ANY_HOSPITAL


@dataclass(frozen=True, slots=True)
class Ticket:
    """A resident waiting for a doctor."""

    id: str
    session: str
    """The cabin's session (not its connection: a resumed connection keeps the ticket)."""
    cabin: str
    """The cabin's subject claim, e.g. ``dkc-01``."""
    triage: Triage
    enqueued_at: float
    notify_after: float = 0.0
    """Start of the no-doctor timer: ``enqueued_at``, or when the cabin chose to keep waiting."""
    no_doctor_notified: bool = False

    @property
    def hospital(self) -> str:
        return self.triage.queue_key

    @property
    def sort_key(self) -> tuple[int, float, str]:
        """Urgency first, then waiting time, then the id so that the order is total."""
        return (self.triage.urgency.rank, self.enqueued_at, self.id)

    def visible_to(self, hospitals: tuple[str, ...]) -> bool:
        """Whether a doctor of these hospitals may see and take this ticket."""
        return self.hospital == ANY_HOSPITAL or self.hospital in hospitals


@dataclass(frozen=True, slots=True)
class Call:
    """One consultation between exactly one cabin session and one doctor session."""

    id: str
    ticket: str
    cabin_session: str
    doctor_session: str
    hospital: str
    """The hospital whose doctor took the call."""
    started_at: float
    waited_s: float = 0.0
    """How long the resident waited in the queue before this call."""
    queue: str = ANY_HOSPITAL
    """The queue the ticket waited in (its hospital or ``*``): whose doctors see it leave."""

    def peer_of(self, session: str) -> str | None:
        """The other party's session, or None when ``session`` is not in this call."""
        if session == self.cabin_session:
            return self.doctor_session
        if session == self.doctor_session:
            return self.cabin_session
        return None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A logged-in identity that outlives any one WebSocket connection (resume)."""

    id: str
    role: Role
    identity: str
    """``issuer|subject``: the unit the connections-per-identity limit counts."""
    subject: str
    hospitals: tuple[str, ...]
    node: str
    """The node that holds (or last held) the connection."""
    resume_hash: str = field(repr=False)
    """SHA-256 of the current resume token; the token itself is never stored."""
    presence: Presence | None = None
    ticket: str | None = None
    call: str | None = None
    parked_until: float | None = None
    """Set while the connection is gone: the end of the grace window."""

    @property
    def parked(self) -> bool:
        return self.parked_until is not None


@dataclass(frozen=True, slots=True)
class Parked:
    """A session whose connection dropped: the call's peer is told to wait."""

    session: SessionRecord
    call: Call | None
    ticket: Ticket | None


@dataclass(frozen=True, slots=True)
class Resumed:
    """A session taken over by a new connection (possibly on another node)."""

    session: SessionRecord
    previous_node: str
    was_parked: bool
    call: Call | None
    ticket: Ticket | None


@dataclass(frozen=True, slots=True)
class Closed:
    """A session that ended (hung up, left, or its grace window ran out)."""

    session: SessionRecord
    ended_call: Call | None
    cancelled_ticket: Ticket | None


@dataclass(frozen=True, slots=True)
class QueueView:
    """What a doctor (or the position calculation) sees of some hospitals' queues."""

    hospitals: tuple[str, ...]
    tickets: tuple[Ticket, ...]
    """Sorted by :attr:`Ticket.sort_key`."""
    available: int
    busy: int
    away: int

    def position(self, ticket_id: str) -> int | None:
        """1-based place in this view, or None when the ticket is not in it."""
        for index, ticket in enumerate(self.tickets, start=1):
            if ticket.id == ticket_id:
                return index
        return None


@dataclass(frozen=True, slots=True)
class Stats:
    """Counts for the admin ``stats`` message."""

    sessions: dict[str, int]
    parked: int
    queued: dict[str, int]
    calls: int
    nodes: tuple[str, ...]


def estimated_wait_s(*, position: int, available: int, mean_consult_s: float) -> float | None:
    """A plain estimate of the time to a doctor: whole rounds of consultations ahead.

    With ``available`` doctors taking residents in order, the resident at ``position`` waits
    for ``ceil(position / available) - 1`` full consultations plus the time a doctor needs to
    pick up (counted as half a consultation). None when no doctor is available: the cabin
    says so rather than inventing a number.
    """
    if available <= 0:
        return None
    rounds = -(-position // available) - 1
    return (rounds + 0.5) * mean_consult_s
