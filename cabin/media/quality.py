"""The per-call quality record: fps, resolution, bitrate, RTT, loss, ladder steps, latency.

What aiortc 1.x reports (``RTCPeerConnection.getStats()`` merges every sender's and
receiver's report; read aiortc/rtcrtpsender.py and stats.py):

==================== ============================================================================
type                 fields
==================== ============================================================================
outbound-rtp         kind, ssrc, packetsSent, bytesSent (cumulative; **no** framesEncoded,
                     frameWidth, frameHeight or framesPerSecond)
remote-inbound-rtp   kind, packetsReceived, packetsLost (cumulative, from the far end's RTCP
                     receiver reports), jitter, roundTripTime (seconds; ``None`` until the first
                     report that echoes a sender report), fractionLost (**the raw RTCP 8-bit
                     value 0..255**, not a fraction: a browser gives a float 0..1)
inbound-rtp          kind, packetsReceived, packetsLost, jitter
remote-outbound-rtp  kind, packetsSent, bytesSent
transport            packetsSent/Received, bytesSent/Received, iceRole, dtlsState
==================== ============================================================================

So bitrate, RTT and loss come from the report, while frames and resolution come from our own
sending track (``CameraTrack.frames_delivered`` and ``profile``) as ``VideoCounters``.

Layers: ``snapshot(report, at=..., video=...)`` flattens a report into a ``StatsSnapshot``;
``rates(previous, current)`` turns two snapshots into a ``QualitySample`` (pure).
``QualitySampler`` keeps one call's samples, ladder steps and glass-to-glass latencies,
writes them to ``QualityMetrics`` (prometheus-client metrics in a registry the service passes
in - never the global one) and gives ``summary()`` for the log line at hang-up.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram

from cabin.media.ladder import LadderDecision, Level

__all__ = [
    "CallSummary",
    "QualityMetrics",
    "QualitySample",
    "QualitySampler",
    "StatsSnapshot",
    "VideoCounters",
    "rates",
    "snapshot",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VideoCounters:
    """What the sending video track counted: frames handed to the encoder, and its size."""

    frames: int
    width: int
    height: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StatsSnapshot:
    """The cumulative counters of one stats report, at ``at`` (monotonic seconds)."""

    at: float
    video_bytes_sent: int = 0
    audio_bytes_sent: int = 0
    video_packets_sent: int = 0
    remote_packets_received: int | None = None
    remote_packets_lost: int | None = None
    fraction_lost: float | None = None
    rtt_ms: float | None = None
    video: VideoCounters | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QualitySample:
    """One interval's rates (``None``: not measurable in this interval)."""

    at: float
    interval_s: float
    fps: float | None
    width: int | None
    height: int | None
    video_kbps: float
    audio_kbps: float
    rtt_ms: float | None
    loss: float | None


def _fields(stats: object) -> Mapping[str, Any]:
    """An aiortc stats dataclass or a browser's stats dict, as a mapping."""
    if isinstance(stats, Mapping):
        return stats
    if dataclasses.is_dataclass(stats) and not isinstance(stats, type):
        return {f.name: getattr(stats, f.name) for f in dataclasses.fields(stats)}
    return {}


