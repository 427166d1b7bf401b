"""Framer and driver throughput per protocol on a long recorded stream with 1 % corruption.

Anchor: the device's own line rate (the most bytes per second its UART can carry at its link
settings), measured in the same run as the ratio ``throughput / line rate`` - how many devices
of that kind one core could keep up with.  Medians of several runs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.recordings import corrupt, record
from vitals.clock import Clock, Instant
from vitals.devices.catalog import DRIVERS, DriverOptions, create_driver
from vitals.devices.driver import DeviceDriver
from vitals.protocols.framing import Framer

CHUNK = 64  # a typical serial read


@dataclass(frozen=True)
class Throughput:
    device: str
    stream_bytes: int
    framer_mb_s: float
    driver_mb_s: float
    line_rate_kb_s: float
    frames: int
    discarded_pct: float

    @property
    def framer_x_line(self) -> float:
        return self.framer_mb_s * 1e3 / self.line_rate_kb_s

    @property
    def driver_x_line(self) -> float:
        return self.driver_mb_s * 1e3 / self.line_rate_kb_s


def _time(feed: Callable[[bytes], object], data: bytes) -> float:
    start = time.perf_counter()
    for offset in range(0, len(data), CHUNK):
        feed(data[offset : offset + CHUNK])
    return time.perf_counter() - start


def _receiver(driver: DeviceDriver, at: Instant) -> Callable[[bytes], object]:
    def receive(chunk: bytes) -> object:
        return driver.receive(chunk, at)

    return receive


def measure(
    name: str, framer: Callable[[], Framer[Any]], *, runs: int = 5, min_bytes: int = 200_000
) -> Throughput:
    """Median throughput of ``framer`` and of the full driver for device ``name``."""
    recording = record(name, seconds=30.0)
    repeats = max(1, min_bytes // max(1, len(recording)))
    data = corrupt(recording * repeats, fraction=0.01)
    framer_times = []
    driver_times = []
    frames = discarded = 0
    clock = Clock()
    for _ in range(runs):
        instance = framer()
        framer_times.append(_time(instance.feed, data))
        frames, discarded = instance.stats.frames, instance.stats.discarded_bytes
        driver = create_driver(name, port="bench", options=DriverOptions())
        driver_times.append(_time(_receiver(driver, clock.now()), data))
    link = DRIVERS[name].spec.link
    return Throughput(
        device=name,
        stream_bytes=len(data),
        framer_mb_s=len(data) / statistics.median(framer_times) / 1e6,
        driver_mb_s=len(data) / statistics.median(driver_times) / 1e6,
        line_rate_kb_s=1 / link.seconds_per_byte / 1e3,
        frames=frames,
        discarded_pct=100 * discarded / len(data),
    )


def table(results: list[Throughput]) -> str:
    lines = [
        "| device | stream | framer MB/s | × line rate | framer+driver MB/s | × line rate "
        "| frames | discarded |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.device} | {r.stream_bytes / 1e3:.0f} kB | {r.framer_mb_s:.2f} "
            f"| {r.framer_x_line:,.0f} | {r.driver_mb_s:.2f} | {r.driver_x_line:,.0f} "
            f"| {r.frames} | {r.discarded_pct:.1f} % |"
        )
    return "\n".join(lines)
