"""The cabin's persisted record of each visit, kept in the outbox's SQLite database, and its wipe.

A visit is written at every transition, in the same database as the outbox, so that after a
crash or a power cut the cabin finds each visit where it was, never loses a committed
measurement, and can never disagree with the outbox about whether a visit's bundle was queued::

    kiosk ─open──▶ launched ─record_consent──▶ consented ─set_state(step=…)──▶ measuring …
                                                   commit_measurement (durable on return)
           ─complete──▶ completed   one outbox transaction: enqueue the bundle + close the visit
           ─withdraw──▶ withdrawn   measurements, identity and the undelivered bundle deleted
           ─wipe──────▶ (no rows)   one audit line left; secure_delete + WAL truncated

Tables (schema version in ``visit_schema``: ``PRAGMA user_version`` belongs to the outbox):

| table                  | holds                                                     | sealed      |
|------------------------|-----------------------------------------------------------|-------------|
| ``visits``             | session id, service, locale, times, state, step, bundle   | identity    |
| ``visit_consents``     | every consent record of a session, in order               | the record  |
| ``visit_measurements`` | every committed measurement, in order                     | measurement |
| ``visit_audit``        | one line per wipe: session id, times, last state, outcome | (no PHI)    |

Sealed columns use the outbox's :class:`~fhir.crypto.KeyRing` (AES-256-GCM) with associated
data binding each blob to its table and session (and position), so no personal data is ever
in clear on disk and a blob moved to another row does not open.  The card extras
(``Identity.extras``) are never stored: the visit does not need them.

The wipe leaves nothing about the resident but what is queued for the hospital (sealed, in the
outbox) and the audit line: rows are deleted with ``PRAGMA secure_delete = ON`` (set on the
outbox's connection when the store opens, so SQLite overwrites deleted content and freed pages
with zeros, the outbox's own purges included), then the WAL is checkpointed with ``TRUNCATE``
so no older copy of a page lingers in the WAL.  The store keeps no per-session state in
memory: everything is read from the database when asked, so there is no cache to drop.

:class:`BlockingVisitStore` does the work synchronously (thread-safe through the outbox's
lock); :class:`VisitStore` is the async facade the cabin service uses, every call in
``asyncio.to_thread``; it implements :class:`kiosk_bridge.sessions.VisitPort`.

Exceptions::

    VisitStoreError        the store cannot do it (database, keys, or the request itself)
    ├── VisitUnknown       no such visit (never opened, or already wiped)
    ├── VisitClosed        the visit has ended: completed, withdrawn, expired or interrupted
    └── ConsentRequired    the resident's consent does not cover this (measuring, sending)
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from fhir.errors import OutboxError
from fhir.outbox import Outbox, OutboxTransaction
from fhir.visit import PatientIdentity
from fhir.visit import Sex as FhirSex
from kiosk_bridge.consent import ConsentChoices, ConsentPurpose, ConsentRecord, Locale
from kiosk_bridge.identity import Assurance, Identity, Sex, Source
from kiosk_bridge.sessions import Progress, Service, Session, VisitState, VisitStatus, planned_steps
from vitals.clock import Instant
from vitals.measurement import Component, Interpretation, Measurement, Method, Reason
from vitals.model import DeviceInfo, Kind, Status

log = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (  # 0 -> 1
        "CREATE TABLE visits (session_id TEXT PRIMARY KEY, service TEXT NOT NULL, "
        "locale TEXT NOT NULL, launched_at REAL NOT NULL, expires_at REAL NOT NULL, "
        "state TEXT NOT NULL, step TEXT, steps TEXT NOT NULL DEFAULT '[]', "
        "updated_at REAL NOT NULL, closed_at REAL, identity BLOB, bundle_id TEXT, "
        "hospital TEXT) STRICT",
        "CREATE TABLE visit_consents (seq INTEGER PRIMARY KEY, session_id TEXT NOT NULL, "
        "recorded_at REAL NOT NULL, withdrawn INTEGER NOT NULL, record BLOB NOT NULL) STRICT",
        "CREATE INDEX visit_consents_session ON visit_consents (session_id, seq)",
        "CREATE TABLE visit_measurements (seq INTEGER PRIMARY KEY, session_id TEXT NOT NULL, "
        "committed_at REAL NOT NULL, measurement BLOB NOT NULL) STRICT",
        "CREATE INDEX visit_measurements_session ON visit_measurements (session_id, seq)",
        "CREATE TABLE visit_audit (seq INTEGER PRIMARY KEY, session_id TEXT NOT NULL, "
        "launched_at REAL NOT NULL, closed_at REAL, wiped_at REAL NOT NULL, "
        "last_state TEXT NOT NULL, outcome TEXT NOT NULL, bundle_id TEXT) STRICT",
    ),
)
_VISIT = (
    "SELECT session_id, service, locale, launched_at, expires_at, state, step, steps, "
    "updated_at, closed_at, bundle_id, (SELECT COUNT(*) FROM visit_measurements m "
    "WHERE m.session_id = visits.session_id), (SELECT withdrawn FROM visit_consents c "
    "WHERE c.session_id = visits.session_id ORDER BY seq DESC LIMIT 1) FROM visits"
)
_AUDIT = "session_id, launched_at, closed_at, wiped_at, last_state, outcome, bundle_id"
CHECKPOINT_TIMEOUT: Final = 0.25
"""Seconds the WAL checkpoint after a wipe may wait for a reader (the wipe deadline is 1 s)."""


class VisitStoreError(Exception):
    """Root of the visit store's exceptions; messages name sessions, never the resident."""


