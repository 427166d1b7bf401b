"""Events to the kiosk: CloudEvents 1.0 JSON, HMAC-signed, persisted, delivered in order.

Pure core (no I/O): :func:`build_event`, :func:`encode_event`, :func:`sign_body`,
:func:`retry_delay`, :func:`receipt_html`.  I/O shell: :class:`EventStore` (SQLite in WAL mode,
called off the event loop) and :class:`EventSender` (aiohttp client, one TaskGroup).

One POST per event to the session's callback URL (structured mode)::

    POST <callback_url>
    Content-Type: application/cloudevents+json; charset=utf-8
    X-Signature: sha256=<hex HMAC-SHA256(key, body)>
    X-Signature-Key-Id: <key id>
    X-Signature-Timestamp: <unix seconds when this attempt was signed>

    {"specversion": "1.0", "id": "<uuid4>", "source": "<cabin id>",
     "type": "vn.tramcongdanso.cabin.session.started", "time": "<RFC 3339>",
     "subject": "<session id>", "datacontenttype": "application/json", "data": {...}}

The body is stored once, byte for byte, before the first attempt, so every retry sends the
same bytes (and the same ``id``: the kiosk drops duplicates by it).  Per session, event N+1
is not sent before event N is acknowledged (2xx) or given up; sessions do not wait on each
other.  Events carry no CCCD number, name or birth date: the kiosk knows its own session.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import html
import json
import logging
import random
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import aiohttp

logger = logging.getLogger(__name__)

TYPE_PREFIX: Final = "vn.tramcongdanso.cabin."
CONTENT_TYPE: Final = "application/cloudevents+json; charset=utf-8"
SIGNATURE_HEADER: Final = "X-Signature"
KEY_ID_HEADER: Final = "X-Signature-Key-Id"
TIMESTAMP_HEADER: Final = "X-Signature-Timestamp"


class EventType(StrEnum):
    """The CloudEvents ``type`` of each event the cabin sends the kiosk."""

    SESSION_STARTED = TYPE_PREFIX + "session.started"
    CONSENT_RECORDED = TYPE_PREFIX + "consent.recorded"
    MEASUREMENT_COMPLETED = TYPE_PREFIX + "measurement.completed"
    CONSULT_QUEUED = TYPE_PREFIX + "consult.queued"
    CONSULT_STARTED = TYPE_PREFIX + "consult.started"
    CONSULT_ENDED = TYPE_PREFIX + "consult.ended"
    SOS_RAISED = TYPE_PREFIX + "sos.raised"
    SESSION_COMPLETED = TYPE_PREFIX + "session.completed"
    SESSION_WIPED = TYPE_PREFIX + "session.wiped"


class FhirDelivery(StrEnum):
    """Where the visit's FHIR bundle stands when the session completes."""

    DELIVERED = "delivered"
    QUEUED = "queued"
    NOT_SENT = "not_sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudEvent:
    """One event, ready to encode.  ``data`` holds JSON values only (no PHI)."""

    id: str
    source: str
    type: EventType
    time: datetime
    subject: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The CloudEvents 1.0 structured-mode JSON object."""
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": self.source,
            "type": self.type.value,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "subject": self.subject,
            "datacontenttype": "application/json",
            "data": dict(self.data),
        }


@dataclass(frozen=True, slots=True)
class SigningKey:
    """The shared secret the cabin signs events with, and the id the kiosk knows it by."""

    key_id: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < 32:
            raise ValueError("an event signing secret needs at least 32 bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How delivery retries: exponential backoff from ``first`` by ``factor`` up to
    ``longest``, each delay spread by ±``jitter`` (a fraction), and an event older than
    ``give_up_after`` abandoned (recorded, never silently dropped)."""

    first: timedelta = timedelta(seconds=1)
    factor: float = 2.0
    longest: timedelta = timedelta(minutes=5)
    jitter: float = 0.2
    give_up_after: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        if self.first <= timedelta(0) or self.longest < self.first:
            raise ValueError("need 0 < first <= longest")
        if self.factor < 1.0 or not 0.0 <= self.jitter < 1.0:
            raise ValueError("need factor >= 1 and 0 <= jitter < 1")


