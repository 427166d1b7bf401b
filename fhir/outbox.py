"""The durable outbox: each finished visit's Bundle, sealed at rest, kept until a hospital has it.

One SQLite file in WAL mode, one row per bundle (see ``_MIGRATIONS``), ``state`` pending →
delivered | dead, and :meth:`Outbox.retry` puts either back.  The bundle and the server's answer
(an OperationOutcome can echo a name or an ID number) are sealed by :class:`~fhir.crypto.KeyRing`
bound to column, hospital and bundle id, so a blob moved to another row no longer opens; other
columns hold no PHI (opaque FHIR ids; ``last_error`` from status codes and exception names).
``synchronous=FULL``: with WAL, NORMAL survives an application crash but may lose the last
commits on power loss, and a lost commit is a visit the resident was told was saved; FULL costs
one WAL fsync per commit.  The schema version is ``PRAGMA user_version``; ``_MIGRATIONS[n]``
takes n to n+1 in the transaction that bumps it, so a crash mid-migration leaves the old whole.

A visit closes in the very commit that stores its bundle::

    with outbox.transaction() as tx:
        tx.enqueue("bv-quan-2", bundle_id, bundle_json)
        tx.execute("UPDATE visits SET state = 'closed' WHERE id = ?", (visit_id,))

``Outbox`` is synchronous and thread-safe (one connection, one lock per call or transaction):
async code, the delivery worker included, calls it only through ``asyncio.to_thread``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from fhir import jsonio
from fhir.crypto import KeyRing
from fhir.errors import OutboxError, OutboxKeyError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MAX_BUNDLE_BYTES = 8 * 1024 * 1024
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_HOSPITAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 0 -> 1
        "CREATE TABLE bundles (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
        "hospital TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', "
        "'dead')), created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
        "next_attempt_at REAL NOT NULL, last_error TEXT, bundle BLOB NOT NULL, "
        "answer_status INTEGER, answer BLOB, delivered_at REAL) STRICT",
        "CREATE INDEX bundles_queue ON bundles (hospital, state, seq)",
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT",
    ),
)
_HEAD = (  # a hospital's queue head; {} takes extra columns
    "SELECT id, next_attempt_at{} FROM bundles WHERE hospital = ? AND state = 'pending' "
    "ORDER BY seq LIMIT 1"
)
_ENTRY = "id, hospital, state, created_at, attempts, next_attempt_at, last_error, answer_status, \
delivered_at"
_FILTER = "WHERE (?1 IS NULL OR hospital = ?1) AND (?2 IS NULL OR state = ?2)"


class BundleState(StrEnum):
    """Where a bundle is in its delivery."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A bundle's delivery record without its content: safe to print or log."""

    id: str
    hospital: str
    state: BundleState
    created_at: float
    attempts: int
    next_attempt_at: float
    last_error: str | None
    answer_status: int | None
    delivered_at: float | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> OutboxEntry:
        return cls(row[0], row[1], BundleState(row[2]), *row[3:9])


@dataclass(frozen=True, slots=True)
class ClaimedBundle:
    """The head of a hospital's queue, handed to the delivery worker for one attempt."""

    id: str
    hospital: str
    attempt: int  # 1 for the first; counted at claim, so one cut short by a crash counts too
    bundle: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class HospitalStatus:
    """Counts per state for one hospital; seconds its oldest pending bundle has waited."""

    hospital: str
    pending: int = 0
    delivered: int = 0
    dead: int = 0
    oldest_pending_age: float | None = None


def _aad(column: str, hospital: str, bundle_id: str) -> bytes:
    return f"outbox/1\x00{column}\x00{hospital}\x00{bundle_id}".encode()


