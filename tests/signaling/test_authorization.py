"""The authorization matrix: every role × every inbound message × own or foreign resource.

Each cell is one test on a fresh node holding the same world:

* a call ``X`` between cabin ``cab-x`` and doctor ``dr-x`` of ``bv-a`` — the sender is never
  in it (the foreign call);
* cabin ``cab-b`` waiting for ``bv-b`` (the foreign ticket) and cabin ``cab-w`` waiting for
  ``bv-a`` (a ticket a ``bv-a`` doctor may take);
* the sender, signed in as a cabin of ``bv-a``, a doctor of ``bv-a``, an admin, or not signed
  in at all; for "own" cells it is queued or in a call of its own first.

The sender sends one message with id ``m-1`` and then a ``ping`` as a barrier; everything
it receives up to the ``pong`` is its outcome. After every cell the parties of call ``X``
are checked the same way: they received nothing of the sender's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from signaling.client import ClientError, Message, SignalingClient
from signaling.codes import ErrorCode
from signaling.messages import INBOUND_TYPES, validate_outbound
from tests.signaling.harness import Node, running_node

OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
CANDIDATE = {"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host", "sdpMid": "0"}
LEAKS = {"offer", "answer", "candidate", "call-ended", "error", "call"}
"""What the parties of a call must never receive because of a stranger."""
RELAYS = ("offer", "answer", "candidate")


# -- the matrix ------------------------------------------------------------------------------

REPLY, ERROR, RELAYED, ENDED, CLOSED = "reply", "error", "relayed", "ended", "closed"


@dataclass(frozen=True)
class Cell:
    role: str
    """cabin, doctor, admin, or anonymous (no hello yet)."""
    message: str
    resource: str
    """none; own (the sender's call, ticket or hospital); foreign (someone else's)."""
    outcome: str
    expect: str = ""
    """The reply type for REPLY, the error code for ERROR."""

    @property
    def id(self) -> str:
        return f"{self.role}-{self.message}-{self.resource}-{self.expect or self.outcome}"


def cells() -> list[Cell]:
    forbidden = ErrorCode.FORBIDDEN.value
    not_in_call = ErrorCode.NOT_IN_CALL.value
    matrix: list[Cell] = []
    for role in ("cabin", "doctor", "admin"):
        is_cabin, is_doctor = role == "cabin", role == "doctor"
        party = role != "admin"  # cabins and doctors may be in calls; admins never

        def add(message: str, resource: str, outcome: str, expect: str = "") -> None:
            matrix.append(Cell(role, message, resource, outcome, expect))  # noqa: B023

        add("hello", "none", ERROR, ErrorCode.ALREADY_AUTHENTICATED.value)
        add("ping", "none", REPLY, "pong")
        add("ice-refresh", "none", *((REPLY, "ice-servers") if party else (ERROR, forbidden)))
        add("consult-request", "own", *((REPLY, "queued") if is_cabin else (ERROR, forbidden)))
        add("consult-request", "foreign", ERROR, forbidden)
        add("consult-cancel", "own", *((REPLY, "cancelled") if is_cabin else (ERROR, forbidden)))
        add("consult-stay", "own", *((REPLY, "queued") if is_cabin else (ERROR, forbidden)))
        add("presence", "none", *((REPLY, "presence") if is_doctor else (ERROR, forbidden)))
        add("queue-get", "none", *((REPLY, "queue") if is_doctor else (ERROR, forbidden)))
        add("accept", "own", *((REPLY, "call") if is_doctor else (ERROR, forbidden)))
        add("accept", "foreign", ERROR, forbidden)
        for kind in (*RELAYS, "hangup"):
            if party:
                add(kind, "own", ENDED if kind == "hangup" else RELAYED)
            add(kind, "foreign", ERROR, not_in_call if party else forbidden)
        add("bye", "none", CLOSED)
        add("stats", "none", *((REPLY, "stats") if role == "admin" else (ERROR, forbidden)))
    for message in INBOUND_TYPES:
        if message != "hello":
            matrix.append(
                Cell("anonymous", message, "foreign", ERROR, ErrorCode.NOT_AUTHENTICATED.value)
            )
    return matrix


MATRIX = cells()


def test_the_matrix_covers_every_role_and_every_message() -> None:
    for role in ("cabin", "doctor", "admin"):
        assert {c.message for c in MATRIX if c.role == role} == set(INBOUND_TYPES)
    assert {c.message for c in MATRIX if c.role == "anonymous"} == set(INBOUND_TYPES) - {"hello"}
    assert len({c.id for c in MATRIX}) == len(MATRIX)


# -- the world -------------------------------------------------------------------------------


@dataclass
class World:
    node: Node
    cab_x: SignalingClient
    dr_x: SignalingClient
    foreign_call: str
    foreign_ticket: str
    bv_a_ticket: str
    waiting: SignalingClient
    """cab-w, whose bv-a ticket an accepting doctor takes."""
    sender: SignalingClient | None = None
    raw: aiohttp.ClientWebSocketResponse | None = None
    """The anonymous sender's bare WebSocket."""
    own_call: str | None = None
    peer: SignalingClient | None = None
    """The other party of the sender's own call."""
    seen: dict[str, list[Message]] = field(default_factory=dict)


