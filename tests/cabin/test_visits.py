"""The visit store: persisted visits beside the outbox, consent, completion, withdrawal, wipe."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cabin.visits import (
    AuditOutcome,
    BlockingVisitStore,
    ConsentRequired,
    VisitClosed,
    VisitStage,
    VisitStore,
    VisitStoreError,
    VisitUnknown,
    patient_identity,
)
from fhir.bundle import build_bundle
from fhir.crypto import KeyRing, generate_key
from fhir.outbox import BundleState, Outbox, OutboxEntry
from fhir.visit import VisitRecord
from kiosk_bridge.consent import (
    ConsentChoices,
    ConsentRecord,
    Locale,
    consent_text,
    record_consent,
    withdrawal,
)
from kiosk_bridge.identity import Assurance, Identity, Sex, Source
from kiosk_bridge.sessions import (
    KioskSessions,
    Progress,
    Service,
    Session,
    VisitPort,
    VisitState,
    WipeReason,
)
from tests.fhir.sample_visit import CABIN
from tests.fhir.sample_visit import visit as sample_visit
from tests.kiosk_bridge.test_events import kiosk_peer, sender, wall_clock
from vitals.measurement import Component, Measurement

REPO = Path(__file__).resolve().parents[2]
HOSPITAL_NAME = "Bệnh viện Thành phố Thủ Đức"
HOSPITAL = "bv-thu-duc"
LAUNCHED = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)

# Made-up residents (not real people's data).  Nhung is the one wiped; Quang stays.
NHUNG = Identity(
    cccd="079158246813",
    full_name="Phạm Thị Hồng Nhung",
    birth_date=date(1958, 2, 17),
    sex=Sex.FEMALE,
    bhyt="HT2797958246813",
    assurance=Assurance.PASSIVE_AUTH,
    source=Source.CHIP,
    issuer="CN=DS Test",
)
QUANG = Identity(
    cccd="001062735190",
    full_name="Lê Minh Quang",
    birth_date=date(1962, 9, 3),
    sex=Sex.MALE,
    assurance=Assurance.ASSERTED,
    source=Source.KIOSK_ASSERTION,
    issuer="kiosk-test-01",
)
# Nhung's measurements carry values of their own, long enough not to occur by chance in the
# database's random-looking bytes, so a search for them is meaningful.
NHUNG_VALUES = ("63.85", "37.15", "151.5", "27.82")


def _session(session_id: str, identity: Identity, service: Service = Service.BOTH) -> Session:
    return Session(
        session_id=session_id,
        identity=identity,
        service=service,
        callback_url="http://127.0.0.1:9/kiosk/events",
        locale=Locale.VI,
        created_at=LAUNCHED,
        expires_at=LAUNCHED + timedelta(minutes=30),
        launch_token="launch-token-not-stored",
    )


def _consent(session_id: str, **choices: bool) -> ConsentRecord:
    answers = {"measuring": True, "hospital": True, "video_consultation": True} | choices
    return record_consent(
        session_id=session_id,
        shown=consent_text(locale=Locale.VI, hospital=HOSPITAL_NAME),
        choices=ConsentChoices(**answers),
        now=LAUNCHED + timedelta(minutes=1),
    )


def _nhung_measurements() -> tuple[Measurement, ...]:
    """The sample visit's measurements with Nhung's own values."""
    temperature, weight, height, bmi, spo2, pulse, bp = sample_visit().measurements
    weight = dataclasses.replace(weight, value=Decimal(NHUNG_VALUES[0]))
    height = dataclasses.replace(height, value=Decimal(NHUNG_VALUES[2]))
    return (
        dataclasses.replace(temperature, value=Decimal(NHUNG_VALUES[1])),
        weight,
        height,
        dataclasses.replace(bmi, value=Decimal(NHUNG_VALUES[3]), derived_from=(height, weight)),
        spo2,
        pulse,
        dataclasses.replace(
            bp,
            components=tuple(
                dataclasses.replace(c, value=Decimal(v))
                for c, v in zip(bp.components, ("131", "86", "101"), strict=True)
            ),
        ),
    )


@pytest.fixture
def keys() -> KeyRing:
    return KeyRing([generate_key()])


@pytest.fixture
def outbox(tmp_path: Path, keys: KeyRing) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.db", keys=keys)
    yield box
    box.close()


@pytest.fixture
def store(outbox: Outbox) -> BlockingVisitStore:
    return BlockingVisitStore(outbox)


def _measuring(store: BlockingVisitStore, session_id: str, identity: Identity) -> None:
    store.open(_session(session_id, identity))
    store.record_consent(_consent(session_id))
    store.set_state(session_id, VisitStage.MEASURING, step="temperature")


def _stage(store: BlockingVisitStore, session_id: str) -> VisitStage:
    summary = store.summary(session_id)
    assert summary is not None, f"no visit {session_id}"
    return summary.state


def _kiosk_state(store: BlockingVisitStore, session_id: str) -> VisitState:
    status = store.status(session_id)
    assert status is not None, f"no visit {session_id}"
    return status.state


def _entry(outbox: Outbox, bundle_id: str) -> OutboxEntry:
    entry = outbox.entry(bundle_id)
    assert entry is not None, f"no bundle {bundle_id}"
    return entry


def _bundle(store: BlockingVisitStore, session_id: str) -> tuple[str, bytes]:
    identity = store.identity(session_id)
    assert identity is not None
    record = VisitRecord(
        session_id,
        CABIN,
        patient_identity(identity),
        LAUNCHED,
        LAUNCHED + timedelta(minutes=8),
        store.measurements(session_id),
    )
    built = build_bundle(record)
    return built.id, built.json


# --- persistence and recovery ---------------------------------------------------------------


def test_a_new_visit_is_launched_with_its_identity_sealed(
    store: BlockingVisitStore, outbox: Outbox
) -> None:
    store.open(_session("s-open", NHUNG))
    summary = store.summary("s-open")
    assert summary is not None
    assert summary.state is VisitStage.LAUNCHED
    assert summary.launched_at == LAUNCHED
    assert summary.expires_at == LAUNCHED + timedelta(minutes=30)
    assert summary.progress.done == 0
    assert summary.progress.total == 7
    assert store.identity("s-open") == NHUNG
    [blob] = _column(outbox.path, "SELECT identity FROM visits")
    assert NHUNG.full_name.encode() not in blob
    assert NHUNG.cccd.encode() not in blob


def test_a_sealed_identity_moved_to_another_visit_does_not_open(
    store: BlockingVisitStore, outbox: Outbox
) -> None:
    store.open(_session("s-a", NHUNG))
    store.open(_session("s-b", QUANG))
    with outbox.transaction() as tx:
        tx.execute(
            "UPDATE visits SET identity = (SELECT identity FROM visits WHERE session_id = 's-a') "
            "WHERE session_id = 's-b'"
        )
    with pytest.raises(VisitStoreError, match="failed authentication"):
        store.identity("s-b")


def test_measurements_come_back_exactly_as_committed(store: BlockingVisitStore) -> None:
    _measuring(store, "s-exact", NHUNG)
    measurements = sample_visit().measurements
    positions = [store.commit_measurement("s-exact", m) for m in measurements]
    assert positions == list(range(1, len(measurements) + 1))
    again = store.measurements("s-exact")
    assert again == measurements
    assert [str(m.value) for m in again] == [str(m.value) for m in measurements]  # 36.80 stays
    bp = again[-1]
    assert bp.members == measurements[-1].members
    assert isinstance(bp.components[0], Component)


_CRASHING_CHILD = """
import os, signal, sys
from cabin.visits import BlockingVisitStore, VisitStage
from fhir.crypto import key_ring_from_env
from fhir.outbox import Outbox
from tests.cabin.test_visits import NHUNG, _consent, _nhung_measurements, _session
store = BlockingVisitStore(Outbox(__import__("pathlib").Path(sys.argv[1]),
                                  keys=key_ring_from_env("TEST_OUTBOX_KEYS")))