def _utc(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


class OutboxTransaction:
    """One open SQLite write transaction: enqueue bundles and run the caller's statements."""

    def __init__(self, outbox: Outbox, connection: sqlite3.Connection) -> None:
        self._outbox = outbox
        self.connection = connection
        """The raw connection inside the open transaction; never commit or roll back on it."""
        self.touched: set[str] = set()
        """Hospitals that got a pending bundle in this transaction (woken after the commit)."""

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> sqlite3.Cursor:
        """Run one statement in this transaction; SQLite errors become ``OutboxError``."""
        with self._outbox.translated():
            return self.connection.execute(sql, params)

    def enqueue(self, hospital_id: str, bundle_id: str, bundle_json: bytes | str) -> bool:
        """Store a Bundle for delivery to ``hospital_id``; False if that bundle id is already in.

        The JSON must be a FHIR Bundle whose ``id``, if any, is ``bundle_id``.  The first copy
        stored wins; the same id for another hospital is an error.
        """
        if not _HOSPITAL_ID.fullmatch(hospital_id):
            raise OutboxError(f"hospital id {hospital_id!r} is not 1-64 of A-Z a-z 0-9 . _ -")
        if not _FHIR_ID.fullmatch(bundle_id):
            raise OutboxError("bundle id is not a FHIR id (1-64 of A-Z a-z 0-9 - .)")
        data = bundle_json.encode() if isinstance(bundle_json, str) else bytes(bundle_json)
        if len(data) > (limit := self._outbox.max_bundle_bytes):
            raise OutboxError(f"bundle {bundle_id} is {len(data)} bytes; the limit is {limit}")
        try:
            parsed = json.loads(data)
        except (ValueError, RecursionError):
            parsed = None
        if not isinstance(parsed, dict) or parsed.get("resourceType") != "Bundle":
            raise OutboxError(f"bundle {bundle_id} is not a FHIR Bundle in JSON")
        if parsed.get("id", bundle_id) != bundle_id:
            raise OutboxError(f"bundle {bundle_id} carries another id in its JSON")
        row = self.execute("SELECT hospital FROM bundles WHERE id = ?", (bundle_id,)).fetchone()
        if row is not None:
            if row[0] != hospital_id:
                raise OutboxError(f"bundle {bundle_id} is already queued for {row[0]}")
            return False
        now = self._outbox.now()
        sealed = self._outbox.keys.seal(data, aad=_aad("bundle", hospital_id, bundle_id))
        self.execute(
            "INSERT INTO bundles (id, hospital, state, created_at, next_attempt_at, bundle) "
            "VALUES (?, ?, 'pending', ?, ?, ?)",
            (bundle_id, hospital_id, now, now, sealed),
        )
        self.touched.add(hospital_id)
        return True


class Outbox:
    """The outbox database: enqueue, claim and settle bundles; operator views and actions."""

    max_bundle_bytes = MAX_BUNDLE_BYTES  # larger bundles are refused at enqueue

    def __init__(self, path: Path, *, keys: KeyRing, now: Callable[[], float] = time.time) -> None:
        self.path = path
        self.keys = keys
        self.now = now
        """Wall clock (Unix seconds): rows outlive the process, so monotonic time won't do."""
        self.listeners: list[Callable[[str], None]] = []
        """``listener(hospital_id)`` after a commit made a bundle pending (any thread: be quick)."""
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))  # WAL and SHM copy this mode
            self._connection = sqlite3.connect(
                path, timeout=5.0, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"cannot open outbox {path}: {exc}") from exc
        try:
            with self.translated():
                mode = self._connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode != "wal":
                    raise OutboxError(f"outbox {path} cannot use WAL mode (got {mode})")
                self._connection.execute("PRAGMA synchronous = FULL")
            self._prepare()
        except BaseException:
            self._connection.close()
            raise

    def close(self) -> None:
        """Close the database; later calls raise ``OutboxError``."""
        with self._lock:
            self._connection.close()

    @contextmanager
    def translated(self) -> Iterator[None]:
        """Turn SQLite errors into ``OutboxError`` naming this database."""
        try:
            yield
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox {self.path}: {exc}") from exc

    @contextmanager
    def transaction(self) -> Iterator[OutboxTransaction]:
        """A write transaction (``BEGIN IMMEDIATE``): committed on exit, rolled back on error."""
        with self._lock:
            with self.translated():  # nested on one thread: "cannot start a transaction within"
                self._connection.execute("BEGIN IMMEDIATE")
            tx = OutboxTransaction(self, self._connection)
            try:
                yield tx
                with self.translated():
                    self._connection.execute("COMMIT")
            except BaseException:
                if self._connection.in_transaction:
                    with self.translated():
                        self._connection.execute("ROLLBACK")
                raise
        for hospital in sorted(tx.touched):
            for listener in tuple(self.listeners):
                try:
                    listener(hospital)
                except Exception:
                    log.exception("outbox listener failed for %s", hospital)

    def enqueue(self, hospital_id: str, bundle_id: str, bundle_json: bytes | str) -> bool:
        """Enqueue in a transaction of its own (see :meth:`OutboxTransaction.enqueue`)."""
        with self.transaction() as tx:
            return tx.enqueue(hospital_id, bundle_id, bundle_json)

    def _prepare(self) -> None:
        """Migrate the schema; fail now, not at the first send, if the keys cannot open it."""
        with self.transaction() as tx:
            version = tx.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                newer = f"schema {version} is newer than this program's {SCHEMA_VERSION}"
                raise OutboxError(f"outbox {self.path}: {newer}; upgrade the cabin software")
            for number in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[number]:
                    tx.execute(statement)
                tx.execute(f"PRAGMA user_version = {number + 1}")
                log.info("outbox %s migrated to schema %d", self.path, number + 1)
            row = tx.execute("SELECT value FROM meta WHERE name = 'key_check'").fetchone()
            try:
                token = self.keys.check_token(None if row is None else row[0])
            except OutboxKeyError as exc:
                ids = ", ".join(self.keys.key_ids)
                raise OutboxKeyError(f"keys {ids} do not open {self.path}: {exc}") from exc
            if token is not None:
                tx.execute("INSERT OR REPLACE INTO meta VALUES ('key_check', ?)", (token,))

    def _unseal(self, blob: bytes, column: str, hospital: str, bundle_id: str) -> bytes:
        try:
            return self.keys.unseal(blob, aad=_aad(column, hospital, bundle_id))
        except OutboxKeyError as exc:
            raise OutboxKeyError(f"bundle {bundle_id} ({column}): {exc}") from exc

    # The delivery worker's side.

    def claim_due(self, hospital_id: str) -> ClaimedBundle | None:
        """The oldest pending bundle for ``hospital_id`` if it is due, else None.  Strictly
        oldest-first: a head waiting to retry holds back the rest (a backoff is per hospital)."""
        with self.transaction() as tx:
            row = tx.execute(_HEAD.format(", bundle, attempts"), (hospital_id,)).fetchone()
            if row is None or row[1] > self.now():
                return None
            bundle = self._unseal(row[2], "bundle", hospital_id, row[0])
            tx.execute("UPDATE bundles SET attempts = attempts + 1 WHERE id = ?", (row[0],))
        return ClaimedBundle(row[0], hospital_id, row[3] + 1, bundle)

    def next_due_at(self, hospital_id: str) -> float | None:
        """When the head of ``hospital_id``'s queue is due (Unix seconds); None if it is empty."""
        with self._lock, self.translated():
            row = self._connection.execute(_HEAD.format(""), (hospital_id,)).fetchone()
        return None if row is None else float(row[1])

    def mark_retry(self, claimed: ClaimedBundle, *, at: float, error: str) -> bool:
        """Try again at ``at`` (Unix seconds); ``error`` holds no PHI.  False if not pending."""
        return self._settle(claimed, "next_attempt_at = ?, last_error = ?", at, error)

    def mark_delivered(self, claimed: ClaimedBundle, *, status: int, answer: bytes) -> bool:
        """The hospital has it: keep its answer, sealed.  False if no longer pending."""
        sealed = self.keys.seal(answer, aad=_aad("answer", claimed.hospital, claimed.id))
        assignments = "state = 'delivered', answer_status = ?, answer = ?, delivered_at = ?"
        return self._settle(claimed, assignments, status, sealed, self.now())

    def mark_dead(
        self, claimed: ClaimedBundle, *, error: str, status: int | None, answer: bytes | None
    ) -> bool:
        """Give up until an operator retries; keep the server's answer, sealed."""
        aad = _aad("answer", claimed.hospital, claimed.id)
        sealed = None if answer is None else self.keys.seal(answer, aad=aad)
        assignments = "state = 'dead', last_error = ?, answer_status = ?, answer = ?"
        return self._settle(claimed, assignments, error, status, sealed)

    def _settle(self, claimed: ClaimedBundle, assignments: str, *values: Any) -> bool:
        with self.transaction() as tx:
            cursor = tx.execute(
                f"UPDATE bundles SET {assignments} "
                "WHERE id = ? AND hospital = ? AND state = 'pending'",
                (*values, claimed.id, claimed.hospital),
            )
        if cursor.rowcount != 1:
            log.warning("bundle %s is no longer pending; its outcome is dropped", claimed.id)
        return bool(cursor.rowcount == 1)

    # The operator's side (``cabin outbox status | list | retry | purge | export``).

    def status(self) -> tuple[HospitalStatus, ...]:
        """Counts per hospital and state, and the age of each hospital's oldest pending bundle."""
        with self._lock, self.translated():
            rows = self._connection.execute(
                "SELECT hospital, SUM(state = 'pending'), SUM(state = 'delivered'), "
                "SUM(state = 'dead'), MIN(IIF(state = 'pending', created_at, NULL)) "
                "FROM bundles GROUP BY hospital ORDER BY hospital"
            ).fetchall()
        now = self.now()
        return tuple(
            HospitalStatus(name, pending, done, dead, None if old is None else max(0.0, now - old))
            for name, pending, done, dead, old in rows
        )

    def entries(
        self, *, hospital: str | None = None, state: BundleState | None = None, limit: int = 100
    ) -> list[OutboxEntry]:
        """Delivery records, oldest first, optionally of one hospital and/or state."""
        with self._lock, self.translated():
            rows = self._connection.execute(
                f"SELECT {_ENTRY} FROM bundles {_FILTER} ORDER BY seq LIMIT ?3",
                (hospital, state, limit),
            ).fetchall()
        return [OutboxEntry.from_row(row) for row in rows]

    def entry(self, bundle_id: str) -> OutboxEntry | None:
        """One bundle's delivery record, or None if there is no such bundle."""
        with self._lock, self.translated():
            row = self._connection.execute(
                f"SELECT {_ENTRY} FROM bundles WHERE id = ?", (bundle_id,)
            ).fetchone()
        return None if row is None else OutboxEntry.from_row(row)

    def answer(self, bundle_id: str) -> bytes | None:
        """The server's kept answer to a bundle (decrypted), or None if there is none."""
        with self._lock, self.translated():
            row = self._connection.execute(
                "SELECT hospital, answer FROM bundles WHERE id = ?", (bundle_id,)
            ).fetchone()
        if row is None or row[1] is None:
            return None
        return self._unseal(row[1], "answer", row[0], bundle_id)

    def retry(self, bundle_id: str) -> OutboxEntry:
        """Make any bundle pending and due now (re-sending a delivered one is harmless)."""
        with self.transaction() as tx:
            row = tx.execute(
                "UPDATE bundles SET state = 'pending', next_attempt_at = ?, delivered_at = NULL "
                f"WHERE id = ? RETURNING {_ENTRY}",
                (self.now(), bundle_id),
            ).fetchone()
            if row is None:
                raise OutboxError(f"no bundle {bundle_id!r} in the outbox")
            tx.touched.add(row[1])
        return OutboxEntry.from_row(row)

    def purge_delivered(self, *, older_than_days: float) -> int:
        """Delete bundles delivered more than ``older_than_days`` ago; how many went."""
        if older_than_days < 0:
            raise ValueError("older_than_days must not be negative")
        with self.transaction() as tx:
            cursor = tx.execute(
                "DELETE FROM bundles WHERE state = 'delivered' AND delivered_at < ?",
                (self.now() - older_than_days * 86400,),
            )
        return int(cursor.rowcount)

    def export(
        self, stream: IO[str], *, hospital: str | None = None, state: BundleState | None = None
    ) -> int:
        """Write matching rows, decrypted, as NDJSON (one object per bundle); how many."""
        count = 0
        with self._lock, self.translated():
            query = f"SELECT {_ENTRY}, bundle, answer FROM bundles {_FILTER} ORDER BY seq"
            for row in self._connection.execute(query, (hospital, state)):
                record: dict[str, Any] = asdict(OutboxEntry.from_row(row))
                for name in ("created_at", "next_attempt_at", "delivered_at"):
                    record[name] = _utc(record[name])
                record["bundle"] = jsonio.loads(self._unseal(row[9], "bundle", row[1], row[0]))
                record["answer"] = None
                if row[10] is not None:
                    answer = self._unseal(row[10], "answer", row[1], row[0])
                    try:
                        record["answer"] = jsonio.loads(answer)
                    except (ValueError, RecursionError):
                        record["answer"] = answer.decode("utf-8", "replace")
                stream.write(jsonio.dumps(record).decode("utf-8") + "\n")  # decimals as written
                count += 1
        return count
