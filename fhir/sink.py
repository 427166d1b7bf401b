"""A delivery target that needs no server: each hospital's bundles as NDJSON lines in a directory.

:class:`DirectorySink` implements :class:`~fhir.transport.BundleTransport` for ``make demo`` and
tests.  Each accepted transaction Bundle becomes one line of ``<directory>/<hospital>.ndjson``
(compact JSON, fsynced before the answer), and the answer is what a FHIR server would give:
200 with a transaction-response Bundle whose entries say ``201 Created``, or ``200 OK`` for a
conditional create (``ifNoneExist``) that matches an earlier one and for every entry of a
bundle id already stored (which is not written twice), so a resend is harmless here too.  A
request a server would refuse gets 400 (or 413 when oversized) with an OperationOutcome.

A crash mid-append can leave a torn last line; the next append cuts it off first, so the file
only ever holds whole lines.  Appends from several processes are serialised with ``flock``.
A directory that cannot be written raises :class:`~fhir.errors.TransportError`, like a server
that cannot be reached.  File I/O runs in ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import re
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from fhir import jsonio
from fhir.errors import TransportError
from fhir.transport import TransportResponse

log = logging.getLogger(__name__)

MAX_BUNDLE_BYTES = 8 * 1024 * 1024
_HOSPITAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE", "GET", "HEAD"})


def _outcome(status: int, code: str, diagnostics: str) -> TransportResponse:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }
    return TransportResponse(status, json.dumps(outcome).encode())


def _checked(body: bytes) -> dict[str, Any] | str:
    """The request as a transaction Bundle, or why a server would refuse it."""
    try:
        bundle = jsonio.loads(body)
    except (ValueError, RecursionError):
        return "the body is not JSON"
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return "the body is not a FHIR Bundle"
    if bundle.get("type") != "transaction":
        return f"Bundle.type is {bundle.get('type')!r}, not 'transaction'"
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        return "Bundle.entry is not a list"
    for number, entry in enumerate(entries, 1):
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict) or request.get("method") not in _METHODS:
            return f"entry {number} has no valid request.method"
        if not isinstance(request.get("url"), str) or not request["url"]:
            return f"entry {number} has no request.url"
        resource = entry.get("resource")
        if request["method"] in ("POST", "PUT") and not (
            isinstance(resource, dict) and isinstance(resource.get("resourceType"), str)
        ):
            return f"entry {number} ({request['method']}) has no resource"
    return bundle


def _conditions(bundle: dict[str, Any]) -> list[str | None]:
    """Each entry's conditional-create key (``Type?query``), or None when unconditional."""
    keys: list[str | None] = []
    for entry in bundle.get("entry", []):
        condition = entry["request"].get("ifNoneExist")
        resource = entry.get("resource") or {}
        kind = resource.get("resourceType") or entry["request"]["url"].split("/")[0]
        keys.append(f"{kind}?{condition}" if isinstance(condition, str) else None)
    return keys


