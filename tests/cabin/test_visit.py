"""``cabin visit --simulate`` end to end: devices on ptys, procedures, bundle, outbox, delivery."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.peers.medplum import MedplumPeer


def _cabin(data: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CABIN_DATA_DIR": str(data)}
    env.pop("CABIN_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "cabin", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


@pytest.mark.slow
def test_a_simulated_visit_is_accepted_by_a_fhir_server_and_a_resend_adds_nothing(
    tmp_path: Path, medplum: MedplumPeer
) -> None:
    """Acceptance (issue 4): every resource accepted; re-delivering adds no duplicates."""
    done = _cabin(tmp_path, "visit", "--simulate", "--fhir-url", medplum.base_url, "--seed", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    answer = re.search(
        r"Server answer: (\d+) of (\d+) entries accepted, (\d+) created", done.stdout
    )
    assert answer is not None, done.stdout
    accepted, entries, created = map(int, answer.groups())
    assert accepted == entries > 10
    assert created == entries - 1  # all but the Provenance, written in place with PUT
    assert ", FHIR 4.0.1, transactions supported" in done.stdout
    for line in ("[temperature] body temperature: 36.8 Cel, valid", "[oximetry] spo2: 97 %, valid"):
        assert line in done.stdout
    bundle_id = re.search(r"Bundle (\S+) ", done.stdout)
    assert bundle_id is not None

    before = medplum.stats().resources
    retry = _cabin(tmp_path, "outbox", "retry", bundle_id.group(1))
    assert retry.returncode == 0, retry.stderr
    deliver = _cabin(tmp_path, "outbox", "deliver", "--wait", "30", "--fhir-url", medplum.base_url)
    assert deliver.returncode == 0, deliver.stdout + deliver.stderr
    assert medplum.stats().resources == before
    exported = _cabin(tmp_path, "outbox", "export")
    record = json.loads(exported.stdout)
    statuses = [e["response"]["status"].split()[0] for e in record["answer"]["entry"]]
    assert set(statuses) <= {"200"}, statuses


@pytest.mark.slow
def test_by_default_the_visit_goes_to_the_directory_sink(tmp_path: Path) -> None:
    done = _cabin(tmp_path, "visit", "--simulate")
    assert done.returncode == 0, done.stdout + done.stderr
    stored = (tmp_path / "fhir-sink" / "demo.ndjson").read_text().splitlines()
    assert len(stored) == 1
    bundle = json.loads(stored[0])
    assert bundle["type"] == "transaction"
    assert "Trần Thị Mai" in stored[0]
    assert "CCCD ********1234" in done.stdout
    assert "079155001234" not in done.stdout  # the screen never shows the whole ID


def test_a_bad_identity_file_is_refused_with_a_reason(tmp_path: Path) -> None:
    identity = tmp_path / "who.json"
    identity.write_text('{"cccd": "123", "full_name": "X"}', encoding="utf-8")
    done = _cabin(tmp_path, "visit", "--simulate", "--identity", str(identity), timeout=60)
    assert done.returncode == 2
    assert "exactly 12 digits" in done.stderr
