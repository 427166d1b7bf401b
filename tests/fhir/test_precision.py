"""Decimals keep their written precision all the way: bundle, outbox export, directory sink."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from fhir.bundle import build_bundle
from fhir.crypto import KeyRing, generate_key
from fhir.outbox import Outbox
from fhir.sink import DirectorySink
from tests.fhir.sample_visit import visit


def test_the_outbox_export_keeps_decimals_as_written(tmp_path: Path) -> None:
    built = build_bundle(visit())
    outbox = Outbox(tmp_path / "outbox.db", keys=KeyRing([generate_key()]))
    try:
        outbox.enqueue("demo", built.id, built.json)
        out = io.StringIO()
        assert outbox.export(out) == 1
    finally:
        outbox.close()
    assert '"value":36.80,' in out.getvalue()
    assert '"value":72.35,' in out.getvalue()


def test_the_directory_sink_stores_decimals_as_written(tmp_path: Path) -> None:
    built = build_bundle(visit())
    sink = DirectorySink(tmp_path, hospital_id="demo")
    answer = asyncio.run(sink.post_transaction(built.json))
    assert answer.status == 200
    stored = (tmp_path / "demo.ndjson").read_text()
    assert '"value":36.80,' in stored
    assert '"value":158.0,' in stored
