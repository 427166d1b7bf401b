"""The per-call quality record over aiortc's real stats objects, and its metrics."""

from __future__ import annotations

import datetime

import pytest
from aiortc.stats import (
    RTCInboundRtpStreamStats,
    RTCOutboundRtpStreamStats,
    RTCRemoteInboundRtpStreamStats,
    RTCStatsReport,
    RTCTransportStats,
)
from prometheus_client import CollectorRegistry

from cabin.media.ladder import LadderDecision, Level
from cabin.media.quality import (
    QualityMetrics,
    QualitySampler,
    StatsSnapshot,
    VideoCounters,
    rates,
    snapshot,
)

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def _report(
    *,
    video_bytes: int,
    audio_bytes: int = 0,
    received: int | None = None,
    lost: int | None = None,
    fraction_lost: int = 0,
    rtt_s: float | None = 0.042,
) -> RTCStatsReport:
    """A report shaped like ``RTCPeerConnection.getStats()`` from aiortc 1.x."""
    report = RTCStatsReport()
    report.add(
        RTCOutboundRtpStreamStats(
            timestamp=NOW, type="outbound-rtp", id="outbound-rtp_v", ssrc=1, kind="video",
            transportId="t", packetsSent=video_bytes // 1000, bytesSent=video_bytes, trackId="v",
        )
    )  # fmt: skip
    report.add(
        RTCOutboundRtpStreamStats(
            timestamp=NOW, type="outbound-rtp", id="outbound-rtp_a", ssrc=2, kind="audio",
            transportId="t", packetsSent=audio_bytes // 100, bytesSent=audio_bytes, trackId="a",
        )
    )  # fmt: skip
    if received is not None and lost is not None:
        report.add(
            RTCRemoteInboundRtpStreamStats(
                timestamp=NOW, type="remote-inbound-rtp", id="remote-inbound-rtp_v", ssrc=1,
                kind="video", transportId="t", packetsReceived=received, packetsLost=lost,
                jitter=3, roundTripTime=rtt_s, fractionLost=fraction_lost,  # type: ignore[arg-type]
            )
        )  # fmt: skip
    report.add(
        RTCInboundRtpStreamStats(
            timestamp=NOW, type="inbound-rtp", id="inbound-rtp_v", ssrc=9, kind="video",
            transportId="t", packetsReceived=500, packetsLost=5, jitter=1,
        )
    )  # fmt: skip
    report.add(
        RTCTransportStats(
            timestamp=NOW, type="transport", id="t", packetsSent=1, packetsReceived=1,
            bytesSent=10**9, bytesReceived=10**9, iceRole="controlling", dtlsState="connected",
        )
    )  # fmt: skip
    return report


def test_a_snapshot_takes_video_and_audio_bytes_rtt_and_losses_from_aiortcs_report() -> None:
    shot = snapshot(
        _report(video_bytes=250_000, audio_bytes=8_000, received=900, lost=12, fraction_lost=64),
        at=10.0,
        video=VideoCounters(300, 1280, 720),
    )
    assert shot == StatsSnapshot(
        at=10.0,
        video_bytes_sent=250_000,
        audio_bytes_sent=8_000,
        video_packets_sent=250,
        remote_packets_received=900,
        remote_packets_lost=12,
        fraction_lost=0.25,  # RTCP's 8-bit 64/256
        rtt_ms=0.042 * 1000.0,
        video=VideoCounters(300, 1280, 720),
    )


def test_a_browser_style_dict_report_reads_the_same() -> None:
    report = {
        "o": {"type": "outbound-rtp", "kind": "video", "bytesSent": 1000, "packetsSent": 2},
        "r": {
            "type": "remote-inbound-rtp",
            "kind": "video",
            "packetsReceived": 10,
            "packetsLost": 0,
            "fractionLost": 0.5,
            "roundTripTime": 0.1,
        },
    }
    shot = snapshot(report, at=1.0)
    assert (shot.video_bytes_sent, shot.fraction_lost, shot.rtt_ms) == (1000, 0.5, 100.0)