async def queue_for(client: SignalingClient, hospital: str | None, *, ref: str = "q") -> str:
    queued = await client.request(
        {
            "type": "consult-request",
            "id": ref,
            "triage": {"urgency": "routine", "hospital": hospital},
        },
        reply_type="queued",
    )
    return str(queued["ticket"])


async def start_call(cabin: SignalingClient, doctor: SignalingClient, hospital: str) -> str:
    ticket = await queue_for(cabin, hospital)
    call = await doctor.request({"type": "accept", "ticket": ticket}, reply_type="call")
    await cabin.wait_for("call", where=lambda m: m["call"] == call["call"])
    return str(call["call"])


async def build_world(node: Node, cell: Cell) -> World:
    cab_x = await node.cabin("cab-x", ["bv-a"])
    dr_x = await node.doctor("dr-x", ["bv-a"])
    foreign_call = await start_call(cab_x, dr_x, "bv-a")
    cab_b = await node.cabin("cab-b")
    foreign_ticket = await queue_for(cab_b, "bv-b")
    waiting = await node.cabin("cab-w")
    bv_a_ticket = await queue_for(waiting, "bv-a")
    world = World(node, cab_x, dr_x, foreign_call, foreign_ticket, bv_a_ticket, waiting)

    own = cell.resource == "own"
    match cell.role:
        case "anonymous":
            world.raw = await node.http.ws_connect(node.url)
        case "cabin":
            world.sender = await node.cabin("me", ["bv-a"])
            if own and cell.message in ("consult-cancel", "consult-stay"):
                await queue_for(world.sender, "bv-a", ref="setup")
            if own and cell.message in (*RELAYS, "hangup"):
                world.peer = await node.doctor("dr-peer", ["bv-a"])
                world.own_call = await start_call(world.sender, world.peer, "bv-a")
        case "doctor":
            world.sender = await node.doctor("dr-me", ["bv-a"])
            if own and cell.message in (*RELAYS, "hangup"):
                world.peer = await node.cabin("cab-peer", ["bv-a"])
                world.own_call = await start_call(world.peer, world.sender, "bv-a")
        case "admin":
            world.sender = await node.admin("ops")
    return world


def message_for(cell: Cell, world: World) -> dict[str, Any]:
    own = cell.resource == "own"
    call = world.own_call if own else world.foreign_call
    match cell.message:
        case "hello":
            token = world.node.token("cabin", "someone-else")
            return {"type": "hello", "v": 1, "token": token}
        case "consult-request":
            hospital = "bv-a" if own else "bv-b"
            return {
                "type": "consult-request",
                "triage": {"urgency": "urgent", "hospital": hospital},
            }
        case "presence":
            return {"type": "presence", "status": "available"}
        case "accept":
            return {"type": "accept", "ticket": world.bv_a_ticket if own else world.foreign_ticket}
        case "offer" | "answer":
            return {"type": cell.message, "call": call, "sdp": OFFER}
        case "candidate":
            return {"type": "candidate", "call": call, "candidate": CANDIDATE}
        case "hangup":
            return {"type": "hangup", "call": call, "reason": "done"}
        case _:
            return {"type": cell.message}


async def until_pong(
    send: Callable[[str], Any], receive: Callable[[], Any], *, barrier: str
) -> tuple[list[Message], bool]:
    """Send a ping and collect what arrives before its pong; (messages, connection closed)."""
    try:
        await send(json.dumps({"type": "ping", "id": barrier}))
    except (ClientError, ConnectionError):
        return [], True
    collected: list[Message] = []
    while True:
        try:
            message: Message = await receive()
        except ClientError:
            return collected, True
        validate_outbound(message)
        if message["type"] == "pong" and message.get("ref") == barrier:
            return collected, False
        collected.append(message)


async def drain(client: SignalingClient, barrier: str = "sync") -> tuple[list[Message], bool]:
    return await until_pong(client.send_text, client.receive, barrier=barrier)


async def receive_raw(ws: aiohttp.ClientWebSocketResponse) -> Message:
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    loaded: Message = json.loads(msg.data)
    validate_outbound(loaded)
    return loaded


def answer_to(messages: list[Message], ref: str) -> Message | None:
    return next((m for m in messages if m.get("ref") == ref), None)