def build_event(
    event_type: EventType,
    *,
    source: str,
    session_id: str,
    now: datetime,
    data: Mapping[str, Any] | None = None,
    event_id: str | None = None,
) -> CloudEvent:
    """A new event with a fresh UUID (the kiosk's idempotency key)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return CloudEvent(
        id=event_id or str(uuid.uuid4()),
        source=source,
        type=event_type,
        time=now,
        subject=session_id,
        data=dict(data or {}),
    )


def encode_event(event: CloudEvent) -> bytes:
    """The exact bytes posted (compact, keys sorted, UTF-8)."""
    return json.dumps(
        event.as_json(), ensure_ascii=False, sort_keys=True, separators=(",", ":")
    ).encode("utf-8")


def sign_body(body: bytes, *, key: SigningKey) -> str:
    """The ``X-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(key.secret, body, hashlib.sha256).hexdigest()


def signature_headers(body: bytes, *, key: SigningKey, now: datetime) -> dict[str, str]:
    """Every header of one delivery attempt."""
    return {
        "Content-Type": CONTENT_TYPE,
        SIGNATURE_HEADER: sign_body(body, key=key),
        KEY_ID_HEADER: key.key_id,
        TIMESTAMP_HEADER: str(int(now.timestamp())),
    }


def verify_signature(body: bytes, signature: str, *, key: SigningKey) -> bool:
    """What the kiosk does: True when ``signature`` is ``body``'s (constant-time)."""
    return hmac.compare_digest(sign_body(body, key=key), signature)


def retry_delay(attempts: int, *, policy: RetryPolicy, spread: float) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt (1-based).

    ``spread`` in [0, 1) picks the jitter (0.5 = none): a test passes a fixed value, the
    sender a random one, so two cabins restarted together do not retry in step.
    """
    if attempts < 1:
        raise ValueError("attempts counts from 1")
    base = policy.first.total_seconds() * policy.factor ** min(attempts - 1, 64)
    capped = min(base, policy.longest.total_seconds())
    return timedelta(seconds=capped * (1.0 + policy.jitter * (2.0 * spread - 1.0)))


def expired(created_at: datetime, *, now: datetime, policy: RetryPolicy) -> bool:
    """True when an event created at ``created_at`` is too old to keep trying."""
    return now - created_at > policy.give_up_after


@dataclass(frozen=True, slots=True, kw_only=True)
class CompletedVisit:
    """What ``session.completed`` tells the kiosk: results in plain words, the FHIR bundle's
    delivery state, and what goes on the printed receipt (no identity numbers)."""

    summary: tuple[str, ...]
    fhir_delivery: FhirDelivery
    hospital: str
    cabin_name: str
    finished_at: datetime

    def event_data(self, *, session_id: str, locale: str) -> dict[str, Any]:
        """The event's ``data``, with the receipt rendered."""
        return {
            "summary": list(self.summary),
            "fhir_delivery": self.fhir_delivery.value,
            "receipt_html": receipt_html(self, session_id=session_id, locale=locale),
        }


_RECEIPT_WORDS: Final = {
    "vi": ("Phiếu kết quả khám sức khỏe", "Buồng khám", "Bệnh viện", "Thời gian", "Mã lượt khám"),
    "en": ("Health check receipt", "Cabin", "Hospital", "Time", "Visit"),
}

_FHIR_WORDS: Final = {
    "vi": {
        FhirDelivery.DELIVERED: "Đã gửi kết quả đến bệnh viện.",
        FhirDelivery.QUEUED: "Kết quả đang chờ gửi đến bệnh viện.",
        FhirDelivery.NOT_SENT: "Kết quả không được gửi đến bệnh viện.",
        FhirDelivery.FAILED: "Chưa gửi được kết quả đến bệnh viện.",
    },
    "en": {
        FhirDelivery.DELIVERED: "Results sent to the hospital.",
        FhirDelivery.QUEUED: "Results waiting to be sent to the hospital.",
        FhirDelivery.NOT_SENT: "Results not sent to the hospital.",
        FhirDelivery.FAILED: "Results could not be sent to the hospital yet.",
    },
}


def receipt_html(visit: CompletedVisit, *, session_id: str, locale: str) -> str:
    """A printable receipt, every value HTML-escaped (the summary may come from devices)."""
    words = _RECEIPT_WORDS.get(locale, _RECEIPT_WORDS["en"])
    fhir_words = _FHIR_WORDS.get(locale, _FHIR_WORDS["en"])
    title, cabin, hospital, when, visit_label = (html.escape(word) for word in words)
    rows = "".join(f"<li>{html.escape(line)}</li>" for line in visit.summary)
    lang = "vi" if locale == "vi" else "en"
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{title}</title></head><body><h1>{title}</h1>"
        f"<p>{cabin}: {html.escape(visit.cabin_name)}<br>"
        f"{hospital}: {html.escape(visit.hospital)}<br>"
        f"{when}: {html.escape(visit.finished_at.isoformat(timespec='minutes'))}<br>"
        f"{visit_label}: {html.escape(session_id)}</p>"
        f"<ul>{rows}</ul><p>{html.escape(fhir_words[visit.fhir_delivery])}</p></body></html>"
    )


