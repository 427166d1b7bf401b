"""The directory sink: one fsynced NDJSON line per bundle, answered as a FHIR server would."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from fhir.crypto import KeyRing, generate_key
from fhir.delivery import Backoff, DeliveryWorker
from fhir.errors import TransportError
from fhir.outbox import BundleState, Outbox
from fhir.sink import DirectorySink
from fhir.transport import BundleTransport, TransportResponse


def make_bundle(bundle_id: str | None, *, cccd: str = "079085009876", weights: int = 1) -> bytes:
    """A transaction Bundle: a conditional Patient and ``weights`` conditional Observations."""
    entries: list[dict[str, Any]] = [
        {
            "resource": {"resourceType": "Patient", "name": [{"text": "Nguyen Van Binh"}]},
            "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={cccd}"},
        }
    ]
    for number in range(weights):
        entries.append(
            {
                "resource": {"resourceType": "Observation", "status": "final"},
                "request": {
                    "method": "POST",
                    "url": "Observation",
                    "ifNoneExist": f"identifier=scale-{cccd}-{bundle_id}-{number}",
                },
            }
        )
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    if bundle_id is not None:
        bundle["id"] = bundle_id
    return json.dumps(bundle, indent=2).encode()  # pretty: the sink must still write one line


def post(sink: DirectorySink, body: bytes) -> TransportResponse:
    return asyncio.run(sink.post_transaction(body))


def statuses(response: TransportResponse) -> list[str]:
    answer = json.loads(response.body)
    assert (answer["resourceType"], answer["type"]) == ("Bundle", "transaction-response")
    return [entry["response"]["status"] for entry in answer["entry"]]


def lines(sink: DirectorySink) -> list[dict[str, Any]]:
    return [json.loads(line) for line in sink.path.read_bytes().splitlines()]


@pytest.fixture
def sink(tmp_path: Path) -> DirectorySink:
    return DirectorySink(tmp_path / "sent", hospital_id="bv-quan-2")


def test_it_is_a_bundle_transport(sink: DirectorySink) -> None:
    transport: BundleTransport = sink
    assert transport is sink


def test_a_bundle_becomes_one_line_and_is_answered_as_created(sink: DirectorySink) -> None:
    response = post(sink, make_bundle("visit-1", weights=2))
    assert response.status == 200
    assert statuses(response) == ["201 Created"] * 3
    assert sink.path.name == "bv-quan-2.ndjson"
    assert lines(sink) == [json.loads(make_bundle("visit-1", weights=2))]


def test_locations_name_the_resource_type(sink: DirectorySink) -> None:
    answer = json.loads(post(sink, make_bundle("visit-1")).body)
    locations = [entry["response"]["location"] for entry in answer["entry"]]
    assert [location.split("/")[0] for location in locations] == ["Patient", "Observation"]
    assert all(location.endswith("/_history/1") for location in locations)


def test_a_resent_bundle_is_answered_ok_and_not_written_twice(sink: DirectorySink) -> None:
    first = json.loads(post(sink, make_bundle("visit-1")).body)
    again = post(sink, make_bundle("visit-1"))
    assert statuses(again) == ["200 OK", "200 OK"]
    locations = [entry["response"]["location"] for entry in json.loads(again.body)["entry"]]
    assert locations == [entry["response"]["location"] for entry in first["entry"]]
    assert len(lines(sink)) == 1


def test_a_matching_conditional_create_finds_the_earlier_resource(sink: DirectorySink) -> None:
    post(sink, make_bundle("visit-1"))
    response = post(sink, make_bundle("visit-2"))  # the same patient, a new weight
    assert statuses(response) == ["200 OK", "201 Created"]
    assert len(lines(sink)) == 2


def test_a_new_sink_on_the_same_directory_remembers_what_is_stored(
    sink: DirectorySink, tmp_path: Path
) -> None:
    post(sink, make_bundle("visit-1"))
    restarted = DirectorySink(tmp_path / "sent", hospital_id="bv-quan-2")
    assert statuses(post(restarted, make_bundle("visit-1"))) == ["200 OK", "200 OK"]
    assert len(lines(restarted)) == 1


def test_a_torn_last_line_from_a_crash_is_cut_before_the_next_append(
    sink: DirectorySink,
) -> None:
    post(sink, make_bundle("visit-1"))
    with sink.path.open("ab") as file:
        file.write(make_bundle("visit-2").replace(b"\n", b"")[:57])  # died mid-write
    post(sink, make_bundle("visit-3"))
    assert [line["id"] for line in lines(sink)] == ["visit-1", "visit-3"]


def test_the_torn_bundle_is_stored_whole_when_resent(sink: DirectorySink) -> None:
    post(sink, make_bundle("visit-1"))
    with sink.path.open("ab") as file:
        file.write(make_bundle("visit-2").replace(b"\n", b"")[:57])
    restarted = DirectorySink(sink.path.parent, hospital_id="bv-quan-2")
    assert statuses(post(restarted, make_bundle("visit-2")))[1] == "201 Created"
    assert [line["id"] for line in lines(sink)] == ["visit-1", "visit-2"]


def test_two_sinks_appending_at_once_never_interleave_lines(tmp_path: Path) -> None:
    directory = tmp_path / "sent"
    sinks = [DirectorySink(directory, hospital_id="bv-a") for _ in range(2)]

    async def scenario() -> None:
        await asyncio.gather(
            *(
                sinks[number % 2].post_transaction(make_bundle(f"visit-{number}", weights=20))
                for number in range(30)
            )
        )

    asyncio.run(scenario())
    assert sorted(line["id"] for line in lines(sinks[0])) == sorted(
        f"visit-{number}" for number in range(30)
    )


def test_every_append_is_fsynced_before_the_answer(
    sink: DirectorySink, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    post(sink, make_bundle("visit-1"))
    assert len(synced) >= 1


def test_a_bundle_without_an_id_is_stored_each_time(sink: DirectorySink) -> None:
    post(sink, make_bundle(None))
    post(sink, make_bundle(None))
    assert len(lines(sink)) == 2


@pytest.mark.parametrize(
    ("body", "diagnostics"),
    [
        (b"\x00\xff not json", "not JSON"),
        (make_bundle("visit-1")[:80], "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (b'{"resourceType": "Patient"}', "not a FHIR Bundle"),
        (b'{"resourceType": "Bundle", "type": "batch"}', "not 'transaction'"),
        (b'{"resourceType": "Bundle", "type": "transaction", "entry": {}}', "not a list"),
        (
            b'{"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {}}]}',
            "entry 1 has no valid request.method",
        ),
        (
            b'{"resourceType": "Bundle", "type": "transaction", '
            b'"entry": [{"request": {"method": "POST", "url": "Patient"}}]}',
            "entry 1 (POST) has no resource",
        ),
    ],
)
def test_a_request_a_server_would_refuse_gets_400_and_an_operation_outcome(
    sink: DirectorySink, body: bytes, diagnostics: str
) -> None:
    response = post(sink, body)
    assert response.status == 400
    outcome = json.loads(response.body)
    assert outcome["resourceType"] == "OperationOutcome"
    assert diagnostics in outcome["issue"][0]["diagnostics"]
    assert not sink.path.exists()


def test_an_oversized_bundle_gets_413(tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path, hospital_id="bv-a", max_bundle_bytes=1000)
    response = post(sink, make_bundle("visit-1", weights=20))
    assert response.status == 413
    assert json.loads(response.body)["issue"][0]["code"] == "too-long"


def test_an_unwritable_directory_is_a_transport_error(tmp_path: Path) -> None:
    (tmp_path / "not-a-directory").write_text("a file")
    sink = DirectorySink(tmp_path / "not-a-directory", hospital_id="bv-a")
    with pytest.raises(TransportError, match="cannot be opened"):
        post(sink, make_bundle("visit-1"))


def test_a_directory_in_place_of_the_file_is_a_transport_error(tmp_path: Path) -> None:
    (tmp_path / "bv-a.ndjson").mkdir()
    sink = DirectorySink(tmp_path, hospital_id="bv-a")
    with pytest.raises(TransportError):
        post(sink, make_bundle("visit-1"))


@pytest.mark.parametrize("hospital", ["../etc", "a/b", "", ".hidden", "x" * 65])
def test_a_hospital_id_that_could_escape_the_directory_is_refused(
    tmp_path: Path, hospital: str
) -> None:
    with pytest.raises(ValueError, match="hospital id"):
        DirectorySink(tmp_path, hospital_id=hospital)


def test_a_file_url_names_the_directory(tmp_path: Path) -> None:
    sink = DirectorySink.from_url(f"file://{tmp_path}/out%20box", hospital_id="bv-a")
    assert sink.path == tmp_path / "out box" / "bv-a.ndjson"


@pytest.mark.parametrize("url", ["http://example.org/fhir", "file://remote-host/dir", "file://"])
def test_a_url_that_is_not_a_local_directory_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="not a file:///directory URL"):
        DirectorySink.from_url(url, hospital_id="bv-a")


def test_the_worker_drains_the_outbox_into_the_sink_and_a_retry_adds_nothing(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "outbox.db", keys=KeyRing([generate_key()]))
    sink = DirectorySink(tmp_path / "sent", hospital_id="bv-a")
    worker = DeliveryWorker(outbox, {"bv-a": sink}, backoff=Backoff(base=0.01, cap=0.05))
    for number in range(3):
        outbox.enqueue("bv-a", f"visit-{number}", make_bundle(f"visit-{number}"))

    async def drained(count: int) -> None:
        async with asyncio.timeout(5.0):
            while True:
                entries = await asyncio.to_thread(outbox.entries)
                if sum(e.state is BundleState.DELIVERED for e in entries) == count:
                    return
                await asyncio.sleep(0.01)

    async def scenario() -> None:
        async with asyncio.TaskGroup() as tasks:
            task = tasks.create_task(worker.run())
            await drained(3)
            await asyncio.to_thread(outbox.retry, "visit-0")  # the operator re-sends one
            await drained(3)
            task.cancel()

    try:
        asyncio.run(scenario())
        assert [line["id"] for line in lines(sink)] == ["visit-0", "visit-1", "visit-2"]
        assert outbox.entries()[0].attempts == 2
        assert worker.stats()["bv-a"].delivered == 4
    finally:
        outbox.close()