# -- the cells -------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", MATRIX, ids=[c.id for c in MATRIX])
def test_authorization(cell: Cell, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path) as node:
            world = await build_world(node, cell)
            # the parties of the foreign call start with nothing pending
            await drain(world.cab_x)
            await drain(world.dr_x)
            await check(cell, world)
            for name, party in (("cab-x", world.cab_x), ("dr-x", world.dr_x)):
                received, closed = await drain(party, barrier="after")
                assert not closed, name
                leaked = [m for m in received if m["type"] in LEAKS]
                assert leaked == [], f"{name} received {leaked}"

    asyncio.run(asyncio.wait_for(scenario(), 20))


async def check(cell: Cell, world: World) -> None:
    message = {**message_for(cell, world), "id": "m-1"}
    if cell.role == "anonymous":
        assert world.raw is not None
        await world.raw.send_str(json.dumps(message))
        refusal = await receive_raw(world.raw)
        assert (refusal["type"], refusal["code"], refusal["fatal"]) == ("error", cell.expect, False)
        assert refusal["ref"] == "m-1"
        # the connection survives the error: it may still sign in
        hello = {"type": "hello", "v": 1, "token": world.node.token("cabin", "late")}
        await world.raw.send_str(json.dumps(hello))
        assert (await receive_raw(world.raw))["type"] == "welcome"
        await world.raw.close()
        return

    sender = world.sender
    assert sender is not None
    await sender.send(message)
    received, closed = await drain(sender)
    answer = answer_to(received, "m-1")
    if cell.role == "cabin":
        assert [m for m in received if m["type"] == "queue"] == []

    match cell.outcome:
        case "reply":
            assert answer is not None, received
            assert answer["type"] == cell.expect, answer
            assert not closed
        case "error":
            assert answer is not None, received
            assert (answer["type"], answer["code"]) == ("error", cell.expect), answer
            assert not closed
        case "relayed":
            assert answer is None, answer
            assert [m for m in received if m["type"] == "error"] == []
            assert world.peer is not None
            relayed = await world.peer.wait_for(cell.message)
            assert (relayed["call"], relayed["from"]) == (world.own_call, cell.role)
        case "ended":
            assert world.peer is not None
            ended = [m for m in received if m["type"] == "call-ended"]
            assert [(m["call"], m["by"]) for m in ended] == [(world.own_call, cell.role)]
            to_peer = await world.peer.wait_for("call-ended")
            assert (to_peer["call"], to_peer["by"]) == (world.own_call, cell.role)
        case "closed":
            assert answer is None
            assert closed
        case _:  # pragma: no cover - the matrix uses only the outcomes above
            raise AssertionError(cell.outcome)

    # what an allowed request did to the shared state
    if cell.outcome != REPLY:
        return
    assert answer is not None
    if cell.message == "accept":
        await world.waiting.wait_for("call", where=lambda m: m["call"] == answer["call"])
    if cell.message == "queue-get":
        tickets = {t["ticket"] for t in answer["tickets"]}
        assert world.bv_a_ticket in tickets
        assert world.foreign_ticket not in tickets


# -- the rules behind the matrix, one by one -------------------------------------------------


