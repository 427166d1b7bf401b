"""Kiosk sessions: what a session is, the port the cabin's visit implements, and the service
that ties a session to its visit and its events.

::

    kiosk ──POST /sessions──▶ KioskSessions.open ──▶ VisitPort.open      (the cabin's visit)
                                   │                 events: session.started
    cabin ──consent, progress────▶ KioskSessions.record_consent / publish ──▶ events to the kiosk
    kiosk ──DELETE /sessions/id──▶ KioskSessions.wipe ──▶ VisitPort.wipe ──▶ session.wiped

The cabin's visit state machine (another package, later) implements :class:`VisitPort`;
:class:`MemoryVisits` stands in for it in tests and the demo.  Nothing here imports the cabin.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from kiosk_bridge.consent import ConsentRecord, Locale, withdrawal
from kiosk_bridge.errors import RequestReason, RequestRefused, SessionUnknown, WipeOverdue
from kiosk_bridge.events import CompletedVisit, EventSender, EventType, build_event
from kiosk_bridge.identity import Identity

logger = logging.getLogger(__name__)

WIPE_DEADLINE = 1.0
"""Seconds within which a wipe must have happened (issue 7: card removed → wiped within 1 s)."""


class Service(StrEnum):
    """What the resident chose at the kiosk."""

    HEALTH_CHECK = "health-check"
    CONSULT = "consult"
    BOTH = "both"


class VisitState(StrEnum):
    """Where a visit stands, as the kiosk sees it."""

    OPENED = "opened"
    CONSENTED = "consented"
    MEASURING = "measuring"
    CONSULT_QUEUED = "consult_queued"
    IN_CONSULT = "in_consult"
    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


TERMINAL_STATES = frozenset({VisitState.COMPLETED, VisitState.WITHDRAWN, VisitState.EXPIRED})


class WipeReason(StrEnum):
    """Why a session's data was wiped."""

    KIOSK_REQUEST = "kiosk_request"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """One resident's session, opened by the kiosk.  ``repr()`` holds no personal data."""

    session_id: str
    identity: Identity = field(repr=False)
    service: Service
    callback_url: str = field(repr=False)
    locale: Locale
    created_at: datetime
    expires_at: datetime
    launch_token: str = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """Steps of the visit done out of the steps planned."""

    done: int
    total: int

    def __post_init__(self) -> None:
        if not 0 <= self.done <= self.total:
            raise ValueError("need 0 <= done <= total")


@dataclass(frozen=True, slots=True, kw_only=True)
class VisitStatus:
    """What the visit reports about itself."""

    state: VisitState
    progress: Progress


class VisitPort(Protocol):
    """What the cabin's visit offers the kiosk bridge (implemented by the cabin, issue 8).

    Every method must return promptly: ``wipe`` in particular is awaited under the one-second
    wipe deadline.  ``wipe`` and ``withdraw`` of an unknown id do nothing.
    """

    async def open(self, session: Session) -> None:
        """Prepare the visit of a new session (nothing measured yet)."""
        ...

    async def status(self, session_id: str) -> VisitStatus | None:
        """Where the visit stands; ``None`` for an unknown id."""
        ...

    async def record_consent(self, record: ConsentRecord) -> None:
        """Keep the consent record (it becomes a FHIR ``Consent`` in the visit's bundle)."""
        ...

    async def withdraw(self, session_id: str) -> None:
        """Consent withdrawn: stop the visit and delete what was not yet delivered."""
        ...

    async def wipe(self, session_id: str) -> None:
        """Forget everything about the resident except what is queued for the hospital."""
        ...


def planned_steps(service: Service) -> int:
    """How many steps a visit of ``service`` has (consent, measurements, consultation)."""
    return {Service.HEALTH_CHECK: 6, Service.CONSULT: 2, Service.BOTH: 7}[service]


