"""Where the signaling state lives and how messages reach a connection on any node.

Two implementations of one :class:`Backplane` protocol:

- :class:`~signaling.backplane.memory.MemoryBackplane` — one node, the default: a
  :class:`~signaling.state.HubState` in the process.
- :class:`~signaling.backplane.redis.RedisBackplane` — many nodes sharing Redis: every
  transition is one Lua script (so an accept is one atomic step), and a message for a session
  travels on that session's pub/sub channel to whichever node holds its connection.

``tests/signaling/test_backplane_contract.py`` runs the same behaviour tests against both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from signaling.model import (
    ANY_HOSPITAL,
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


class ControlAction(StrEnum):
    """What a delivery tells the receiving connection to change in itself."""

    CALL_STARTED = "call-started"
    CALL_ENDED = "call-ended"
    REPLACED = "replaced"
    """Another connection resumed this session: close this one."""


@dataclass(frozen=True, slots=True)
class Control:
    action: ControlAction
    call: Call | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message for one session's connection, wherever it is."""

    session: str
    text: str
    """The JSON text to send to the client as is (may be empty for a control-only delivery)."""
    control: Control | None = None


DeliveryHandler = Callable[[Delivery], None]
QueueChangedHandler = Callable[[str], None]
"""Called with a queue key (hospital or ``*``) whenever that queue or its doctors change."""


class Backplane(Protocol):
    """The shared state and the message routes of a signaling deployment.

    Every method is one atomic transition with the semantics of the method of the same name
    on :class:`~signaling.state.HubState`; failures of the store raise
    :class:`~signaling.errors.BackplaneError`, refusals raise
    :class:`~signaling.errors.ProtocolError`.
    """

    node: str

    async def start(
        self, *, on_delivery: DeliveryHandler, on_queue_changed: QueueChangedHandler
    ) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def heartbeat(self, *, now: float) -> None:
        """Tell the other nodes this node is alive (no-op on one node)."""

    async def adopt_orphans(self, *, now: float, until: float) -> list[Parked]:
        """Park the live sessions of nodes that stopped heartbeating (none on one node)."""

    async def claim_token(self, token_id: str, *, until: float, now: float) -> bool: ...

    async def open_session(self, record: SessionRecord, *, max_per_identity: int) -> None: ...

    async def session(self, session_id: str) -> SessionRecord | None: ...

    async def attach(self, session_id: str) -> None:
        """This node now holds the session's connection: route its deliveries here."""

    async def detach(self, session_id: str) -> None: ...

    async def park(self, session_id: str, *, until: float) -> Parked | None: ...

    async def resume(self, resume_hash: str, *, new_resume_hash: str) -> Resumed | None: ...

    async def close_session(self, session_id: str, *, now: float) -> Closed | None: ...

    async def expire(self, *, now: float) -> list[Closed]: ...

    async def enqueue(self, ticket: Ticket) -> Ticket: ...

    async def cancel(self, session_id: str) -> Ticket: ...

    async def renew(self, session_id: str, *, now: float) -> Ticket: ...

    async def overdue(self, *, now: float, wait_s: float) -> list[Ticket]: ...

    async def queue(self, hospitals: tuple[str, ...]) -> QueueView: ...

    async def set_presence(self, session_id: str, presence: Presence) -> SessionRecord: ...

    async def accept(
        self, *, ticket_id: str, doctor_session: str, call_id: str, now: float
    ) -> Call: ...

    async def hang_up(self, *, session_id: str, call_id: str) -> Call: ...

    async def call(self, call_id: str) -> Call | None: ...

    async def stats(self) -> Stats: ...

    async def deliver(self, delivery: Delivery) -> bool:
        """Send to the session's connection; False when no node holds it right now."""

    async def announce(self, queue_key: str) -> None:
        """Tell every node (this one included) that a queue or its doctors changed."""


# -- wire forms for backplanes that serialise (Redis) ---------------------------------------


def call_to_wire(call: Call) -> dict[str, Any]:
    return {
        "id": call.id,
        "ticket": call.ticket,
        "cabin_session": call.cabin_session,
        "doctor_session": call.doctor_session,
        "hospital": call.hospital,
        "started_at": call.started_at,
        "waited_s": call.waited_s,
        "queue": call.queue,
    }


def call_from_wire(raw: dict[str, Any]) -> Call:
    return Call(
        id=str(raw["id"]),
        ticket=str(raw["ticket"]),
        cabin_session=str(raw["cabin_session"]),
        doctor_session=str(raw["doctor_session"]),
        hospital=str(raw["hospital"]),
        started_at=float(raw["started_at"]),
        waited_s=float(raw.get("waited_s", 0.0)),
        queue=str(raw.get("queue", ANY_HOSPITAL)),
    )


def delivery_to_wire(delivery: Delivery) -> dict[str, Any]:
    out: dict[str, Any] = {"session": delivery.session, "text": delivery.text}
    if delivery.control is not None:
        out["control"] = {
            "action": delivery.control.action.value,
            "call": None if delivery.control.call is None else call_to_wire(delivery.control.call),
        }
    return out


def delivery_from_wire(raw: dict[str, Any]) -> Delivery:
    control = None
    if raw.get("control"):
        c = raw["control"]
        control = Control(
            action=ControlAction(c["action"]),
            call=None if c.get("call") is None else call_from_wire(c["call"]),
        )
    return Delivery(session=str(raw["session"]), text=str(raw["text"]), control=control)