class VisitUnknown(VisitStoreError):
    """No such visit: never opened here, or already wiped."""


class VisitClosed(VisitStoreError):
    """The visit has ended (completed, withdrawn, expired or interrupted)."""


class ConsentRequired(VisitStoreError):
    """The resident's current consent does not cover what was asked (or was withdrawn)."""


class VisitStage(StrEnum):
    """Every state a visit is persisted in (issue 8's machine; the kiosk's states map onto it).

    ``launched``        opened by the kiosk, nothing shown yet (the kiosk's ``opened``)
    ``consent``         the consent text is on screen
    ``consented``       a consent is recorded
    ``measuring``       a measurement step is running (``step`` names it)
    ``results``         the results page
    ``consult_queued``  waiting for a doctor
    ``in_consult``      in the video call
    ``consult_ended``   the call is over, the visit not yet closed
    ``completed``       closed, its bundle (if any) queued in the same commit  (terminal)
    ``withdrawn``       consent withdrawn; undelivered data deleted              (terminal)
    ``expired``         closed for inactivity or by the session's expiry         (terminal)
    ``interrupted``     closed at start-up after a crash, not resumable          (terminal)

    Wiped is no state: a wiped visit has no row left, only its audit line.
    """

    LAUNCHED = "launched"
    CONSENT = "consent"
    CONSENTED = "consented"
    MEASURING = "measuring"
    RESULTS = "results"
    CONSULT_QUEUED = "consult_queued"
    IN_CONSULT = "in_consult"
    CONSULT_ENDED = "consult_ended"
    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    INTERRUPTED = "interrupted"

    @property
    def terminal(self) -> bool:
        """True once the visit has ended (it can only be wiped, or withdrawn, then)."""
        return self in _TERMINAL


_TERMINAL: Final = frozenset(
    {VisitStage.COMPLETED, VisitStage.WITHDRAWN, VisitStage.EXPIRED, VisitStage.INTERRUPTED}
)
_FROM_KIOSK: Final = MappingProxyType(
    {VisitState.OPENED: VisitStage.LAUNCHED}
    | {state: VisitStage(state.value) for state in VisitState if state is not VisitState.OPENED}
)
_TO_KIOSK: Final = MappingProxyType(
    {
        VisitStage.LAUNCHED: VisitState.OPENED,
        VisitStage.CONSENT: VisitState.OPENED,
        VisitStage.CONSENTED: VisitState.CONSENTED,
        VisitStage.MEASURING: VisitState.MEASURING,
        VisitStage.RESULTS: VisitState.MEASURING,
        VisitStage.CONSULT_QUEUED: VisitState.CONSULT_QUEUED,
        VisitStage.IN_CONSULT: VisitState.IN_CONSULT,
        VisitStage.CONSULT_ENDED: VisitState.IN_CONSULT,
        VisitStage.COMPLETED: VisitState.COMPLETED,
        VisitStage.WITHDRAWN: VisitState.WITHDRAWN,
        VisitStage.EXPIRED: VisitState.EXPIRED,
        VisitStage.INTERRUPTED: VisitState.EXPIRED,
    }
)
CONSENT_STEP: Final = "consent"
"""The step name a recorded consent counts as (``Progress`` counts it like any other step)."""