class MemoryVisits:
    """A :class:`VisitPort` in memory, standing in for the cabin in tests and the demo."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._status: dict[str, VisitStatus] = {}
        self._consents: dict[str, ConsentRecord] = {}
        self.withdrawn: set[str] = set()
        self.wiped: set[str] = set()

    async def open(self, session: Session) -> None:
        self._sessions[session.session_id] = session
        total = planned_steps(session.service)
        self._status[session.session_id] = VisitStatus(
            state=VisitState.OPENED, progress=Progress(done=0, total=total)
        )

    async def status(self, session_id: str) -> VisitStatus | None:
        return self._status.get(session_id)

    async def record_consent(self, record: ConsentRecord) -> None:
        self._consents[record.session_id] = record
        if record.withdrawn_at is None:
            self.advance(record.session_id, VisitState.CONSENTED)

    async def withdraw(self, session_id: str) -> None:
        self.withdrawn.add(session_id)
        if session_id in self._status:
            self.advance(session_id, VisitState.WITHDRAWN, steps=0)

    async def wipe(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
        self._status.pop(session_id, None)
        self._consents.pop(session_id, None)
        self.wiped.add(session_id)

    def advance(self, session_id: str, state: VisitState, *, steps: int = 1) -> None:
        """Move the visit to ``state``, ``steps`` more done (what the cabin would do)."""
        current = self._status[session_id]
        done = min(current.progress.done + steps, current.progress.total)
        self._status[session_id] = VisitStatus(
            state=state, progress=Progress(done=done, total=current.progress.total)
        )

    def consent(self, session_id: str) -> ConsentRecord | None:
        return self._consents.get(session_id)

    def holds(self, session_id: str) -> bool:
        """True while anything about the session is held."""
        return any(session_id in held for held in (self._sessions, self._status, self._consents))


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionPolicy:
    """How long a session lives before the kiosk must start over, and which callback URLs
    events may go to (``None``: any http(s) URL; set it in production)."""

    lifetime: timedelta = timedelta(minutes=30)
    callback_prefixes: tuple[str, ...] | None = None


class KioskSessions:
    """The live sessions of one cabin, each tied to its visit and its event stream."""

    def __init__(
        self,
        *,
        visits: VisitPort,
        events: EventSender,
        clock: Callable[[], datetime],
        policy: SessionPolicy = SessionPolicy(),
    ) -> None:
        self._visits = visits
        self._events = events
        self._clock = clock
        self._policy = policy
        self._live: dict[str, Session] = {}

    async def open(
        self, *, identity: Identity, service: Service, callback_url: str, locale: Locale
    ) -> Session:
        """Open a session for ``identity``; 409 while this resident has a live one."""
        now = self._clock()
        for live in self._live.values():
            if live.identity.cccd == identity.cccd and live.expires_at > now:
                raise RequestRefused(
                    409,
                    RequestReason.SESSION_ACTIVE,
                    "This resident already has a live session; end it first.",
                )
        session = Session(
            session_id=secrets.token_urlsafe(18),
            identity=identity,
            service=service,
            callback_url=callback_url,
            locale=locale,
            created_at=now,
            expires_at=now + self._policy.lifetime,
            launch_token=secrets.token_urlsafe(24),
        )
        await self._visits.open(session)
        self._live[session.session_id] = session
        await self.publish(
            session.session_id,
            EventType.SESSION_STARTED,
            {
                "service": service.value,
                "locale": locale.value,
                "assurance": identity.assurance.value,
                "expires_at": _instant(session.expires_at),
            },
        )
        logger.info("session %s opened (%r)", session.session_id, identity)
        return session

    def get(self, session_id: str) -> Session:
        """The live session ``session_id``, or :class:`SessionUnknown`."""
        try:
            return self._live[session_id]
        except KeyError:
            raise SessionUnknown(session_id) from None

    async def status(self, session_id: str) -> VisitStatus:
        """The visit's status; ``expired`` once the session outlived its lifetime."""
        session = self.get(session_id)
        status = await self._visits.status(session_id)
        if status is None:
            raise SessionUnknown(session_id)
        if self._clock() >= session.expires_at and status.state not in TERMINAL_STATES:
            return replace(status, state=VisitState.EXPIRED)
        return status

    async def record_consent(self, record: ConsentRecord) -> None:
        """Store ``record`` through the visit, then tell the kiosk."""
        self.get(record.session_id)
        await self._visits.record_consent(record)
        await self.publish(record.session_id, EventType.CONSENT_RECORDED, record.event_data())

    async def withdraw(self, record: ConsentRecord) -> ConsentRecord:
        """The resident withdrew: stop the visit, delete the undelivered, tell the kiosk."""
        self.get(record.session_id)
        withdrawn = withdrawal(record, now=self._clock())
        await self._visits.withdraw(record.session_id)
        await self._visits.record_consent(withdrawn)
        await self.publish(record.session_id, EventType.CONSENT_RECORDED, withdrawn.event_data())
        return withdrawn

    async def complete(self, session_id: str, visit: CompletedVisit) -> None:
        """The visit ended normally: send the summary and receipt."""
        session = self.get(session_id)
        data = visit.event_data(session_id=session_id, locale=session.locale.value)
        await self.publish(session_id, EventType.SESSION_COMPLETED, data)

    async def wipe(self, session_id: str, *, reason: WipeReason = WipeReason.KIOSK_REQUEST) -> None:
        """Wipe the visit within :data:`WIPE_DEADLINE`, forget the session, then say so."""
        self.get(session_id)
        try:
            async with asyncio.timeout(WIPE_DEADLINE):
                await self._visits.wipe(session_id)
        except TimeoutError:
            logger.error(
                "session %s: the visit did not wipe within %s s", session_id, WIPE_DEADLINE
            )
            raise WipeOverdue(session_id) from None
        await self.publish(session_id, EventType.SESSION_WIPED, {"reason": reason.value})
        del self._live[session_id]
        logger.info("session %s wiped (%s)", session_id, reason.value)

    async def publish(
        self, session_id: str, event_type: EventType, data: Mapping[str, Any] | None = None
    ) -> None:
        """Send the kiosk ``event_type`` about ``session_id`` (persisted before returning)."""
        session = self.get(session_id)
        event = build_event(
            event_type,
            source=self._events.source,
            session_id=session_id,
            now=self._clock(),
            data=data,
        )
        await self._events.publish(event, callback_url=session.callback_url)


def _instant(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
