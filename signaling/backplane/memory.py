"""The one-node backplane: the state machine in this process, deliveries by function call."""

from __future__ import annotations

import logging

from signaling.backplane import Delivery, DeliveryHandler, QueueChangedHandler
from signaling.model import (
    Call,
    Closed,
    Parked,
    Presence,
    QueueView,
    Resumed,
    SessionRecord,
    Stats,
    Ticket,
)
from signaling.state import HubState

logger = logging.getLogger(__name__)


class MemoryBackplane:
    """All state in one :class:`HubState`; nothing survives the process (one node only)."""

    def __init__(self, *, node: str = "node-1") -> None:
        self.node = node
        self._state = HubState(node=node)
        self._attached: set[str] = set()
        self._on_delivery: DeliveryHandler | None = None
        self._on_queue_changed: QueueChangedHandler | None = None

    async def start(
        self, *, on_delivery: DeliveryHandler, on_queue_changed: QueueChangedHandler
    ) -> None:
        self._on_delivery = on_delivery
        self._on_queue_changed = on_queue_changed

    async def close(self) -> None:
        self._attached.clear()

    async def ping(self) -> None:
        return None

    async def heartbeat(self, *, now: float) -> None:
        return None

    async def adopt_orphans(self, *, now: float, until: float) -> list[Parked]:
        return []

    async def claim_token(self, token_id: str, *, until: float, now: float) -> bool:
        return self._state.claim_token(token_id, until=until, now=now)

    async def open_session(self, record: SessionRecord, *, max_per_identity: int) -> None:
        self._state.open_session(record, max_per_identity=max_per_identity)

    async def session(self, session_id: str) -> SessionRecord | None:
        return self._state.session(session_id)

    async def attach(self, session_id: str) -> None:
        self._attached.add(session_id)

    async def detach(self, session_id: str) -> None:
        self._attached.discard(session_id)

    async def park(self, session_id: str, *, until: float) -> Parked | None:
        return self._state.park(session_id, until=until)

    async def resume(self, resume_hash: str, *, new_resume_hash: str) -> Resumed | None:
        return self._state.resume(resume_hash, node=self.node, new_resume_hash=new_resume_hash)

    async def close_session(self, session_id: str, *, now: float) -> Closed | None:
        return self._state.close(session_id, now=now)

    async def expire(self, *, now: float) -> list[Closed]:
        return self._state.expire(now=now)

    async def enqueue(self, ticket: Ticket) -> Ticket:
        return self._state.enqueue(ticket)

    async def cancel(self, session_id: str) -> Ticket:
        return self._state.cancel(session_id)

    async def renew(self, session_id: str, *, now: float) -> Ticket:
        return self._state.renew(session_id, now=now)

    async def overdue(self, *, now: float, wait_s: float) -> list[Ticket]:
        return self._state.overdue(now=now, wait_s=wait_s)

    async def queue(self, hospitals: tuple[str, ...]) -> QueueView:
        return self._state.queue(hospitals)

    async def set_presence(self, session_id: str, presence: Presence) -> SessionRecord:
        return self._state.set_presence(session_id, presence)

    async def accept(
        self, *, ticket_id: str, doctor_session: str, call_id: str, now: float
    ) -> Call:
        return self._state.accept(
            ticket_id=ticket_id, doctor_session=doctor_session, call_id=call_id, now=now
        )

    async def hang_up(self, *, session_id: str, call_id: str) -> Call:
        return self._state.hang_up(session_id=session_id, call_id=call_id)

    async def call(self, call_id: str) -> Call | None:
        return self._state.call(call_id)

    async def stats(self) -> Stats:
        return self._state.stats()

    async def deliver(self, delivery: Delivery) -> bool:
        if delivery.session not in self._attached or self._on_delivery is None:
            return False
        self._on_delivery(delivery)
        return True

    async def announce(self, queue_key: str) -> None:
        if self._on_queue_changed is not None:
            self._on_queue_changed(queue_key)
