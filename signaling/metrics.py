"""Prometheus metrics of one signaling node, in a registry of its own (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_WAIT_BUCKETS = (10, 30, 60, 120, 300, 600, 900, 1800, 3600)
_RELAY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1)


class Metrics:
    """What an operator watches: connections, queues, waits, calls, relay latency, errors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections = Gauge(
            "signaling_connections",
            "Open authenticated connections on this node",
            ["role"],
            registry=r,
        )
        self.queue_length = Gauge(
            "signaling_queue_length", "Residents waiting, per queue", ["hospital"], registry=r
        )
        self.waiting_time = Histogram(
            "signaling_queue_wait_seconds",
            "Time from joining the queue to a doctor's accept",
            ["hospital"],
            buckets=_WAIT_BUCKETS,
            registry=r,
        )
        self.calls_started = Counter(
            "signaling_calls_started", "Calls started by accepts on this node", registry=r
        )
        self.calls_ended = Counter(
            "signaling_calls_ended", "Calls ended, by reason", ["reason"], registry=r
        )
        self.relay_latency = Histogram(
            "signaling_relay_seconds",
            "From receiving an offer/answer/candidate to handing it to the peer's route",
            buckets=_RELAY_BUCKETS,
            registry=r,
        )
        self.relayed = Counter(
            "signaling_relayed_messages", "Relayed messages", ["kind"], registry=r
        )
        self.errors = Counter(
            "signaling_errors", "Error messages sent to clients, by code", ["code"], registry=r
        )
        self.resumes = Counter("signaling_resumes", "Sessions resumed on this node", registry=r)

    def render(self) -> bytes:
        """The text exposition format for ``/metrics``."""
        return generate_latest(self.registry)