class DirectorySink:
    """Appends each hospital's bundles to ``<directory>/<hospital_id>.ndjson``; answers 200."""

    def __init__(
        self, directory: Path, *, hospital_id: str, max_bundle_bytes: int = MAX_BUNDLE_BYTES
    ) -> None:
        if not _HOSPITAL_ID.fullmatch(hospital_id):
            raise ValueError(f"hospital id {hospital_id!r} is not 1-64 of A-Z a-z 0-9 . _ -")
        self.hospital_id = hospital_id
        self.path = directory / f"{hospital_id}.ndjson"
        self.max_bundle_bytes = max_bundle_bytes
        self._lock = threading.Lock()
        self._indexed = 0
        """Bytes of the file already read into the two sets below."""
        self._bundle_ids: set[str] = set()
        self._conditions: set[str] = set()

    @classmethod
    def from_url(cls, url: str, *, hospital_id: str) -> DirectorySink:
        """A sink for a ``file:///directory`` base URL (``HospitalConfig.base_url``)."""
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost") or not parts.path:
            raise ValueError(f"{url!r} is not a file:///directory URL")
        return cls(Path(unquote(parts.path)), hospital_id=hospital_id)

    async def post_transaction(self, bundle: bytes) -> TransportResponse:
        """Store the bundle (once per bundle id) and answer as a FHIR server would."""
        if len(bundle) > self.max_bundle_bytes:
            limit = self.max_bundle_bytes
            return _outcome(413, "too-long", f"the bundle is {len(bundle)} bytes; limit {limit}")
        checked = _checked(bundle)
        if isinstance(checked, str):
            return _outcome(400, "invalid", checked)
        return await asyncio.to_thread(self._store, checked)

    def _store(self, bundle: dict[str, Any]) -> TransportResponse:
        created = not self.path.exists()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise TransportError(f"sink {self.path} cannot be opened: {exc.strerror}") from exc
        try:
            with self._lock:
                fcntl.flock(fd, fcntl.LOCK_EX)  # released by close
                self._index(fd)
                answer = self._answer(bundle)
                if bundle.get("id") not in self._bundle_ids:
                    line = jsonio.dumps(bundle).decode("utf-8")  # decimals as written
                    data = line.encode() + b"\n"
                    written = 0
                    while written < len(data):
                        written += os.write(fd, data[written:])
                    os.fsync(fd)
                    self._remember(bundle)
                    self._indexed += len(data)
            if created:
                directory = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(directory)
                finally:
                    os.close(directory)
        except OSError as exc:
            raise TransportError(f"sink {self.path} cannot be written: {exc.strerror}") from exc
        finally:
            os.close(fd)
        return TransportResponse(200, json.dumps(answer).encode())

    def _index(self, fd: int) -> None:
        """Read lines appended since the last look (by us or another process); cut a torn tail."""
        size = os.fstat(fd).st_size
        if size < self._indexed:  # replaced or truncated behind our back: start over
            self._indexed, self._bundle_ids, self._conditions = 0, set(), set()
        if size == self._indexed:
            return
        chunk = os.pread(fd, size - self._indexed, self._indexed)
        whole = chunk.rfind(b"\n") + 1
        for line in chunk[:whole].splitlines():
            checked = _checked(line)
            if isinstance(checked, str):
                log.warning("%s: skipping an unreadable line (%s)", self.path, checked)
            else:
                self._remember(checked)
        if whole < len(chunk):
            log.warning("%s: cutting a torn last line of %d bytes", self.path, len(chunk) - whole)
            os.ftruncate(fd, self._indexed + whole)
        self._indexed += whole

    def _remember(self, bundle: dict[str, Any]) -> None:
        if isinstance(bundle.get("id"), str):
            self._bundle_ids.add(bundle["id"])
        self._conditions.update(key for key in _conditions(bundle) if key is not None)

    def _answer(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """The transaction-response a server would give for this bundle, given what is stored."""
        seen = bundle.get("id") in self._bundle_ids
        now = datetime.now(UTC).isoformat(timespec="seconds")
        entries = []
        for index, (entry, key) in enumerate(
            zip(bundle.get("entry", []), _conditions(bundle), strict=True)
        ):
            request = entry["request"]
            kind = (entry.get("resource") or {}).get("resourceType") or request["url"].split("/")[0]
            if key is not None:  # the same condition always finds the same resource
                name = f"{self.hospital_id}/{key}"
            else:
                name = f"{self.hospital_id}/{bundle.get('id') or uuid.uuid4()}/{index}"
            exists = seen or (key is not None and key in self._conditions)
            resource_id = uuid.uuid5(uuid.NAMESPACE_URL, f"directory-sink:{name}")
            response = {
                "status": "200 OK" if exists else "201 Created",
                "location": f"{kind}/{resource_id}/_history/1",
                "etag": 'W/"1"',
                "lastModified": now,
            }
            entries.append({"response": response})
        return {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "type": "transaction-response",
            "entry": entries,
        }
