"""Where our signaling node's time goes per relayed message.

Two views. :func:`steps` times the pure steps of the relay path in this process, with no
profiler: the rate-limit check, JSON parsing, schema validation, the whole ``decode``, building
and encoding the relayed message, and the metrics. What the node spends beyond their sum, per
message, is aiohttp's WebSocket framing, the asyncio tasks and queue, and the socket calls.
:func:`profile_table` groups a cProfile of the node (``BENCH_SIGNALING_PROFILE``) by component.
"""

from __future__ import annotations

import json
import pstats
import timeit
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from signaling.limits import TokenBucket
from signaling.messages import Relay, decode, encode, relay_message
from signaling.metrics import Metrics

CANDIDATE = {
    "candidate": "candidate:0000000042 1 udp 2122260223 192.168.1.23 54321 typ host "
    "generation 0 ufrag Xy7a network-cost 10",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
}
"""The load client's candidate (152 bytes as JSON)."""

INBOUND = json.dumps(
    {"type": "candidate", "call": "AbCdEfGhIjKlMnOp", "candidate": CANDIDATE},
    separators=(",", ":"),
)


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    us: float
    part_of_decode: bool = False
    """A share of ``decode`` shown on its own line (not added again to the total)."""


def _us(action: Callable[[], object], number: int) -> float:
    """Best of 5 repeats, microseconds per call."""
    return min(timeit.repeat(action, number=number, repeat=5)) / number * 1e6


def steps(number: int = 3000) -> list[Step]:
    """Microseconds per relayed candidate of each pure step of the relay path."""
    relay = decode(INBOUND, max_bytes=65536)
    assert isinstance(relay, Relay)
    metrics = Metrics()
    bucket = TokenBucket(1e9, 1e9)

    def observe() -> None:
        metrics.relay_latency.observe(0.0003)
        metrics.relayed.labels(kind="candidate").inc()

    def relayed() -> str:
        return encode(relay_message(relay, sender="cabin"))

    parse = _us(lambda: json.loads(INBOUND), number)
    whole = _us(lambda: decode(INBOUND, max_bytes=65536), number)
    return [
        Step("rate-limit bucket", _us(lambda: bucket.allow(1.0), number)),
        Step("decode in all: size check, JSON, schema validation, typed value", whole),
        Step("· of which JSON parse (json.loads)", parse, part_of_decode=True),
        Step(
            "· of which schema validation and typed value (the rest of decode)",
            max(0.0, whole - parse),
            part_of_decode=True,
        ),
        Step("relayed message built and encoded", _us(relayed, number)),
        Step("metrics: histogram + labelled counter", _us(observe, number)),
    ]


def steps_table(measured: list[Step], *, node_us: float | None) -> str:
    """The steps, and what the node spent per message in the relay runs beyond them."""
    rows = ["| step | µs per message |", "|---|---:|"]
    rows += [f"| {s.name} | {s.us:.1f} |" for s in measured]
    if node_us is not None:
        pure = sum(s.us for s in measured if not s.part_of_decode)
        rows.append(
            "| the rest: aiohttp frames in and out, asyncio tasks and queue, socket calls "
            f"| {max(0.0, node_us - pure):.1f} |"
        )
        rows.append(f"| node CPU per relayed message (100-pair runs, median) | {node_us:.1f} |")
    return "\n".join(rows)


_STARTUP = "start-up (imports, TLS defaults)"
_COMPONENTS = (
    ("socket calls", ("_socket.socket",)),
    ("waiting in epoll (idle)", ("select.epoll",)),
    (_STARTUP, ("importlib", "marshal", "builtins.compile", "<frozen", "_ssl._SSLContext")),
    ("schema validation (jsonschema, referencing)", ("jsonschema", "/referencing/", "rpds")),
    ("aiohttp (HTTP, WebSocket frames)", ("/aiohttp/", "/multidict/", "/yarl/")),
    ("asyncio event loop, tasks, queues", ("/asyncio/", "selectors.py", "_contextvars")),
    ("JSON (json module)", ("/json/", "_json")),
    ("prometheus metrics", ("/prometheus_client/",)),
    ("logging", ("/logging/",)),
    ("token checks (PyJWT, cryptography)", ("/jwt/", "cryptography")),
    ("signaling: state (queues, sessions)", ("/signaling/state.py", "/signaling/backplane/")),
    ("signaling: the rest", ("/signaling/",)),
)

_Key = tuple[str, int, str]
_Raw = dict[_Key, tuple[int, int, float, float, dict[_Key, tuple[int, int, float, float]]]]


def _component(key: _Key) -> str:
    filename, _line, function = key
    where = f"{filename} {function}"
    for name, needles in _COMPONENTS:
        if any(needle in where for needle in needles):
            return name
    return "other"


def _raw(path: Path) -> _Raw:
    stats: _Raw = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    return stats


def relayed_in_profile(path: Path) -> int:
    """How many offers, answers and candidates the profiled node relayed (calls of _relay)."""
    return sum(
        calls
        for (filename, _line, function), (_cc, calls, *_rest) in _raw(path).items()
        if function == "_relay" and filename.endswith("connection.py")
    )


def component_seconds(path: Path) -> dict[str, float]:
    """Own time by component; a built-in's own time goes to the components of its callers."""
    totals: dict[str, float] = defaultdict(float)
    for key, (_cc, _calls, own, _cum, callers) in _raw(path).items():
        component = _component(key)
        if key[0] == "~" and component == "other" and callers:
            for caller, (_ccc, _nc, caller_own, _ct) in callers.items():
                totals[_component(caller)] += caller_own
        else:
            totals[component] += own
    return dict(totals)


def profile_table(path: Path) -> str:
    """Own time of a cProfile'd node by component: share, and µs per relayed message."""
    relayed = max(1, relayed_in_profile(path))
    totals = component_seconds(path)
    counted = sum(t for name, t in totals.items() if name != _STARTUP)
    rows = [
        "| component | share of run time | µs per relayed message (under cProfile) |",
        "|---|---:|---:|",
    ]
    for name, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        if name != _STARTUP:
            rows.append(f"| {name} | {seconds / counted:.0%} | {seconds / relayed * 1e6:.0f} |")
    return "\n".join(rows)


def profile_top(path: Path, count: int = 12) -> str:
    """The functions with the most own time in the profile."""
    ranked = sorted(_raw(path).items(), key=lambda item: -item[1][2])[:count]
    rows = ["| function | calls | own s | cumulative s |", "|---|---:|---:|---:|"]
    for (filename, line, function), (_cc, calls, own, cumulative, _callers) in ranked:
        where = "" if filename == "~" else f"{'/'.join(Path(filename).parts[-2:])}:{line} "
        rows.append(f"| `{where}{function}` | {calls:,} | {own:.2f} | {cumulative:.2f} |")
    return "\n".join(rows)