# --- I/O shell ------------------------------------------------------------------------------


class DeliveryState(StrEnum):
    """Where a stored event stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    ABANDONED = "abandoned"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredEvent:
    """One row of the store: the exact bytes to post and its delivery bookkeeping."""

    seq: int
    event_id: str
    session_id: str
    callback_url: str
    body: bytes = field(repr=False)
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    state: DeliveryState
    last_error: str | None = None


_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL,
    callback_url TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT,
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS events_pending ON events (state, session_id, seq);
"""


class EventStore:
    """The SQLite file events wait in (WAL mode).  Blocking: call it via ``asyncio.to_thread``.

    One connection, used from whichever worker thread runs the call, behind a lock.
    """

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def enqueue(
        self, *, event_id: str, session_id: str, callback_url: str, body: bytes, now: datetime
    ) -> None:
        """Persist one event (committed before this returns); a known id is ignored."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO events (event_id, session_id, callback_url, body,"
                " created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?)",
                (event_id, session_id, callback_url, body, now.isoformat(), now.isoformat()),
            )

    def heads(self) -> list[StoredEvent]:
        """The oldest pending event of each session (only it may be sent)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event_id, session_id, callback_url, body, created_at, attempts,"
                " next_attempt_at, state, last_error FROM events WHERE seq IN"
                " (SELECT MIN(seq) FROM events WHERE state = 'pending' GROUP BY session_id)"
                " ORDER BY seq"
            ).fetchall()
        return [_stored(row) for row in rows]

    def mark_delivered(self, seq: int, *, now: datetime) -> None:
        self._finish(seq, DeliveryState.DELIVERED, now=now, error=None)

    def mark_abandoned(self, seq: int, *, now: datetime, error: str) -> None:
        self._finish(seq, DeliveryState.ABANDONED, now=now, error=error)

    def mark_failed(
        self, seq: int, *, attempts: int, next_attempt_at: datetime, error: str
    ) -> None:
        """Record a failed attempt and when to try again."""
        with self._lock:
            self._db.execute(
                "UPDATE events SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE seq = ?",
                (attempts, next_attempt_at.isoformat(), error[:500], seq),
            )

    def events(self, *, session_id: str | None = None) -> list[StoredEvent]:
        """Every stored event (of one session), oldest first: for tests and audit."""
        query = (
            "SELECT seq, event_id, session_id, callback_url, body, created_at, attempts,"
            " next_attempt_at, state, last_error FROM events"
        )
        with self._lock:
            if session_id is None:
                rows = self._db.execute(query + " ORDER BY seq").fetchall()
            else:
                rows = self._db.execute(
                    query + " WHERE session_id = ? ORDER BY seq", (session_id,)
                ).fetchall()
        return [_stored(row) for row in rows]

    def _finish(self, seq: int, state: DeliveryState, *, now: datetime, error: str | None) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE events SET state = ?, finished_at = ?, last_error = ?,"
                " attempts = attempts + 1 WHERE seq = ?",
                (state.value, now.isoformat(), error, seq),
            )


def _stored(row: Sequence[Any]) -> StoredEvent:
    return StoredEvent(
        seq=row[0],
        event_id=row[1],
        session_id=row[2],
        callback_url=row[3],
        body=bytes(row[4]),
        created_at=datetime.fromisoformat(row[5]),
        attempts=row[6],
        next_attempt_at=datetime.fromisoformat(row[7]),
        state=DeliveryState(row[8]),
        last_error=row[9],
    )


