"""The durable outbox on a real SQLite file: sealed at rest, transactional, oldest-first."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import fhir.outbox
from fhir.crypto import KeyRing, generate_key
from fhir.errors import OutboxError, OutboxKeyError
from fhir.outbox import BundleState, ClaimedBundle, Outbox

NAME = "Nguyen Van Binh"
CCCD = "079085009876"
WEIGHT = "63.47"


class FakeClock:
    """Wall time that moves only when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def make_bundle(bundle_id: str, *, name: str = NAME, cccd: str = CCCD) -> bytes:
    """A small transaction Bundle with a patient (name, CCCD) and one weight Observation."""
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:2.16.704.1.0.1.cccd", "value": cccd}],
        "name": [{"text": name}],
    }
    weight: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "valueQuantity": {"value": float(WEIGHT), "unit": "kg"},
    }
    entries = [
        {
            "fullUrl": f"urn:uuid:{bundle_id}-{number}",
            "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"]},
        }
        for number, resource in enumerate((patient, weight))
    ]
    bundle = {"resourceType": "Bundle", "id": bundle_id, "type": "transaction", "entry": entries}
    return json.dumps(bundle).encode()


@pytest.fixture
def key() -> bytes:
    return generate_key()


@pytest.fixture
def keys(key: bytes) -> KeyRing:
    return KeyRing([key])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "cabin" / "outbox.db"


@pytest.fixture
def outbox(path: Path, keys: KeyRing, clock: FakeClock) -> Iterator[Outbox]:
    box = Outbox(path, keys=keys, now=clock)
    yield box
    box.close()


def claim(outbox: Outbox, hospital: str = "bv-a") -> ClaimedBundle:
    claimed = outbox.claim_due(hospital)
    assert claimed is not None
    return claimed


def on_disk(path: Path) -> bytes:
    """Every byte SQLite keeps for this database: the file, its WAL and its shared memory."""
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


# Encryption at rest.


def test_a_name_an_id_number_and_a_value_are_not_in_clear_on_disk(
    outbox: Outbox, path: Path
) -> None:
    assert outbox.enqueue("bv-a", "visit-1", make_bundle("visit-1"))
    wal = path.with_name(path.name + "-wal")
    assert wal.stat().st_size > 0  # the commit is in the WAL, which is read too
    for secret in (NAME, CCCD, WEIGHT):
        assert secret.encode() not in on_disk(path), secret
    assert b"visit-1" in on_disk(path)  # the id is plain: the test reads the right bytes


def test_nothing_is_in_clear_after_the_wal_is_checkpointed(
    path: Path, keys: KeyRing, clock: FakeClock
) -> None:
    outbox = Outbox(path, keys=keys, now=clock)
    outbox.enqueue("bv-a", "visit-1", make_bundle("visit-1"))
    outbox.close()  # the last connection checkpoints the WAL into the database file
    for secret in (NAME, CCCD, WEIGHT):
        assert secret.encode() not in path.read_bytes(), secret


def test_a_server_answer_that_echoes_phi_is_sealed_too(outbox: Outbox, path: Path) -> None:
    outbox.enqueue("bv-a", "visit-1", make_bundle("visit-1"))
    echo = {"resourceType": "OperationOutcome", "issue": [{"diagnostics": f"{NAME} {CCCD}"}]}
    outbox.mark_dead(claim(outbox), error="HTTP 422", status=422, answer=json.dumps(echo).encode())
    for secret in (NAME, CCCD):
        assert secret.encode() not in on_disk(path), secret


def test_the_database_file_is_private(outbox: Outbox, path: Path) -> None:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_wrong_key_is_refused_when_the_outbox_opens(outbox: Outbox, path: Path) -> None:
    outbox.enqueue("bv-a", "visit-1", make_bundle("visit-1"))
    with pytest.raises(OutboxKeyError, match="do not open"):
        Outbox(path, keys=KeyRing([generate_key()]))


def test_after_a_rotation_old_rows_open_and_the_new_key_alone_opens_the_outbox(
    outbox: Outbox, path: Path, key: bytes, clock: FakeClock
) -> None:
    outbox.enqueue("bv-a", "visit-1", make_bundle("visit-1"))
    outbox.close()
    new_key = generate_key()
    rotated = Outbox(path, keys=KeyRing([new_key, key]), now=clock)
    try:
        assert claim(rotated).bundle == make_bundle("visit-1")
    finally:
        rotated.close()
    Outbox(path, keys=KeyRing([new_key])).close()  # the key check moved to the new key


