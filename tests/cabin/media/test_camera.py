"""The camera: one capture task, several tracks with their own profiles, bounded queues."""

from __future__ import annotations

import asyncio
import fractions
import itertools
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from cabin.media.camera import (
    VIDEO_TIME_BASE,
    CameraError,
    CameraSource,
    CameraSpec,
    CameraTrack,
    VideoProfile,
)
from cabin.media.pattern import TestPattern, decode_counter, decode_timestamp


def _bgr(frame: av.VideoFrame) -> np.ndarray:
    return np.asarray(frame.to_ndarray(format="bgr24"))


def _pts(frame: av.VideoFrame) -> int:
    assert frame.pts is not None
    return frame.pts


async def _frames(track: CameraTrack, count: int) -> list[av.VideoFrame]:
    async with asyncio.timeout(10):
        return [await track.recv() for _ in range(count)]


def test_camera_specs_name_a_device_a_file_or_the_pattern() -> None:
    assert CameraSpec.parse("0") == CameraSpec("device", device=0)
    assert CameraSpec.parse("test-pattern") == CameraSpec("test-pattern")
    assert CameraSpec.parse("/tmp/clip.mp4") == CameraSpec("file", path=Path("/tmp/clip.mp4"))
    with pytest.raises(CameraError):
        CameraSpec.parse("  ")


def test_profiles_must_be_even_sized_with_a_sane_rate() -> None:
    with pytest.raises(ValueError, match="even"):
        VideoProfile(width=853, height=480, fps=30)
    with pytest.raises(ValueError, match="fps"):
        VideoProfile(width=854, height=480, fps=0)


def test_the_test_pattern_track_yields_720p30_i420_frames_on_the_90_khz_clock() -> None:
    async def scenario() -> tuple[list[av.VideoFrame], float]:
        async with CameraSource("test-pattern") as camera:
            track = camera.track()
            await track.recv()  # the first frame may wait for the capture to start
            started = time.monotonic()
            frames = await _frames(track, 30)
            return frames, time.monotonic() - started

    frames, elapsed = asyncio.run(scenario())
    assert {(f.width, f.height, f.format.name) for f in frames} == {(1280, 720, "yuv420p")}
    assert all(f.time_base == fractions.Fraction(1, 90_000) for f in frames)
    pts = [_pts(f) for f in frames]
    assert all(b > a for a, b in itertools.pairwise(pts))
    step = (pts[-1] - pts[0]) / (len(pts) - 1)
    assert 2400 < step < 3600  # 3000 ticks = 1/30 s
    assert 0.6 < elapsed < 2.0  # 30 frames at 30 fps
    counters = [decode_counter(_bgr(f)) for f in frames]
    readable = [c for c in counters if c is not None]
    assert readable == counters
    assert readable == sorted(readable)
    now_ms = int(time.time() * 1000) % 2**32
    stamp = decode_timestamp(_bgr(frames[-1]))
    assert stamp is not None
    assert 0 <= now_ms - stamp < 2000


def test_two_tracks_get_their_own_size_and_rate_from_one_capture() -> None:
    async def scenario() -> tuple[list[av.VideoFrame], list[av.VideoFrame], CameraSource]:
        async with CameraSource("test-pattern", width=640, height=360, fps=30) as camera:
            call = camera.track(profile=VideoProfile(width=320, height=180, fps=15))
            selfview = camera.track()
            calls, views = await asyncio.gather(_frames(call, 10), _frames(selfview, 20))
            return calls, views, camera

    calls, views, camera = asyncio.run(scenario())
    assert {(f.width, f.height) for f in calls} == {(320, 180)}
    assert {(f.width, f.height) for f in views} == {(640, 360)}
    call_step = (_pts(calls[-1]) - _pts(calls[0])) / (len(calls) - 1)
    view_step = (_pts(views[-1]) - _pts(views[0])) / (len(views) - 1)
    assert 1.6 < call_step / view_step < 2.4  # 15 fps against 30
    assert camera.frames_captured >= 20


def test_set_profile_changes_a_running_track_and_never_goes_below_its_rate() -> None:
    async def scenario() -> tuple[list[av.VideoFrame], list[av.VideoFrame]]:
        async with CameraSource("test-pattern", width=640, height=360) as camera:
            track = camera.track()
            before = await _frames(track, 5)
            track.set_profile(320, 240, 15)
            after = await _frames(track, 8)
            return before, after

    before, after = asyncio.run(scenario())
    assert {(f.width, f.height) for f in before} == {(640, 360)}
    assert {(f.width, f.height) for f in after[1:]} == {(320, 240)}
    steps = [_pts(b) - _pts(a) for a, b in itertools.pairwise(after[1:])]
    assert all(5000 < s < 7500 for s in steps), steps  # 6000 ticks = 1/15 s


def test_latest_is_a_downscaled_copy_readable_from_another_thread() -> None:
    async def scenario() -> tuple[np.ndarray | None, np.ndarray | None]:
        async with CameraSource("test-pattern") as camera:
            empty = camera.latest()
            track = camera.track()
            await track.recv()
            return empty, await asyncio.to_thread(camera.latest, max_width=320)

    empty, latest = asyncio.run(scenario())
    assert empty is None
    assert latest is not None
    assert latest.shape == (180, 320, 3)
    assert decode_counter(latest) is not None