class AuditOutcome(StrEnum):
    """How a wiped visit had ended."""

    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    INTERRUPTED = "interrupted"
    ABANDONED = "abandoned"
    """Wiped before it ended: the card was removed, or the kiosk logged out, mid-visit."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VisitSummary:
    """Where a visit stands, without anything about the resident: safe to log."""

    session_id: str
    service: Service
    locale: Locale
    state: VisitStage
    step: str | None
    """The step in progress (``temperature``, ``weight``, …) or None between steps."""
    progress: Progress
    launched_at: datetime
    expires_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    measurement_count: int
    consented: bool
    """A consent is recorded and its latest record is not a withdrawal."""
    bundle_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditLine:
    """What stays of a wiped visit: when, how it ended, which bundle — no personal data."""

    session_id: str
    launched_at: datetime
    closed_at: datetime | None
    wiped_at: datetime
    last_state: VisitStage
    outcome: AuditOutcome
    bundle_id: str | None

    def __str__(self) -> str:
        closed = "-" if self.closed_at is None else self.closed_at.isoformat()
        return (
            f"{self.wiped_at.isoformat()} session {self.session_id} {self.outcome.value} "
            f"(last state {self.last_state.value}) launched {self.launched_at.isoformat()} "
            f"closed {closed} bundle {self.bundle_id or '-'}"
        )


def patient_identity(identity: Identity) -> PatientIdentity:
    """The kiosk's verified identity as the FHIR mapping's ``PatientIdentity``."""
    return PatientIdentity(
        cccd=identity.cccd,
        full_name=identity.full_name,
        birth_date=identity.birth_date,
        sex=FhirSex(identity.sex.value),
        bhyt=identity.bhyt,
        assurance=identity.assurance.value,
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _seconds(moment: datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError("visit times must be timezone-aware")
    return moment.timestamp()


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _aad(what: str, session_id: str, seq: int = 0) -> bytes:
    return f"visits/1\x00{what}\x00{session_id}\x00{seq}".encode()


class BlockingVisitStore:
    """The visit tables in the outbox database, synchronously (async code: :class:`VisitStore`).

    Every method runs in one outbox transaction, so it is atomic, durable on return
    (``synchronous=FULL``) and serialised with the outbox's own work.
    """

    def __init__(
        self,
        outbox: Outbox,
        *,
        clock: Callable[[], datetime] = _utc_now,
        checkpoint_timeout: float = CHECKPOINT_TIMEOUT,
    ) -> None:
        self._outbox = outbox
        self._clock = clock
        self._checkpoint_timeout = checkpoint_timeout
        self._prepare()

    @contextmanager
    def _transaction(self) -> Iterator[OutboxTransaction]:
        """An outbox write transaction whose outbox errors become ``VisitStoreError``."""
        try:
            with self._outbox.transaction() as tx:
                yield tx
        except OutboxError as exc:
            raise VisitStoreError(f"visit store: {exc}") from exc

    def _prepare(self) -> None:
        with self._transaction() as tx:
            tx.execute("PRAGMA secure_delete = ON")  # this connection's deletes zero their bytes
            tx.execute("CREATE TABLE IF NOT EXISTS visit_schema (version INTEGER NOT NULL)")
            row = tx.execute("SELECT version FROM visit_schema").fetchone()
            version = 0 if row is None else int(row[0])
            if version > SCHEMA_VERSION:
                raise VisitStoreError(
                    f"visit tables in {self._outbox.path} are at schema {version}, newer than "
                    f"this program's {SCHEMA_VERSION}; upgrade the cabin software"
                )
            for number in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[number]:
                    tx.execute(statement)
                log.info("visit tables in %s migrated to schema %d", self._outbox.path, number + 1)
            if row is None:
                tx.execute("INSERT INTO visit_schema VALUES (?)", (SCHEMA_VERSION,))
            elif version != SCHEMA_VERSION:
                tx.execute("UPDATE visit_schema SET version = ?", (SCHEMA_VERSION,))

    # Opening and consent.

    def open(self, session: Session) -> None:
        """Persist a new visit for ``session`` in state ``launched``, its identity sealed."""
        now = _seconds(self._clock())
        sealed = self._outbox.keys.seal(
            _identity_json(session.identity), aad=_aad("identity", session.session_id)
        )
        with self._transaction() as tx:
            if self._row(tx, session.session_id) is not None:
                raise VisitStoreError(f"visit {session.session_id} is already open")
            tx.execute(
                "INSERT INTO visits (session_id, service, locale, launched_at, expires_at, "
                "state, updated_at, identity) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session.session_id,
                    session.service.value,
                    session.locale.value,
                    _seconds(session.created_at),
                    _seconds(session.expires_at),
                    VisitStage.LAUNCHED.value,
                    now,
                    sealed,
                ),
            )
        log.info("visit %s opened (%s)", session.session_id, session.service.value)

    def record_consent(self, record: ConsentRecord) -> None:
        """Keep ``record`` (records are never edited: a withdrawal is a record of its own).

        A consent moves a ``launched`` visit (or one showing the consent text) to
        ``consented``; a withdrawal record withdraws the visit (see :meth:`withdraw`) if that
        has not happened yet.
        """
        session_id = record.session_id
        withdrawn = record.withdrawn_at is not None
        with self._transaction() as tx:
            visit = self._row(tx, session_id)
            if visit is None:
                raise VisitUnknown(f"no visit {session_id} to record a consent for")
            stage = VisitStage(visit["state"])
            if stage.terminal and not withdrawn:
                raise VisitClosed(f"visit {session_id} is {stage.value}: no consent to record")
            seq = self._next_seq(tx, "visit_consents")
            sealed = self._outbox.keys.seal(
                _consent_json(record), aad=_aad("consent", session_id, seq)
            )
            tx.execute(
                "INSERT INTO visit_consents VALUES (?, ?, ?, ?, ?)",
                (seq, session_id, _seconds(record.recorded_at), int(withdrawn), sealed),
            )
            if withdrawn:
                if stage is not VisitStage.WITHDRAWN:
                    self._withdraw(tx, visit)
            else:
                state = stage
                if stage in (VisitStage.LAUNCHED, VisitStage.CONSENT):
                    state = VisitStage.CONSENTED
                self._update(tx, visit, state=state, step=visit["step"], add_step=CONSENT_STEP)
        if withdrawn:
            self._truncate_wal()
        log.info("visit %s: consent %s", session_id, "withdrawn" if withdrawn else "recorded")

    def consent(self, session_id: str) -> ConsentRecord | None:
        """The latest consent record of the visit (a withdrawal, if withdrawn); None if none."""
        with self._transaction() as tx:
            row = tx.execute(
                "SELECT seq, record FROM visit_consents WHERE session_id = ? "
                "ORDER BY seq DESC LIMIT 1",
                (session_id,),
            ).fetchone()
        if row is None:
            return None
        return _consent_from(self._unseal(row[1], _aad("consent", session_id, row[0])))

    def identity(self, session_id: str) -> Identity | None:
        """The resident's identity (without card extras); None if unknown, withdrawn or wiped."""
        with self._transaction() as tx:
            row = tx.execute(
                "SELECT identity FROM visits WHERE session_id = ?", (session_id,)
            ).fetchone()
        if row is None or row[0] is None:
            return None
        return _identity_from(self._unseal(row[0], _aad("identity", session_id)))

    # The state machine's side.

    def set_state(
        self, session_id: str, state: VisitStage | VisitState, *, step: str | None = None
    ) -> VisitSummary:
        """Persist a transition to ``state`` with ``step`` in progress (None: between steps).

        The step that was in progress before counts as done.  ``completed`` and ``withdrawn``
        are reached only through :meth:`complete` and :meth:`withdraw`, which do what those
        transitions need; a visit that has ended cannot move (``VisitClosed``).
        """
        stage = _FROM_KIOSK[state] if isinstance(state, VisitState) else VisitStage(state)
        if stage is VisitStage.COMPLETED:
            raise ValueError("a visit is completed through complete(), which queues its bundle")
        if stage is VisitStage.WITHDRAWN:
            raise ValueError("a visit is withdrawn through withdraw(), which deletes its data")
        if step is not None and not step.strip():
            raise ValueError("a step name must not be blank")
        with self._transaction() as tx:
            visit = self._open_row(tx, session_id)
            self._update(tx, visit, state=stage, step=None if stage.terminal else step)
            summary = self._summary(tx, session_id)
        log.info("visit %s: %s%s", session_id, stage.value, f" ({step})" if step else "")
        if summary is None:  # pragma: no cover - the row was updated in this transaction
            raise VisitUnknown(session_id)
        return summary

    def commit_measurement(self, session_id: str, measurement: Measurement) -> int:
        """Store ``measurement`` sealed; durable when this returns.  Its position (1, 2, …)."""
        data = _measurement_json(measurement)
        with self._transaction() as tx:
            visit = self._open_row(tx, session_id)
            self._require(tx, session_id, ConsentPurpose.MEASURING)
            seq = self._next_seq(tx, "visit_measurements")
            sealed = self._outbox.keys.seal(data, aad=_aad("measurement", session_id, seq))
            now = _seconds(self._clock())
            tx.execute(
                "INSERT INTO visit_measurements VALUES (?, ?, ?, ?)",
                (seq, session_id, now, sealed),
            )
            self._update(tx, visit, state=VisitStage(visit["state"]), step=visit["step"])
            count = tx.execute(
                "SELECT COUNT(*) FROM visit_measurements WHERE session_id = ?", (session_id,)
            ).fetchone()[0]
        return int(count)

    def measurements(self, session_id: str) -> tuple[Measurement, ...]:
        """Every committed measurement of the visit, in commit order (``VisitUnknown`` if none
        such visit: a wiped visit has no measurements to rebuild a bundle from)."""
        with self._transaction() as tx:
            if self._row(tx, session_id) is None:
                raise VisitUnknown(f"no visit {session_id}")
            rows = tx.execute(
                "SELECT seq, measurement FROM visit_measurements WHERE session_id = ? ORDER BY seq",
                (session_id,),
            ).fetchall()
        return tuple(
            _measurement_from(self._unseal(blob, _aad("measurement", session_id, seq)))
            for seq, blob in rows
        )

    def complete(
        self,
        session_id: str,
        *,
        bundle_id: str | None,
        hospital: str | None,
        bundle_json: bytes | str | None,
    ) -> bool:
        """Close the visit and queue its bundle for ``hospital`` in ONE outbox transaction.

        After a power cut either both happened or neither.  The bundle needs the resident's
        consent to send to the hospital (``ConsentRequired``).  A visit with nothing to send
        (the resident said no) passes None for all three.  True if the bundle was newly queued
        (False: already in the outbox, or nothing to send).
        """
        parts = (bundle_id, hospital, bundle_json)
        if any(p is None for p in parts) and any(p is not None for p in parts):
            raise ValueError("bundle_id, hospital and bundle_json go together")
        with self._transaction() as tx:
            visit = self._open_row(tx, session_id)
            queued = False
            if bundle_id is not None and hospital is not None and bundle_json is not None:
                self._require(tx, session_id, ConsentPurpose.HOSPITAL)
                queued = tx.enqueue(hospital, bundle_id, bundle_json)
            self._update(tx, visit, state=VisitStage.COMPLETED, step=None)
            tx.execute(
                "UPDATE visits SET bundle_id = ?, hospital = ? WHERE session_id = ?",
                (bundle_id, hospital, session_id),
            )
        log.info("visit %s completed%s", session_id, f", bundle {bundle_id}" if bundle_id else "")
        return queued

    def withdraw(self, session_id: str) -> None:
        """The resident withdrew consent: the visit stops, and what was not yet delivered goes.

        Deleted: the visit's measurements, its sealed identity, and its bundle if the outbox
        has not delivered it (pending or dead).  Kept until the wipe: the consent records (the
        proof of consent and of its withdrawal) and the visit's row in state ``withdrawn``.
        A bundle already delivered is the hospital's; one being sent at this very moment may
        still arrive.  An unknown visit: nothing happens.
        """
        with self._transaction() as tx:
            visit = self._row(tx, session_id)
            if visit is None:
                return
            self._withdraw(tx, visit)
        self._truncate_wal()

    def _withdraw(self, tx: OutboxTransaction, visit: dict[str, Any]) -> None:
        session_id = visit["session_id"]
        measured = tx.execute(
            "DELETE FROM visit_measurements WHERE session_id = ?", (session_id,)
        ).rowcount
        unsent = 0
        if visit["bundle_id"] is not None:
            unsent = tx.execute(
                "DELETE FROM bundles WHERE id = ? AND state IN ('pending', 'dead')",
                (visit["bundle_id"],),
            ).rowcount
        tx.execute("UPDATE visits SET identity = NULL WHERE session_id = ?", (session_id,))
        self._update(tx, visit, state=VisitStage.WITHDRAWN, step=None)
        log.info(
            "visit %s withdrawn: %d measurement(s) and %d undelivered bundle(s) deleted",
            session_id,
            measured,
            unsent,
        )

    def wipe(self, session_id: str) -> AuditLine | None:
        """Forget the visit: every row about it goes, one audit line stays.

        What the outbox holds for the hospital stays (sealed).  Deleted content is zeroed
        (``secure_delete``) and the WAL checkpointed and truncated, so no copy of it lingers
        in free pages or the WAL.  None (nothing done) for an unknown or already wiped visit.
        """
        started = time.perf_counter()
        with self._transaction() as tx:
            visit = self._row(tx, session_id)
            if visit is None:
                return None
            stage = VisitStage(visit["state"])
            line = AuditLine(
                session_id=session_id,
                launched_at=datetime.fromtimestamp(visit["launched_at"], UTC),
                closed_at=_moment(visit["closed_at"]),
                wiped_at=self._clock(),
                last_state=stage,
                outcome=AuditOutcome(stage.value) if stage.terminal else AuditOutcome.ABANDONED,
                bundle_id=visit["bundle_id"],
            )
            for table in ("visit_measurements", "visit_consents", "visits"):
                tx.execute(f"DELETE FROM {table} WHERE session_id = ?", (session_id,))
            tx.execute(
                f"INSERT INTO visit_audit ({_AUDIT}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    session_id,
                    visit["launched_at"],
                    visit["closed_at"],
                    _seconds(line.wiped_at),
                    stage.value,
                    line.outcome.value,
                    line.bundle_id,
                ),
            )
        truncated = self._truncate_wal()
        log.info(
            "visit %s wiped (%s) in %.1f ms%s",
            session_id,
            line.outcome.value,
            (time.perf_counter() - started) * 1000,
            "" if truncated else "; the WAL could not be truncated yet",
        )
        return line

    def _truncate_wal(self) -> bool:
        """Checkpoint the WAL into the database and truncate it to zero bytes.

        Runs on a connection of its own: a checkpoint cannot run inside the outbox's
        transaction, and the outbox's connection is not ours to use outside one.  The rows are
        already gone when this runs, so a checkpoint that a busy reader or writer holds up
        past the timeout is logged, not raised: the next wipe or withdrawal truncates it.
        """
        try:
            with closing(
                sqlite3.connect(
                    self._outbox.path, timeout=self._checkpoint_timeout, isolation_level=None
                )
            ) as connection:
                busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            log.warning("cannot checkpoint the WAL of %s: %s", self._outbox.path, exc)
            return False
        if busy:
            log.warning(
                "the WAL of %s is busy: deleted pages stay in it until the next checkpoint",
                self._outbox.path,
            )
        return not busy

    # Views.

    def status(self, session_id: str) -> VisitStatus | None:
        """The visit's state and progress as the kiosk sees them; None if unknown."""
        summary = self.summary(session_id)
        if summary is None:
            return None
        return VisitStatus(state=_TO_KIOSK[summary.state], progress=summary.progress)

    def summary(self, session_id: str) -> VisitSummary | None:
        """The visit's summary; None if unknown or wiped."""
        with self._transaction() as tx:
            return self._summary(tx, session_id)

    def active(self) -> tuple[VisitSummary, ...]:
        """Visits that have not ended, oldest first: at start-up, resume or close each one."""
        return tuple(s for s in self._all() if not s.state.terminal)

    def closed(self) -> tuple[VisitSummary, ...]:
        """Visits that ended but are not wiped yet, oldest first: at start-up, wipe them."""
        return tuple(s for s in self._all() if s.state.terminal)

    def holds(self, session_id: str) -> bool:
        """True while any row about the visit exists (its audit line aside)."""
        with self._transaction() as tx:
            row = tx.execute(
                "SELECT EXISTS (SELECT 1 FROM visits WHERE session_id = ?1) "
                "OR EXISTS (SELECT 1 FROM visit_consents WHERE session_id = ?1) "
                "OR EXISTS (SELECT 1 FROM visit_measurements WHERE session_id = ?1)",
                (session_id,),
            ).fetchone()
        return bool(row[0])

    def audit(self, *, limit: int | None = None) -> tuple[AuditLine, ...]:
        """The audit lines of wiped visits, oldest first (the most recent ``limit`` of them)."""
        with self._transaction() as tx:
            rows = tx.execute(
                f"SELECT {_AUDIT} FROM (SELECT seq, {_AUDIT} FROM visit_audit ORDER BY seq DESC "
                "LIMIT ?) ORDER BY seq",
                (-1 if limit is None else limit,),
            ).fetchall()
        return tuple(
            AuditLine(
                session_id=row[0],
                launched_at=datetime.fromtimestamp(row[1], UTC),
                closed_at=_moment(row[2]),
                wiped_at=datetime.fromtimestamp(row[3], UTC),
                last_state=VisitStage(row[4]),
                outcome=AuditOutcome(row[5]),
                bundle_id=row[6],
            )
            for row in rows
        )

    # Internals.

    def _all(self) -> list[VisitSummary]:
        with self._transaction() as tx:
            rows = tx.execute(f"{_VISIT} ORDER BY launched_at, session_id").fetchall()
        return [_summary_of(row) for row in rows]

    def _summary(self, tx: OutboxTransaction, session_id: str) -> VisitSummary | None:
        row = tx.execute(f"{_VISIT} WHERE session_id = ?", (session_id,)).fetchone()
        return None if row is None else _summary_of(row)

    @staticmethod
    def _row(tx: OutboxTransaction, session_id: str) -> dict[str, Any] | None:
        cursor = tx.execute(
            "SELECT session_id, state, step, steps, launched_at, closed_at, bundle_id "
            "FROM visits WHERE session_id = ?",
            (session_id,),
        )
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip((d[0] for d in cursor.description), row, strict=True))

    def _open_row(self, tx: OutboxTransaction, session_id: str) -> dict[str, Any]:
        visit = self._row(tx, session_id)
        if visit is None:
            raise VisitUnknown(f"no visit {session_id}")
        if VisitStage(visit["state"]).terminal:
            raise VisitClosed(f"visit {session_id} is {visit['state']}")
        return visit

    def _require(self, tx: OutboxTransaction, session_id: str, purpose: ConsentPurpose) -> None:
        row = tx.execute(
            "SELECT seq, record FROM visit_consents WHERE session_id = ? ORDER BY seq DESC LIMIT 1",
            (session_id,),
        ).fetchone()
        record = None
        if row is not None:
            record = _consent_from(self._unseal(row[1], _aad("consent", session_id, row[0])))
        if record is None or record.withdrawn_at is not None:
            raise ConsentRequired(f"visit {session_id} has no consent in force")
        if purpose not in record.choices.granted():
            raise ConsentRequired(f"visit {session_id}: the resident did not consent to {purpose}")

    def _update(
        self,
        tx: OutboxTransaction,
        visit: dict[str, Any],
        *,
        state: VisitStage,
        step: str | None,
        add_step: str | None = None,
    ) -> None:
        steps: list[str] = json.loads(visit["steps"])
        for name in (add_step, step):
            if name is not None and name not in steps:
                steps.append(name)
        now = _seconds(self._clock())
        tx.execute(
            "UPDATE visits SET state = ?, step = ?, steps = ?, updated_at = ?, "
            "closed_at = IIF(?, COALESCE(closed_at, ?), NULL) WHERE session_id = ?",
            (
                state.value,
                step,
                json.dumps(steps),
                now,
                state.terminal,
                now,
                visit["session_id"],
            ),
        )

    @staticmethod
    def _next_seq(tx: OutboxTransaction, table: str) -> int:
        return int(tx.execute(f"SELECT COALESCE(MAX(seq), 0) + 1 FROM {table}").fetchone()[0])

    def _unseal(self, blob: bytes, aad: bytes) -> bytes:
        try:
            return self._outbox.keys.unseal(blob, aad=aad)
        except OutboxError as exc:
            raise VisitStoreError(f"visit store: {exc}") from exc


