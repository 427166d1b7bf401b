"""Time from a doctor's accept to both parties holding the call, on our signaling node (issue 5).

Measured by the Node load client: every pair (a doctor with a hospital of their own, signed in
and available; a cabin signed in and queued there) is set up first, then the doctors accept,
``concurrency`` at a time. t0 is when the doctor's ``accept`` is written to its socket, t1 when
both the doctor's ``call`` and the cabin's ``call`` have arrived; the time is t1 - t0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.signaling_procs import BenchError, LoadClient, our_node, pair_tokens
from signaling.tokens import DevKey


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptTimes:
    accepts: int
    concurrency: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def measure(work: Path, key: DevKey, *, accepts: int, concurrency: int) -> AcceptTimes:
    """``accepts`` calls started on a fresh node, ``concurrency`` accepts in flight at once."""
    pairs = pair_tokens(key, accepts, run=f"acc{concurrency}")
    with (
        our_node(work / "node") as node,
        LoadClient(
            {
                "mode": "accept",
                "url": node.url,
                "pairs": pairs,
                "concurrency": concurrency,
                "setup_batch": 50,
            },
            log=work / "client-accept.log",
        ) as client,
    ):
        client.expect("ready", timeout_s=120)
        result = client.expect("result", timeout_s=120)
    if result["errors"]:
        raise BenchError(f"{result['errors']} errors during the accepts")
    times = result["accept"]
    return AcceptTimes(
        accepts=int(times["count"]),
        concurrency=concurrency,
        p50_ms=float(times["p50_ms"]),
        p99_ms=float(times["p99_ms"]),
        max_ms=float(times["max_ms"]),
    )


def table(results: Sequence[AcceptTimes]) -> str:
    rows = [
        "| accepts | at once | p50 | p99 | max |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rows.append(
            f"| {r.accepts} | {r.concurrency} | {r.p50_ms:.2f} ms | {r.p99_ms:.1f} ms "
            f"| {r.max_ms:.1f} ms |"
        )
    return "\n".join(rows)
