"""Chaos: visits made and delivered by a process that is SIGKILLed again and again.

``tests/fhir/chaos_child.py`` produces visits into an encrypted outbox and delivers them to a
Medplum peer of this test's own.  The test starts it, waits for a line that opens the window
it aims at this time, enqueue (the transaction storing a bundle), send (an HTTP attempt) or
mark (recording the outcome), lets a seeded random moment pass and SIGKILLs it; then starts it
again, at least ``MIN_KILLS`` times, and more while a window has not been hit yet.  Which
windows were really open when the kill came is read afterwards from everything the child
printed.  In the middle the peer is stopped (sends fail, bundles wait) and started again from
its state file.  Then a last run drains the outbox, and the test checks that no bundle is lost
or stuck, and that the server holds each Observation, Patient and Encounter exactly once.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import selectors
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from fhir.client import FhirClient
from fhir.crypto import load_key_file
from fhir.outbox import BundleState, Outbox
from tests.peers import require
from tests.peers.medplum import MedplumPeer, peer_availability

ROOT = Path(__file__).resolve().parents[2]
SEED = 20250301
MIN_KILLS = 20
MAX_KILLS = 40
CLOSED_BY = {"enqueue": ("committed",), "send": ("answered", "failed"), "mark": ("marked",)}
"""Each window the kills aim at: the line that opens it and the lines that close it."""
KILL_DELAY = {"enqueue": 0.002, "send": 0.03, "mark": 0.002}
"""Longest wait (s) from the line that opens a window to the kill: about the window's length."""
PEER_DOWN_RUNS = range(8, 11)
"""Child runs while the peer is stopped: stopped once run 8 is ready, started once 11 is."""
READY_TIMEOUT = 20.0
AIM_TIMEOUT = 3.0
"""Kill anyway if the aimed-at window does not open within this many seconds."""
DRAIN_TIMEOUT = 30.0
DELIVERED = BundleState.DELIVERED


@dataclass(frozen=True)
class Kill:
    """One SIGKILL: the window aimed at and the windows open when it came, by bundle."""

    aimed_at: str
    open: dict[str, frozenset[str]]