store.open(_session("s-crash", NHUNG))
store.record_consent(_consent("s-crash"))
for count, m in enumerate(_nhung_measurements()[:3], 1):
    store.set_state("s-crash", VisitStage.MEASURING, step=m.kind.value)
    store.commit_measurement("s-crash", m)
    print("committed", count, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_committed_measurements_survive_a_killed_process(tmp_path: Path) -> None:
    """Crash recovery: SIGKILL right after the third commit; a new store finds all three."""
    key = generate_key()
    path = tmp_path / "outbox.db"
    env = {
        **os.environ,
        "TEST_OUTBOX_KEYS": base64.b64encode(key).decode(),
        "PYTHONPATH": str(REPO),
    }
    child = subprocess.run(
        [sys.executable, "-c", _CRASHING_CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=REPO,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert child.stdout.splitlines()[-1] == "committed 3"
    assert Path(f"{path}-wal").exists()  # the process died without closing the database

    outbox = Outbox(path, keys=KeyRing([key]))
    try:
        reopened = BlockingVisitStore(outbox)
        assert reopened.measurements("s-crash") == _nhung_measurements()[:3]
        [active] = reopened.active()
        assert active.session_id == "s-crash"
        assert active.state is VisitStage.MEASURING
        assert active.step == "body-height"
        assert active.measurement_count == 3
        assert active.consented
        assert reopened.identity("s-crash") == NHUNG
        # the service may resume it, or close it and wipe it
        reopened.set_state("s-crash", VisitStage.INTERRUPTED)
        assert reopened.active() == ()
        assert [v.session_id for v in reopened.closed()] == ["s-crash"]
        line = reopened.wipe("s-crash")
        assert line is not None
        assert line.outcome is AuditOutcome.INTERRUPTED
    finally:
        outbox.close()


def test_a_reopened_store_lists_active_visits_with_their_state(
    tmp_path: Path, keys: KeyRing
) -> None:
    first = Outbox(tmp_path / "outbox.db", keys=keys)
    store = BlockingVisitStore(first)
    _measuring(store, "s-1", NHUNG)
    store.open(_session("s-2", QUANG, Service.CONSULT))
    store.open(_session("s-3", QUANG, Service.HEALTH_CHECK))
    store.set_state("s-3", VisitStage.EXPIRED)
    second = Outbox(tmp_path / "outbox.db", keys=keys)  # the first is never closed: a crash
    try:
        reopened = BlockingVisitStore(second)
        active = {v.session_id: v for v in reopened.active()}
        assert set(active) == {"s-1", "s-2"}
        assert active["s-1"].state is VisitStage.MEASURING
        assert active["s-1"].step == "temperature"
        assert active["s-2"].state is VisitStage.LAUNCHED
        assert active["s-2"].service is Service.CONSULT
        assert [v.session_id for v in reopened.closed()] == ["s-3"]
    finally:
        second.close()
        first.close()


def test_the_schema_is_versioned_apart_from_the_outbox(
    store: BlockingVisitStore, outbox: Outbox, keys: KeyRing
) -> None:
    assert _column(outbox.path, "SELECT version FROM visit_schema") == [1]
    assert _column(outbox.path, "PRAGMA user_version") == [1]  # the outbox's own
    BlockingVisitStore(outbox)  # opening again migrates nothing
    assert _column(outbox.path, "SELECT version FROM visit_schema") == [1]
    with outbox.transaction() as tx:
        tx.execute("UPDATE visit_schema SET version = 99")
    with pytest.raises(VisitStoreError, match="newer than this program"):
        BlockingVisitStore(outbox)


# --- states, consent, progress --------------------------------------------------------------


def test_progress_counts_the_steps_left_behind(store: BlockingVisitStore) -> None:
    store.open(_session("s-p", NHUNG, Service.HEALTH_CHECK))
    store.set_state("s-p", VisitStage.CONSENT, step=None)
    store.record_consent(_consent("s-p"))
    status = store.status("s-p")
    assert status is not None
    assert status.state is VisitState.CONSENTED
    assert (status.progress.done, status.progress.total) == (1, 6)
    store.set_state("s-p", VisitStage.MEASURING, step="temperature")
    store.set_state("s-p", VisitStage.MEASURING, step="weight")
    status = store.status("s-p")
    assert status is not None
    assert status.state is VisitState.MEASURING
    assert status.progress.done == 2  # consent and temperature; weight is under way
    store.set_state("s-p", VisitStage.RESULTS)
    assert store.status("s-p") == dataclasses.replace(status, progress=_progress(3, 6))
    store.complete("s-p", bundle_id=None, hospital=None, bundle_json=None)
    done = store.status("s-p")
    assert done is not None
    assert done.state is VisitState.COMPLETED
    assert done.progress == _progress(6, 6)


def _progress(done: int, total: int) -> Progress:
    return Progress(done=done, total=total)


def test_the_kiosk_states_are_accepted_and_reported(store: BlockingVisitStore) -> None:
    store.open(_session("s-k", NHUNG))
    store.set_state("s-k", VisitState.OPENED)
    assert _stage(store, "s-k") is VisitStage.LAUNCHED
    store.set_state("s-k", VisitState.CONSULT_QUEUED)
    assert _kiosk_state(store, "s-k") is VisitState.CONSULT_QUEUED
    store.set_state("s-k", VisitStage.CONSULT_ENDED)
    assert _kiosk_state(store, "s-k") is VisitState.IN_CONSULT
    store.set_state("s-k", VisitStage.INTERRUPTED)
    assert _kiosk_state(store, "s-k") is VisitState.EXPIRED


def test_an_ended_visit_does_not_move_again(store: BlockingVisitStore) -> None:
    _measuring(store, "s-end", NHUNG)
    store.set_state("s-end", VisitStage.EXPIRED)
    with pytest.raises(VisitClosed):
        store.set_state("s-end", VisitStage.MEASURING, step="weight")
    with pytest.raises(VisitClosed):
        store.commit_measurement("s-end", sample_visit().measurements[0])
    with pytest.raises(VisitClosed):
        store.complete("s-end", bundle_id=None, hospital=None, bundle_json=None)
    with pytest.raises(VisitClosed):
        store.record_consent(_consent("s-end"))


def test_completed_and_withdrawn_are_reached_only_through_their_own_methods(
    store: BlockingVisitStore,
) -> None:
    store.open(_session("s-v", NHUNG))
    with pytest.raises(ValueError, match="complete"):
        store.set_state("s-v", VisitStage.COMPLETED)
    with pytest.raises(ValueError, match="withdraw"):
        store.set_state("s-v", VisitState.WITHDRAWN)


def test_unknown_visits_are_refused_or_ignored(store: BlockingVisitStore) -> None:
    with pytest.raises(VisitUnknown):
        store.set_state("nobody", VisitStage.MEASURING)
    with pytest.raises(VisitUnknown):
        store.record_consent(_consent("nobody"))
    with pytest.raises(VisitUnknown):
        store.measurements("nobody")
    assert store.status("nobody") is None
    assert store.consent("nobody") is None
    assert store.identity("nobody") is None
    store.withdraw("nobody")
    assert store.wipe("nobody") is None
    assert store.audit() == ()


def test_nothing_is_measured_before_consent_to_measure(store: BlockingVisitStore) -> None:
    store.open(_session("s-c", NHUNG))
    weight = sample_visit().measurements[1]
    with pytest.raises(ConsentRequired):
        store.commit_measurement("s-c", weight)
    store.record_consent(_consent("s-c", measuring=False))
    with pytest.raises(ConsentRequired, match="measuring"):
        store.commit_measurement("s-c", weight)
    store.record_consent(_consent("s-c"))  # the resident changed their mind: a new record
    assert store.commit_measurement("s-c", weight) == 1
    assert store.consent("s-c") == _consent("s-c")


# --- completion: one transaction with the outbox --------------------------------------------


def test_complete_queues_the_bundle_and_closes_the_visit_together(
    store: BlockingVisitStore, outbox: Outbox
) -> None:
    _measuring(store, "s-done", NHUNG)
    for m in _nhung_measurements():
        store.commit_measurement("s-done", m)
    bundle_id, bundle = _bundle(store, "s-done")
    assert store.complete("s-done", bundle_id=bundle_id, hospital=HOSPITAL, bundle_json=bundle)
    entry = outbox.entry(bundle_id)
    assert entry is not None
    assert entry.state is BundleState.PENDING
    summary = store.summary("s-done")
    assert summary is not None
    assert summary.state is VisitStage.COMPLETED
    assert summary.bundle_id == bundle_id
    assert summary.closed_at is not None
    assert store.active() == ()


def test_a_failed_completion_leaves_neither_bundle_nor_closed_visit(
    store: BlockingVisitStore, outbox: Outbox
) -> None:
    """The power cut between the two writes, played by a trigger that aborts the second."""
    _measuring(store, "s-cut", NHUNG)
    store.commit_measurement("s-cut", _nhung_measurements()[1])
    bundle_id, bundle = _bundle(store, "s-cut")
    with outbox.transaction() as tx:
        tx.execute(
            "CREATE TEMP TRIGGER cut BEFORE UPDATE OF state ON visits "
            "WHEN NEW.state = 'completed' BEGIN SELECT RAISE(ABORT, 'power cut'); END"
        )
    with pytest.raises(VisitStoreError, match="power cut"):
        store.complete("s-cut", bundle_id=bundle_id, hospital=HOSPITAL, bundle_json=bundle)
    assert outbox.entry(bundle_id) is None
    assert _stage(store, "s-cut") is VisitStage.MEASURING
    with pytest.raises(VisitStoreError, match="not a FHIR Bundle"):
        store.complete("s-cut", bundle_id=bundle_id, hospital=HOSPITAL, bundle_json=b"{}")
    assert _stage(store, "s-cut") is VisitStage.MEASURING


def test_no_bundle_is_queued_without_consent_to_send_it(
    store: BlockingVisitStore, outbox: Outbox
) -> None:
    store.open(_session("s-keep", NHUNG))
    store.record_consent(_consent("s-keep", hospital=False))
    store.commit_measurement("s-keep", _nhung_measurements()[0])
    bundle_id, bundle = _bundle(store, "s-keep")
    with pytest.raises(ConsentRequired, match="hospital"):
        store.complete("s-keep", bundle_id=bundle_id, hospital=HOSPITAL, bundle_json=bundle)
    assert outbox.entry(bundle_id) is None
    assert not store.complete("s-keep", bundle_id=None, hospital=None, bundle_json=None)
    assert _stage(store, "s-keep") is VisitStage.COMPLETED
    with pytest.raises(ValueError, match="go together"):
        store.complete("s-keep", bundle_id=bundle_id, hospital=None, bundle_json=None)


# --- withdrawal -----------------------------------------------------------------------------


def test_withdrawal_deletes_what_was_not_delivered(
    store: BlockingVisitStore, outbox: Outbox
) -> None:
    _measuring(store, "s-w", NHUNG)
    for m in _nhung_measurements():
        store.commit_measurement("s-w", m)
    bundle_id, bundle = _bundle(store, "s-w")
    store.complete("s-w", bundle_id=bundle_id, hospital=HOSPITAL, bundle_json=bundle)

    [sealed_bundle] = _column(outbox.path, "SELECT bundle FROM bundles")

    store.withdraw("s-w")
    store.record_consent(withdrawal(_consent("s-w"), now=LAUNCHED + timedelta(minutes=9)))

    assert outbox.entry(bundle_id) is None  # still pending: never sent, now gone
    assert _found(_files(outbox.path), {"bundle": sealed_bundle[30:62]}) == []
    assert store.measurements("s-w") == ()
    assert store.identity("s-w") is None
    status = store.status("s-w")
    assert status is not None
    assert status.state is VisitState.WITHDRAWN
    record = store.consent("s-w")
    assert record is not None
    assert record.withdrawn_at is not None  # the proof of withdrawal is kept until the wipe
    assert _column(outbox.path, "SELECT COUNT(*) FROM visit_measurements") == [0]


def test_a_delivered_bundle_is_the_hospitals_and_stays(
    store: BlockingVisitStore, outbox: Outbox
) -> None:
    _measuring(store, "s-sent", NHUNG)
    store.commit_measurement("s-sent", _nhung_measurements()[0])
    bundle_id, bundle = _bundle(store, "s-sent")
    store.complete("s-sent", bundle_id=bundle_id, hospital=HOSPITAL, bundle_json=bundle)
    claimed = outbox.claim_due(HOSPITAL)
    assert claimed is not None
    outbox.mark_delivered(claimed, status=200, answer=b"{}")
    store.withdraw("s-sent")
    assert _entry(outbox, bundle_id).state is BundleState.DELIVERED
    assert store.measurements("s-sent") == ()


def test_a_withdrawal_record_alone_withdraws_the_visit(store: BlockingVisitStore) -> None:
    _measuring(store, "s-r", NHUNG)
    store.commit_measurement("s-r", _nhung_measurements()[0])
    store.record_consent(withdrawal(_consent("s-r"), now=LAUNCHED + timedelta(minutes=3)))
    assert _stage(store, "s-r") is VisitStage.WITHDRAWN
    assert store.measurements("s-r") == ()
    with pytest.raises(VisitClosed):
        store.commit_measurement("s-r", _nhung_measurements()[0])


# --- the wipe -------------------------------------------------------------------------------


def _files(path: Path) -> dict[str, bytes]:
    """The database and its WAL and shared-memory files, as bytes (absent ones empty)."""
    found = {}
    for suffix in ("", "-wal", "-shm"):
        file = Path(f"{path}{suffix}")
        found[file.name] = file.read_bytes() if file.exists() else b""
    return found


def _column(path: Path, query: str) -> list[Any]:
    with sqlite3.connect(path) as connection:
        return [row[0] for row in connection.execute(query)]


def _phi_needles(identity: Identity) -> dict[str, bytes]:
    """Every way the resident's name, ID, birth date and values could be written."""
    name = identity.full_name
    folded = "".join(
        c for c in unicodedata.normalize("NFD", name) if not unicodedata.combining(c)
    ).replace("đ", "d")
    born = identity.birth_date
    texts = {
        "name": name,
        "name NFD": unicodedata.normalize("NFD", name),
        "name upper": name.upper(),
        "name folded": folded,
        "family name": name.split()[0] + " Thị",
        "given name": "Hồng Nhung",
        "CCCD": identity.cccd,
        "CCCD last 9": identity.cccd[-9:],
        "BHYT": identity.bhyt or "",
        "birth ISO": born.isoformat(),
        "birth VN": born.strftime("%d/%m/%Y"),
        "birth compact": born.strftime("%Y%m%d"),
        "birth MRZ": born.strftime("%y%m%d"),
    }
    needles = {label: text.encode("utf-8") for label, text in texts.items()}
    for label in ("name", "CCCD", "birth ISO"):
        needles[f"{label} utf-16-le"] = texts[label].encode("utf-16-le")
        needles[f"{label} utf-16-be"] = texts[label].encode("utf-16-be")
    for value in NHUNG_VALUES:
        needles[f"value {value}"] = value.encode()
    return needles


def _sealed_slices(path: Path, session_id: str) -> dict[str, bytes]:
    """32-byte pieces of every sealed blob the visit wrote (what secure_delete must erase)."""
    pieces: dict[str, bytes] = {}
    with sqlite3.connect(path) as connection:
        queries = {
            "identity": "SELECT identity FROM visits WHERE session_id = ?",
            "consent": "SELECT record FROM visit_consents WHERE session_id = ?",
            "measurement": "SELECT measurement FROM visit_measurements WHERE session_id = ?",
        }
        for what, query in queries.items():
            for number, (blob,) in enumerate(connection.execute(query, (session_id,))):
                pieces[f"{what} {number}"] = bytes(blob[30:62])
    return pieces


def _found(files: dict[str, bytes], needles: dict[str, bytes]) -> list[str]:
    return [
        f"{label} in {name}"
        for label, needle in needles.items()
        for name, content in files.items()
        if needle and needle in content
    ]


def _rows_naming(path: Path, text: str) -> dict[str, int]:
    """Rows per table with any column holding ``text``."""
    counts = {}
    with sqlite3.connect(path) as connection:
        tables = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for table in tables:
            columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
            condition = " OR ".join(f"instr(CAST({c} AS TEXT), ?) > 0" for c in columns)
            query = f"SELECT COUNT(*) FROM {table} WHERE {condition}"
            (count,) = connection.execute(query, [text] * len(columns)).fetchone()
            if count:
                counts[table] = count
    return counts


def _strings_held(root: object, *, skip: tuple[type, ...]) -> list[str]:
    """Every str and bytes reachable from ``root`` through attributes and containers."""
    seen: set[int] = set()
    found: list[str] = []
    stack = [root]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, skip):
            continue
        seen.add(id(item))
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, bytes | bytearray):
            found.append(bytes(item).decode("utf-8", "replace"))
        elif isinstance(item, dict):
            stack += [*item.keys(), *item.values()]
        elif isinstance(item, list | tuple | set | frozenset):
            stack += list(item)
        elif dataclasses.is_dataclass(item) or hasattr(item, "__dict__"):
            stack += list(vars(item).values()) if hasattr(item, "__dict__") else []
            stack += [
                getattr(item, s) for s in getattr(type(item), "__slots__", ()) if hasattr(item, s)
            ]
    return found


def _populated(store: BlockingVisitStore) -> tuple[str, str]:
    """Nhung's completed visit (bundle queued) and Quang's visit still measuring."""
    _measuring(store, "s-nhung", NHUNG)
    for m in _nhung_measurements():
        store.commit_measurement("s-nhung", m)
    bundle_id, bundle = _bundle(store, "s-nhung")
    store.complete("s-nhung", bundle_id=bundle_id, hospital=HOSPITAL, bundle_json=bundle)
    _measuring(store, "s-quang", QUANG)
    store.commit_measurement("s-quang", sample_visit().measurements[1])
    return "s-nhung", bundle_id


def test_a_wipe_leaves_only_the_queued_bundle_and_one_audit_line(
    outbox: Outbox, keys: KeyRing
) -> None:
    """THE wipe test: files, rows and memory hold nothing about the resident afterwards."""
    store = VisitStore(BlockingVisitStore(outbox))
    session_id, bundle_id = _populated(store.blocking)
    needles = _phi_needles(NHUNG)
    sealed = _sealed_slices(outbox.path, session_id)
    assert len(sealed) == 1 + 1 + len(_nhung_measurements())
    assert _found(_files(outbox.path), sealed)  # before the wipe the sealed data is there

    async def wipe() -> float:
        started = time.perf_counter()
        await store.wipe(session_id)
        return time.perf_counter() - started

    elapsed = asyncio.run(wipe())

    assert elapsed < 1.0, f"the wipe took {elapsed:.3f} s"
    files = _files(outbox.path)
    assert _found(files, needles) == []
    assert _found(files, sealed) == []  # zeroed by secure_delete, gone from the truncated WAL
    assert files["outbox.db-wal"] == b""
    assert _rows_naming(outbox.path, session_id) == {"visit_audit": 1}
    # what is queued for the hospital stays, sealed
    assert _entry(outbox, bundle_id).state is BundleState.PENDING
    claimed = outbox.claim_due(HOSPITAL)
    assert claimed is not None
    assert NHUNG.full_name in claimed.bundle.decode()
    # and the store answers as if the visit never was
    assert asyncio.run(store.status(session_id)) is None
    assert asyncio.run(store.holds(session_id)) is False
    assert asyncio.run(store.identity(session_id)) is None
    assert asyncio.run(store.consent(session_id)) is None
    with pytest.raises(VisitUnknown):
        asyncio.run(store.measurements(session_id))
    held = " ".join(_strings_held(store, skip=(Outbox, KeyRing)))
    assert session_id not in held
    assert all(text not in held for text in (NHUNG.full_name, NHUNG.cccd))
    # the other resident's visit is untouched
    assert store.blocking.identity("s-quang") == QUANG
    assert len(store.blocking.measurements("s-quang")) == 1
    [line] = asyncio.run(store.audit())
    assert line.session_id == session_id
    assert line.outcome is AuditOutcome.COMPLETED
    assert line.bundle_id == bundle_id
    assert line.launched_at == LAUNCHED
    assert line.closed_at is not None
    assert _found({"audit line": str(line).encode()}, needles) == []


@pytest.mark.parametrize("left_out", ["secure_delete", "wal truncation"])
def test_the_wipe_search_would_find_bytes_left_behind(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch, left_out: str
) -> None:
    """The check above is not vacuous, and each half of the wipe matters: without
    ``secure_delete`` the freed pages keep the sealed bytes; without truncating the WAL its
    older frames do."""
    store = BlockingVisitStore(outbox)
    if left_out == "secure_delete":
        with outbox.transaction() as tx:
            tx.execute("PRAGMA secure_delete = OFF")
    else:
        monkeypatch.setattr(store, "_truncate_wal", lambda: True)
    session_id, _ = _populated(store)
    sealed = _sealed_slices(outbox.path, session_id)
    store.wipe(session_id)
    assert not store.holds(session_id)
    assert _found(_files(outbox.path), sealed)


def test_a_reader_holding_the_wal_delays_its_truncation_never_the_wipe(
    store: BlockingVisitStore, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    session_id, _ = _populated(store)
    sealed = _sealed_slices(outbox.path, session_id)
    reader = sqlite3.connect(outbox.path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM visits").fetchone()  # holds its snapshot
        started = time.perf_counter()
        assert store.wipe(session_id) is not None
        assert time.perf_counter() - started < 1.0
        assert not store.holds(session_id)
        assert "busy" in caplog.text or "cannot checkpoint" in caplog.text
    finally:
        reader.close()
    store.open(_session("s-next", QUANG))
    store.wipe("s-next")  # the next wipe truncates what the reader held up
    assert _found(_files(outbox.path), sealed) == []


def test_a_wipe_mid_visit_is_audited_as_abandoned_and_happens_once(
    store: BlockingVisitStore,
) -> None:
    _measuring(store, "s-mid", NHUNG)
    store.commit_measurement("s-mid", _nhung_measurements()[0])
    line = store.wipe("s-mid")
    assert line is not None
    assert line.outcome is AuditOutcome.ABANDONED
    assert line.last_state is VisitStage.MEASURING
    assert line.closed_at is None
    assert store.wipe("s-mid") is None
    assert store.audit() == (line,)
    with pytest.raises(VisitUnknown):
        store.commit_measurement("s-mid", _nhung_measurements()[0])


def test_the_audit_keeps_the_most_recent_lines_in_order(store: BlockingVisitStore) -> None:
    for number in range(5):
        store.open(_session(f"s-{number}", QUANG))
        store.wipe(f"s-{number}")
    assert [line.session_id for line in store.audit(limit=2)] == ["s-3", "s-4"]
    assert len(store.audit()) == 5


# --- the kiosk's port -----------------------------------------------------------------------


def test_the_kiosk_sessions_run_on_the_store_and_a_card_removal_wipes_in_time(
    outbox: Outbox, tmp_path: Path
) -> None:
    async def scenario() -> None:
        store = await VisitStore.connect(outbox)
        port: VisitPort = store
        async with kiosk_peer() as peer, sender(tmp_path / "events.db").running() as events:
            sessions = KioskSessions(visits=port, events=events, clock=wall_clock)
            session = await sessions.open(
                identity=NHUNG,
                service=Service.HEALTH_CHECK,
                callback_url=peer.url,
                locale=Locale.VI,
            )
            sid = session.session_id
            await sessions.record_consent(_consent(sid))
            assert (await sessions.status(sid)).state is VisitState.CONSENTED
            await store.set_state(sid, VisitStage.MEASURING, step="weight")
            await store.commit_measurement(sid, _nhung_measurements()[1])
            started = time.perf_counter()
            await sessions.wipe(sid, reason=WipeReason.KIOSK_REQUEST)
            assert time.perf_counter() - started < 1.0
            assert not await store.holds(sid)
            assert [line.outcome for line in await store.audit()] == [AuditOutcome.ABANDONED]
            await peer.wait_for(3)
            assert peer.types()[-1] == "session.wiped"

    asyncio.run(scenario())


def test_a_withdrawal_through_the_kiosk_sessions_deletes_and_keeps_the_proof(
    outbox: Outbox, tmp_path: Path
) -> None:
    async def scenario() -> None:
        store = await VisitStore.connect(outbox)
        async with kiosk_peer() as peer, sender(tmp_path / "events.db").running() as events:
            sessions = KioskSessions(visits=store, events=events, clock=wall_clock)
            session = await sessions.open(
                identity=QUANG, service=Service.BOTH, callback_url=peer.url, locale=Locale.EN
            )
            sid = session.session_id
            record = _consent(sid)
            await sessions.record_consent(record)
            await store.commit_measurement(sid, sample_visit().measurements[0])
            await sessions.withdraw(record)
            assert (await sessions.status(sid)).state is VisitState.WITHDRAWN
            assert await store.measurements(sid) == ()
            kept = await store.consent(sid)
            assert kept is not None
            assert kept.withdrawn_at is not None
            summary = await store.summary(sid)
            assert summary is not None
            assert not summary.consented
            await peer.wait_for(3)

    asyncio.run(scenario())


def test_a_summary_and_audit_line_hold_no_personal_data(store: BlockingVisitStore) -> None:
    _measuring(store, "s-repr", NHUNG)
    summary = store.summary("s-repr")
    assert summary is not None
    text = repr(summary) + json.dumps(dataclasses.asdict(summary), default=str)
    assert _found({"summary": text.encode()}, _phi_needles(NHUNG)) == []