def _loss_fraction(value: object) -> float | None:
    """RTCP's 8-bit fraction (an int 0..255, aiortc) or a float 0..1 (browsers)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value / 256.0
    if isinstance(value, float):
        return value
    return None


def snapshot(
    report: Mapping[str, object], *, at: float, video: VideoCounters | None = None
) -> StatsSnapshot:
    """Flatten a ``getStats()`` report (pure).  Several streams of a kind are added up."""
    video_bytes = audio_bytes = video_packets = 0
    received: int | None = None
    lost: int | None = None
    fraction: float | None = None
    rtts: list[float] = []
    for stats in report.values():
        values = _fields(stats)
        kind = values.get("kind")
        match values.get("type"):
            case "outbound-rtp":
                if kind == "video":
                    video_bytes += int(values.get("bytesSent") or 0)
                    video_packets += int(values.get("packetsSent") or 0)
                elif kind == "audio":
                    audio_bytes += int(values.get("bytesSent") or 0)
            case "remote-inbound-rtp" if kind == "video":
                received = (received or 0) + int(values.get("packetsReceived") or 0)
                lost = (lost or 0) + int(values.get("packetsLost") or 0)
                fraction = _loss_fraction(values.get("fractionLost"))
                rtt = values.get("roundTripTime")
                if isinstance(rtt, int | float) and not isinstance(rtt, bool):
                    rtts.append(float(rtt) * 1000.0)
            case _:
                pass
    return StatsSnapshot(
        at=at,
        video_bytes_sent=video_bytes,
        audio_bytes_sent=audio_bytes,
        video_packets_sent=video_packets,
        remote_packets_received=received,
        remote_packets_lost=lost,
        fraction_lost=fraction,
        rtt_ms=max(rtts) if rtts else None,
        video=video,
    )


def rates(previous: StatsSnapshot, current: StatsSnapshot) -> QualitySample:
    """The rates between two snapshots of the same call (pure).

    Loss is the share of packets lost among those the far end accounted for in the interval
    (from the cumulative counters); when they did not move, RTCP's own fraction is used.
    """
    interval = current.at - previous.at
    if interval <= 0:
        raise ValueError(f"snapshots out of order: {previous.at} then {current.at}")
    video_kbps = max(current.video_bytes_sent - previous.video_bytes_sent, 0) * 8 / interval / 1e3
    audio_kbps = max(current.audio_bytes_sent - previous.audio_bytes_sent, 0) * 8 / interval / 1e3
    fps: float | None = None
    width = height = None
    if current.video is not None:
        width, height = current.video.width, current.video.height
        if previous.video is not None:
            fps = max(current.video.frames - previous.video.frames, 0) / interval
    loss = current.fraction_lost
    if (
        current.remote_packets_lost is not None
        and current.remote_packets_received is not None
        and previous.remote_packets_lost is not None
        and previous.remote_packets_received is not None
    ):
        lost = current.remote_packets_lost - previous.remote_packets_lost
        got = current.remote_packets_received - previous.remote_packets_received
        if lost + got > 0:
            loss = min(max(lost / (lost + got), 0.0), 1.0)
    return QualitySample(
        at=current.at,
        interval_s=interval,
        fps=fps,
        width=width,
        height=height,
        video_kbps=video_kbps,
        audio_kbps=audio_kbps,
        rtt_ms=current.rtt_ms,
        loss=loss,
    )


class QualityMetrics:
    """The call-quality metrics on ``/metrics``, registered once per service in ``registry``."""

    def __init__(self, registry: CollectorRegistry, *, namespace: str = "cabin_call") -> None:
        self.fps = Gauge(
            "video_fps", "Frames per second sent", namespace=namespace, registry=registry
        )
        self.width = Gauge(
            "video_width_pixels", "Width of the video sent", namespace=namespace, registry=registry
        )
        self.height = Gauge(
            "video_height_pixels",
            "Height of the video sent",
            namespace=namespace,
            registry=registry,
        )
        self.video_kbps = Gauge(
            "video_bitrate_kbps", "Video bitrate sent", namespace=namespace, registry=registry
        )
        self.rtt_ms = Gauge(
            "rtt_milliseconds", "Round-trip time (RTCP)", namespace=namespace, registry=registry
        )
        self.loss = Gauge(
            "loss_ratio", "Share of video packets lost", namespace=namespace, registry=registry
        )
        self.level = Enum(
            "video_level",
            "Degradation ladder level",
            states=[level.value for level in Level],
            namespace=namespace,
            registry=registry,
        )
        self.ladder_steps = Counter(
            "ladder_steps",
            "Degradation ladder level changes",
            ["direction"],
            namespace=namespace,
            registry=registry,
        )
        self.glass_to_glass = Histogram(
            "glass_to_glass_milliseconds",
            "Glass-to-glass latency estimates",
            buckets=(20, 40, 60, 80, 100, 150, 200, 300, 500, 1000),
            namespace=namespace,
            registry=registry,
        )
        self.calls = Counter("calls", "Calls recorded", namespace=namespace, registry=registry)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallSummary:
    """One call's quality, for the log line at hang-up and the visit record."""

    duration_s: float
    samples: int
    fps_mean: float | None
    fps_min: float | None
    resolution: str | None
    video_kbps_mean: float | None
    rtt_ms_p50: float | None
    rtt_ms_max: float | None
    loss_mean: float | None
    loss_max: float | None
    glass_to_glass_ms_p50: float | None
    glass_to_glass_ms_p95: float | None
    ladder_steps: tuple[str, ...] = field(default=())

    def log_line(self) -> str:
        """``key=value`` pairs, ``-`` for what was not measured."""

        def show(value: float | None, form: str) -> str:
            return "-" if value is None else form.format(value)

        parts = [
            f"duration={self.duration_s:.0f}s",
            f"samples={self.samples}",
            f"fps={show(self.fps_mean, '{:.1f}')}(min {show(self.fps_min, '{:.1f}')})",
            f"resolution={self.resolution or '-'}",
            f"bitrate={show(self.video_kbps_mean, '{:.0f}')}kbps",
            f"rtt={show(self.rtt_ms_p50, '{:.0f}')}ms(max {show(self.rtt_ms_max, '{:.0f}')})",
            f"loss={show(self.loss_mean, '{:.2%}')}(max {show(self.loss_max, '{:.2%}')})",
            f"g2g={show(self.glass_to_glass_ms_p50, '{:.0f}')}ms"
            f"(p95 {show(self.glass_to_glass_ms_p95, '{:.0f}')})",
            f"ladder_steps={len(self.ladder_steps)}",
        ]
        return " ".join(parts) + "".join(f"\n  {step}" for step in self.ladder_steps)