def test_a_sealed_bundle_moved_to_another_row_does_not_open(outbox: Outbox, path: Path) -> None:
    outbox.enqueue("bv-a", "visit-1", make_bundle("visit-1"))
    outbox.enqueue("bv-a", "visit-2", make_bundle("visit-2", name="Tran Thi Mai"))
    raw = sqlite3.connect(path)
    with raw:
        one, two = raw.execute("SELECT bundle FROM bundles ORDER BY seq").fetchall()
        raw.execute("UPDATE bundles SET bundle = ? WHERE id = 'visit-1'", two)
        raw.execute("UPDATE bundles SET bundle = ? WHERE id = 'visit-2'", one)
    raw.close()
    with pytest.raises(OutboxKeyError, match="bundle visit-1"):
        outbox.claim_due("bv-a")


# Durability and transactions.


def test_every_row_survives_closing_and_reopening_midway(
    path: Path, keys: KeyRing, clock: FakeClock
) -> None:
    outbox = Outbox(path, keys=keys, now=clock)
    for number in range(5):
        outbox.enqueue("bv-a", f"visit-{number}", make_bundle(f"visit-{number}"))
    outbox.mark_delivered(claim(outbox), status=200, answer=b"{}")
    outbox.mark_dead(claim(outbox), error="HTTP 400", status=400, answer=b"{}")
    outbox.close()

    reopened = Outbox(path, keys=keys, now=clock)
    try:
        states = [(entry.id, entry.state) for entry in reopened.entries()]
        assert states == [
            ("visit-0", BundleState.DELIVERED),
            ("visit-1", BundleState.DEAD),
            ("visit-2", BundleState.PENDING),
            ("visit-3", BundleState.PENDING),
            ("visit-4", BundleState.PENDING),
        ]
        assert claim(reopened).bundle == make_bundle("visit-2")
    finally:
        reopened.close()


def test_enqueueing_the_same_bundle_twice_keeps_one_row(outbox: Outbox) -> None:
    assert outbox.enqueue("bv-a", "visit-1", make_bundle("visit-1"))
    assert not outbox.enqueue("bv-a", "visit-1", make_bundle("visit-1"))
    assert [entry.id for entry in outbox.entries()] == ["visit-1"]


def test_the_same_bundle_id_for_another_hospital_is_refused(outbox: Outbox) -> None:
    outbox.enqueue("bv-a", "visit-1", make_bundle("visit-1"))
    with pytest.raises(OutboxError, match="already queued for bv-a"):
        outbox.enqueue("bv-b", "visit-1", make_bundle("visit-1"))


def _visits(outbox: Outbox) -> None:
    with outbox.transaction() as tx:
        tx.execute("CREATE TABLE visits (id TEXT PRIMARY KEY, state TEXT NOT NULL)")
        tx.execute("INSERT INTO visits VALUES ('v1', 'open')")


def test_the_bundle_and_the_visit_it_closes_commit_together(
    outbox: Outbox, path: Path, keys: KeyRing
) -> None:
    _visits(outbox)
    with outbox.transaction() as tx:
        assert tx.enqueue("bv-a", "visit-1", make_bundle("visit-1"))
        tx.execute("UPDATE visits SET state = 'closed' WHERE id = ?", ("v1",))
    other = Outbox(path, keys=keys)  # a second connection sees the committed pair
    try:
        assert [entry.id for entry in other.entries()] == ["visit-1"]
        with other.transaction() as tx:
            assert tx.execute("SELECT state FROM visits").fetchall() == [("closed",)]
    finally:
        other.close()


def test_an_error_inside_the_transaction_keeps_neither_the_bundle_nor_the_visit(
    outbox: Outbox,
) -> None:
    _visits(outbox)

    def close_visit_and_fail() -> None:
        with outbox.transaction() as tx:
            tx.enqueue("bv-a", "visit-1", make_bundle("visit-1"))
            tx.execute("UPDATE visits SET state = 'closed'")
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        close_visit_and_fail()
    assert outbox.entries() == []
    with outbox.transaction() as tx:
        assert tx.execute("SELECT state FROM visits").fetchall() == [("open",)]


def test_a_failing_caller_statement_is_an_outbox_error_and_enqueues_nothing(
    outbox: Outbox,
) -> None:

    def close_visit_wrongly() -> None:
        with outbox.transaction() as tx:
            tx.enqueue("bv-a", "visit-1", make_bundle("visit-1"))
            tx.execute("UPDATE no_such_table SET x = 1")

    with pytest.raises(OutboxError, match="no such table"):
        close_visit_wrongly()
    assert outbox.entries() == []


