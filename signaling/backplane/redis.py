"""The many-node backplane: signaling state in Redis, deliveries over Redis pub/sub.

Every node of a deployment holds a :class:`RedisBackplane` on the same Redis and the same key
prefix. Each transition that reads and then writes is one Lua script (``lua/*.lua``, each
prefixed with ``lua/_common.lua``), run with EVALSHA: Redis runs a script with nothing in
between, so two nodes can never both see a ticket waiting, and an accept is one atomic step.
The scripts follow :class:`~signaling.state.HubState` line by line; the backplane contract
tests hold both to the same behaviour.

Keys (``P`` is the prefix, ``sig:`` by default)::

    P session:{session}        hash    the SessionRecord: id role identity subject node
                                       resume_hash, hospitals (JSON list), presence ticket
                                       call parked_until when set, and "before": the
                                       doctor's presence to restore when the call ends
    P resume:{sha256}          string  session id of the current resume token
    P identity:{iss|sub}       set     session ids: the connections-per-identity limit
    P role:{role}              set     session ids, for stats
    P doctors:{hospital}       set     doctor session ids, for a queue's presence counts
    P node-sessions:{node}     set     session ids whose record names this node
    P nodes                    set     every node that heartbeated or holds sessions
    P node:{node}              string  heartbeat, expires after node_ttl_s (PX)
    P parked                   zset    session id -> parked_until
    P ticket:{ticket}          hash    the Ticket: id session cabin queue enqueued_at
                                       notify_after notified ("0"/"1"), triage (JSON)
    P queue:{hospital or *}    zset    ticket id -> rank * 1e13 + enqueued_at * 1e3
    P queues                   set     queue keys holding at least one ticket
    P notify                   zset    ticket id -> notify_after, until told "no doctor"
    P call:{call}              hash    the Call
    P calls                    set     ids of the calls in progress
    P taken:{ticket}           string  the call that took the ticket, while it lasts
    P token:{jti}              string  claim of a token id: its expiry; PX a minute past it

    channel P s:{session}      deliveries for the session (JSON of delivery_to_wire)
    channel P queue-changed    queue keys whose queue or doctors changed

Floats are written with ``repr`` and read with ``float``, and the one computed in Lua (a
call's ``waited_s``) with ``%.17g``, so every time survives the round trip exactly. The
scripts build their keys from the prefix (ARGV[1]) rather than declaring them: this needs a
single Redis (or a replicated primary), not Redis Cluster.

A node SUBSCRIBEs to the channel of every session whose connection it holds (``attach``) and
to the queue-changed channel; one reader task, owned by the backplane, hands what arrives to
the handlers given to :meth:`RedisBackplane.start`. ``deliver`` is one PUBLISH: Redis answers
how many subscribers received it, which is how the sender knows whether any node holds the
session. Nodes prove they are alive with a heartbeat key; another node's ``adopt_orphans``
parks the live sessions of a node whose key expired, so their grace window starts.

Every Redis failure surfaces as :class:`~signaling.errors.BackplaneError`. Commands are never
retried by the client: a transition whose reply was lost may have happened. Every connection
is named ``signaling:{prefix}{node}``, so CLIENT LIST shows which node holds it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from importlib import resources
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from signaling.backplane import (
    Delivery,
    DeliveryHandler,
    QueueChangedHandler,
    delivery_from_wire,
    delivery_to_wire,
)
from signaling.codes import ErrorCode
from signaling.errors import BackplaneError, ProtocolError
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

__all__ = ["RedisBackplane"]

logger = logging.getLogger(__name__)

_SCRIPTS = (
    "accept",
    "adopt_orphans",
    "cancel",
    "claim_token",
    "close_session",
    "enqueue",
    "expire",
    "hang_up",
    "open_session",
    "overdue",
    "park",
    "queue",
    "renew",
    "resume",
    "set_presence",
    "stats",
)
_RANK_WEIGHT = 1e13
"""Queue score = rank * this + enqueued_at in ms: urgency first while epoch ms stay < 1e13."""
_CLAIM_MARGIN_MS = 60_000
"""Redis keeps a token claim this long past the token's expiry. Whether a claim still holds
is decided by the callers' clock (as in HubState); the margin only keeps the key from
vanishing early, by Redis's clock, for a node whose clock lags the claimant's."""
_POOL_SIZE = 64
"""Connections per node for commands (plus the pub/sub one); more commands than this wait."""
_READ_POLL_S = 1.0
"""The reader wakes this often even when idle, so pub/sub health checks get sent."""
_RECONNECT_FIRST_S = 0.05
_RECONNECT_MAX_S = 2.0
_T = TypeVar("_T")
_STORE_ERRORS = (RedisError, OSError)
"""What the Redis client raises (OSError covers the builtin ConnectionError/TimeoutError)."""


class RedisBackplane:
    """The signaling state of many nodes in one Redis; deliveries cross nodes by pub/sub.

    One client (a connection pool) carries the commands; one pub/sub connection carries this
    node's subscriptions, read by a task that :meth:`start` creates and :meth:`close` cancels
    and awaits.
    """

    def __init__(
        self,
        *,
        url: str,
        node: str,
        prefix: str = "sig:",
        node_ttl_s: float = 10.0,
        command_timeout_s: float = 2.0,
    ) -> None:
        self.node = node
        self._prefix = prefix
        self._node_ttl_ms = max(1, math.ceil(node_ttl_s * 1000))
        self._command_timeout_s = command_timeout_s
        self._queue_channel = f"{prefix}queue-changed"
        # A blocking pool: a burst of commands waits (up to the command timeout) for one of
        # the connections instead of failing as the default pool does past its size.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=_POOL_SIZE,
            timeout=command_timeout_s,
            decode_responses=True,
            socket_timeout=command_timeout_s,
            socket_connect_timeout=command_timeout_s,
            socket_keepalive=True,
            health_check_interval=max(1.0, node_ttl_s),
            retry=Retry(NoBackoff(), 0),
            client_name=f"signaling:{prefix}{node}",
        )
        self._client = aioredis.Redis.from_pool(pool)
        common = _script_source("_common")
        self._scripts = {
            name: self._client.register_script(common + "\n" + _script_source(name))
            for name in _SCRIPTS
        }
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._attached: set[str] = set()
        self._confirmations: dict[tuple[str, str], deque[asyncio.Future[None]]] = {}
        self._on_delivery: DeliveryHandler | None = None
        self._on_queue_changed: QueueChangedHandler | None = None
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(
        self, *, on_delivery: DeliveryHandler, on_queue_changed: QueueChangedHandler
    ) -> None:
        """Subscribe to queue changes, start the reader, and announce this node alive."""
        if self._pubsub is not None or self._closed:
            raise RuntimeError("a RedisBackplane starts once")
        self._on_delivery = on_delivery
        self._on_queue_changed = on_queue_changed
        self._pubsub = pubsub = self._client.pubsub()
        try:
            # Sent before the reader starts: the first command on a pub/sub connection may
            # read a health-check reply, which must not race the reader.
            subscribed = self._expect("subscribe", self._queue_channel)
            try:
                with _store_errors("subscribe to queue changes"):
                    await pubsub.subscribe(self._queue_channel)
            except BaseException:
                self._forget(subscribed, "subscribe", self._queue_channel)
                raise
            self._reader = asyncio.create_task(
                self._read(pubsub), name=f"redis-backplane-reader:{self.node}"
            )
            await self._confirmation(subscribed, "subscribe", self._queue_channel)
            await self._load_scripts()
            await self._beat()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop reading, drop the subscriptions and the heartbeat, close the connections.

        Sessions are left as they are: those still live on this node become orphans that
        another node's :meth:`adopt_orphans` parks at once, since the heartbeat is gone.
        Closing twice is harmless.
        """
        if self._closed:
            return
        self._closed = True
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.wait([reader])
            if not reader.cancelled() and reader.exception() is not None:
                logger.error("pub/sub reader had failed", exc_info=reader.exception())
        for waiters in self._confirmations.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(BackplaneError("the backplane was closed"))
        self._confirmations.clear()
        self._attached.clear()
        pubsub, self._pubsub = self._pubsub, None
        try:
            if pubsub is not None:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                await self._client.delete(self._key("node", self.node))
        except _STORE_ERRORS as error:
            logger.warning("closing the backplane of node %s: %s", self.node, error)
        finally:
            try:
                await self._client.aclose()
            except _STORE_ERRORS as error:
                logger.warning("closing the Redis client of node %s: %s", self.node, error)

    async def _load_scripts(self) -> None:
        """SCRIPT LOAD every transition now, so that a script Redis refuses fails the start."""
        with _store_errors("load the transition scripts"):
            async with self._client.pipeline(transaction=False) as pipe:
                for script in self._scripts.values():
                    pipe.script_load(script.script)
                await pipe.execute()

    async def ping(self) -> None:
        with _store_errors("ping"):
            await self._client.ping()

    async def heartbeat(self, *, now: float) -> None:
        """Renew this node's heartbeat key (it expires after ``node_ttl_s``)."""
        await self._beat()

    async def _beat(self) -> None:
        with _store_errors("heartbeat"):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.set(self._key("node", self.node), "1", px=self._node_ttl_ms)
                pipe.sadd(self._key("nodes"), self.node)
                await pipe.execute()

    async def adopt_orphans(self, *, now: float, until: float) -> list[Parked]:
        reply = await self._run("adopt_orphans", self.node, _num(until))
        return [_parked(*triple) for triple in reply]

    # -- tokens and sessions -----------------------------------------------------------------

    async def claim_token(self, token_id: str, *, until: float, now: float) -> bool:
        keep_ms = max(0, math.ceil((until - now) * 1000)) + _CLAIM_MARGIN_MS
        (claimed,) = await self._run("claim_token", token_id, _num(until), _num(now), keep_ms)
        return bool(claimed)

    async def open_session(self, record: SessionRecord, *, max_per_identity: int) -> None:
        presence = Presence.AWAY if record.role is Role.DOCTOR else None
        fields = _session_fields(record, presence=presence)
        await self._run("open_session", max_per_identity, *fields)

    async def session(self, session_id: str) -> SessionRecord | None:
        with _store_errors("read a session"):
            fields = await self._client.hgetall(self._key("session", session_id))
        return _session(_text(fields)) if fields else None

    async def park(self, session_id: str, *, until: float) -> Parked | None:
        reply = await self._run("park", session_id, _num(until))
        return None if reply is None else _parked(*reply)

    async def resume(self, resume_hash: str, *, new_resume_hash: str) -> Resumed | None:
        reply = await self._run("resume", resume_hash, self.node, new_resume_hash)
        if reply is None:
            return None
        previous_node, was_parked, record, call, ticket = reply
        return Resumed(
            session=_session(_map(record)),
            previous_node=previous_node,
            was_parked=was_parked == "1",
            call=_call(call),
            ticket=_ticket(ticket),
        )

    async def close_session(self, session_id: str, *, now: float) -> Closed | None:
        reply = await self._run("close_session", session_id)
        return None if reply is None else _closed(*reply[0])

    async def expire(self, *, now: float) -> list[Closed]:
        reply = await self._run("expire", _num(now))
        return [_closed(*triple) for triple in reply]

    # -- queue -------------------------------------------------------------------------------

    async def enqueue(self, ticket: Ticket) -> Ticket:
        ticket = replace(ticket, notify_after=max(ticket.notify_after, ticket.enqueued_at))
        score = ticket.triage.urgency.rank * _RANK_WEIGHT + ticket.enqueued_at * 1000.0
        await self._run("enqueue", _num(score), *_ticket_fields(ticket))
        return ticket

    async def cancel(self, session_id: str) -> Ticket:
        (ticket,) = await self._run("cancel", session_id)
        return _present(_ticket(ticket))

    async def renew(self, session_id: str, *, now: float) -> Ticket:
        (ticket,) = await self._run("renew", session_id, _num(now))
        return _present(_ticket(ticket))

    async def overdue(self, *, now: float, wait_s: float) -> list[Ticket]:
        # The scan bound is loose on purpose: the exact test happens in the script.
        bound = now - wait_s + 1.0
        reply = await self._run("overdue", _num(now), _num(wait_s), _num(bound))
        return [_present(_ticket(fields)) for fields in reply]

    async def queue(self, hospitals: tuple[str, ...]) -> QueueView:
        tickets, available, busy, away = await self._run("queue", *hospitals)
        ordered = sorted((_present(_ticket(t)) for t in tickets), key=lambda t: t.sort_key)
        return QueueView(
            hospitals=hospitals,
            tickets=tuple(ordered),
            available=int(available),
            busy=int(busy),
            away=int(away),
        )

    # -- doctors and calls -------------------------------------------------------------------

    async def set_presence(self, session_id: str, presence: Presence) -> SessionRecord:
        (record,) = await self._run("set_presence", session_id, presence.value)
        return _session(_map(record))

    async def accept(
        self, *, ticket_id: str, doctor_session: str, call_id: str, now: float
    ) -> Call:
        (call,) = await self._run("accept", ticket_id, doctor_session, call_id, _num(now))
        return _present(_call(call))

    async def hang_up(self, *, session_id: str, call_id: str) -> Call:
        (call,) = await self._run("hang_up", session_id, call_id)
        return _present(_call(call))

    async def call(self, call_id: str) -> Call | None:
        with _store_errors("read a call"):
            fields = await self._client.hgetall(self._key("call", call_id))
        return _call(_text(fields))

    async def stats(self) -> Stats:
        roles, parked, queued, calls, nodes = await self._run("stats", *(r.value for r in Role))
        return Stats(
            sessions={name: int(count) for name, count in _pairs(roles)},
            parked=int(parked),
            queued={name: int(count) for name, count in _pairs(queued)},
            calls=int(calls),
            nodes=tuple(sorted(nodes)),
        )

    # -- messages ----------------------------------------------------------------------------

    async def attach(self, session_id: str) -> None:
        """Subscribe to the session's channel; returns once Redis confirmed it."""
        if session_id in self._attached:
            return
        self._attached.add(session_id)
        try:
            await self._subscribe(self._session_channel(session_id))
        except BaseException:
            self._attached.discard(session_id)
            raise

    async def detach(self, session_id: str) -> None:
        """Unsubscribe from the session's channel; returns once Redis confirmed it."""
        if session_id not in self._attached:
            return
        self._attached.discard(session_id)
        await self._confirmed("unsubscribe", self._session_channel(session_id))

    async def deliver(self, delivery: Delivery) -> bool:
        """One PUBLISH; True when at least one node's subscription received it."""
        payload = json.dumps(delivery_to_wire(delivery), ensure_ascii=False)
        try:
            receivers = await self._client.publish(self._session_channel(delivery.session), payload)
        except _STORE_ERRORS as error:
            raise BackplaneError(f"deliver a message: {error}") from error
        return int(receivers) > 0

    async def announce(self, queue_key: str) -> None:
        with _store_errors("announce a queue change"):
            await self._client.publish(self._queue_channel, queue_key)

    # -- pub/sub -----------------------------------------------------------------------------

    async def _subscribe(self, channel: str) -> None:
        await self._confirmed("subscribe", channel)

    async def _confirmed(self, kind: str, channel: str) -> None:
        """Send SUBSCRIBE or UNSUBSCRIBE and wait until the reader sees Redis confirm it.

        Without the wait a PUBLISH sent right after ``attach`` could reach Redis before the
        subscription does and find no subscriber.
        """
        pubsub = self._pubsub
        if pubsub is None:
            raise BackplaneError("the backplane is not started")
        waiter = self._expect(kind, channel)
        try:
            with _store_errors(f"{kind} to {channel}"):
                if kind == "subscribe":
                    await pubsub.subscribe(channel)
                else:
                    await pubsub.unsubscribe(channel)
        except BaseException:
            self._forget(waiter, kind, channel)
            raise
        await self._confirmation(waiter, kind, channel)

    def _expect(self, kind: str, channel: str) -> asyncio.Future[None]:
        """A future the reader resolves when Redis confirms ``kind`` for ``channel``."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirmations.setdefault((kind, channel), deque()).append(waiter)
        return waiter

    async def _confirmation(self, waiter: asyncio.Future[None], kind: str, channel: str) -> None:
        try:
            async with asyncio.timeout(self._command_timeout_s):
                await waiter
        except TimeoutError as error:
            raise BackplaneError(f"{kind} to {channel}: Redis did not confirm in time") from error
        finally:
            self._forget(waiter, kind, channel)

    def _forget(self, waiter: asyncio.Future[None], kind: str, channel: str) -> None:
        waiters = self._confirmations.get((kind, channel))
        if waiters is None:
            return
        if waiter in waiters:
            waiters.remove(waiter)
        if not waiters:
            del self._confirmations[(kind, channel)]

    async def _read(self, pubsub: PubSub) -> None:
        """The reader task: hand every message to its handler, reconnecting after failures.

        redis-py resubscribes every channel when the connection comes back. A handler that
        raises is logged and the reader carries on: one bad message must not stop the node.
        """
        delay = _RECONNECT_FIRST_S
        while True:
            try:
                message = await pubsub.get_message(timeout=_READ_POLL_S)
            except _STORE_ERRORS as error:
                logger.warning(
                    "node %s: pub/sub read failed (%s); retrying in %.2f s", self.node, error, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RECONNECT_MAX_S)
                continue
            delay = _RECONNECT_FIRST_S
            if message is not None:
                self._dispatch(message)

    def _dispatch(self, message: Mapping[str, Any]) -> None:
        kind, channel, data = message["type"], message["channel"], message["data"]
        if kind in ("subscribe", "unsubscribe"):
            waiters = self._confirmations.get((kind, channel))
            while waiters:
                waiter = waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    break
            return
        if kind != "message":
            return
        try:
            if channel == self._queue_channel:
                if self._on_queue_changed is not None:
                    self._on_queue_changed(data)
            elif self._on_delivery is not None:
                self._on_delivery(delivery_from_wire(json.loads(data)))
        except Exception:
            logger.exception("node %s: handling a message on %s failed", self.node, channel)

    # -- helpers -----------------------------------------------------------------------------

    def _key(self, kind: str, name: str | None = None) -> str:
        return f"{self._prefix}{kind}" if name is None else f"{self._prefix}{kind}:{name}"

    def _session_channel(self, session_id: str) -> str:
        return f"{self._prefix}s:{session_id}"

    async def _run(self, name: str, *args: str | int | float) -> Any:
        """Run one transition script; its payload, None for {'none'}, or the refusal raised."""
        with _store_errors(name.replace("_", " ")):
            reply = await self._scripts[name](args=[self._prefix, *args])
        status = reply[0]
        if status == "ok":
            return reply[1:]
        if status == "none":
            return None
        raise ProtocolError(ErrorCode(reply[1]), reply[2] or None)


@contextmanager
def _store_errors(operation: str) -> Iterator[None]:
    """Translate whatever the Redis client raises into :class:`BackplaneError`."""
    try:
        yield
    except _STORE_ERRORS as error:
        raise BackplaneError(f"{operation}: {type(error).__name__}: {error}") from error


def _script_source(name: str) -> str:
    return resources.files("signaling.backplane").joinpath("lua", f"{name}.lua").read_text("utf-8")


# -- records <-> hash fields -----------------------------------------------------------------


def _num(value: float) -> str:
    """A float as text that parses back (in Python, Lua and Redis) to the same double."""
    return repr(float(value))


def _text(fields: Mapping[Any, Any]) -> dict[str, str]:
    """A hash as read by the client (text, since ``decode_responses=True``)."""
    return {str(name): str(value) for name, value in fields.items()}


def _map(flat: Sequence[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _pairs(flat: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
    return zip(flat[::2], flat[1::2], strict=True)


def _present(value: _T | None) -> _T:
    if value is None:  # a script said "ok" without the record it always returns
        raise BackplaneError("the store answered without the expected record")
    return value


def _session_fields(record: SessionRecord, *, presence: Presence | None) -> list[str]:
    fields = {
        "id": record.id,
        "role": record.role.value,
        "identity": record.identity,
        "subject": record.subject,
        "hospitals": json.dumps(list(record.hospitals), ensure_ascii=False),
        "node": record.node,
        "resume_hash": record.resume_hash,
    }
    if presence is not None:
        fields["presence"] = presence.value
    if record.ticket is not None:
        fields["ticket"] = record.ticket
    if record.call is not None:
        fields["call"] = record.call
    return [item for pair in fields.items() for item in pair]


def _session(fields: Mapping[str, str]) -> SessionRecord:
    presence = fields.get("presence")
    parked_until = fields.get("parked_until")
    return SessionRecord(
        id=fields["id"],
        role=Role(fields["role"]),
        identity=fields["identity"],
        subject=fields["subject"],
        hospitals=tuple(json.loads(fields["hospitals"])),
        node=fields["node"],
        resume_hash=fields["resume_hash"],
        presence=None if presence is None else Presence(presence),
        ticket=fields.get("ticket"),
        call=fields.get("call"),
        parked_until=None if parked_until is None else float(parked_until),
    )


def _triage_json(triage: Triage) -> str:
    return json.dumps(
        {
            "urgency": triage.urgency.value,
            "flags": list(triage.flags),
            "language": triage.language,
            "hospital": triage.hospital,
            "summary": triage.summary,
            "age": triage.age,
            "sex": triage.sex,
        },
        ensure_ascii=False,
    )


def _triage(text: str) -> Triage:
    raw = json.loads(text)
    return Triage(
        urgency=Urgency(raw["urgency"]),
        flags=tuple(raw["flags"]),
        language=raw["language"],
        hospital=raw["hospital"],
        summary=raw["summary"],
        age=raw["age"],
        sex=raw["sex"],
    )


def _ticket_fields(ticket: Ticket) -> list[str]:
    return [
        "id", ticket.id,
        "session", ticket.session,
        "cabin", ticket.cabin,
        "queue", ticket.hospital,
        "enqueued_at", _num(ticket.enqueued_at),
        "notify_after", _num(ticket.notify_after),
        "notified", "1" if ticket.no_doctor_notified else "0",
        "triage", _triage_json(ticket.triage),
    ]  # fmt: skip


def _ticket(flat: Sequence[str] | Mapping[str, str]) -> Ticket | None:
    if not flat:
        return None
    fields = flat if isinstance(flat, Mapping) else _map(flat)
    return Ticket(
        id=fields["id"],
        session=fields["session"],
        cabin=fields["cabin"],
        triage=_triage(fields["triage"]),
        enqueued_at=float(fields["enqueued_at"]),
        notify_after=float(fields["notify_after"]),
        no_doctor_notified=fields["notified"] == "1",
    )


def _call(flat: Sequence[str] | Mapping[str, str]) -> Call | None:
    if not flat:
        return None
    fields = flat if isinstance(flat, Mapping) else _map(flat)
    return Call(
        id=fields["id"],
        ticket=fields["ticket"],
        cabin_session=fields["cabin_session"],
        doctor_session=fields["doctor_session"],
        hospital=fields["hospital"],
        started_at=float(fields["started_at"]),
        waited_s=float(fields["waited_s"]),
        queue=fields.get("queue", ANY_HOSPITAL),
    )


def _parked(session: Sequence[str], call: Sequence[str], ticket: Sequence[str]) -> Parked:
    return Parked(session=_session(_map(session)), call=_call(call), ticket=_ticket(ticket))


def _closed(session: Sequence[str], call: Sequence[str], ticket: Sequence[str]) -> Closed:
    return Closed(
        session=_session(_map(session)), ended_call=_call(call), cancelled_ticket=_ticket(ticket)
    )
