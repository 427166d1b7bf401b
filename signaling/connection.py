"""One client's WebSocket connection: sign-in, the message loop, sending, and leaving.

Each connection lives in one ``asyncio.TaskGroup`` with two tasks: the reader (sign-in, then
one request at a time) and the writer (drains a bounded outbound queue to the socket). A
client that lets the queue grow past its budget is disconnected; its session is parked like
any dropped connection, so it can resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from signaling.backplane import Control, ControlAction, Delivery
from signaling.codes import ErrorCode
from signaling.errors import AuthError, BackplaneError, ProtocolError
from signaling.limits import SendBudget, StrikeCounter, TokenBucket
from signaling.messages import (
    PROTOCOL_VERSION,
    Accept,
    Bye,
    ConsultCancel,
    ConsultRequest,
    ConsultStay,
    HangUp,
    Hello,
    IceRefresh,
    Inbound,
    Ping,
    QueueGet,
    Relay,
    SetPresence,
    StatsGet,
    decode,
    encode,
    error_message,
    relay_message,
)
from signaling.model import Call, Presence, Role, SessionRecord, Ticket

if TYPE_CHECKING:
    from signaling.server import SignalingServer

logger = logging.getLogger(__name__)

# errors that are the client's fault and count towards closing the connection
_STRIKES = frozenset(
    {
        ErrorCode.BAD_JSON,
        ErrorCode.TOO_LARGE,
        ErrorCode.UNKNOWN_TYPE,
        ErrorCode.INVALID_MESSAGE,
        ErrorCode.RATE_LIMITED,
        ErrorCode.NOT_AUTHENTICATED,
        ErrorCode.ALREADY_AUTHENTICATED,
        ErrorCode.FORBIDDEN,
        ErrorCode.NOT_IN_CALL,
    }
)

_ALLOWED: dict[type, frozenset[Role]] = {
    Ping: frozenset(Role),
    Bye: frozenset(Role),
    IceRefresh: frozenset({Role.CABIN, Role.DOCTOR}),
    ConsultRequest: frozenset({Role.CABIN}),
    ConsultCancel: frozenset({Role.CABIN}),
    ConsultStay: frozenset({Role.CABIN}),
    SetPresence: frozenset({Role.DOCTOR}),
    QueueGet: frozenset({Role.DOCTOR}),
    Accept: frozenset({Role.DOCTOR}),
    Relay: frozenset({Role.CABIN, Role.DOCTOR}),
    HangUp: frozenset({Role.CABIN, Role.DOCTOR}),
    StatsGet: frozenset({Role.ADMIN}),
}

CLOSE_POLICY = 4008
CLOSE_SLOW = 4009
CLOSE_REPLACED = 4010
CLOSE_SHUTDOWN = 4011


def resume_hash(token: str) -> str:
    """What the backplane stores instead of the resume token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_id() -> str:
    return secrets.token_urlsafe(12)