def test_a_transaction_opened_inside_another_is_refused_and_nothing_commits(
    outbox: Outbox,
) -> None:

    def nest() -> None:
        with outbox.transaction() as tx:
            tx.enqueue("bv-a", "visit-1", make_bundle("visit-1"))
            outbox.enqueue("bv-a", "visit-2", make_bundle("visit-2"))

    with pytest.raises(OutboxError, match="within a transaction"):
        nest()
    assert outbox.entries() == []


def test_listeners_hear_of_a_pending_bundle_after_its_commit_only(
    outbox: Outbox, path: Path, keys: KeyRing
) -> None:
    heard: list[tuple[str, list[str]]] = []
    spy = Outbox(path, keys=keys)

    def listener(hospital: str) -> None:
        heard.append((hospital, [entry.id for entry in spy.entries()]))

    outbox.listeners.append(listener)
    try:
        with contextlib.suppress(RuntimeError), outbox.transaction() as tx:
            tx.enqueue("bv-a", "visit-0", make_bundle("visit-0"))
            raise RuntimeError("rolled back")
        outbox.enqueue("bv-a", "visit-1", make_bundle("visit-1"))
        outbox.enqueue("bv-a", "visit-1", make_bundle("visit-1"))  # a duplicate: no news
    finally:
        spy.close()
    assert heard == [("bv-a", ["visit-1"])]