def _summary_of(row: tuple[Any, ...]) -> VisitSummary:
    (session_id, service, locale, launched, expires, state, step, steps, updated) = row[:9]
    closed, bundle_id, count, last_withdrawn = row[9:]
    stage = VisitStage(state)
    total = planned_steps(Service(service))
    done = total if stage is VisitStage.COMPLETED else len(set(json.loads(steps)) - {step})
    return VisitSummary(
        session_id=session_id,
        service=Service(service),
        locale=Locale(locale),
        state=stage,
        step=step,
        progress=Progress(done=min(done, total), total=total),
        launched_at=datetime.fromtimestamp(launched, UTC),
        expires_at=datetime.fromtimestamp(expires, UTC),
        updated_at=datetime.fromtimestamp(updated, UTC),
        closed_at=_moment(closed),
        measurement_count=int(count),
        consented=last_withdrawn == 0,
        bundle_id=bundle_id,
    )


class VisitStore:
    """The visit store for async code: each call runs :class:`BlockingVisitStore` in a thread.

    Implements :class:`kiosk_bridge.sessions.VisitPort` (``open``, ``status``,
    ``record_consent``, ``withdraw``, ``wipe``) and what the visit state machine needs.
    A wipe started under a deadline finishes even if its caller stops waiting.
    """

    def __init__(self, blocking: BlockingVisitStore) -> None:
        self.blocking = blocking
        """The synchronous store underneath (for start-up code already in a thread, and tests)."""

    @classmethod
    async def connect(
        cls, outbox: Outbox, *, clock: Callable[[], datetime] = _utc_now
    ) -> VisitStore:
        """The store on ``outbox``'s database; creates or migrates its tables (in a thread)."""
        return cls(await asyncio.to_thread(BlockingVisitStore, outbox, clock=clock))

    async def open(self, session: Session) -> None:
        """Persist a new visit in state ``launched`` (the identity sealed)."""
        await asyncio.to_thread(self.blocking.open, session)

    async def status(self, session_id: str) -> VisitStatus | None:
        """State and progress for the kiosk; None for an unknown (or wiped) visit."""
        return await asyncio.to_thread(self.blocking.status, session_id)

    async def record_consent(self, record: ConsentRecord) -> None:
        """Keep a consent record; a withdrawal record withdraws the visit."""
        await asyncio.to_thread(self.blocking.record_consent, record)

    async def consent(self, session_id: str) -> ConsentRecord | None:
        """The latest consent record of the visit, or None."""
        return await asyncio.to_thread(self.blocking.consent, session_id)

    async def identity(self, session_id: str) -> Identity | None:
        """The resident's identity, or None (unknown, withdrawn or wiped)."""
        return await asyncio.to_thread(self.blocking.identity, session_id)

    async def set_state(
        self, session_id: str, state: VisitStage | VisitState, *, step: str | None = None
    ) -> VisitSummary:
        """Persist a transition (see :meth:`BlockingVisitStore.set_state`)."""
        return await asyncio.to_thread(self.blocking.set_state, session_id, state, step=step)

    async def commit_measurement(self, session_id: str, measurement: Measurement) -> int:
        """Store a measurement, durable on return; its position in the visit."""
        return await asyncio.to_thread(self.blocking.commit_measurement, session_id, measurement)

    async def measurements(self, session_id: str) -> tuple[Measurement, ...]:
        """Every committed measurement of the visit, in commit order."""
        return await asyncio.to_thread(self.blocking.measurements, session_id)

    async def complete(
        self,
        session_id: str,
        *,
        bundle_id: str | None,
        hospital: str | None,
        bundle_json: bytes | str | None,
    ) -> bool:
        """Close the visit and queue its bundle in one outbox transaction."""
        return await asyncio.to_thread(
            self.blocking.complete,
            session_id,
            bundle_id=bundle_id,
            hospital=hospital,
            bundle_json=bundle_json,
        )

    async def withdraw(self, session_id: str) -> None:
        """Consent withdrawn: stop the visit and delete what was not yet delivered."""
        await asyncio.to_thread(self.blocking.withdraw, session_id)

    async def wipe(self, session_id: str) -> None:
        """Forget the visit but its audit line (and what is queued for the hospital)."""
        await asyncio.to_thread(self.blocking.wipe, session_id)

    async def summary(self, session_id: str) -> VisitSummary | None:
        """Where the visit stands (no personal data); None if unknown."""
        return await asyncio.to_thread(self.blocking.summary, session_id)

    async def active(self) -> tuple[VisitSummary, ...]:
        """Visits that have not ended (resume or close them at start-up)."""
        return await asyncio.to_thread(self.blocking.active)

    async def closed(self) -> tuple[VisitSummary, ...]:
        """Visits that ended but are not wiped yet (wipe them at start-up)."""
        return await asyncio.to_thread(self.blocking.closed)

    async def holds(self, session_id: str) -> bool:
        """True while any row about the visit exists (its audit line aside)."""
        return await asyncio.to_thread(self.blocking.holds, session_id)

    async def audit(self, *, limit: int | None = None) -> tuple[AuditLine, ...]:
        """Audit lines of wiped visits, oldest first."""
        return await asyncio.to_thread(self.blocking.audit, limit=limit)


