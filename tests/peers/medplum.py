"""Starts and stops the Medplum FHIR peer (``tests/peers/medplum/server.mjs``) for tests.

The peer is a real FHIR R4 server: Medplum's ``FhirRouter`` over an in-memory repository that
validates every resource written against base R4 and the HL7 vital-signs profiles. It listens
on a loopback port and prints ``listening PORT`` once it accepts requests; its log (one line
per request) goes to a file, never to a pipe nobody reads.

Exceptions::

    MedplumPeerError        root of everything raised here
    └── PeerStartError      the peer did not start (carries the tail of its log)
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

PEER_DIR = Path(__file__).with_name("medplum")
INSTALL_COMMAND = "cd tests/peers/medplum && npm ci --no-audit --no-fund"
_LISTENING = re.compile(rb"^listening (\d+)$")
_LOG_TAIL_BYTES = 4000


class MedplumPeerError(Exception):
    """Anything that went wrong starting, stopping or steering the peer."""


class PeerStartError(MedplumPeerError):
    """The peer exited, or said nothing, before it was listening."""


@dataclass(frozen=True)
class PeerStats:
    """What ``GET /__control/stats`` reports (FHIR requests only, control requests not counted)."""

    requests: int
    statuses: Mapping[int, int]
    injected: int
    pending_failures: int
    pending_delays: int
    profiles_checked: bool
    resources: Mapping[str, int]


def peer_availability() -> tuple[bool, str]:
    """Whether the peer can run here, and if not, why (for ``tests.peers.require``)."""
    if shutil.which("node") is None:
        return False, "node is not on PATH (the Medplum FHIR peer needs Node 20 or later)"
    if not (PEER_DIR / "node_modules" / "@medplum" / "fhir-router").is_dir():
        return False, f"the Medplum FHIR peer is not installed: run `{INSTALL_COMMAND}`"
    return True, "the Medplum FHIR peer can run"


class MedplumPeer:
    """One peer process on ``127.0.0.1``; ``start()`` it or use it as a context manager.

    ``base_url`` is the FHIR base (``http://127.0.0.1:PORT/fhir``), ``control_url`` the test
    control API (``http://127.0.0.1:PORT/__control``). ``restart()`` brings it back on the same
    port with an empty repository, or, given a ``state_path``, with everything it stored: the
    peer loads that file when it starts and writes it (atomically) when ``stop()`` ends it, so
    a ``kill()`` loses what was stored since the start. ``check_profiles=False`` validates
    base R4 only, for throughput benchmarks.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        check_profiles: bool = True,
        start_timeout: float = 30.0,
        stop_timeout: float = 5.0,
        log_path: Path | None = None,
        state_path: Path | None = None,
        node: str = "node",
    ) -> None:
        self._requested_port = port
        # Absolute: the peer runs in PEER_DIR.
        self.state_path = None if state_path is None else state_path.absolute()
        self._check_profiles = check_profiles
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._node = node
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="medplum-peer-", suffix=".log")
            os.close(fd)
            log_path = Path(name)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._port: int | None = None
        self.exit_code: int | None = None
        self.startup_seconds: float | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise MedplumPeerError("the peer has not been started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/__control"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Starts the peer and returns once it is listening (or raises PeerStartError)."""
        if self._process is not None:
            raise MedplumPeerError("the peer is already running")
        port = self._port if self._port is not None else self._requested_port
        command = [self._node, "server.mjs", str(port)]
        if not self._check_profiles:
            command.append("--no-profiles")
        if self.state_path is not None:
            command += ["--state", str(self.state_path)]
        self._log = self.log_path.open("ab")
        started = time.monotonic()
        try:
            self._process = subprocess.Popen(
                command,
                cwd=PEER_DIR,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._log,
            )
        except OSError as exc:
            self.stop()
            raise PeerStartError(f"cannot run {self._node}: {exc}") from exc
        self.exit_code = None
        try:
            self._port = self._wait_until_listening(self._process, started + self._start_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def stop(self) -> None:
        """Sends SIGTERM, waits ``stop_timeout`` seconds, then kills. Safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=self._stop_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self.exit_code = process.returncode
            if process.stdout is not None:
                process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """Sends SIGKILL, as a crash would: with a ``state_path``, nothing is saved."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self.stop()

    def restart(self) -> None:
        """Stops the peer and starts it again on the same port: with a ``state_path``, with
        everything it stored (raises if it could not save it), else with an empty repository."""
        self.stop()
        if self.state_path is not None and self.exit_code != 0:
            raise MedplumPeerError(
                f"the peer exited with code {self.exit_code}, so {self.state_path} may not hold "
                f"what it stored; its log ({self.log_path}) ends:\n{self.log_tail()}"
            )
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def fail_next(self, count: int, *, status: int = 503, retry_after: int | None = None) -> None:
        """The next ``count`` FHIR requests get ``status`` (and ``Retry-After`` if given)."""
        query = {"count": count, "status": status}
        if retry_after is not None:
            query["retry_after"] = retry_after
        self._control("POST", "fail", query)

    def slow_next(self, count: int, *, ms: int) -> None:
        """The next ``count`` FHIR requests wait ``ms`` milliseconds before they are handled."""
        self._control("POST", "slow", {"count": count, "ms": ms})

    def reset(self) -> None:
        """Empties the repository and clears the counters and injected faults."""
        self._control("POST", "reset", {})

    def stats(self) -> PeerStats:
        raw = self._control("GET", "stats", {})
        return PeerStats(
            requests=int(raw["requests"]),
            statuses={int(code): int(n) for code, n in raw["statuses"].items()},
            injected=int(raw["injected"]),
            pending_failures=int(raw["pending_failures"]),
            pending_delays=int(raw["pending_delays"]),
            profiles_checked=bool(raw["profiles_checked"]),
            resources={str(kind): int(n) for kind, n in raw["resources"].items()},
        )

    def log_tail(self) -> str:
        """The last few kilobytes of the peer's log."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
                return log.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"(no log: {exc})"

    def _control(self, method: str, action: str, query: Mapping[str, int]) -> dict[str, Any]:
        url = f"{self.control_url}/{action}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                body: dict[str, Any] = json.load(response)
        except OSError as exc:
            raise MedplumPeerError(f"{method} {url} failed: {exc}") from exc
        return body

    def _wait_until_listening(self, process: subprocess.Popen[bytes], deadline: float) -> int:
        assert process.stdout is not None
        received = b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while b"\n" not in received:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PeerStartError(
                        f"the Medplum peer said nothing within {self._start_timeout:.0f} s; "
                        f"its log ({self.log_path}) ends:\n{self.log_tail()}"
                    )
                if not selector.select(timeout=min(remaining, 0.5)):
                    continue
                chunk = os.read(process.stdout.fileno(), 256)
                if not chunk:
                    process.wait(timeout=self._stop_timeout)
                    raise PeerStartError(
                        f"the Medplum peer exited with code {process.returncode} before listening; "
                        f"its log ({self.log_path}) ends:\n{self.log_tail()}"
                    )
                received += chunk
        line = received.split(b"\n", 1)[0].strip()
        match = _LISTENING.match(line)
        if match is None:
            raise PeerStartError(f"the Medplum peer printed {line!r}, not 'listening PORT'")
        return int(match.group(1))
