"""The Medplum peer's state file: what a stop and a start keep, and what a kill loses."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from tests.peers import require
from tests.peers.medplum import MedplumPeer, MedplumPeerError, PeerStartError, peer_availability
from tests.peers.test_medplum_peer import (
    CCCD_SYSTEM,
    call,
    identifier_query,
    new_cccd,
    search,
    visit_bundle,
)


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    require(*peer_availability())
    return tmp_path / "state" / "peer.json"


def peer_keeping(state_path: Path) -> MedplumPeer:
    state_path.parent.mkdir(exist_ok=True)
    return MedplumPeer(state_path=state_path, log_path=state_path.parent.with_name("peer.log"))


def create_patient(peer: MedplumPeer) -> str:
    """A new Patient with a CCCD of its own; its CCCD."""
    cccd = new_cccd()
    patient = {"resourceType": "Patient", "identifier": [{"system": CCCD_SYSTEM, "value": cccd}]}
    assert call("POST", f"{peer.base_url}/Patient", patient).status == 201
    return cccd


def patients_with(peer: MedplumPeer, cccd: str) -> list[dict[str, object]]:
    return search(peer, f"Patient?{identifier_query(CCCD_SYSTEM, cccd)}")


def test_a_restart_keeps_every_resource_its_versions_and_its_identifiers(state_path: Path) -> None:
    cccd = new_cccd()
    bundle = visit_bundle(cccd)
    with peer_keeping(state_path) as peer:
        assert peer.stats().resources == {}  # no state file yet: an empty repository
        first = call("POST", peer.base_url, bundle)
        assert first.status == 200, first.body
        patient_url = f"{peer.base_url}/{first.body['entry'][0]['response']['location']}"
        patient = call("GET", patient_url).body
        updated = call("PUT", patient_url, {**patient, "birthDate": "1955-04-12"}).body
        stored = peer.stats().resources
        port = peer.port

        peer.restart()

        assert peer.port == port
        assert peer.stats().resources == stored
        assert call("GET", patient_url).body == updated
        assert len(call("GET", f"{patient_url}/_history").body["entry"]) == 2
        assert [p["id"] for p in patients_with(peer, cccd)] == [patient["id"]]
        resent = call("POST", peer.base_url, bundle)
        assert [e["response"]["status"] for e in resent.body["entry"]] == ["200"] * 9
        assert peer.stats().resources == stored
    assert peer.exit_code == 0
    assert f"saved 9 resources to {state_path}" in peer.log_tail()


def test_the_state_file_is_replaced_whole_and_readable_by_the_owner_only(state_path: Path) -> None:
    state_path.parent.mkdir()
    empty = {"format": "medplum-peer-state/1", "resources": {}, "history": {}}
    state_path.write_text(json.dumps(empty))
    with peer_keeping(state_path) as peer:
        cccd = create_patient(peer)

    assert [p.name for p in state_path.parent.iterdir()] == ["peer.json"]  # no temporary left
    assert stat.S_IMODE(state_path.stat().st_mode) == 0o600
    saved = json.loads(state_path.read_text())
    assert saved["format"] == "medplum-peer-state/1"
    [patient] = saved["resources"]["Patient"].values()
    assert patient["identifier"][0]["value"] == cccd
    assert saved["history"]["Patient"] == {patient["id"]: [patient]}


def test_a_killed_peer_loses_what_it_stored_since_it_started(state_path: Path) -> None:
    with peer_keeping(state_path) as peer:
        kept = create_patient(peer)
        peer.restart()
        lost = create_patient(peer)

        peer.kill()
        peer.start()

        assert len(patients_with(peer, kept)) == 1
        assert patients_with(peer, lost) == []


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ('{"format": "medplum-peer-state/1", "resources": {', "cannot use the state file"),
        ('{"resourceType": "Bundle"}', "not a peer state dump"),
    ],
)
def test_a_state_file_that_cannot_be_used_stops_the_start_and_is_left_alone(
    state_path: Path, content: str, complaint: str
) -> None:
    state_path.parent.mkdir()
    state_path.write_text(content)
    peer = peer_keeping(state_path)

    with pytest.raises(PeerStartError, match=complaint):
        peer.start()
    assert state_path.read_text() == content


def test_a_state_that_could_not_be_saved_fails_the_restart(state_path: Path) -> None:
    with peer_keeping(state_path) as peer:
        create_patient(peer)
        shutil.rmtree(state_path.parent)

        with pytest.raises(MedplumPeerError, match="exited with code 1"):
            peer.restart()
    assert "cannot save the state" in peer.log_tail()