def test_rates_give_fps_bitrate_and_interval_loss() -> None:
    first = snapshot(
        _report(video_bytes=0, received=0, lost=0), at=0.0, video=VideoCounters(0, 1280, 720)
    )
    second = snapshot(
        _report(video_bytes=250_000, audio_bytes=4_000, received=190, lost=10),
        at=2.0,
        video=VideoCounters(60, 1280, 720),
    )
    sample = rates(first, second)
    assert sample.fps == pytest.approx(30.0)
    assert (sample.width, sample.height) == (1280, 720)
    assert sample.video_kbps == pytest.approx(1000.0)
    assert sample.audio_kbps == pytest.approx(16.0)
    assert sample.loss == pytest.approx(0.05)
    assert sample.rtt_ms == pytest.approx(42.0)


def test_before_any_receiver_report_rtt_and_loss_are_unknown() -> None:
    first = snapshot(_report(video_bytes=0), at=0.0)
    sample = rates(first, snapshot(_report(video_bytes=1000), at=1.0))
    assert (sample.rtt_ms, sample.loss, sample.fps) == (None, None, None)
    with pytest.raises(ValueError, match="out of order"):
        rates(first, first)


def _decision(at: float, previous: Level, level: Level) -> LadderDecision:
    return LadderDecision(at=at, previous=previous, level=level, reason="test")


def test_the_sampler_summarises_a_call_and_exports_metrics() -> None:
    registry = CollectorRegistry()
    metrics = QualityMetrics(registry)
    sampler = QualitySampler(metrics=metrics)
    for second in range(11):
        sampler.add(
            _report(video_bytes=second * 150_000, received=second * 100, lost=second),
            at=float(second),
            video=VideoCounters(second * 30, 1280, 720),
        )
    sampler.ladder_step(_decision(5.0, Level.HD, Level.SD))
    sampler.ladder_step(_decision(6.0, Level.SD, Level.SD))  # not a change: ignored
    for latency in (45.0, 50.0, 55.0, 120.0):
        sampler.glass_to_glass(latency)

    summary = sampler.summary()
    assert summary.samples == 10
    assert summary.duration_s == 10.0
    assert summary.fps_mean == pytest.approx(30.0)
    assert summary.resolution == "1280x720"
    assert summary.video_kbps_mean == pytest.approx(1200.0)
    assert summary.rtt_ms_p50 == pytest.approx(42.0)
    assert summary.loss_mean == pytest.approx(1 / 101)
    assert summary.glass_to_glass_ms_p50 == 55.0
    assert summary.ladder_steps == ("5s 720p30->480p30: test",)
    line = summary.log_line()
    assert "fps=30.0" in line
    assert "bitrate=1200kbps" in line
    assert "g2g=55ms" in line

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("cabin_call_video_fps") == pytest.approx(30.0)
    assert value("cabin_call_video_bitrate_kbps") == pytest.approx(1200.0)
    assert value("cabin_call_video_width_pixels") == 1280
    assert value("cabin_call_rtt_milliseconds") == pytest.approx(42.0)
    assert value("cabin_call_ladder_steps_total", direction="down") == 1
    assert value("cabin_call_video_level", cabin_call_video_level="480p30") == 1
    assert value("cabin_call_glass_to_glass_milliseconds_count") == 4
    assert value("cabin_call_calls_total") == 1


def test_an_empty_call_summarises_to_dashes() -> None:
    line = QualitySampler().summary().log_line()
    assert line.startswith("duration=0s samples=0 fps=-(min -)")


def test_metrics_live_in_the_registry_they_are_given() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    QualityMetrics(first)
    QualityMetrics(second)  # no clash: nothing goes to the global registry
    assert first.get_sample_value("cabin_call_calls_total") == 0
