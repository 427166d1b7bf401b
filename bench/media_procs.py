"""Processes and CPU accounting for the media benchmark.

:class:`SenderProcess` runs ``python -m bench.media_sender`` (the cabin or the plain sender)
and speaks its JSON lines. :class:`CpuWindow` measures, over one fixed window, the sender's
own CPU time (``/proc/<pid>/stat``, every thread of it), this benchmark's other processes
(Chromium, the signaling node, Playwright's driver, this process) and the rest of the
machine (``/proc/stat`` busy time minus ours): the machine is shared.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.signaling_procs import BenchError, LineReader, cpu_seconds, machine_busy_s


class SenderProcess:
    """One ``bench.media_sender`` process; events are read with :meth:`expect`."""

    def __init__(self, args: list[str], *, log: Path) -> None:
        self._log = log
        with log.open("wb") as errors:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "bench.media_sender", *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                cwd=Path(__file__).resolve().parents[1],
            )
        assert self._process.stdout is not None
        self._lines = LineReader(self._process.stdout, what=f"media sender {args[0]}")

    @property
    def pid(self) -> int:
        return self._process.pid

    def cpu_s(self) -> float:
        return cpu_seconds(self._process.pid)

    def send(self, command: dict[str, Any]) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(command).encode() + b"\n")
        self._process.stdin.flush()

    def expect(self, event: str, *, timeout_s: float) -> dict[str, Any]:
        """The next ``event`` (others skipped); BenchError on timeout or exit."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self._lines.read(timeout_s=max(deadline - time.monotonic(), 0.001))
            except BenchError as error:
                raise BenchError(f"waiting for {event}: {error}\n{self.log_tail()}") from None
            message: dict[str, Any] = json.loads(line)
            if message.get("event") == event:
                return message

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                self.send({"cmd": "quit"})
                assert self._process.stdin is not None
                self._process.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                self._process.wait(timeout=15.0)
            except subprocess.TimeoutExpired:
                self._process.send_signal(signal.SIGTERM)
                try:
                    self._process.wait(timeout=5.0)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> SenderProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _parents() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command name) for every process we can read."""
    found: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        found[int(entry.name)] = (ppid, name)
    return found


def our_processes() -> dict[int, str]:
    """This process and its descendants: pid -> command name."""
    parents = _parents()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _name) in parents.items():
        children.setdefault(ppid, []).append(pid)
    root = os.getpid()
    ours = {root: parents.get(root, (0, "python"))[1]}
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            ours[child] = parents[child][1]
            stack.append(child)
    return ours


def _cpu(pids: dict[int, str]) -> dict[int, float]:
    times: dict[int, float] = {}
    for pid in pids:
        try:
            times[pid] = cpu_seconds(pid)
        except (OSError, ValueError, IndexError):
            continue
    return times


@dataclass(frozen=True, slots=True)
class CpuShares:
    """CPU over one window, each as a percentage of one core."""

    seconds: float
    sender: float
    chromium: float
    ours_other: float
    """The rest of this benchmark: node, Playwright's driver, this process (not the sender)."""
    machine_other: float
    """Everything else on the (shared) machine."""


class CpuWindow:
    """Start with :meth:`start`; :meth:`stop` gives the shares since then."""

    def __init__(self, sender_pid: int) -> None:
        self._sender = sender_pid
        self._t0 = 0.0
        self._busy0 = 0.0
        self._ours0: dict[int, float] = {}
        self._names: dict[int, str] = {}

    def start(self) -> None:
        self._names = our_processes()
        self._ours0 = _cpu(self._names)
        self._busy0 = machine_busy_s()
        self._t0 = time.monotonic()

    def stop(self) -> CpuShares:
        seconds = time.monotonic() - self._t0
        busy = machine_busy_s() - self._busy0
        names = {**self._names, **our_processes()}
        ours1 = _cpu(names)
        deltas = {pid: t - self._ours0.get(pid, 0.0) for pid, t in ours1.items()}
        sender = deltas.get(self._sender, 0.0)
        chromium = sum(d for pid, d in deltas.items() if "chrom" in names.get(pid, ""))
        ours = sum(deltas.values())

        def pct(value: float) -> float:
            return 100.0 * value / seconds

        return CpuShares(
            seconds=seconds,
            sender=pct(sender),
            chromium=pct(chromium),
            ours_other=pct(ours - sender - chromium),
            machine_other=pct(max(busy - ours, 0.0)),
        )
