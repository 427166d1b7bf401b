"""The signaling node: HTTP routes, the connections it holds, and its background duties.

Routes: ``/ws`` (the protocol, see ``docs/signaling.md``), ``/healthz`` (the process is up),
``/readyz`` (the backplane answers), ``/metrics`` (Prometheus), and ``/console/`` when a
console directory is given. :meth:`SignalingServer.running` owns the node's two background
tasks in one ``TaskGroup``: the sweeper (heartbeat, adopting a dead node's sessions, ending
grace windows, no-doctor notices) and the queue pusher (live queues for doctors, positions
for cabins, coalesced per change).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from signaling.auth import TokenVerifier
from signaling.backplane import Backplane, Control, ControlAction, Delivery
from signaling.codes import ErrorCode
from signaling.config import SignalingConfig
from signaling.connection import CLOSE_SHUTDOWN, Connection, new_id
from signaling.errors import BackplaneError, ProtocolError
from signaling.forwarded import ClientAddress, TrustedProxies, client_address
from signaling.ice import ice_servers
from signaling.messages import encode, error_message, triage_json
from signaling.metrics import Metrics
from signaling.model import (
    ANY_HOSPITAL,
    Call,
    Closed,
    QueueView,
    Role,
    SessionRecord,
    Ticket,
    estimated_wait_s,
)

logger = logging.getLogger(__name__)

_COALESCE_S = 0.02


class SignalingServer:
    """One node of the signaling service."""

    def __init__(
        self,
        *,
        config: SignalingConfig,
        backplane: Backplane,
        verifier: TokenVerifier,
        clock: Callable[[], float] = time.time,
        console_dir: Path | None = None,
    ) -> None:
        self.config = config
        self.backplane = backplane
        self.verifier = verifier
        self.clock = clock
        self.node = backplane.node
        self.metrics = Metrics()
        self._proxies = TrustedProxies.parse(list(config.trusted_proxies))
        self._connections: dict[str, Connection] = {}
        self._pending: set[str] = set()
        self._pending_event = asyncio.Event()
        self._closing = False
        self._all_gone = asyncio.Event()
        self._all_gone.set()
        self.app = web.Application()
        self.app.router.add_get("/ws", self._websocket)
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics)
        if console_dir is not None:
            self._console_index = console_dir / "index.html"
            self.app.router.add_get("/console", self._console_redirect)
            # a static route answers a directory with 403: serve the page itself at /console/
            self.app.router.add_get("/console/", self._console_page)
            self.app.router.add_static("/console/", console_dir, append_version=False)

    # -- lifecycle -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[SignalingServer]:
        """Start the backplane and the node's background tasks; stop them all on exit."""
        await self.backplane.start(
            on_delivery=self._on_delivery, on_queue_changed=self._on_queue_changed
        )
        try:
            async with asyncio.TaskGroup() as group:
                sweeper = group.create_task(self._sweep_forever())
                pusher = group.create_task(self._push_forever())
                try:
                    yield self
                finally:
                    await self.close_connections()
                    sweeper.cancel()
                    pusher.cancel()
        finally:
            await self.backplane.close()

    async def close_connections(self) -> None:
        """Tell every client to resume elsewhere; their sessions stay parked for the grace."""
        self._closing = True
        for connection in list(self._connections.values()):
            connection.send(error_message(ErrorCode.SHUTTING_DOWN))
            connection.end("shutdown", code=CLOSE_SHUTDOWN)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await self._all_gone.wait()

    # -- connections ---------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if self._closing:
            raise web.HTTPServiceUnavailable(text="shutting down")
        if not self._origin_allowed(request):
            raise web.HTTPForbidden(text="origin not allowed")
        limits = self.config.limits
        ws = web.WebSocketResponse(
            heartbeat=limits.heartbeat_s,
            max_msg_size=limits.max_message_bytes * 4,
        )
        await ws.prepare(request)
        address = self._address(request)
        connection = Connection(server=self, ws=ws, peer=address.ip)
        await connection.run()
        return ws

    def _origin_allowed(self, request: web.Request) -> bool:
        """Browsers send Origin: same-origin and configured origins pass; others are refused."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True  # not a browser (the cabin, tests): authenticated by token anyway
        if origin in self.config.allowed_origins:
            return True
        address = self._address(request)
        parts = urlsplit(origin)
        return parts.netloc == request.host and parts.scheme in (
            "https" if address.scheme == "https" else "http",
            "https",
        )

    def _address(self, request: web.Request) -> ClientAddress:
        scheme = "https" if request.secure else "http"
        return client_address(request.remote or "", request.headers, self._proxies, scheme=scheme)

    async def adopt(self, connection: Connection) -> None:
        """A connection signed in (or resumed) here: route its session's messages to it."""
        record = connection.record
        assert record is not None
        self._connections[record.id] = connection
        self._all_gone.clear()
        await self.backplane.attach(record.id)
        self.metrics.connections.labels(role=record.role.value).inc()

    def forget(self, connection: Connection) -> None:
        record = connection.record
        if record is not None:
            self.metrics.connections.labels(role=record.role.value).dec()
            if self._connections.get(record.id) is connection:  # not replaced by a resume
                del self._connections[record.id]
        if not self._connections:
            self._all_gone.set()

    def owns(self, session_id: str) -> Connection | None:
        return self._connections.get(session_id)

    def _on_delivery(self, delivery: Delivery) -> None:
        connection = self._connections.get(delivery.session)
        if connection is not None:
            connection.apply(delivery)

    async def send_to(self, session_id: str, message: Mapping[str, Any]) -> bool:
        return await self.backplane.deliver(Delivery(session=session_id, text=encode(message)))

    # -- messages the server composes ----------------------------------------------------------

    def ice_message(self, record: SessionRecord) -> dict[str, Any]:
        servers = ice_servers(
            self.config.ice,
            identity=f"{record.role.value}-{record.subject}",
            now=datetime.fromtimestamp(self.clock(), UTC),
        )
        expiries = [s.expires_at.timestamp() for s in servers if s.expires_at is not None]
        message: dict[str, Any] = {
            "type": "ice-servers",
            "ice_servers": [s.to_json() for s in servers],
        }
        if expiries:
            message["ice_expires_at"] = min(expiries)
        return message

    async def welcome(
        self, connection: Connection, resume_token: str, *, resumed: bool, ref: str | None
    ) -> dict[str, Any]:
        record = connection.record
        assert record is not None
        ice = self.ice_message(record)
        message: dict[str, Any] = {
            "type": "welcome",
            "v": 1,
            "session": record.id,
            "resume": resume_token,
            "resumed": resumed,
            "role": record.role.value,
            "subject": record.subject,
            "hospitals": list(record.hospitals),
            "ice_servers": ice["ice_servers"],
            "heartbeat_s": self.config.limits.heartbeat_s,
            "grace_s": self.config.grace_s,
            "max_message_bytes": self.config.limits.max_message_bytes,
            "presence": None if record.presence is None else record.presence.value,
            "ticket": None,
            "call": None,
        }
        if "ice_expires_at" in ice:
            message["ice_expires_at"] = ice["ice_expires_at"]
        if connection.ticket is not None:
            message["ticket"] = _ticket_json(connection.ticket)
        if connection.call is not None:
            message["call"] = await self._call_message(connection.call, record.id)
        if ref is not None:
            message["ref"] = ref
        return message

    async def queue_message(self, hospitals: tuple[str, ...]) -> dict[str, Any]:
        view = await self.backplane.queue(hospitals)
        return _queue_json(view)

    async def _call_message(self, call: Call, session_id: str) -> dict[str, Any]:
        peer_id = call.peer_of(session_id)
        peer = None if peer_id is None else await self.backplane.session(peer_id)
        role = "cabin" if session_id == call.cabin_session else "doctor"
        return {
            "type": "call",
            "call": call.id,
            "role": role,
            "peer": {} if peer is None else {"role": peer.role.value, "subject": peer.subject},
            "offerer": "cabin",
            "hospital": call.hospital,
            "started_at": call.started_at,
            "waited_s": call.waited_s,
        }

    async def send_position(
        self,
        connection: Connection,
        *,
        force: bool = False,
        ref: str | None = None,
        views: dict[tuple[str, ...], QueueView] | None = None,
    ) -> None:
        """Tell a waiting cabin its place and the estimate, if either changed.

        ``views`` caches queue views across the cabins of one push round.
        """
        ticket = connection.ticket
        if ticket is None:
            return
        key = (ticket.hospital,)
        view = None if views is None else views.get(key)
        if view is None:
            view = await self.backplane.queue(key)
            if views is not None:
                views[key] = view
        position = view.position(ticket.id)
        if position is None:
            return
        estimate = estimated_wait_s(
            position=position, available=view.available, mean_consult_s=self.config.mean_consult_s
        )
        state = (position, estimate, view.available)
        if not force and state == connection.last_queued:
            return
        connection.last_queued = state
        message: dict[str, Any] = {
            "type": "queued",
            "ticket": ticket.id,
            "hospital": ticket.hospital,
            "position": position,
            "estimated_wait_s": None if estimate is None else math.ceil(estimate),
            "doctors_available": view.available,
            "waiting_since": ticket.enqueued_at,
        }
        if ref is not None:
            message["ref"] = ref
        connection.send(message)

    # -- calls ---------------------------------------------------------------------------------

    async def accept(self, doctor: Connection, ticket_id: str, *, ref: str | None) -> None:
        record = doctor.record
        assert record is not None
        call = await self.backplane.accept(
            ticket_id=ticket_id, doctor_session=record.id, call_id=new_id(), now=self.clock()
        )
        doctor.call = call
        self.metrics.calls_started.inc()
        self.metrics.waiting_time.labels(hospital=call.hospital).observe(call.waited_s)
        to_cabin = await self._call_message(call, call.cabin_session)
        await self.backplane.deliver(
            Delivery(
                session=call.cabin_session,
                text=encode(to_cabin),
                control=Control(ControlAction.CALL_STARTED, call),
            )
        )
        to_doctor = await self._call_message(call, record.id)
        if ref is not None:
            to_doctor["ref"] = ref
        doctor.send(to_doctor)
        # the ticket left its queue; the doctor's presence changed in their hospital
        await self.backplane.announce(call.queue)
        if call.hospital != call.queue:
            await self.backplane.announce(call.hospital)
        logger.info("call started", extra={"call": call.id, "event": "call-started"})

    async def after_hang_up(self, call: Call, *, by: str, reason: str) -> None:
        message = {
            "type": "call-ended",
            "call": call.id,
            "by": by,
            "reason": reason,
            "duration_s": round(max(0.0, self.clock() - call.started_at), 3),
        }
        for session in (call.cabin_session, call.doctor_session):
            await self.backplane.deliver(
                Delivery(
                    session=session,
                    text=encode(message),
                    control=Control(ControlAction.CALL_ENDED, call),
                )
            )
        self.metrics.calls_ended.labels(reason=reason).inc()
        for hospital in await self._hospitals_of(call.doctor_session):
            await self.backplane.announce(hospital)
        logger.info("call ended", extra={"call": call.id, "event": "call-ended", "reason": reason})

    async def after_close(self, closed: Closed, *, by: str, reason: str) -> None:
        """A session ended: end its call for the other party, free its queue place."""
        if closed.ended_call is not None:
            await self.after_hang_up(closed.ended_call, by=by, reason=reason)
        if closed.cancelled_ticket is not None:
            await self.backplane.announce(closed.cancelled_ticket.hospital)
        if closed.session.role is Role.DOCTOR:
            for hospital in closed.session.hospitals:
                await self.backplane.announce(hospital)

    async def _hospitals_of(self, session_id: str) -> tuple[str, ...]:
        record = await self.backplane.session(session_id)
        return () if record is None else record.hospitals

    # -- background ----------------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except BackplaneError:
                logger.warning("sweep skipped: backplane unavailable", extra={"event": "sweep"})
            await asyncio.sleep(self.config.sweep_s)

    async def sweep(self) -> None:
        """One round of the node's duties (also called directly by tests)."""
        now = self.clock()
        await self.backplane.heartbeat(now=now)
        for parked in await self.backplane.adopt_orphans(now=now, until=now + self.config.grace_s):
            if parked.call is not None and (peer := parked.call.peer_of(parked.session.id)):
                await self.send_to(
                    peer,
                    {
                        "type": "peer-reconnecting",
                        "call": parked.call.id,
                        "grace_s": self.config.grace_s,
                    },
                )
        for closed in await self.backplane.expire(now=now):
            logger.info(
                "grace window over; session closed",
                extra={"session": closed.session.id, "event": "expired"},
            )
            await self.after_close(closed, by="server", reason="peer-lost")
        for ticket in await self.backplane.overdue(now=now, wait_s=self.config.no_doctor_s):
            await self.send_to(
                ticket.session,
                {
                    "type": "no-doctor",
                    "ticket": ticket.id,
                    "waited_s": round(now - ticket.enqueued_at, 1),
                },
            )

    def _on_queue_changed(self, queue_key: str) -> None:
        self._pending.add(queue_key)
        self._pending_event.set()

    async def _push_forever(self) -> None:
        while True:
            await self._pending_event.wait()
            await asyncio.sleep(_COALESCE_S)
            self._pending_event.clear()
            keys, self._pending = self._pending, set()
            try:
                await self._push(keys)
            except BackplaneError:
                logger.warning("queue push skipped: backplane unavailable")

    async def _push(self, keys: set[str]) -> None:
        """Send fresh queues to this node's doctors and positions to its waiting cabins."""
        views: dict[tuple[str, ...], QueueView] = {}
        every = ANY_HOSPITAL in keys
        for connection in list(self._connections.values()):
            record = connection.record
            if record is None:
                continue
            if record.role is Role.DOCTOR and (every or keys.intersection(record.hospitals)):
                if record.hospitals not in views:
                    views[record.hospitals] = await self.backplane.queue(record.hospitals)
                connection.send(_queue_json(views[record.hospitals]))
            elif (
                record.role is Role.CABIN
                and (ticket := connection.ticket) is not None
                and (every or ticket.hospital in keys or ticket.hospital == ANY_HOSPITAL)
            ):  # only cabins whose place or estimate this change can move
                await self.send_position(connection, views=views)
        for key in keys:
            view = views.get((key,)) or await self.backplane.queue((key,))
            self.metrics.queue_length.labels(hospital=key).set(
                sum(1 for t in view.tickets if t.hospital == key)
            )

    # -- plain HTTP ----------------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "node": self.node})

    async def _readyz(self, request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(1.0):
                await self.backplane.ping()
        except (BackplaneError, TimeoutError):
            return web.json_response({"status": "backplane unreachable"}, status=503)
        return web.json_response({"status": "ready", "node": self.node})

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), content_type="text/plain", charset="utf-8")

    async def _console_page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(self._console_index, headers={"Cache-Control": "no-cache"})

    async def _console_redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(
            "/console/" + (f"?{request.query_string}" if request.query_string else "")
        )


def _ticket_json(ticket: Ticket, position: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ticket": ticket.id,
        "hospital": ticket.hospital,
        "triage": triage_json(ticket.triage),
        "waiting_since": ticket.enqueued_at,
    }
    if position is not None:
        out["position"] = position
    return out


def _queue_json(view: QueueView) -> dict[str, Any]:
    return {
        "type": "queue",
        "hospitals": list(view.hospitals),
        "tickets": [_ticket_json(t, i) for i, t in enumerate(view.tickets, start=1)],
        "doctors": {"available": view.available, "busy": view.busy, "away": view.away},
    }


__all__ = ["ProtocolError", "SignalingServer"]