# Sealed payloads: JSON, decimals as strings (their written precision kept), times in ISO 8601.


def _dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _identity_json(identity: Identity) -> bytes:
    return _dumps(
        {
            "cccd": identity.cccd,
            "full_name": identity.full_name,
            "birth_date": identity.birth_date.isoformat(),
            "sex": identity.sex.value,
            "bhyt": identity.bhyt,
            "card_expiry": None
            if identity.card_expiry is None
            else identity.card_expiry.isoformat(),
            "assurance": identity.assurance.value,
            "source": identity.source.value,
            "issuer": identity.issuer,
        }
    )


def _identity_from(data: bytes) -> Identity:
    d = json.loads(data)
    expiry = d["card_expiry"]
    return Identity(
        cccd=d["cccd"],
        full_name=d["full_name"],
        birth_date=date.fromisoformat(d["birth_date"]),
        sex=Sex(d["sex"]),
        bhyt=d["bhyt"],
        card_expiry=None if expiry is None else date.fromisoformat(expiry),
        assurance=Assurance(d["assurance"]),
        source=Source(d["source"]),
        issuer=d["issuer"],
    )


def _consent_json(record: ConsentRecord) -> bytes:
    return _dumps(
        {
            "session_id": record.session_id,
            "text_version": record.text_version,
            "text_sha256": record.text_sha256,
            "locale": record.locale.value,
            "hospital": record.hospital,
            "choices": {
                "measuring": record.choices.measuring,
                "hospital": record.choices.hospital,
                "video_consultation": record.choices.video_consultation,
            },
            "recorded_at": record.recorded_at.isoformat(),
            "withdrawn_at": None
            if record.withdrawn_at is None
            else record.withdrawn_at.isoformat(),
        }
    )