class EventSender:
    """Persists events and delivers them to the kiosk, in order per session, with retries.

    Use ``async with sender.running():``; events published before (or by an earlier sender on
    the same file) are resumed.  ``publish`` returns once the event is on disk.
    """

    def __init__(
        self,
        *,
        store_path: Path,
        key: SigningKey,
        source: str,
        clock: Callable[[], datetime],
        policy: RetryPolicy = RetryPolicy(),
        attempt_timeout: float = 5.0,
        idle_poll: float = 1.0,
        spread: Callable[[], float] = random.random,
    ) -> None:
        self._store_path = store_path
        self._key = key
        self.source = source
        self._clock = clock
        self._policy = policy
        self._attempt_timeout = attempt_timeout
        self._idle_poll = idle_poll
        self._spread = spread
        self._store: EventStore | None = None
        self._wake = asyncio.Event()
        self._busy: dict[str, asyncio.Task[None]] = {}

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[EventSender]:
        """Open the store, start delivering; on exit stop and close (pending events stay)."""
        self._store = await asyncio.to_thread(EventStore, self._store_path)
        try:
            async with aiohttp.ClientSession() as http, asyncio.TaskGroup() as group:
                dispatcher = group.create_task(self._dispatch(http, group))
                try:
                    yield self
                finally:
                    dispatcher.cancel()
                    for delivery in list(self._busy.values()):
                        delivery.cancel()
        finally:
            store, self._store = self._store, None
            await asyncio.to_thread(store.close)

    async def publish(self, event: CloudEvent, *, callback_url: str) -> None:
        """Persist ``event`` for ``callback_url`` (durable when this returns) and wake delivery."""
        store = self._require_store()
        await asyncio.to_thread(
            store.enqueue,
            event_id=event.id,
            session_id=event.subject,
            callback_url=callback_url,
            body=encode_event(event),
            now=self._clock(),
        )
        self._wake.set()

    async def stored(self, *, session_id: str | None = None) -> list[StoredEvent]:
        """What the store holds (of one session), oldest first."""
        return await asyncio.to_thread(self._require_store().events, session_id=session_id)

    def _require_store(self) -> EventStore:
        if self._store is None:
            raise RuntimeError("the event sender is not running (use `async with running()`)")
        return self._store

    async def _dispatch(self, http: aiohttp.ClientSession, group: asyncio.TaskGroup) -> None:
        """Start one delivery per due session head; never two at once for one session."""
        store = self._require_store()
        busy = self._busy
        while True:
            self._wake.clear()
            heads = await asyncio.to_thread(store.heads)
            now = self._clock()
            wait = self._idle_poll
            for head in heads:
                if head.session_id in busy:
                    continue
                due_in = (head.next_attempt_at - now).total_seconds()
                if due_in > 0:
                    wait = min(wait, due_in)
                    continue
                task = group.create_task(self._deliver(http, store, head))
                busy[head.session_id] = task
                task.add_done_callback(functools.partial(self._done, busy, head.session_id))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(wait, 0.005)):
                    await self._wake.wait()

    def _done(
        self, busy: dict[str, asyncio.Task[None]], session_id: str, _task: asyncio.Task[None]
    ) -> None:
        busy.pop(session_id, None)
        self._wake.set()

    async def _deliver(
        self, http: aiohttp.ClientSession, store: EventStore, head: StoredEvent
    ) -> None:
        """One attempt at ``head``; the outcome is recorded before returning."""
        now = self._clock()
        if expired(head.created_at, now=now, policy=self._policy):
            logger.warning(
                "giving up on event %s of session %s after %d attempts (%s)",
                head.event_id,
                head.session_id,
                head.attempts,
                head.last_error,
            )
            await asyncio.to_thread(
                store.mark_abandoned, head.seq, now=now, error=f"gave up: {head.last_error}"
            )
            return
        error = await self._post(http, head, now=now)
        if error is None:
            await asyncio.to_thread(store.mark_delivered, head.seq, now=self._clock())
            return
        attempts = head.attempts + 1
        delay = retry_delay(attempts, policy=self._policy, spread=self._spread())
        logger.info(
            "event %s attempt %d failed (%s); retry in %s", head.event_id, attempts, error, delay
        )
        await asyncio.to_thread(
            store.mark_failed,
            head.seq,
            attempts=attempts,
            next_attempt_at=self._clock() + delay,
            error=error,
        )

    async def _post(
        self, http: aiohttp.ClientSession, head: StoredEvent, *, now: datetime
    ) -> str | None:
        """POST once; ``None`` when the kiosk acknowledged (2xx), else why not."""
        headers = signature_headers(head.body, key=self._key, now=now)
        try:
            async with asyncio.timeout(self._attempt_timeout):
                async with http.post(head.callback_url, data=head.body, headers=headers) as reply:
                    await reply.read()
                    if 200 <= reply.status < 300:
                        return None
                    return f"HTTP {reply.status}"
        except TimeoutError:
            return "timed out"
        except (aiohttp.ClientError, ValueError) as error:
            return f"{type(error).__name__}: {error}"