class Connection:
    """The server side of one WebSocket; at most one per session on the whole deployment."""

    def __init__(self, *, server: SignalingServer, ws: web.WebSocketResponse, peer: str) -> None:
        self._server = server
        self._ws = ws
        self.peer = peer
        self.record: SessionRecord | None = None
        self.call: Call | None = None
        self.ticket: Ticket | None = None
        self.last_queued: tuple[int, float | None, int] | None = None
        limits = server.config.limits
        self._budget = SendBudget(limits.send_queue_messages, limits.send_queue_bytes)
        self._bucket = TokenBucket(limits.rate_per_s, limits.burst)
        self._strikes = StrikeCounter(limits.strikes, limits.strike_window_s)
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._ending: str | None = None
        """Why the connection is ending: None while open; "bye", "replaced", "slow", …"""
        self._close_code = 1000

    @property
    def role(self) -> Role | None:
        return None if self.record is None else self.record.role

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes, then park or close its session."""
        try:
            async with asyncio.TaskGroup() as group:
                self._reader = group.create_task(self._read_forever())
                self._writer = group.create_task(self._write_forever())
                await asyncio.wait({self._reader}, return_when=asyncio.ALL_COMPLETED)
                self._outbox.put_nowait(None)  # flush what is queued, then stop
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(2.0):
                        await asyncio.wait({self._writer})
                self._writer.cancel()
        finally:
            await self._leave()
            with contextlib.suppress(TimeoutError, ConnectionError):
                async with asyncio.timeout(1.0):  # a peer that never answers the close
                    await self._ws.close(code=self._close_code)

    async def _leave(self) -> None:
        record = self.record
        if record is None:
            return
        server = self._server
        server.forget(self)
        if self._ending == "replaced":
            return
        try:
            if self._ending == "bye":
                closed = await server.backplane.close_session(record.id, now=server.clock())
                if closed is not None:
                    await server.after_close(closed, by=record.role.value, reason="bye")
            else:
                now = server.clock()
                parked = await server.backplane.park(record.id, until=now + server.config.grace_s)
                if parked is not None and parked.call is not None:
                    peer = parked.call.peer_of(record.id)
                    if peer is not None:
                        await server.send_to(
                            peer,
                            {
                                "type": "peer-reconnecting",
                                "call": parked.call.id,
                                "grace_s": server.config.grace_s,
                            },
                        )
                logger.info(
                    "connection dropped; session parked",
                    extra={"session": record.id, "event": "parked", "reason": self._ending},
                )
            if server.owns(record.id) is None:
                await server.backplane.detach(record.id)
        except BackplaneError:
            logger.warning("backplane unavailable while leaving", extra={"session": record.id})

    def end(self, reason: str, *, code: int) -> None:
        """Stop reading (from any task): the connection closes after flushing."""
        if self._ending is None:
            self._ending = reason
            self._close_code = code
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()

    # -- sending -------------------------------------------------------------------------------

    def send(self, message: Mapping[str, Any]) -> None:
        self.send_text(encode(message))

    def send_text(self, text: str) -> None:
        """Queue a message; a client too slow to take it is disconnected, never buffered."""
        if self._ending in ("slow", "replaced"):
            return
        if not self._budget.reserve(len(text)):
            self._server.metrics.errors.labels(code=ErrorCode.SLOW_CONSUMER.value).inc()
            logger.warning("slow consumer disconnected", extra={"event": "slow-consumer"})
            self.end("slow", code=CLOSE_SLOW)
            if self._writer is not None:
                self._writer.cancel()
            return
        self._outbox.put_nowait(text)

    def apply(self, delivery: Delivery) -> None:
        """A message for this session arrived through the backplane."""
        control = delivery.control
        if control is not None:
            if control.action is ControlAction.CALL_STARTED:
                self.call = control.call
                self.ticket = None
                self.last_queued = None
            elif control.action is ControlAction.CALL_ENDED:
                self.call = None
            elif control.action is ControlAction.REPLACED:
                if delivery.text:
                    self.send_text(delivery.text)
                self.end("replaced", code=CLOSE_REPLACED)
                return
        if delivery.text:
            self.send_text(delivery.text)

    async def _write_forever(self) -> None:
        while (text := await self._outbox.get()) is not None:
            try:
                await self._ws.send_str(text)
            except ConnectionError:
                self.end("gone", code=1006)
                return
            self._budget.release(len(text))

    # -- reading -------------------------------------------------------------------------------

    async def _read_forever(self) -> None:
        server = self._server
        deadline = time.monotonic() + server.config.limits.auth_timeout_s
        while self._ending is None:
            timeout = None if self.record else max(0.0, deadline - time.monotonic())
            try:
                msg = await self._ws.receive(timeout=timeout)
            except TimeoutError:
                self._fail(ErrorCode.AUTH_TIMEOUT)
                return
            if msg.type == WSMsgType.TEXT:
                await self._on_text(msg.data)
            elif msg.type == WSMsgType.BINARY:
                self._refuse(
                    ErrorCode.INVALID_MESSAGE, "binary frames are not part of the protocol"
                )
            else:  # close, closing, closed, error (oversize frames end here too)
                self._ending = self._ending or "dropped"
                return

    async def _on_text(self, text: str) -> None:
        server = self._server
        if not self._bucket.allow(time.monotonic()):
            self._refuse(ErrorCode.RATE_LIMITED)
            return
        received = time.perf_counter()
        ref: str | None = None
        try:
            message = decode(text, max_bytes=server.config.limits.max_message_bytes)
            ref = message.id
            if self.record is None:
                if not isinstance(message, Hello):
                    raise ProtocolError(ErrorCode.NOT_AUTHENTICATED)
                await self._hello(message)
                return
            if isinstance(message, Hello):
                raise ProtocolError(ErrorCode.ALREADY_AUTHENTICATED)
            if self.record.role not in _ALLOWED[type(message)]:
                raise ProtocolError(
                    ErrorCode.FORBIDDEN,
                    f"a {self.record.role} may not send {type(message).__name__}",
                )
            await self._dispatch(message, received)
        except ProtocolError as exc:
            self._refuse(exc.code, exc.detail, ref=ref)
        except AuthError as exc:
            logger.info("sign-in refused", extra={"code": exc.code.value, "event": "auth-failed"})
            self._fail(ErrorCode.AUTH_FAILED, exc.code.value, ref=ref)
        except BackplaneError:
            logger.exception("backplane failed", extra={"event": "backplane-error"})
            self._refuse(ErrorCode.INTERNAL, "shared state unavailable; try again", ref=ref)

    def _refuse(
        self, code: ErrorCode, detail: str | None = None, *, ref: str | None = None
    ) -> None:
        if code.fatal:
            self._fail(code, detail, ref=ref)
            return
        self._server.metrics.errors.labels(code=code.value).inc()
        self.send(error_message(code, detail=detail, ref=ref))
        if code in _STRIKES and self._strikes.strike(time.monotonic()):
            self._fail(ErrorCode.TOO_MANY_ERRORS)

    def _fail(self, code: ErrorCode, detail: str | None = None, *, ref: str | None = None) -> None:
        self._server.metrics.errors.labels(code=code.value).inc()
        self.send(error_message(code, detail=detail, ref=ref))
        self.end(code.value, code=CLOSE_POLICY)

    # -- sign-in -------------------------------------------------------------------------------

    async def _hello(self, hello: Hello) -> None:
        server = self._server
        if hello.version != PROTOCOL_VERSION:  # pragma: no cover - the schema pins v
            raise ProtocolError(ErrorCode.UNSUPPORTED_VERSION)
        token = secrets.token_urlsafe(32)
        if hello.resume is not None:
            resumed = await server.backplane.resume(
                resume_hash(hello.resume), new_resume_hash=resume_hash(token)
            )
            if resumed is None:
                self._fail(ErrorCode.RESUME_FAILED, ref=hello.id)
                return
            if not resumed.was_parked:
                # a half-open connection still holds it, here or on another node
                await server.backplane.deliver(
                    Delivery(
                        session=resumed.session.id,
                        text=encode(error_message(ErrorCode.REPLACED)),
                        control=Control(ControlAction.REPLACED),
                    )
                )
            self.record = resumed.session
            self.call = resumed.call
            self.ticket = resumed.ticket
            server.metrics.resumes.inc()
            await server.adopt(self)
            self.send(await server.welcome(self, token, resumed=True, ref=hello.id))
            if resumed.call is not None and (peer := resumed.call.peer_of(self.record.id)):
                await server.send_to(peer, {"type": "peer-back", "call": resumed.call.id})
            if resumed.ticket is not None:
                await server.backplane.announce(resumed.ticket.hospital)
                if resumed.ticket.no_doctor_notified:  # it may have been sent while away
                    waited = round(server.clock() - resumed.ticket.enqueued_at, 1)
                    self.send(
                        {"type": "no-doctor", "ticket": resumed.ticket.id, "waited_s": waited}
                    )
            logger.info(
                "session resumed",
                extra={"session": self.record.id, "event": "resumed", "node": server.node},
            )
            return
        assert hello.token is not None  # the decoder checks token xor resume
        principal = await server.verifier.verify(
            hello.token, now=datetime.fromtimestamp(server.clock(), UTC)
        )
        record = SessionRecord(
            id=new_id(),
            role=principal.role,
            identity=principal.identity,
            subject=principal.subject,
            hospitals=principal.hospitals,
            node=server.node,
            resume_hash=resume_hash(token),
            presence=Presence.AWAY if principal.role is Role.DOCTOR else None,
        )
        await server.backplane.open_session(
            record, max_per_identity=server.config.limits.connections_per_identity
        )
        self.record = record
        await server.adopt(self)
        self.send(await server.welcome(self, token, resumed=False, ref=hello.id))
        if record.role is Role.DOCTOR:
            self.send(await server.queue_message(record.hospitals))
        logger.info(
            "signed in", extra={"session": record.id, "role": record.role.value, "event": "hello"}
        )

    # -- requests ------------------------------------------------------------------------------

    async def _dispatch(self, message: Inbound, received: float) -> None:
        server = self._server
        record = self.record
        assert record is not None
        match message:
            case Relay():
                await self._relay(message, received)
            case Ping():
                self.send(_with_ref({"type": "pong", "time": server.clock()}, message.id))
            case IceRefresh():
                self.send(_with_ref(server.ice_message(record), message.id))
            case ConsultRequest(triage=triage):
                if record.hospitals and triage.hospital is None:
                    # "any hospital" from a cabin limited to some means any of *its* hospitals
                    if len(record.hospitals) > 1:
                        raise ProtocolError(
                            ErrorCode.FORBIDDEN, "name one of this cabin's hospitals"
                        )
                    triage = dataclasses.replace(triage, hospital=record.hospitals[0])
                if (
                    triage.hospital is not None
                    and record.hospitals
                    and (triage.hospital not in record.hospitals)
                ):
                    raise ProtocolError(
                        ErrorCode.FORBIDDEN, "this cabin may not call that hospital"
                    )
                now = server.clock()
                ticket = await server.backplane.enqueue(
                    Ticket(
                        id=new_id(),
                        session=record.id,
                        cabin=record.subject,
                        triage=triage,
                        enqueued_at=now,
                    )
                )
                self.ticket = ticket
                await server.send_position(self, force=True, ref=message.id)
                await server.backplane.announce(ticket.hospital)
            case ConsultCancel():
                ticket = await server.backplane.cancel(record.id)
                self.ticket = None
                self.last_queued = None
                self.send(_with_ref({"type": "cancelled", "ticket": ticket.id}, message.id))
                await server.backplane.announce(ticket.hospital)
            case ConsultStay():
                self.ticket = await server.backplane.renew(record.id, now=server.clock())
                await server.send_position(self, force=True, ref=message.id)
            case SetPresence(status=status):
                self.record = await server.backplane.set_presence(record.id, status)
                shown = self.record.presence or status
                self.send(_with_ref({"type": "presence", "status": shown.value}, message.id))
                for hospital in record.hospitals:
                    await server.backplane.announce(hospital)
            case QueueGet():
                self.send(_with_ref(await server.queue_message(record.hospitals), message.id))
            case Accept(ticket=ticket_id):
                await server.accept(self, ticket_id, ref=message.id)
            case HangUp(call=call_id, reason=reason):
                call = await server.backplane.hang_up(session_id=record.id, call_id=call_id)
                self.call = None
                await server.after_hang_up(call, by=record.role.value, reason=reason)
            case Bye():
                self.end("bye", code=1000)
            case StatsGet():
                stats = await server.backplane.stats()
                self.send(
                    _with_ref(
                        {
                            "type": "stats",
                            "sessions": stats.sessions,
                            "parked": stats.parked,
                            "queued": stats.queued,
                            "calls": stats.calls,
                            "nodes": list(stats.nodes),
                        },
                        message.id,
                    )
                )
            case _:  # pragma: no cover - _ALLOWED lists every type
                raise ProtocolError(ErrorCode.UNKNOWN_TYPE)

    async def _relay(self, relay: Relay, received: float) -> None:
        record = self.record
        assert record is not None
        call = self.call
        if call is None or call.id != relay.call:
            raise ProtocolError(ErrorCode.NOT_IN_CALL)
        peer = call.peer_of(record.id)
        if peer is None:  # pragma: no cover - a cached call always names this session
            raise ProtocolError(ErrorCode.NOT_IN_CALL)
        text = encode(relay_message(relay, sender=record.role.value))
        delivered = await self._server.backplane.deliver(Delivery(session=peer, text=text))
        metrics = self._server.metrics
        metrics.relay_latency.observe(time.perf_counter() - received)
        metrics.relayed.labels(kind=relay.kind).inc()
        if not delivered:
            raise ProtocolError(ErrorCode.PEER_UNAVAILABLE)


def _with_ref(message: dict[str, Any], ref: str | None) -> dict[str, Any]:
    if ref is not None:
        message["ref"] = ref
    return message