def test_a_doctor_of_another_hospital_never_sees_or_takes_a_ticket(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path) as node:
            dr_b = await node.doctor("dr-b", ["bv-b"])
            dr_a = await node.doctor("dr-a", ["bv-a"])
            cabin = await node.cabin("dkc-01")
            ticket = await queue_for(cabin, "bv-a")
            anyone = await queue_for(await node.cabin("dkc-02"), None)
            await dr_a.wait_for("queue", where=lambda m: len(m["tickets"]) == 2)

            received, _ = await drain(dr_b)
            asked = await dr_b.request({"type": "queue-get"}, reply_type="queue")
            for queue in [*(m for m in received if m["type"] == "queue"), asked]:
                assert queue["hospitals"] == ["bv-b"]
                assert ticket not in {t["ticket"] for t in queue["tickets"]}
            assert [t["ticket"] for t in asked["tickets"]] == [anyone]

            with pytest.raises(ClientError) as refused:
                await dr_b.request({"type": "accept", "ticket": ticket}, reply_type="call")
            assert refused.value.code == ErrorCode.FORBIDDEN.value
            # the resident still waits, and their own hospital's doctor can take them
            call = await dr_a.request({"type": "accept", "ticket": ticket}, reply_type="call")
            assert (await cabin.wait_for("call"))["call"] == call["call"]

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_a_cabin_never_receives_a_queue(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path) as node:
            cabin = await node.cabin("dkc-01", ["bv-a"])
            await queue_for(cabin, "bv-a")
            with pytest.raises(ClientError) as refused:
                await cabin.request({"type": "queue-get"}, reply_type="queue")
            assert refused.value.code == ErrorCode.FORBIDDEN.value
            # the queue changes in every way a doctor would be told of
            doctor = await node.doctor("dr-a", ["bv-a"])
            await queue_for(await node.cabin("dkc-02"), "bv-a")
            await queue_for(await node.cabin("dkc-03"), None)
            await doctor.request({"type": "presence", "status": "away"}, reply_type="presence")
            await doctor.wait_for("queue", where=lambda m: len(m["tickets"]) == 3)
            await asyncio.sleep(0.1)  # past the pusher's coalescing window
            received, _ = await drain(cabin)
            assert "queue" not in {m["type"] for m in received}
            assert {m["type"] for m in received} <= {"queued", "error"}

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_only_an_admin_reads_stats(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path) as node:
            for client in (await node.cabin(), await node.doctor()):
                with pytest.raises(ClientError) as refused:
                    await client.request({"type": "stats"}, reply_type="stats")
                assert refused.value.code == ErrorCode.FORBIDDEN.value
            stats = await (await node.admin()).request({"type": "stats"}, reply_type="stats")
            assert stats["sessions"] == {"cabin": 1, "doctor": 1, "admin": 1}

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_relaying_into_a_call_one_is_not_in_reaches_nobody(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path) as node:
            cabin = await node.cabin("dkc-01", ["bv-a"])
            doctor = await node.doctor("dr-a", ["bv-a"])
            call = await start_call(cabin, doctor, "bv-a")
            strangers = [await node.cabin("dkc-02", ["bv-a"]), await node.doctor("dr-b", ["bv-a"])]
            for stranger in strangers:
                for kind in RELAYS:
                    body: dict[str, Any] = {"type": kind, "call": call}
                    body.update({"candidate": None} if kind == "candidate" else {"sdp": OFFER})
                    with pytest.raises(ClientError) as refused:
                        await stranger.request(body, reply_type=kind)
                    assert refused.value.code == ErrorCode.NOT_IN_CALL.value
            for party in (cabin, doctor):
                received, closed = await drain(party)
                assert not closed
                assert [m for m in received if m["type"] in LEAKS] == []
            # and the call itself is untouched
            await cabin.send({"type": "offer", "call": call, "sdp": OFFER})
            assert (await doctor.wait_for("offer"))["from"] == "cabin"

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_a_former_party_cannot_relay_into_an_ended_call(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path) as node:
            cabin = await node.cabin("dkc-01", ["bv-a"])
            doctor = await node.doctor("dr-a", ["bv-a"])
            call = await start_call(cabin, doctor, "bv-a")
            await doctor.send({"type": "hangup", "call": call})
            await cabin.wait_for("call-ended")
            await doctor.wait_for("call-ended")
            for client in (cabin, doctor):
                with pytest.raises(ClientError) as refused:
                    await client.request(
                        {"type": "offer", "call": call, "sdp": OFFER}, reply_type="offer"
                    )
                assert refused.value.code == ErrorCode.NOT_IN_CALL.value

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_a_cabin_limited_to_one_hospital_cannot_reach_another_by_asking_any(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path) as node:
            dr_b = await node.doctor("dr-b", ["bv-b"])
            cabin = await node.cabin("dkc-01", ["bv-a"])
            request = {"type": "consult-request", "triage": {"urgency": "urgent"}}
            try:
                ticket = (await cabin.request(request, reply_type="queued"))["ticket"]
            except ClientError as exc:
                refused = exc.code
            else:
                refused = None
            if refused is not None:  # refused outright: fine, if it says forbidden
                assert refused == ErrorCode.FORBIDDEN.value
                return
            # or kept to bv-a: either way bv-b must not see the resident
            seen = await dr_b.request({"type": "queue-get"}, reply_type="queue")
            assert ticket not in {t["ticket"] for t in seen["tickets"]}

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_an_any_hospital_ticket_leaves_every_live_queue_once_taken(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path) as node:
            dr_a = await node.doctor("dr-a", ["bv-a"])
            dr_b = await node.doctor("dr-b", ["bv-b"])
            ticket = await queue_for(await node.cabin("dkc-01"), None)
            for doctor in (dr_a, dr_b):
                await doctor.wait_for("queue", where=lambda m: len(m["tickets"]) == 1)
            await dr_a.request({"type": "accept", "ticket": ticket}, reply_type="call")
            emptied = await dr_b.wait_for(
                "queue",
                where=lambda m: ticket not in {t["ticket"] for t in m["tickets"]},
                timeout_s=1.0,
            )
            assert emptied["tickets"] == []

    asyncio.run(asyncio.wait_for(scenario(), 20))
