"""The once-a-second quality loop: CPU from /proc/stat, ladder decisions applied to the call."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from cabin.callquality import CallQuality, cpu_busy
from cabin.consult_ui import advice, waiting_sentence
from cabin.media.camera import CameraTrack
from cabin.media.ladder import DegradationLadder, Level, LinkSample

STAT_1 = "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3\n"
STAT_2 = "cpu  250 0 150 900 0 0 0 0 0 0\n"


def test_cpu_busy_is_the_share_of_non_idle_ticks_between_two_readings() -> None:
    first, counters = cpu_busy(None, STAT_1)
    assert first is None
    busy, _ = cpu_busy(counters, STAT_2)
    assert busy == pytest.approx(200 / 300)


@dataclass
class Sender:
    track: Any
    replaced: list[Any] = field(default_factory=list)

    def replaceTrack(self, track: Any) -> None:  # noqa: N802 - aiortc's name
        self.replaced.append(track)
        self.track = track


class Track:
    kind = "video"


@dataclass
class FakePc:
    senders: list[Sender]

    def getSenders(self) -> list[Sender]:  # noqa: N802 - aiortc's name
        return self.senders


def test_audio_only_takes_the_video_off_its_sender_and_back() -> None:
    sent: list[dict[str, Any]] = []
    quality = CallQuality(
        call=type("Call", (), {"peer_connection": None})(),
        media=type("Media", (), {"video_tracks": []})(),
        metrics=None,
        send=sent.append,
    )
    track = Track()
    sender = Sender(track=track)
    pc = FakePc([sender])
    quality._apply(pc, Level.AUDIO_ONLY)
    assert sender.track is None
    quality._apply(pc, Level.SD_LOW_RATE)
    assert sender.track is track


def test_the_camera_track_follows_the_ladder() -> None:
    async def scenario() -> None:
        from cabin.media.camera import CameraSource, VideoProfile

        async with CameraSource("test-pattern", width=1280, height=720, fps=30) as camera:
            track: CameraTrack = camera.track(profile=VideoProfile(width=1280, height=720, fps=30))
            media = type("Media", (), {"video_tracks": [track]})()
            quality = CallQuality(call=None, media=media, metrics=None, send=lambda m: None)  # type: ignore[arg-type]
            quality._apply(FakePc([Sender(track=track)]), Level.SD)
            assert (track.profile.width, track.profile.height, track.profile.fps) == (854, 480, 30)
            track.stop()

    asyncio.run(scenario())


def test_a_lossy_link_steps_the_ladder_down_within_seconds() -> None:
    ladder = DegradationLadder()
    levels = [ladder.observe(LinkSample(at=float(t), loss=0.2, rtt_ms=400)).level for t in range(4)]
    assert levels[-1] is not Level.HD


def test_the_resident_is_told_plainly_where_they_are_and_what_the_doctor_advised() -> None:
    assert waiting_sentence(2, 290)[0] == "Ông/bà là người thứ 2. Thời gian chờ khoảng 5 phút."
    assert "Hiện chưa có bác sĩ trực" in waiting_sentence(1, None)[0]
    vi, en = advice("emergency-now")
    assert "115" in vi
    assert "115" in en
    assert advice("something-new")[0]  # an unknown code still says something safe