def _percentile(values: Iterable[float], fraction: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    index = min(round(fraction * (len(ordered) - 1)), len(ordered) - 1)
    return ordered[index]


class QualitySampler:
    """One call's quality: feed ``add`` about once a second, ``summary()`` at hang-up."""

    def __init__(self, *, metrics: QualityMetrics | None = None, max_samples: int = 7200) -> None:
        self._metrics = metrics
        self._max_samples = max_samples
        self._previous: StatsSnapshot | None = None
        self._first_at: float | None = None
        self.samples: list[QualitySample] = []
        self.ladder_steps: list[LadderDecision] = []
        self.glass_to_glass_ms: list[float] = []
        if metrics is not None:
            metrics.calls.inc()

    def add(
        self, report: Mapping[str, object], *, at: float, video: VideoCounters | None = None
    ) -> QualitySample | None:
        """Take one ``getStats()`` report; returns the interval's sample (none for the first)."""
        current = snapshot(report, at=at, video=video)
        previous, self._previous = self._previous, current
        if self._first_at is None:
            self._first_at = at
        if previous is None or at <= previous.at:
            return None
        sample = rates(previous, current)
        if len(self.samples) >= self._max_samples:  # bounded: a very long call keeps its tail
            del self.samples[0]
        self.samples.append(sample)
        self._export(sample)
        return sample

    def ladder_step(self, decision: LadderDecision) -> None:
        """Record a ladder decision that changed the level."""
        if not decision.changed:
            return
        self.ladder_steps.append(decision)
        if self._metrics is not None:
            order = list(Level)
            down = order.index(decision.level) > order.index(decision.previous)
            self._metrics.ladder_steps.labels(direction="down" if down else "up").inc()
            self._metrics.level.state(decision.level.value)

    def glass_to_glass(self, milliseconds: float) -> None:
        """Record one glass-to-glass latency estimate (filled by whoever measures it)."""
        self.glass_to_glass_ms.append(milliseconds)
        if self._metrics is not None:
            self._metrics.glass_to_glass.observe(milliseconds)

    def summary(self) -> CallSummary:
        samples = self.samples
        fps = [s.fps for s in samples if s.fps is not None]
        rtt = [s.rtt_ms for s in samples if s.rtt_ms is not None]
        loss = [s.loss for s in samples if s.loss is not None]
        sizes = [f"{s.width}x{s.height}" for s in samples if s.width and s.height]
        end = self._previous.at if self._previous is not None else 0.0
        return CallSummary(
            duration_s=end - (self._first_at if self._first_at is not None else end),
            samples=len(samples),
            fps_mean=statistics.fmean(fps) if fps else None,
            fps_min=min(fps) if fps else None,
            resolution=statistics.mode(sizes) if sizes else None,
            video_kbps_mean=statistics.fmean(s.video_kbps for s in samples) if samples else None,
            rtt_ms_p50=_percentile(rtt, 0.5),
            rtt_ms_max=max(rtt) if rtt else None,
            loss_mean=statistics.fmean(loss) if loss else None,
            loss_max=max(loss) if loss else None,
            glass_to_glass_ms_p50=_percentile(self.glass_to_glass_ms, 0.5),
            glass_to_glass_ms_p95=_percentile(self.glass_to_glass_ms, 0.95),
            ladder_steps=tuple(
                f"{d.at:.0f}s {d.previous}->{d.level}: {d.reason}" for d in self.ladder_steps
            ),
        )

    def _export(self, sample: QualitySample) -> None:
        metrics = self._metrics
        if metrics is None:
            return
        metrics.video_kbps.set(sample.video_kbps)
        if sample.fps is not None:
            metrics.fps.set(sample.fps)
        if sample.width is not None and sample.height is not None:
            metrics.width.set(sample.width)
            metrics.height.set(sample.height)
        if sample.rtt_ms is not None:
            metrics.rtt_ms.set(sample.rtt_ms)
        if sample.loss is not None:
            metrics.loss.set(sample.loss)