def _consent_from(data: bytes) -> ConsentRecord:
    d = json.loads(data)
    withdrawn = d["withdrawn_at"]
    return ConsentRecord(
        session_id=d["session_id"],
        text_version=d["text_version"],
        text_sha256=d["text_sha256"],
        locale=Locale(d["locale"]),
        hospital=d["hospital"],
        choices=ConsentChoices(**d["choices"]),
        recorded_at=datetime.fromisoformat(d["recorded_at"]),
        withdrawn_at=None if withdrawn is None else datetime.fromisoformat(withdrawn),
    )


def _measurement_json(measurement: Measurement) -> bytes:
    return _dumps(_measurement_doc(measurement))


def _measurement_from(data: bytes) -> Measurement:
    return _measurement_of(json.loads(data))


def _number(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _reason_doc(reason: Reason) -> dict[str, Any]:
    return {"code": reason.code, "en": reason.en, "vi": reason.vi, "retake": reason.retake}


def _reason_of(d: dict[str, Any]) -> Reason:
    return Reason(d["code"], d["en"], d["vi"], d["retake"])


def _interpretation_doc(value: Interpretation | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {
        "code": value.code,
        "category": value.category,
        "en": value.en,
        "vi": value.vi,
        "urgent": value.urgent,
        "guideline": value.guideline,
    }


def _interpretation_of(d: dict[str, Any] | None) -> Interpretation | None:
    if d is None:
        return None
    return Interpretation(d["code"], d["category"], d["en"], d["vi"], d["urgent"], d["guideline"])


def _device_doc(device: DeviceInfo | None) -> dict[str, Any] | None:
    if device is None:
        return None
    return {
        "model": device.model,
        "protocol": device.protocol,
        "port": device.port,
        "serial_number": device.serial_number,
        "firmware": device.firmware,
    }


def _device_of(d: dict[str, Any] | None) -> DeviceInfo | None:
    if d is None:
        return None
    return DeviceInfo(d["model"], d["protocol"], d["port"], d["serial_number"], d["firmware"])


def _measurement_doc(m: Measurement) -> dict[str, Any]:
    return {
        "kind": m.kind.value,
        "value": _number(m.value),
        "unit": m.unit,
        "at": {"monotonic_ns": m.at.monotonic_ns, "utc": m.at.utc.isoformat()},
        "status": m.status.value,
        "method": m.method.value,
        "device": _device_doc(m.device),
        "quality": m.quality,
        "reasons": [_reason_doc(r) for r in m.reasons],
        "components": [
            {
                "kind": c.kind.value,
                "value": _number(c.value),
                "unit": c.unit,
                "status": c.status.value,
                "reasons": [_reason_doc(r) for r in c.reasons],
                "interpretation": _interpretation_doc(c.interpretation),
            }
            for c in m.components
        ],
        "members": [_measurement_doc(member) for member in m.members],
        "derived_from": [_measurement_doc(source) for source in m.derived_from],
        "interpretation": _interpretation_doc(m.interpretation),
        "procedure": m.procedure,
        "details": [list(pair) for pair in m.details],
    }


def _measurement_of(d: dict[str, Any]) -> Measurement:
    return Measurement(
        kind=Kind(d["kind"]),
        value=_decimal(d["value"]),
        unit=d["unit"],
        at=Instant(d["at"]["monotonic_ns"], datetime.fromisoformat(d["at"]["utc"])),
        status=Status(d["status"]),
        method=Method(d["method"]),
        device=_device_of(d["device"]),
        quality=d["quality"],
        reasons=tuple(_reason_of(r) for r in d["reasons"]),
        components=tuple(
            Component(
                Kind(c["kind"]),
                _decimal(c["value"]),
                c["unit"],
                Status(c["status"]),
                tuple(_reason_of(r) for r in c["reasons"]),
                _interpretation_of(c["interpretation"]),
            )
            for c in d["components"]
        ),
        members=tuple(_measurement_of(member) for member in d["members"]),
        derived_from=tuple(_measurement_of(source) for source in d["derived_from"]),
        interpretation=_interpretation_of(d["interpretation"]),
        procedure=d["procedure"],
        details=tuple((name, value) for name, value in d["details"]),
    )
