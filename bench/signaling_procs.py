"""Processes of the signaling benchmarks: our node, the PeerJS server and the Node load client.

Each runs as its own process on loopback, so the server under test has a core of its own
and the client (Node, ``bench/peers/loadclient``) is the same for both servers. The npm
dependencies of ``bench/peers/*`` are installed from their lockfiles on first use.

The load client speaks JSON lines: the job goes in as the first line on its stdin and events
(``ready``, ``measure-start``, ``measure-end``, ``result`` or ``failed``) come out on its stdout;
``loadclient.mjs`` documents the jobs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from signaling.model import Role
from signaling.tokens import DevKey, mint

PEERS = Path(__file__).with_name("peers")
PEERJS_DIR = PEERS / "peerjs"
LOADCLIENT_DIR = PEERS / "loadclient"
NPM_CI = ("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
AUDIENCE = "telehealth-signaling"
PROFILE_ENV = "BENCH_SIGNALING_PROFILE"
"""Set to a file name: our node runs under cProfile and writes its stats there on exit."""

# Per-connection message rate of our node in the relay runs. The default (50/s sustained) is
# meant for a trickle of ICE; a closed loop sends far more on one connection than any client
# would, so the relay runs raise it. The bucket is still checked on every message.
RELAY_LIMITS = "[signaling.limits]\nrate_per_s = 1000000.0\nburst = 1000000\n"

_READY = re.compile(r"ready on (ws://\S+)")


class BenchError(RuntimeError):
    """A process of the benchmark failed to start, answer or finish."""


def ensure_node_modules(directory: Path) -> None:
    """``npm ci`` in ``directory`` unless its lockfile is installed and not newer than that."""
    installed = directory / "node_modules" / ".package-lock.json"
    lockfile = directory / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lockfile.stat().st_mtime:
        return
    done = subprocess.run(NPM_CI, cwd=directory, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"npm ci in {directory} failed: {done.stderr.strip()[-2000:]}")


def _more_descriptors() -> None:
    """This process's soft limit on open files up to the hard one; children inherit it."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 65536 if hard == resource.RLIM_INFINITY else hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class LineReader:
    """Lines from a child's stdout with a timeout (the pipe read raw, buffered here)."""

    def __init__(self, stream: IO[bytes], *, what: str) -> None:
        self._fd = stream.fileno()
        self._what = what
        self._buffer = b""

    def read(self, *, timeout_s: float) -> str:
        """The next line; BenchError after ``timeout_s`` or when the process has ended."""
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                raise BenchError(f"{self._what}: no line in {timeout_s:.0f} s")
            chunk = os.read(self._fd, 65536)
            if not chunk:
                raise BenchError(f"{self._what}: the process ended")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class ServerProcess:
    """A running server: its process, WebSocket URL and log file."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def rss_kib(self) -> int:
        """Resident set size now (VmRSS), KiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise BenchError("no VmRSS in /proc status")

    def cpu_s(self) -> float:
        """User + system CPU time used so far, seconds."""
        return cpu_seconds(self.process.pid)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process ``pid`` has used so far, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU time the whole machine has spent busy (all cores, not idle or iowait), seconds."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _server(command: Sequence[str], *, env: dict[str, str], log: Path) -> Iterator[ServerProcess]:
    _more_descriptors()
    with log.open("wb") as errors:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            env=env,
        )
    try:
        assert process.stdout is not None
        lines = LineReader(process.stdout, what=Path(command[0]).name)
        url = ""
        deadline = time.monotonic() + 30.0
        while not url:
            try:
                line = lines.read(timeout_s=deadline - time.monotonic())
            except BenchError as error:
                raise BenchError(f"{error}\n{_log_tail(log)}") from None
            if match := _READY.search(line):
                url = match.group(1)
        yield ServerProcess(process=process, url=url, log=log)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


@contextlib.contextmanager
def our_node(
    data_dir: Path, *, config: str = "", profile: Path | None = None
) -> Iterator[ServerProcess]:
    """``signaling serve --dev`` on a free port, trusting the dev key in ``data_dir``.

    ``config`` is extra TOML for the node (e.g. :data:`RELAY_LIMITS`); ``profile`` runs the
    node under cProfile, its stats written to that file when the node stops.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    config_file = data_dir / "signaling.toml"
    config_file.write_text("[signaling]\n" + config)
    launcher = [sys.executable]
    if profile is not None:
        launcher += ["-m", "cProfile", "-o", str(profile)]
    command = [
        *launcher,
        *("-m", "signaling", "serve", "--dev", "--port", "0", "--config", str(config_file)),
    ]
    env = {**os.environ, "SIGNALING_DATA_DIR": str(data_dir)}
    with _server(command, env=env, log=data_dir / "node.log") as server:
        yield server


@contextlib.contextmanager
def peerjs_server(log_dir: Path) -> Iterator[ServerProcess]:
    """The PeerJS server (``bench/peers/peerjs/server.mjs``) on a free port."""
    ensure_node_modules(PEERJS_DIR)
    command = ["node", str(PEERJS_DIR / "server.mjs"), "0"]
    with _server(command, env=dict(os.environ), log=log_dir / "peerjs.log") as server:
        yield server


class LoadClient:
    """The Node load client running one job; events are read with :meth:`expect`."""

    def __init__(self, job: dict[str, Any], *, log: Path) -> None:
        ensure_node_modules(LOADCLIENT_DIR)
        _more_descriptors()
        self._log = log
        with log.open("wb") as errors:
            self._process = subprocess.Popen(
                ["node", str(LOADCLIENT_DIR / "loadclient.mjs")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
            )
        assert self._process.stdout is not None
        self._lines = LineReader(self._process.stdout, what="load client")
        self.command(job)

    @property
    def pid(self) -> int:
        return self._process.pid

    def command(self, line: dict[str, Any]) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(line).encode() + b"\n")
        self._process.stdin.flush()

    def expect(self, event: str, *, timeout_s: float) -> dict[str, Any]:
        """Wait for ``event`` (skipping others); BenchError if the client fails first."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self._lines.read(timeout_s=deadline - time.monotonic())
            except BenchError as error:
                raise BenchError(f"waiting for {event}: {error}\n{_log_tail(self._log)}") from None
            message: dict[str, Any] = json.loads(line)
            if message["event"] == "failed":
                raise BenchError(f"load client failed: {message['message']}")
            if message["event"] == event:
                return message

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            if self._process.stdin is not None:
                self._process.stdin.close()
        try:
            self._process.wait(timeout=20.0)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> LoadClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def token(key: DevKey, role: Role, subject: str, hospitals: Sequence[str] = ()) -> str:
    """A development token (fresh jti) for ``subject``, valid for an hour."""
    return mint(
        key,
        role=role,
        subject=subject,
        hospitals=list(hospitals),
        audience=AUDIENCE,
        ttl_s=3600,
        now=datetime.now(UTC),
    )


def pair_tokens(key: DevKey, count: int, *, run: str) -> list[dict[str, str]]:
    """Tokens for ``count`` cabin-doctor pairs, each pair with a hospital of its own.

    A hospital per pair keeps each accept's queue push to one doctor, so setting up 500
    pairs does not push 500 queues to 500 doctors.
    """
    pairs = []
    for i in range(count):
        hospital = f"h-{run}-{i}"
        pairs.append(
            {
                "cabin": token(key, Role.CABIN, f"cabin-{run}-{i}"),
                "doctor": token(key, Role.DOCTOR, f"dr-{run}-{i}", [hospital]),
                "hospital": hospital,
            }
        )
    return pairs