def test_a_slow_consumer_finds_one_fresh_frame_not_a_backlog() -> None:
    async def scenario() -> tuple[CameraTrack, int, int]:
        async with CameraSource("test-pattern", width=320, height=240) as camera:
            track = camera.track()
            first = decode_counter(_bgr(await track.recv()))
            await asyncio.sleep(0.5)  # ~15 frames captured meanwhile
            assert track._queue.qsize() <= 1
            second = decode_counter(_bgr(await track.recv()))
            assert first is not None
            assert second is not None
            return track, first, second

    track, first, second = asyncio.run(scenario())
    assert second - first >= 10  # the newest frame, the ones in between dropped
    assert track.frames_dropped >= 10


def test_a_video_file_plays_in_a_loop(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30, (320, 240))
    pattern = TestPattern(width=320, height=240)
    for n in range(12):
        writer.write(pattern.frame(n))
    writer.release()

    async def scenario() -> list[int | None]:
        async with CameraSource(str(path), width=320, height=240, fps=60) as camera:
            frames = await _frames(camera.track(), 30)
            return [decode_counter(_bgr(f)) for f in frames]

    counters = asyncio.run(scenario())
    assert all(c is not None and 0 <= c < 12 for c in counters)
    wraps = sum(
        1 for a, b in itertools.pairwise(counters) if b is not None and a is not None and b < a
    )
    assert wraps >= 1


def test_a_missing_video_file_fails_the_capture_and_ends_the_tracks(tmp_path: Path) -> None:
    async def scenario() -> None:
        camera = CameraSource(str(tmp_path / "missing.mp4"))
        track = camera.track()
        with pytest.raises(CameraError, match="no such video file"):
            await camera.run()
        with pytest.raises(MediaStreamError):
            await track.recv()

    asyncio.run(scenario())


def test_closing_the_camera_ends_every_track_and_new_tracks_are_born_ended() -> None:
    async def scenario() -> None:
        camera = CameraSource("test-pattern", width=320, height=240)
        async with camera:
            track = camera.track()
            await track.recv()
        with pytest.raises(MediaStreamError):
            async with asyncio.timeout(2):
                await track.recv()
        assert camera.track().readyState == "ended"
        assert not camera.running

    asyncio.run(scenario())


class _StallingReader:
    """A device that delivers one frame and then hangs in every read."""

    paced = True

    def __init__(self) -> None:
        self.reads = 0
        self.release = threading.Event()

    def read(self) -> np.ndarray | None:
        self.reads += 1
        if self.reads > 1:
            self.release.wait(5)
            return None
        return TestPattern(width=320, height=240).frame(1)

    def close(self) -> None:
        self.release.set()


def test_a_stalled_camera_repeats_its_last_frame_and_still_stops() -> None:
    reader = _StallingReader()

    async def scenario() -> CameraTrack:
        camera = CameraSource(
            "0", width=320, height=240, stall_repeat=0.1, reader_factory=lambda: reader
        )
        async with camera:
            track = camera.track()
            frames = await _frames(track, 4)
            assert {decode_counter(_bgr(f)) for f in frames} == {1}
            reader.release.set()
        return track

    track = asyncio.run(scenario())
    assert track.frames_repeated >= 3


def test_capture_never_blocks_the_event_loop() -> None:
    async def scenario() -> float:
        worst = 0.0
        async with CameraSource("test-pattern") as camera:
            tracks = [
                camera.track(),
                camera.track(profile=VideoProfile(width=854, height=480, fps=15)),
            ]
            consumers = [asyncio.create_task(_frames(t, 15)) for t in tracks]
            loop = asyncio.get_running_loop()
            while not all(c.done() for c in consumers):
                before = loop.time()
                await asyncio.sleep(0.005)
                worst = max(worst, loop.time() - before - 0.005)
            await asyncio.gather(*consumers)
        return worst

    worst_lag = asyncio.run(scenario())
    assert worst_lag < 0.1, f"the loop stalled for {worst_lag * 1000:.0f} ms"


def test_an_aiortc_peer_receives_the_track_with_its_counters_intact() -> None:
    from aiortc import RTCPeerConnection

    async def scenario() -> list[int | None]:
        async with CameraSource("test-pattern", width=640, height=360) as camera:
            sender, receiver = RTCPeerConnection(), RTCPeerConnection()
            received: asyncio.Queue[object] = asyncio.Queue()
            receiver.on("track", received.put_nowait)
            try:
                sender.addTrack(camera.track())
                await sender.setLocalDescription(await sender.createOffer())
                await receiver.setRemoteDescription(sender.localDescription)
                await receiver.setLocalDescription(await receiver.createAnswer())
                await sender.setRemoteDescription(receiver.localDescription)
                async with asyncio.timeout(15):
                    remote = await received.get()
                    frames = [await remote.recv() for _ in range(10)]  # type: ignore[attr-defined]
            finally:
                await sender.close()
                await receiver.close()
            return [decode_counter(_bgr(f)) for f in frames]

    counters = asyncio.run(scenario())
    readable = [c for c in counters if c is not None]
    assert len(readable) >= 8
    assert readable == sorted(readable)


def test_the_track_time_base_is_the_rtp_video_clock() -> None:
    assert fractions.Fraction(1, 90_000) == VIDEO_TIME_BASE
