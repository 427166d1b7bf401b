"""Latency from the last byte of a frame written to the pty to the reading object.

The device runs in a child process (``bench.pty_device``) and logs when it wrote each chunk;
this process reads it with a real :class:`~vitals.session.DeviceSession` and notes, for every
chunk that yields readings, when the transport handed the bytes over (*read*) and when the
readings existed (*reading*).  Byte offsets tie each chunk to the write of its last byte; both
processes use CLOCK_MONOTONIC.

Anchor, same run: the *read* latency - the kernel, the event loop's wake-up and the
transport, which any reader on this loop pays - against the *reading* latency, which adds
framing, parsing and reading construction.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from vitals.clock import Clock, Instant
from vitals.devices.catalog import DriverOptions, create_driver
from vitals.model import Reading
from vitals.session import DeviceSession


@dataclass(frozen=True)
class Latency:
    device: str
    samples: int
    read_p50_ms: float
    read_p99_ms: float
    reading_p50_ms: float
    reading_p99_ms: float


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _read_for(name: str, path: Path, seconds: float) -> list[tuple[int, int, int]]:
    """Read the device; return (end offset, read ns, reading ns) per chunk with readings."""
    events: list[tuple[int, int, int]] = []
    driver = create_driver(name, port=str(path), options=DriverOptions(bp_repeat_every=1.0))
    offset = 0
    receive = driver.receive

    def timed_receive(data: bytes, at: Instant) -> list[Reading]:
        nonlocal offset
        read_ns = time.monotonic_ns()
        offset += len(data)
        readings = receive(data, at)
        if readings:
            events.append((offset, read_ns, time.monotonic_ns()))
        return readings

    driver.receive = timed_receive  # type: ignore[method-assign]
    session = DeviceSession(driver, str(path), clock=Clock(), on_reading=lambda _: None)
    task = asyncio.create_task(session.run())
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return events


def measure(name: str, *, seconds: float = 8.0) -> Latency:
    """Run the device in a child process and measure for ``seconds``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.pty_device", "--device", name, "--path", str(path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        events = asyncio.run(_read_for(name, path, seconds))
        child.terminate()
        writes = json.loads(child.communicate(timeout=10)[0])
    ends = list(itertools.accumulate(count for _, count in writes))
    read_ms: list[float] = []
    reading_ms: list[float] = []
    for end, read_ns, reading_ns in events:
        index = bisect.bisect_left(ends, end)  # the write that holds byte `end - 1`
        if index >= len(writes):
            continue
        written_ns = writes[index][0]
        read_ms.append((read_ns - written_ns) / 1e6)
        reading_ms.append((reading_ns - written_ns) / 1e6)
    if not reading_ms:
        raise RuntimeError(f"{name}: no readings to time")
    return Latency(
        device=name,
        samples=len(reading_ms),
        read_p50_ms=statistics.median(read_ms),
        read_p99_ms=_percentile(read_ms, 0.99),
        reading_p50_ms=statistics.median(reading_ms),
        reading_p99_ms=_percentile(reading_ms, 0.99),
    )


def table(results: list[Latency]) -> str:
    lines = [
        "| device | chunks | read p50 | read p99 | reading p50 | reading p99 | p50 ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = r.reading_p50_ms / r.read_p50_ms if r.read_p50_ms > 0 else float("nan")
        lines.append(
            f"| {r.device} | {r.samples} | {r.read_p50_ms:.3f} ms | {r.read_p99_ms:.3f} ms "
            f"| {r.reading_p50_ms:.3f} ms | {r.reading_p99_ms:.3f} ms | {ratio:.2f} |"
        )
    return "\n".join(lines)