class ChildRun:
    """One run of ``tests.fhir.chaos_child``; its stdout read line by line as it comes."""

    def __init__(self, arguments: Iterable[str], log: IO[bytes]) -> None:
        command = [sys.executable, "-m", "tests.fhir.chaos_child", *arguments]
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log
        )
        assert self.process.stdout is not None
        self._fd = self.process.stdout.fileno()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._fd, selectors.EVENT_READ)
        self._unread = b""
        self._eof = False
        self.lines: list[list[str]] = []

    def next_line(self, deadline: float) -> list[str] | None:
        """The next line's words; None at the end of output or once ``deadline`` passed."""
        while b"\n" not in self._unread:
            remaining = deadline - time.monotonic()
            if self._eof or remaining <= 0 or not self._selector.select(remaining):
                return None
            chunk = os.read(self._fd, 65536)
            self._eof = not chunk
            self._unread += chunk
        line, self._unread = self._unread.split(b"\n", 1)
        words = line.decode().split()
        self.lines.append(words)
        return words

    def wait_for(self, word: str, *, timeout: float, skip: int = 0) -> bool:
        """Read until the ``skip + 1``-th line that starts with ``word``; False if none came."""
        deadline = time.monotonic() + timeout
        while (words := self.next_line(deadline)) is not None:
            if words[0] == word:
                if skip == 0:
                    return True
                skip -= 1
        return False

    def kill(self) -> None:
        """SIGKILL (if still running), then read what it wrote before it died."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.finish()

    def finish(self) -> None:
        """Read the rest of the output and close it."""
        deadline = time.monotonic() + 10
        while self.next_line(deadline) is not None:
            pass
        self._selector.close()
        assert self.process.stdout is not None
        self.process.stdout.close()

    def said(self, word: str) -> list[str]:
        """The bundle ids of every line that starts with ``word``, in order."""
        return [words[1] for words in self.lines if words[0] == word]

    def open_windows(self) -> dict[str, frozenset[str]]:
        """For each window, the bundles it was open for when the output ended."""
        found: dict[str, frozenset[str]] = {}
        for opening, closings in CLOSED_BY.items():
            balance = Counter(self.said(opening))
            balance.subtract(bundle for word in closings for bundle in self.said(word))
            found[opening] = frozenset(bundle for bundle, n in balance.items() if n > 0)
        return found


def kill_aiming_at(child: ChildRun, window: str, rng: random.Random) -> Kill:
    """Wait for the window to open (after skipping up to five openings), wait a moment, kill."""
    child.wait_for(window, timeout=AIM_TIMEOUT, skip=rng.randrange(6))
    time.sleep(rng.uniform(0, KILL_DELAY[window]))
    child.kill()
    code = child.process.returncode
    assert code == -signal.SIGKILL, f"the child exited by itself ({code}): {child.lines[-3:]}"
    return Kill(window, child.open_windows())


def hit(kills: list[Kill]) -> set[str]:
    """The windows that at least one kill came in."""
    return {window for kill in kills for window, bundles in kill.open.items() if bundles}


def next_aim(kills: list[Kill], run: int) -> str | None:
    """The window the next kill aims at: each in turn for ``MIN_KILLS`` kills, then one not
    hit yet, if any (else None: enough kills)."""
    windows = list(CLOSED_BY)
    if len(kills) < MIN_KILLS:
        return windows[run % len(windows)]
    missed = [window for window in windows if window not in hit(kills)]
    assert len(kills) < MAX_KILLS or not missed, f"no kill came in {missed} ({len(kills)} kills)"
    return missed[0] if missed else None


def conditions(bundle: dict[str, Any]) -> list[tuple[str, str]]:
    """(resource type, ``identifier=system|value``) of each conditional create in a bundle."""
    return [
        (entry["request"]["url"], entry["request"]["ifNoneExist"])
        for entry in bundle["entry"]
        if "ifNoneExist" in entry["request"]
    ]


async def count_matches(base_url: str, searches: list[tuple[str, str]]) -> list[int]:
    """How many resources each ``(type, identifier=system|value)`` search finds."""
    async with FhirClient(base_url) as client:
        limit = asyncio.Semaphore(4)

        async def count(kind: str, condition: str) -> int:
            name, value = condition.split("=", 1)
            async with limit:
                return len(await client.search(kind, [(name, value)]))

        return await asyncio.gather(*(count(kind, condition) for kind, condition in searches))


def answered_already_stored(answer: dict[str, Any]) -> bool:
    """Whether a transaction-response found every resource it creates already there (a
    resend whose earlier attempt the server had stored, its answer lost to a kill)."""
    statuses = [entry["response"]["status"] for entry in answer["entry"]]
    return not any(status.startswith("201") for status in statuses)


@pytest.mark.slow
def test_every_committed_visit_is_stored_exactly_once_despite_kills_and_an_outage(
    tmp_path: Path,
) -> None:
    require(*peer_availability())
    started = time.monotonic()
    rng = random.Random(SEED)
    outbox_path, key_path = tmp_path / "outbox.db", tmp_path / "outbox.key"
    kills: list[Kill] = []
    committed: set[str] = set()
    failed_while_down = 0
    held: Counter[str] = Counter()
    down_since = down_for = 0.0
    with (
        (tmp_path / "child.log").open("ab") as child_log,
        MedplumPeer(state_path=tmp_path / "peer.json", log_path=tmp_path / "peer.log") as peer,
    ):
        arguments = [str(outbox_path), str(key_path), peer.base_url]
        run = 0
        while (window := next_aim(kills, run)) is not None:
            child = ChildRun([*arguments, "--run", str(run)], child_log)
            try:
                assert child.wait_for("ready", timeout=READY_TIMEOUT), "the child did not start"
                if run == PEER_DOWN_RUNS.start:
                    held = Counter(peer.stats().resources)
                    peer.stop()
                    down_since = time.monotonic()
                    assert peer.exit_code == 0, peer.log_tail()
                elif run == PEER_DOWN_RUNS.stop:
                    peer.start()
                    down_for = time.monotonic() - down_since
                    assert Counter(peer.stats().resources) >= held, "the restart lost resources"
                kills.append(kill_aiming_at(child, window, rng))
            finally:
                child.kill()
            committed.update(child.said("committed"))
            if run in PEER_DOWN_RUNS:
                failed_while_down += len(child.said("failed"))
            run += 1

        drain = ChildRun([*arguments, "--drain", "--timeout", str(DRAIN_TIMEOUT)], child_log)
        try:
            drained = drain.wait_for("drained", timeout=READY_TIMEOUT + DRAIN_TIMEOUT)
            drain.process.wait(timeout=10)
        finally:
            drain.kill()
        assert drained, f"the outbox did not drain: {drain.lines[-3:]}; see {tmp_path}/child.log"
        assert drain.process.returncode == 0

        outbox = Outbox(outbox_path, keys=load_key_file(key_path, create=False))
        try:
            entries = outbox.entries(limit=1_000_000)
            exported = io.StringIO()
            outbox.export(exported)
        finally:
            outbox.close()
        records = [json.loads(line) for line in exported.getvalue().splitlines()]
        searches = [c for record in records for c in conditions(record["bundle"])]
        visit_searches = [(kind, c) for kind, c in searches if kind != "Device"]
        matches = asyncio.run(count_matches(peer.base_url, visit_searches))
        stored = peer.stats().resources

    bundles = len(entries)
    undelivered = [(e.id, e.state, e.last_error) for e in entries if e.state != DELIVERED]
    assert undelivered == []
    assert committed - {e.id for e in entries} == set(), "bundles announced committed are lost"
    assert Counter(kind for kind, _ in visit_searches) == {
        "Patient": bundles,
        "Encounter": bundles,
        "Observation": 10 * bundles,
    }
    not_once = [(s, n) for s, n in zip(visit_searches, matches, strict=True) if n != 1]
    assert not_once == [], f"{len(not_once)} identifiers not found exactly once"
    assert stored == {
        "Device": 1,
        "Patient": bundles,
        "Encounter": bundles,
        "Observation": 10 * bundles,
        "Provenance": bundles,
    }
    assert failed_while_down > 0, "no send failed while the peer was down"
    lost_answers = sum(answered_already_stored(record["answer"]) for record in records)
    assert lost_answers > 0, "no kill came between the server storing a bundle and its marking"

    resends = sum(e.attempts - 1 for e in entries)
    landed = Counter(window for kill in kills for window, ids in kill.open.items() if ids)
    print(
        f"\nchaos (seed {SEED}): {len(kills)} kills (open windows: enqueue {landed['enqueue']}, "
        f"send {landed['send']}, mark {landed['mark']}), {bundles} bundles "
        f"({len(committed)} announced), {resends} resends ({lost_answers} of bundles the server "
        f"already held), {failed_while_down} sends failed in {down_for:.1f} s without the peer, "
        f"{time.monotonic() - started:.1f} s"
    )
