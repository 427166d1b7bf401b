"""Operator commands on a real outbox: status, list, retry, purge, export; keys."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cabin import cli
from cabin.config import load
from cabin.operator import open_outbox
from fhir.bundle import build_bundle
from tests.fhir.sample_visit import visit


def _cabin(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cabin", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"CABIN_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )


def test_outbox_status_list_retry_export_and_purge(tmp_path: Path) -> None:
    config = load(environ={"CABIN_DATA_DIR": str(tmp_path)})
    built = build_bundle(visit())
    outbox = open_outbox(config)
    try:
        outbox.enqueue("demo", built.id, built.json)
        claimed = outbox.claim_due("demo")
        assert claimed is not None
        outbox.mark_delivered(claimed, status=200, answer=b'{"resourceType":"Bundle"}')
    finally:
        outbox.close()

    status = _cabin(tmp_path, "outbox", "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[1].split()[:4] == ["demo", "0", "1", "0"]
    listing = _cabin(tmp_path, "outbox", "list", "--state", "delivered")
    assert built.id in listing.stdout
    assert "answer 200" in listing.stdout
    exported = _cabin(tmp_path, "outbox", "export")
    record = json.loads(exported.stdout)
    assert record["bundle"]["id"] == built.id
    assert '"value":36.80' in exported.stdout
    retried = _cabin(tmp_path, "outbox", "retry", built.id)
    assert retried.stdout.strip() == f"{built.id} is pending again for demo"
    assert _cabin(tmp_path, "outbox", "status").stdout.splitlines()[1].split()[:4] == [
        "demo",
        "1",
        "0",
        "0",
    ]
    purged = _cabin(tmp_path, "outbox", "purge", "--delivered", "--older-than", "0")
    assert purged.stdout.strip() == "purged 0 delivered bundle(s)"


def test_retrying_an_unknown_bundle_is_an_error(tmp_path: Path) -> None:
    done = _cabin(tmp_path, "outbox", "retry", "no-such-bundle")
    assert done.returncode == 1
    assert "no bundle 'no-such-bundle'" in done.stderr


def test_keys_generate_then_publish_the_public_jwks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CABIN_DATA_DIR", str(tmp_path))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert cli.main(["keys", "generate"]) == 0
    assert cli.main(["keys", "jwks"]) == 0
    jwks = json.loads(out.getvalue().split("\n", 1)[1])
    (key,) = jwks["keys"]
    assert key["alg"] == "ES384"
    assert "d" not in key  # never the private part
    assert (tmp_path / "keys" / "cabin-signing.pem").stat().st_mode & 0o077 == 0
    assert cli.main(["keys", "generate"]) == 1  # an existing key is kept
