"""During a call: measure the link every second, walk the degradation ladder, keep the record.

Each second :class:`CallQuality` reads the call's ``getStats()``, the sending camera track's
counters and the machine's CPU, turns them into a quality sample (``cabin.media.quality``),
and lets the ladder (``cabin.media.ladder``) decide the video level: 720p30 → 480p30 → 480p15
→ audio only and back. A change is applied to the camera track (size and rate) or, for audio
only, by taking the video track off its sender; the doctor and the resident's page are told
with a ``quality`` message. The vitals channel is not touched at any level. At hang-up
:meth:`CallQuality.finish` gives the summary that is logged and exported on ``/metrics``.

aiortc exposes no outgoing bandwidth estimate, so the ladder runs on loss, round-trip time
and CPU (its bitrate input stays None). The CPU is the cabin process's own share of a core
(``include_machine`` adds the whole machine's: on a shared machine other work would otherwise
push the cabin down the ladder for load it did not cause).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from cabin.media.camera import CameraTrack
from cabin.media.ladder import DegradationLadder, Level, LinkSample
from cabin.media.quality import CallSummary, QualityMetrics, QualitySampler, VideoCounters

logger = logging.getLogger(__name__)

PROC_STAT = Path("/proc/stat")


class _Call(Protocol):
    @property
    def peer_connection(self) -> Any: ...


class _Media(Protocol):
    video_tracks: list[Any]


def cpu_busy(previous: tuple[int, int] | None, text: str) -> tuple[float | None, tuple[int, int]]:
    """The machine's busy CPU fraction since ``previous`` from ``/proc/stat``'s first line.

    Returns the fraction (None on the first call) and the counters to pass next time.
    """
    fields = [int(v) for v in text.split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])
    if previous is None or total <= previous[1]:
        return None, (idle, total)
    busy = 1.0 - (idle - previous[0]) / (total - previous[1])
    return max(0.0, min(1.0, busy)), (idle, total)


class CallQuality:
    """The once-a-second loop of one call (owned by the call's task group)."""

    def __init__(
        self,
        *,
        call: _Call,
        media: _Media,
        metrics: QualityMetrics | None,
        send: Callable[[dict[str, Any]], None],
        ladder: DegradationLadder | None = None,
        period_s: float = 1.0,
        include_machine: bool = False,
    ) -> None:
        self._call = call
        self._media = media
        self._send = send
        self.ladder = ladder or DegradationLadder()
        self.sampler = QualitySampler(metrics=metrics)
        self._period_s = period_s
        self._cpu: tuple[int, int] | None = None
        self._process: tuple[float, float] | None = None
        self.include_machine = include_machine
        self._audio_only_sender: Any = None
        self._paused_track: Any = None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._period_s)
            pc = self._call.peer_connection
            if pc is None or pc.connectionState != "connected":
                continue
            await self.tick(pc)

    async def tick(self, pc: Any) -> None:
        report = await pc.getStats()
        track = self._video_track()
        counters = (
            None
            if track is None
            else VideoCounters(track.frames_delivered, track.profile.width, track.profile.height)
        )
        now = time.monotonic()
        sample = self.sampler.add(report, at=now, video=counters)
        cpu = self._machine_cpu()
        decision = self.ladder.observe(
            LinkSample(
                at=now,
                loss=None if sample is None else sample.loss,
                rtt_ms=None if sample is None else sample.rtt_ms,
                cpu=cpu,
            )
        )
        if decision.changed:
            self.sampler.ladder_step(decision)
            self._apply(pc, decision.level)
            logger.info("video level %s (%s)", decision.level.value, decision.reason)
            self._send(
                {
                    "type": "quality",
                    "level": decision.level.value,
                    "rtt_ms": None if sample is None else sample.rtt_ms,
                    "loss": None if sample is None else sample.loss,
                    "bitrate_kbps": None if sample is None else round(sample.video_kbps, 1),
                }
            )

    def _video_track(self) -> CameraTrack | None:
        tracks = [t for t in self._media.video_tracks if isinstance(t, CameraTrack)]
        return tracks[-1] if tracks else None

    def _apply(self, pc: Any, level: Level) -> None:
        sender = next(
            (s for s in pc.getSenders() if s.track is not None and s.track.kind == "video"), None
        )
        if level.video is None:
            if sender is not None:  # audio only: the sender idles, the track stays ours
                self._paused_track, self._audio_only_sender = sender.track, sender
                sender.replaceTrack(None)
            return
        if self._audio_only_sender is not None:
            self._audio_only_sender.replaceTrack(self._paused_track)
            self._audio_only_sender = None
        width, height, fps = level.video
        track = self._video_track()
        if track is not None:
            track.set_profile(width, height, fps)

    def _machine_cpu(self) -> float | None:
        """The cabin's own CPU: the larger of its process's share of one core and the
        machine's busy share. A Python process is bound to about one core, so its own share
        saturates first; the machine's share catches a cabin PC that is busy as a whole."""
        process = self._process_cpu()
        try:
            text = PROC_STAT.read_text()
        except OSError:
            return process
        busy, self._cpu = cpu_busy(self._cpu, text)
        if busy is None or process is None:
            return process if busy is None else busy
        return max(process, busy) if self.include_machine else process

    def _process_cpu(self) -> float | None:
        now, used = time.monotonic(), time.process_time()
        previous, self._process = self._process, (now, used)
        if previous is None or now <= previous[0]:
            return None
        return min(2.0, (used - previous[1]) / (now - previous[0]))

    def finish(self) -> CallSummary:
        return self.sampler.summary()
