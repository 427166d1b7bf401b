"""Issue 6's media benchmarks: glass-to-glass latency, the cabin's CPU, accept to first frame.

Everything runs on loopback on this machine, in one Chromium (Debian's, through Playwright,
the tests' flags: ``tests/peers/browser.py``):

- **The product path**: ``signaling serve --dev`` in its own process; the cabin
  (``CabinService``: test-pattern camera 1280x720@30, tone microphone, framing assist, pleth
  slices on the vitals channel at 10 messages/s) in its own process
  (``python -m bench.media_sender cabin``); the resident page open in a Chromium page, its
  local leg connected before the call; the doctor console in another page, signed in,
  available, accepting the call with a click.
- **The anchor**, in the same run: ``python -m bench.media_sender plain``, one aiortc peer
  connection with one synthetic track drawing the same stamped pattern at the same size and
  rate, one offer/answer exchanged directly with a minimal receiver page
  (``bench/peers/media/receiver.html``): no signaling, no local leg, no vitals.

Latency: ``bench/peers/media/probe.js`` (added to every page) reads the pattern's code band
on every frame the console's (or the receiver's) ``<video>`` presents
(``requestVideoFrameCallback``, a 640x360 canvas) and takes ``(Date.now() - stamp) mod 2**32``:
capture (the pattern drawn and stamped in the sender) to a frame presented in the doctor's
page, on one clock. Runs alternate cabin and plain; each run is a fresh sender process, a warm-up,
then a fixed window; the figures are the median over runs of each run's p50 and p95.

CPU: the sender process's user + system time (all its threads, ``/proc/<pid>/stat``) over the
same window, as % of one core; the cabin's includes everything the product does in a call
(the local leg to the resident page, the doctor's video decoded and relayed, the vitals, the
quality loop, framing). 480p30 is the cabin call's camera track set to 854x480@30
(``CameraTrack.set_profile``, what the ladder's 480p30 step does) against a plain sender
drawing 854x480@30.

The ladder is not fed the machine's CPU in these runs (``--ladder-cpu off``): here the doctor's
Chromium (decoding, encoding the fake camera) shares the cabin's two cores, which a real cabin
never sees; fed, it steps the call down to 480p within seconds and the 720p30 figures would
not be 720p30. Loss and RTT still drive it.

Accept to first frame: t0 is the click on the console's Accept button (``Date.now()`` in a
capture listener); the console's first ``getStats()`` with ``framesDecoded > 0`` (polled
every 5 ms) and its first presented frame; the cabin's first frame decoded from the doctor's
track (``time.time()`` in the cabin process, the same clock) and the first non-black frame of
the doctor on the resident page.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import expect, sync_playwright

from bench import machine
from bench.media_procs import CpuShares, CpuWindow, SenderProcess
from bench.signaling_procs import BenchError, our_node, token
from signaling.model import Role
from signaling.tokens import DevKey
from tests.peers.browser import launch_chromium

PEERS = Path(__file__).with_name("peers") / "media"
PROBE = PEERS / "probe.js"
RECEIVER = PEERS / "receiver.html"
HD = (1280, 720, 30.0)
SD = (854, 480, 30.0)
MAX_LATENCY_MS = 10_000.0
"""A decoded stamp further off than this is a misread, not a latency."""
MAX_EXTRA_S = 20.0
"""How long a window may be extended to read ``min_frames`` frames (CPU stays the window's)."""
PERF_ENV = "BENCH_MEDIA_PERF"
"""Set to a directory: ``perf record`` samples each sender over its CPU window (profiling)."""
GOAL_P50_MS = 60.0
GOAL_OVER_PLAIN_MS = 15.0
GOAL_CPU_RATIO = 1.25
GOAL_ACCEPT_S = 1.0


@dataclass(frozen=True, slots=True)
class Run:
    sender: str  # "cabin" | "plain"
    size: tuple[int, int, float]
    latencies: tuple[float, ...]
    unreadable: int
    misread: int
    at_size: float
    """Share of the read frames presented at the run's size."""
    cpu: CpuShares

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p95(self) -> float:
        return percentile(self.latencies, 95)

    @property
    def fps(self) -> float:
        return len(self.latencies) / self.cpu.seconds


@dataclass(frozen=True, slots=True)
class AcceptTiming:
    """Seconds from the click on Accept."""

    console_decoded: float
    console_presented: float
    cabin_decoded: float
    resident_shown: float


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class MediaBench:
    """One browser, one signaling node, one console page; senders come and go per run."""

    def __init__(self, *, work: Path, node_url: str, key_dir: Path, browser: Any) -> None:
        self._work = work
        self._node_url = node_url
        self._key_dir = key_dir
        self._browser = browser
        self._logs = 0
        self.min_frames = 0
        key = DevKey.load_or_create(key_dir)
        self.console_context = self._context()
        self.console = self.console_context.new_page()
        base = node_url.removesuffix("/ws").replace("ws://", "http://", 1)
        console_url = base + "/console/"
        self.console.goto(f"{console_url}?token={token(key, Role.DOCTOR, 'dr-bench', ['bv-a'])}")
        expect(self.console.locator("#service-status")).to_have_text("Online")
        self.console.get_by_role("radio", name="Available").check()
        self.console.evaluate("__bench.watchPattern('remote-video')")
        self.resident_context = self._context()

    def _context(self) -> Any:
        context = self._browser.new_context(viewport={"width": 1280, "height": 720})
        context.add_init_script(path=str(PROBE))
        return context

    def _log(self, what: str) -> Path:
        self._logs += 1
        return self._work / f"{self._logs:02d}-{what}.log"

    # -- the product path

    @contextmanager
    def cabin(self) -> Iterator[tuple[SenderProcess, Any]]:
        """A cabin process and its resident page, the local leg connected."""
        args = ["cabin", "--signaling", self._node_url, "--key-dir", str(self._key_dir)]
        with SenderProcess(args, log=self._log("cabin")) as sender:
            ready = sender.expect("ready", timeout_s=60)
            resident = self.resident_context.new_page()
            try:
                resident.goto(ready["ui"])
                resident.wait_for_function(
                    "() => window.localLeg && window.localLeg.connectionState === 'connected'",
                    timeout=15_000,
                )
                resident.evaluate("__bench.watchBright('doctor-video')")
                yield sender, resident
            finally:
                resident.close()

    def call(self, sender: SenderProcess, resident: Any) -> AcceptTiming:
        """The cabin calls, the doctor clicks Accept; returns once both sides show video."""
        self.console.evaluate("__bench.arm()")
        resident.evaluate("__bench.arm()")
        radio = self.console.get_by_role("radio", name="Available")
        if not radio.is_checked():
            radio.check()
        sender.send({"cmd": "call"})
        if not sender.expect("calling", timeout_s=10)["started"]:
            raise BenchError("the cabin did not start a call")
        accept = self.console.locator("button.accept:enabled").first
        accept.wait_for(timeout=15_000)
        accept.click()
        cabin_frame = sender.expect("doctor-frame", timeout_s=20)["at_ms"]
        self.console.wait_for_function(
            "() => __bench.decodedAt !== null && __bench.presentedAt !== null", timeout=20_000
        )
        resident.wait_for_function("() => __bench.brightAt !== null", timeout=20_000)
        console = self.console.evaluate("__bench.timings()")
        shown = resident.evaluate("__bench.timings()")["brightAt"]
        t0 = float(console["acceptAt"])
        return AcceptTiming(
            console_decoded=(console["decodedAt"] - t0) / 1000,
            console_presented=(console["presentedAt"] - t0) / 1000,
            cabin_decoded=(float(cabin_frame) - t0) / 1000,
            resident_shown=(shown - t0) / 1000,
        )

    def hang_up(self, sender: SenderProcess) -> None:
        sender.send({"cmd": "hangup"})
        sender.expect("ended", timeout_s=15)
        self.console.locator(
            "#call-panel[data-call='ended'], #call-panel[data-call='idle']"
        ).wait_for(timeout=10_000)

    def cabin_run(
        self, size: tuple[int, int, float], *, warmup_s: float, window_s: float
    ) -> tuple[Run, AcceptTiming]:
        with self.cabin() as (sender, resident):
            timing = self.call(sender, resident)
            if size != HD:
                sender.send({"cmd": "profile", "width": size[0], "height": size[1], "fps": size[2]})
                if not sender.expect("profile", timeout_s=5)["applied"]:
                    raise BenchError("no video track to set the profile on")
            time.sleep(warmup_s)
            run = self._window("cabin", size, sender, self.console, window_s)
            sender.send({"cmd": "status"})
            status = sender.expect("status", timeout_s=5)
            if status["profile"] != [size[0], size[1], size[2]]:
                raise BenchError(f"the cabin's call track ended at {status['profile']}, not {size}")
            self.hang_up(sender)
        return run, timing

    # -- the anchor

    def plain_run(self, size: tuple[int, int, float], *, warmup_s: float, window_s: float) -> Run:
        args = ["plain", "--width", str(size[0]), "--height", str(size[1]), "--fps", str(size[2])]
        context = self._context()
        try:
            page = context.new_page()
            page.goto(RECEIVER.resolve().as_uri())
            page.evaluate("__bench.watchPattern('remote-video')")
            with SenderProcess(args, log=self._log("plain")) as sender:
                offer = sender.expect("offer", timeout_s=60)["sdp"]
                answer = page.evaluate("(sdp) => answer(sdp)", offer)
                sender.send({"cmd": "answer", "sdp": answer})
                sender.expect("answered", timeout_s=10)
                page.wait_for_function("() => __bench.frames.length > 0", timeout=20_000)
                time.sleep(warmup_s)
                return self._window("plain", size, sender, page, window_s)
        finally:
            context.close()

    # -- one window

    def _window(
        self,
        kind: str,
        size: tuple[int, int, float],
        sender: SenderProcess,
        page: Any,
        seconds: float,
    ) -> Run:
        page.evaluate("__bench.take()")
        cpu = CpuWindow(sender.pid)
        perf = _perf(sender.pid, kind, size, seconds)
        cpu.start()
        time.sleep(seconds)
        shares = cpu.stop()
        if perf is not None:
            perf.wait()
        # latency: at least min_frames per run, reading on past the CPU window if need be
        deadline = time.monotonic() + MAX_EXTRA_S
        while (
            int(page.evaluate("__bench.frames.length")) < self.min_frames
            and time.monotonic() < deadline
        ):
            time.sleep(0.5)
        taken = page.evaluate("__bench.take()")
        frames: list[list[float]] = taken["frames"]
        good = [f for f in frames if f[0] <= MAX_LATENCY_MS]
        at_size = sum(1 for f in good if (f[2], f[3]) == (size[0], size[1]))
        return Run(
            sender=kind,
            size=size,
            latencies=tuple(float(f[0]) for f in good),
            unreadable=int(taken["unreadable"]),
            misread=len(frames) - len(good),
            at_size=at_size / len(good) if good else 0.0,
            cpu=shares,
        )


def _perf(
    pid: int, kind: str, size: tuple[int, int, float], seconds: float
) -> subprocess.Popen[bytes] | None:
    directory = os.environ.get(PERF_ENV)
    if not directory:
        return None
    out = Path(directory) / f"{kind}-{size[1]}p-{pid}.data"
    command = ["perf", "record", "-F", "499", "-g", "-p", str(pid), "-o", str(out)]
    return subprocess.Popen(
        [*command, "--", "sleep", str(seconds)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# -- the report ----------------------------------------------------------------------------------


def _size(size: tuple[int, int, float]) -> str:
    return f"{size[1]}p{size[2]:.0f}"


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def runs_table(runs: Sequence[Run]) -> str:
    rows = [
        "| # | sender | size | frames | fps | at size | unreadable | p50 | p95 | sender CPU | "
        "Chromium CPU | rest of bench | other processes |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(runs, 1):
        rows.append(
            f"| {i} | {r.sender} | {_size(r.size)} | {len(r.latencies)} | {r.fps:.1f} "
            f"| {100 * r.at_size:.0f} % | {r.unreadable + r.misread} | {r.p50:.1f} ms "
            f"| {r.p95:.1f} ms | {r.cpu.sender:.0f} % | {r.cpu.chromium:.0f} % "
            f"| {r.cpu.ours_other:.0f} % | {r.cpu.machine_other:.0f} % |"
        )
    return "\n".join(rows)


def latency_table(runs: Sequence[Run]) -> tuple[str, list[str]]:
    rows = [
        "| size | sender | runs | frames per run | p50 | p95 | fps |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    verdicts: list[str] = []
    for size in sorted({r.size for r in runs}, reverse=True):
        medians: dict[str, tuple[float, float]] = {}
        for kind in ("cabin", "plain"):
            chosen = [r for r in runs if r.size == size and r.sender == kind]
            if not chosen:
                continue
            p50 = _median([r.p50 for r in chosen])
            p95 = _median([r.p95 for r in chosen])
            medians[kind] = (p50, p95)
            frames = min(len(r.latencies) for r in chosen)
            rows.append(
                f"| {_size(size)} | {kind} | {len(chosen)} | ≥ {frames} | {p50:.1f} ms "
                f"| {p95:.1f} ms | {_median([r.fps for r in chosen]):.1f} |"
            )
        if "cabin" in medians and "plain" in medians:
            d50 = medians["cabin"][0] - medians["plain"][0]
            d95 = medians["cabin"][1] - medians["plain"][1]
            rows.append(f"| {_size(size)} | cabin − plain | | | {d50:+.1f} ms | {d95:+.1f} ms | |")
            if size == HD:
                p50 = medians["cabin"][0]
                verdicts.append(
                    f"- {'met' if p50 <= GOAL_P50_MS else 'NOT met'}: p50 ≤ {GOAL_P50_MS:.0f} ms "
                    f"at 720p30 through the product path: {p50:.1f} ms"
                )
                verdicts.append(
                    f"- {'met' if d50 <= GOAL_OVER_PLAIN_MS else 'NOT met'}: no worse than the "
                    f"plain sender by more than {GOAL_OVER_PLAIN_MS:.0f} ms: {d50:+.1f} ms (p50)"
                )
    return "\n".join(rows), verdicts


def cpu_table(runs: Sequence[Run]) -> tuple[str, list[str]]:
    rows = [
        "| size | plain sender | cabin | ratio | other processes (median) |",
        "|---|---:|---:|---:|---:|",
    ]
    verdicts: list[str] = []
    for size in sorted({r.size for r in runs}, reverse=True):
        plain = _median([r.cpu.sender for r in runs if r.size == size and r.sender == "plain"])
        cabin = _median([r.cpu.sender for r in runs if r.size == size and r.sender == "cabin"])
        other = _median([r.cpu.machine_other for r in runs if r.size == size])
        ratio = cabin / plain
        rows.append(
            f"| {_size(size)} | {plain:.0f} % | {cabin:.0f} % | {ratio:.2f}× | {other:.0f} % |"
        )
        verdicts.append(
            f"- {'met' if ratio <= GOAL_CPU_RATIO else 'NOT met'}: cabin CPU at {_size(size)} "
            f"≤ {GOAL_CPU_RATIO}× the plain sender's: {ratio:.2f}×"
        )
    return "\n".join(rows), verdicts


def accept_table(timings: Sequence[AcceptTiming]) -> tuple[str, list[str]]:
    rows = [
        "| from the click on Accept to | calls | p50 | p99 | max |",
        "|---|---:|---:|---:|---:|",
    ]
    columns = (
        ("console: framesDecoded > 0", [t.console_decoded for t in timings]),
        ("console: first frame presented", [t.console_presented for t in timings]),
        ("cabin: first frame decoded from the doctor", [t.cabin_decoded for t in timings]),
        ("resident page: the doctor's picture shown", [t.resident_shown for t in timings]),
    )
    for name, values in columns:
        rows.append(
            f"| {name} | {len(values)} | {percentile(values, 50):.2f} s "
            f"| {percentile(values, 99):.2f} s | {max(values):.2f} s |"
        )
    verdicts = []
    for name, values in (columns[0], columns[2]):
        p99 = percentile(values, 99)
        verdicts.append(
            f"- {'met' if p99 <= GOAL_ACCEPT_S else 'NOT met'}: {name} ≤ {GOAL_ACCEPT_S:.1f} s: "
            f"p50 {percentile(values, 50):.2f} s, p99 {p99:.2f} s"
        )
    return "\n".join(rows), verdicts


def main(
    *,
    runs: int = 3,
    warmup_s: float = 2.0,
    window_s: float = 11.0,
    sd_window_s: float = 8.0,
    calls: int = 10,
    min_frames: int = 300,
) -> str:
    started = time.monotonic()
    header = machine.describe()
    latency_runs: list[Run] = []
    sd_runs: list[Run] = []
    timings: list[AcceptTiming] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-media-") as tmp,
        our_node(Path(tmp) / "node") as node,
        sync_playwright() as playwright,
    ):
        work = Path(tmp)
        key_dir = work / "node"
        DevKey.load_or_create(key_dir)
        browser = launch_chromium(playwright)
        try:
            bench = MediaBench(work=work, node_url=node.url, key_dir=key_dir, browser=browser)
            for size, window, into in ((HD, window_s, latency_runs), (SD, sd_window_s, sd_runs)):
                bench.min_frames = min_frames if size == HD else 0
                for i in range(runs):
                    for kind in ("cabin", "plain") if i % 2 == 0 else ("plain", "cabin"):
                        if kind == "cabin":
                            run, timing = bench.cabin_run(size, warmup_s=warmup_s, window_s=window)
                            timings.append(timing)
                        else:
                            run = bench.plain_run(size, warmup_s=warmup_s, window_s=window)
                        into.append(run)
            with bench.cabin() as (sender, resident):
                while len(timings) < calls:
                    timings.append(bench.call(sender, resident))
                    bench.hang_up(sender)
        finally:
            browser.close()
    elapsed = time.monotonic() - started
    latency, latency_verdicts = latency_table([*latency_runs, *sd_runs])
    cpu, cpu_verdicts = cpu_table([*latency_runs, *sd_runs])
    accept, accept_verdicts = accept_table(timings)
    others = _median([r.cpu.machine_other for r in [*latency_runs, *sd_runs]])
    return "\n".join(
        [
            "### Media: glass-to-glass latency, the cabin's CPU, accept to first frame (issue 6)",
            "",
            header,
            "",
            f"Loopback, one Chromium; {runs} runs per sender and size, alternating, each a fresh "
            f"sender process, {warmup_s:.0f} s warm-up then a {window_s:.0f} s window at 720p30 "
            f"({sd_window_s:.0f} s at 480p30) for CPU, latency read on until {min_frames} "
            f"frames at 720p30 (at most {MAX_EXTRA_S:.0f} s more); figures are medians over "
            "runs. Other processes "
            f"on this shared machine used {others:.0f} % of one core (median of the windows; "
            f"2 cores = 200 %). Section time {elapsed:.0f} s.",
            "",
            "Glass-to-glass (stamp at capture → frame presented in the doctor's page):",
            "",
            latency,
            "",
            *latency_verdicts,
            "",
            "Sender CPU, % of one core over the window (the cabin: the whole service in a call, "
            "the resident page's local leg connected):",
            "",
            cpu,
            "",
            *cpu_verdicts,
            "",
            f"Accept to first frame ({len(timings)} calls; the first {2 * runs} are the cabin "
            "runs above):",
            "",
            accept,
            "",
            *accept_verdicts,
            "",
            "Every run:",
            "",
            runs_table([*latency_runs, *sd_runs]),
        ]
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.media")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=float, default=11.0)
    parser.add_argument("--sd-window", type=float, default=8.0)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--min-frames", type=int, default=300)
    cli = parser.parse_args()
    text = main(
        runs=cli.runs,
        window_s=cli.window,
        sd_window_s=cli.sd_window,
        calls=cli.calls,
        min_frames=cli.min_frames,
    )
    print(text, flush=True)
