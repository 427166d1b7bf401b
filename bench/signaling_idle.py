"""Memory per idle authenticated connection of our signaling node (issue 5).

A fresh ``signaling serve`` per size; the load client signs in N connections, 100 at a time
(half cabins, half doctors over ten hospitals, each with a token of its own subject and jti)
and holds them while the node's resident set size (VmRSS) is read.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.signaling_procs import BenchError, LoadClient, our_node, token
from signaling.model import Role
from signaling.tokens import DevKey

BATCH = 100
SETTLE_S = 2.0
GOAL_CONNECTIONS = 5000
GOAL_MB = 500.0


@dataclass(frozen=True, slots=True, kw_only=True)
class IdleMemory:
    connections: int
    rss_before_kib: int
    rss_after_kib: int
    connect_s: float

    @property
    def per_connection_kib(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / self.connections


def _tokens(key: DevKey, count: int) -> list[str]:
    return [
        token(key, Role.CABIN, f"idle-cabin-{i}")
        if i % 2
        else token(key, Role.DOCTOR, f"idle-dr-{i}", [f"idle-h{i % 10}"])
        for i in range(count)
    ]


def measure(work: Path, key: DevKey, count: int) -> IdleMemory:
    """RSS of a fresh node before and after ``count`` signed-in connections."""
    tokens = _tokens(key, count)
    with our_node(work / "node") as node:
        time.sleep(1.0)
        before = node.rss_kib()
        with LoadClient(
            {"mode": "idle", "url": node.url, "tokens": tokens, "batch": BATCH},
            log=work / "client-idle.log",
        ) as client:
            ready = client.expect("ready", timeout_s=300)
            if ready["connected"] != count:
                raise BenchError(f"only {ready['connected']} of {count} connections signed in")
            time.sleep(SETTLE_S)
            after = node.rss_kib()
            client.command({"cmd": "close"})
            done = client.expect("result", timeout_s=60)
            if done["still_open"] != count:
                raise BenchError(f"{count - done['still_open']} idle connections were closed")
    return IdleMemory(
        connections=count,
        rss_before_kib=before,
        rss_after_kib=after,
        connect_s=float(ready["setup_s"]),
    )


def table(results: Sequence[IdleMemory]) -> str:
    rows = [
        "| connections | RSS before | RSS after | added | per connection | signed in at |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rows.append(
            f"| {r.connections:,} | {r.rss_before_kib / 1024:.0f} MB "
            f"| {r.rss_after_kib / 1024:.0f} MB "
            f"| {(r.rss_after_kib - r.rss_before_kib) / 1024:.0f} MB "
            f"| {r.per_connection_kib:.1f} KB | {r.connections / r.connect_s:,.0f} /s |"
        )
    return "\n".join(rows)


def marginal_kib(results: Sequence[IdleMemory]) -> float | None:
    """KB per connection between the smallest and the largest size (no start-up costs)."""
    if len(results) < 2:
        return None
    low, high = min(results, key=lambda r: r.connections), max(results, key=lambda r: r.connections)
    return (high.rss_after_kib - low.rss_after_kib) / (high.connections - low.connections)


def goal(results: Sequence[IdleMemory]) -> str:
    at_goal = [r for r in results if r.connections == GOAL_CONNECTIONS]
    if not at_goal:
        return f"not measured: {GOAL_CONNECTIONS:,} connections under {GOAL_MB:.0f} MB RSS"
    mb = at_goal[0].rss_after_kib / 1024
    verdict = "met" if mb < GOAL_MB else "not met"
    return f"{verdict}: {GOAL_CONNECTIONS:,} connections under {GOAL_MB:.0f} MB RSS: {mb:.0f} MB"