def test_enqueues_from_many_threads_all_land(outbox: Outbox) -> None:
    def enqueue(thread: int) -> None:
        for number in range(25):
            bundle_id = f"t{thread}-{number}"
            outbox.enqueue("bv-a", bundle_id, make_bundle(bundle_id))

    threads = [threading.Thread(target=enqueue, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outbox.entries(limit=1000)) == 100


@pytest.mark.parametrize(
    ("hospital", "bundle_id", "body", "message"),
    [
        ("bv-a", "v1", b"\x00\xffgarbage", "not a FHIR Bundle"),
        ("bv-a", "v1", make_bundle("v1")[:40], "not a FHIR Bundle"),
        ("bv-a", "v1", b"[1, 2]", "not a FHIR Bundle"),
        ("bv-a", "v1", b'{"resourceType": "Patient"}', "not a FHIR Bundle"),
        ("bv-a", "v1", b"[" * 100_000 + b"]" * 100_000, "not a FHIR Bundle"),
        ("bv-a", "v1", make_bundle("v2"), "carries another id"),
        ("bv-a", "v1/../x", make_bundle("v1"), "not a FHIR id"),
        ("bv-a", CCCD + "-" + "x" * 60, make_bundle("v1"), "not a FHIR id"),
        ("../bv-a", "v1", make_bundle("v1"), "hospital id"),
        ("", "v1", make_bundle("v1"), "hospital id"),
    ],
)
def test_hostile_bundles_are_refused(
    outbox: Outbox, hospital: str, bundle_id: str, body: bytes, message: str
) -> None:
    with pytest.raises(OutboxError, match=message):
        outbox.enqueue(hospital, bundle_id, body)
    assert outbox.entries() == []


def test_an_oversized_bundle_is_refused(outbox: Outbox) -> None:
    outbox.max_bundle_bytes = 1000
    with pytest.raises(OutboxError, match="the limit is 1000"):
        outbox.enqueue("bv-a", "v1", make_bundle("v1", name="x" * 1000))


# The worker's side.


def test_bundles_leave_oldest_first_per_hospital(outbox: Outbox) -> None:
    for bundle_id, hospital in [("a1", "bv-a"), ("b1", "bv-b"), ("a2", "bv-a"), ("a3", "bv-a")]:
        outbox.enqueue(hospital, bundle_id, make_bundle(bundle_id))
    order = []
    while (claimed := outbox.claim_due("bv-a")) is not None:
        order.append(claimed.id)
        outbox.mark_delivered(claimed, status=200, answer=b"{}")
    assert order == ["a1", "a2", "a3"]
    assert claim(outbox, "bv-b").id == "b1"


def test_a_head_waiting_to_retry_holds_back_the_rest(outbox: Outbox, clock: FakeClock) -> None:
    outbox.enqueue("bv-a", "a1", make_bundle("a1"))
    outbox.enqueue("bv-a", "a2", make_bundle("a2"))
    first = claim(outbox)
    assert outbox.mark_retry(first, at=clock.now + 30, error="HTTP 503")
    assert outbox.claim_due("bv-a") is None
    assert outbox.next_due_at("bv-a") == clock.now + 30
    clock.now += 30
    again = claim(outbox)
    assert (again.id, again.attempt) == ("a1", 2)
    assert outbox.entries()[0].last_error == "HTTP 503"


def test_an_outcome_for_a_bundle_no_longer_pending_is_dropped(outbox: Outbox) -> None:
    outbox.enqueue("bv-a", "a1", make_bundle("a1"))
    claimed = claim(outbox)
    assert outbox.mark_dead(claimed, error="HTTP 400", status=400, answer=None)
    assert not outbox.mark_delivered(claimed, status=200, answer=b"{}")
    assert outbox.entries()[0].state is BundleState.DEAD


def test_next_due_at_is_none_for_an_empty_queue(outbox: Outbox) -> None:
    assert outbox.next_due_at("bv-a") is None
    assert outbox.claim_due("bv-a") is None


# The operator's side.


def test_status_counts_each_hospital_and_ages_its_oldest_pending(
    outbox: Outbox, clock: FakeClock
) -> None:
    outbox.enqueue("bv-a", "a1", make_bundle("a1"))
    clock.now += 60
    outbox.enqueue("bv-a", "a2", make_bundle("a2"))
    outbox.enqueue("bv-b", "b1", make_bundle("b1"))
    outbox.enqueue("bv-b", "b2", make_bundle("b2"))
    outbox.mark_delivered(claim(outbox, "bv-b"), status=200, answer=b"{}")
    outbox.mark_dead(claim(outbox, "bv-b"), error="HTTP 400", status=400, answer=None)
    clock.now += 30
    by_hospital = {status.hospital: status for status in outbox.status()}
    assert (by_hospital["bv-a"].pending, by_hospital["bv-a"].oldest_pending_age) == (2, 90)
    b = by_hospital["bv-b"]
    assert (b.pending, b.delivered, b.dead, b.oldest_pending_age) == (0, 1, 1, None)


def test_list_filters_by_hospital_and_state_with_a_limit(outbox: Outbox) -> None:
    for number in range(4):
        outbox.enqueue("bv-a", f"a{number}", make_bundle(f"a{number}"))
    outbox.enqueue("bv-b", "b0", make_bundle("b0"))
    outbox.mark_delivered(claim(outbox), status=200, answer=b"{}")
    assert [e.id for e in outbox.entries(hospital="bv-a", state=BundleState.PENDING)] == [
        "a1",
        "a2",
        "a3",
    ]
    assert [e.id for e in outbox.entries(state=BundleState.DELIVERED)] == ["a0"]
    assert [e.id for e in outbox.entries(limit=2)] == ["a0", "a1"]


@pytest.mark.parametrize("settle", ["delivered", "dead"])
def test_retry_requeues_a_settled_bundle_and_wakes_listeners(
    outbox: Outbox, clock: FakeClock, settle: str
) -> None:
    outbox.enqueue("bv-a", "a1", make_bundle("a1"))
    claimed = claim(outbox)
    if settle == "delivered":
        outbox.mark_delivered(claimed, status=200, answer=b"{}")
    else:
        outbox.mark_dead(claimed, error="HTTP 400", status=400, answer=None)
    heard: list[str] = []
    outbox.listeners.append(heard.append)
    clock.now += 5
    entry = outbox.retry("a1")
    assert (entry.state, entry.next_attempt_at, entry.delivered_at) == (
        BundleState.PENDING,
        clock.now,
        None,
    )
    assert heard == ["bv-a"]
    assert claim(outbox).attempt == 2


def test_retry_of_an_unknown_bundle_is_an_error(outbox: Outbox) -> None:
    with pytest.raises(OutboxError, match="no bundle 'nope'"):
        outbox.retry("nope")


def test_purge_removes_only_delivered_bundles_older_than_the_cutoff(
    outbox: Outbox, clock: FakeClock
) -> None:
    for bundle_id in ("old", "dead", "new", "waiting"):
        outbox.enqueue("bv-a", bundle_id, make_bundle(bundle_id))
    outbox.mark_delivered(claim(outbox), status=200, answer=b"{}")
    outbox.mark_dead(claim(outbox), error="HTTP 400", status=400, answer=None)
    clock.now += 8 * 86400
    outbox.mark_delivered(claim(outbox), status=200, answer=b"{}")
    assert outbox.purge_delivered(older_than_days=7) == 1
    assert [e.id for e in outbox.entries()] == ["dead", "new", "waiting"]


def test_purge_refuses_a_negative_age(outbox: Outbox) -> None:
    with pytest.raises(ValueError, match="negative"):
        outbox.purge_delivered(older_than_days=-1)


def test_export_writes_every_row_decrypted_as_ndjson(outbox: Outbox) -> None:
    outbox.enqueue("bv-a", "a1", make_bundle("a1"))
    outbox.enqueue("bv-b", "b1", make_bundle("b1"))
    outcome = {"resourceType": "OperationOutcome", "issue": [{"code": "invalid"}]}
    outbox.mark_dead(
        claim(outbox), error="HTTP 400", status=400, answer=json.dumps(outcome).encode()
    )
    stream = io.StringIO()
    assert outbox.export(stream) == 2
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["bundle"] == json.loads(make_bundle("a1"))
    assert (lines[0]["state"], lines[0]["answer"]) == ("dead", outcome)
    assert lines[0]["created_at"].endswith("+00:00")
    assert (lines[1]["id"], lines[1]["answer"]) == ("b1", None)
    only_b = io.StringIO()
    assert outbox.export(only_b, hospital="bv-b") == 1


def test_an_answer_that_is_not_json_exports_as_text(outbox: Outbox) -> None:
    outbox.enqueue("bv-a", "a1", make_bundle("a1"))
    outbox.mark_dead(claim(outbox), error="HTTP 502", status=502, answer=b"<html>Bad gateway")
    stream = io.StringIO()
    outbox.export(stream)
    assert json.loads(stream.getvalue())["answer"] == "<html>Bad gateway"


# The file itself.


def test_the_database_uses_wal_full_sync_and_records_its_schema(outbox: Outbox, path: Path) -> None:
    with outbox.transaction() as tx:
        assert tx.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("PRAGMA user_version").fetchone() == (fhir.outbox.SCHEMA_VERSION,)
    finally:
        raw.close()


def test_a_database_from_a_newer_program_is_refused(outbox: Outbox, path: Path) -> None:
    outbox.close()
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(OutboxError, match="schema 99 is newer"):
        Outbox(path, keys=KeyRing([generate_key()]))


def test_a_later_schema_migrates_old_rows_in_place(
    outbox: Outbox, path: Path, keys: KeyRing, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox.enqueue("bv-a", "a1", make_bundle("a1"))
    outbox.close()
    migrations = (*fhir.outbox._MIGRATIONS, ("ALTER TABLE bundles ADD COLUMN note TEXT",))
    monkeypatch.setattr(fhir.outbox, "_MIGRATIONS", migrations)
    monkeypatch.setattr(fhir.outbox, "SCHEMA_VERSION", len(migrations))
    migrated = Outbox(path, keys=keys, now=clock)
    try:
        assert claim(migrated).bundle == make_bundle("a1")
        with migrated.transaction() as tx:
            assert tx.execute("PRAGMA user_version").fetchone() == (len(migrations),)
            assert tx.execute("SELECT note FROM bundles").fetchall() == [(None,)]
    finally:
        migrated.close()


def test_a_failed_migration_leaves_the_old_schema_whole(
    outbox: Outbox, path: Path, keys: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox.enqueue("bv-a", "a1", make_bundle("a1"))
    outbox.close()
    old_version = fhir.outbox.SCHEMA_VERSION
    migrations = (
        *fhir.outbox._MIGRATIONS,
        ("ALTER TABLE bundles ADD COLUMN note TEXT", "THIS IS NOT SQL"),
    )
    monkeypatch.setattr(fhir.outbox, "_MIGRATIONS", migrations)
    monkeypatch.setattr(fhir.outbox, "SCHEMA_VERSION", len(migrations))
    with pytest.raises(OutboxError, match="syntax error"):
        Outbox(path, keys=keys)
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone() == (old_version,)
        columns = [row[1] for row in raw.execute("PRAGMA table_info(bundles)")]
        assert "note" not in columns
        assert raw.execute("SELECT id FROM bundles").fetchall() == [("a1",)]
    finally:
        raw.close()


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path, keys: KeyRing) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(OutboxError, match="not a database"):
        Outbox(path, keys=keys)


def test_a_database_where_a_directory_should_be_is_refused(tmp_path: Path, keys: KeyRing) -> None:
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(OutboxError, match="cannot open outbox"):
        Outbox(tmp_path / "file" / "outbox.db", keys=keys)


def test_calls_after_close_are_outbox_errors(outbox: Outbox) -> None:
    outbox.close()
    with pytest.raises(OutboxError):
        outbox.entries()
