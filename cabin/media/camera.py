"""The cabin's camera: one owner, one capture task, as many video tracks as consumers need.

``CameraSource`` opens the camera once (an OpenCV device index such as ``0``, a video file that
plays in a loop, or ``test-pattern``) and runs one capture loop: each blocking read happens in a
worker thread (``asyncio.to_thread``), never on the event loop.  Every captured frame goes to
the subscribers:

- ``track()`` returns a ``CameraTrack``, an aiortc ``MediaStreamTrack`` of kind ``video``
  that yields ``av.VideoFrame``s (``yuv420p``, pts on the 90 kHz RTP video clock) resized to
  that track's own ``VideoProfile``.  The remote call has one, the resident page's self-view
  another; ``CameraTrack.set_profile`` changes one track's size and rate while it runs (the
  degradation ladder), lowering the rate by dropping frames.
- ``latest()`` gives a downscaled copy of the newest frame to whoever polls (the framing
  assist, from its own thread).

Each track holds a bounded queue (one frame by default): when a consumer falls behind, the
oldest frame is dropped, so memory never grows and a slow consumer never delays the others.
If the camera stalls, a track repeats its last frame once per ``stall_repeat`` seconds so the
encoder and the far end keep a live (frozen) picture instead of a dead track.

Lifecycle: ``async with CameraSource(...) as camera`` owns the capture task; or put
``camera.run()`` in the caller's ``TaskGroup``.  When capture ends (stopped or failed) every
track ends too: ``recv()`` raises ``MediaStreamError``, which is how aiortc's sender stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol, Self

import av
import cv2
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from cabin.media.pattern import TestPattern

__all__ = [
    "VIDEO_TIME_BASE",
    "CameraError",
    "CameraSource",
    "CameraSpec",
    "CameraTrack",
    "CapturedFrame",
    "VideoProfile",
]

logger = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]

VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)
"""RTP's video clock (RFC 3551 section 5): what aiortc's encoders expect in ``frame.time_base``."""

TEST_PATTERN = "test-pattern"


class CameraError(Exception):
    """The camera could not be opened or stopped delivering frames; the message says which."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoProfile:
    """A track's output: frame size in pixels (even, for 4:2:0 chroma) and frames per second."""

    width: int
    height: int
    fps: float

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16 or self.width % 2 or self.height % 2:
            raise ValueError(f"frame size must be even and >= 16: {self.width}x{self.height}")
        if not 0 < self.fps <= 120:
            raise ValueError(f"fps out of range: {self.fps}")


@dataclass(frozen=True, slots=True)
class CameraSpec:
    """What ``--camera`` names: a device index, a video file, or the test pattern."""

    kind: Literal["device", "file", "test-pattern"]
    device: int | None = None
    path: Path | None = None

    @classmethod
    def parse(cls, text: str) -> CameraSpec:
        """``"0"`` -> device 0, ``"test-pattern"`` -> the pattern, anything else -> a file."""
        text = text.strip()
        if text == TEST_PATTERN:
            return cls("test-pattern")
        if text.isdigit():
            return cls("device", device=int(text))
        if not text:
            raise CameraError("no camera named")
        return cls("file", path=Path(text))

    def __str__(self) -> str:
        if self.kind == "device":
            return f"camera {self.device}"
        if self.kind == "file":
            return f"video file {self.path}"
        return TEST_PATTERN


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    """One frame as captured: BGR at the source's size, its number and its capture time."""

    image: Image
    index: int
    captured_at: float
    """``time.monotonic()`` when the read returned."""


class FrameReader(Protocol):
    """Blocking frame reads; called only from worker threads."""

    paced: bool
    """True when ``read`` itself waits for the next frame (a device); else the source paces."""

    def read(self) -> Image | None: ...

    def close(self) -> None: ...


class _PatternReader:
    """The test pattern, stamped with the frame number and the wall-clock capture time."""

    paced = False

    def __init__(self, *, width: int, height: int) -> None:
        self._pattern = TestPattern(width=width, height=height)
        self._count = 0

    def read(self) -> Image:
        image = self._pattern.frame(self._count, timestamp_ms=int(time.time() * 1000))
        self._count += 1
        return image

    def close(self) -> None:
        return None


class _OpenCvReader:
    """An OpenCV ``VideoCapture``: a device, or a file that starts again at its end."""

    def __init__(self, capture: cv2.VideoCapture, *, loop: bool) -> None:
        self._capture = capture
        self._loop = loop
        self._lock = threading.Lock()  # a cancelled read may still run when close() comes
        self.paced = not loop

    def read(self) -> Image | None:
        with self._lock:
            return self._read_locked()

    def _read_locked(self) -> Image | None:
        ok, image = self._capture.read()
        if ok:
            return np.asarray(image, dtype=np.uint8)
        if not self._loop:
            return None
        self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        ok, image = self._capture.read()
        return np.asarray(image, dtype=np.uint8) if ok else None

    def close(self) -> None:
        with self._lock:
            self._capture.release()


def open_reader(spec: CameraSpec, *, width: int, height: int, fps: float) -> FrameReader:
    """Open what ``spec`` names (blocking: call it from a worker thread)."""
    if spec.kind == "test-pattern":
        return _PatternReader(width=width, height=height)
    if spec.kind == "file":
        assert spec.path is not None
        if not spec.path.is_file():
            raise CameraError(f"no such video file: {spec.path}")
        capture = cv2.VideoCapture(str(spec.path))
        if not capture.isOpened():
            raise CameraError(f"cannot open video file {spec.path}")
        return _OpenCvReader(capture, loop=True)
    assert spec.device is not None
    capture = cv2.VideoCapture(spec.device)
    if not capture.isOpened():
        raise CameraError(f"cannot open {spec}")
    capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    capture.set(cv2.CAP_PROP_FPS, fps)
    capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a backlog (V4L2 honours it)
    return _OpenCvReader(capture, loop=False)


def _fit(image: Image, width: int, height: int) -> Image:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    # area averaging only where bilinear would alias (2x and more): 720p->480p bilinear
    # takes 0.5 ms, area 2.7 ms
    interpolation = cv2.INTER_AREA if image.shape[1] >= 2 * width else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(image, (width, height), interpolation=interpolation))


class CameraSource:
    """The one owner of the camera: captures at ``width`` x ``height`` and ``fps``.

    ``queue_size``: frames each track may hold (1: always the newest, the lowest latency).
    ``stall_repeat``: seconds without a frame after which a track repeats its last one.
    ``max_read_failures``: consecutive failed reads before the camera counts as failed.
    ``stop_timeout``: how long ``close`` waits for a blocking read to return.
    ``reader_factory`` replaces ``open_reader`` (tests, or a camera OpenCV cannot open).
    """

    def __init__(
        self,
        spec: str | CameraSpec,
        *,
        width: int = 1280,
        height: int = 720,
        fps: float = 30.0,
        queue_size: int = 1,
        stall_repeat: float = 1.0,
        max_read_failures: int = 30,
        stop_timeout: float = 5.0,
        reader_factory: Callable[[], FrameReader] | None = None,
    ) -> None:
        self.spec = spec if isinstance(spec, CameraSpec) else CameraSpec.parse(spec)
        self.profile = VideoProfile(width=width, height=height, fps=fps)
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._queue_size = queue_size
        self._stall_repeat = stall_repeat
        self._max_read_failures = max_read_failures
        self._stop_timeout = stop_timeout
        self._reader_factory = reader_factory
        self._tracks: set[CameraTrack] = set()
        self._latest: CapturedFrame | None = None
        self._ended = False
        self._task: asyncio.Task[None] | None = None
        self.frames_captured = 0

    async def __aenter__(self) -> Self:
        if self._task is not None:
            raise RuntimeError("camera already started")
        self._task = asyncio.create_task(self.run(), name=f"capture {self.spec}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the capture task started by ``async with`` and end every track."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # asyncio.wait neither raises the task's error nor swallows our own cancellation
            await asyncio.wait({task}, timeout=self._stop_timeout)
            if not task.done():
                logger.warning("camera %s did not stop in %.1f s", self.spec, self._stop_timeout)
            elif not task.cancelled() and task.exception() is not None:
                logger.error("camera %s failed: %s", self.spec, task.exception())
        self._end()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def track(self, *, profile: VideoProfile | None = None) -> CameraTrack:
        """A new video track for one consumer, at ``profile`` (default: the capture profile)."""
        track = CameraTrack(
            self,
            profile=profile or self.profile,
            queue_size=self._queue_size,
            stall_repeat=self._stall_repeat,
        )
        if self._ended:
            track.stop()
        else:
            self._tracks.add(track)
        return track

    def latest(self, *, max_width: int = 320) -> Image | None:
        """A copy of the newest frame, at most ``max_width`` wide (aspect kept), or ``None``.

        Safe to call from any thread; the resize runs in the caller's thread, so call it off the
        event loop (the framing assist does).
        """
        frame = self._latest
        if frame is None:
            return None
        height, width = frame.image.shape[:2]
        if width <= max_width:
            return frame.image.copy()
        new_height = max(round(height * max_width / width), 1)
        return _fit(frame.image, max_width, new_height)

    def latest_frame(self) -> CapturedFrame | None:
        """The newest captured frame itself (read-only: it is shared with every consumer)."""
        return self._latest

    async def run(self) -> None:
        """Capture until cancelled; raises ``CameraError`` if the camera fails.  Ends all tracks."""
        try:
            reader = await asyncio.to_thread(self._open)
            try:
                await self._capture(reader)
            finally:
                await asyncio.to_thread(reader.close)
        finally:
            self._end()

    def _open(self) -> FrameReader:
        if self._reader_factory is not None:
            return self._reader_factory()
        profile = self.profile
        return open_reader(self.spec, width=profile.width, height=profile.height, fps=profile.fps)

    async def _capture(self, reader: FrameReader) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.profile.fps
        due = loop.time()
        failures = 0
        logger.info("capturing from %s at %s", self.spec, self.profile)
        while True:
            if not reader.paced:
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                due += period
                if loop.time() - due > period:  # fell behind: restart the schedule, no burst
                    due = loop.time() + period
            image = await asyncio.to_thread(self._read, reader)
            if image is None:
                failures += 1
                if failures >= self._max_read_failures:
                    raise CameraError(f"{self.spec} delivered no frame {failures} times in a row")
                if reader.paced:
                    await asyncio.sleep(period)
                continue
            failures = 0
            self._publish(CapturedFrame(image, self.frames_captured, time.monotonic()))

    def _read(self, reader: FrameReader) -> Image | None:
        image = reader.read()
        if image is None:
            return None
        return _fit(image, self.profile.width, self.profile.height)

    def _publish(self, frame: CapturedFrame) -> None:
        self.frames_captured += 1
        self._latest = frame
        for track in self._tracks:
            track._offer(frame)

    def _unsubscribe(self, track: CameraTrack) -> None:
        self._tracks.discard(track)

    def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        for track in list(self._tracks):
            track._offer(None)
        self._tracks.clear()


class CameraTrack(MediaStreamTrack):
    """One consumer's video: frames from the camera, resized and decimated to its profile.

    Counters for the quality record: ``frames_delivered`` (returned by ``recv``),
    ``frames_dropped`` (skipped by the rate limit or overwritten in the queue) and
    ``frames_repeated`` (sent again while the camera stalled).
    """

    kind = "video"

    def __init__(
        self,
        source: CameraSource,
        *,
        profile: VideoProfile,
        queue_size: int,
        stall_repeat: float,
    ) -> None:
        super().__init__()
        self._source = source
        self._profile = profile
        self._queue: asyncio.Queue[CapturedFrame | None] = asyncio.Queue(maxsize=queue_size)
        self._stall_repeat = stall_repeat
        self._next_due: float | None = None
        self._first_capture: float | None = None
        self._last_pts = -1
        self._last: CapturedFrame | None = None
        self._source_ended = False
        self.frames_delivered = 0
        self.frames_dropped = 0
        self.frames_repeated = 0

    @property
    def profile(self) -> VideoProfile:
        return self._profile

    def set_profile(self, width: int, height: int, fps: float) -> None:
        """Change this track's output from the next frame on (size by scaling, rate by dropping)."""
        profile = VideoProfile(width=width, height=height, fps=fps)
        if profile != self._profile:
            logger.info("video track %s: %s -> %s", self.id, self._profile, profile)
            self._profile = profile
            self._next_due = None

    async def recv(self) -> av.VideoFrame:
        """The next frame at this track's profile; ``MediaStreamError`` once the camera ended."""
        if self.readyState != "live" or self._source_ended:
            raise MediaStreamError
        while True:
            try:
                async with asyncio.timeout(self._stall_repeat):
                    captured = await self._queue.get()
            except TimeoutError:
                if self._last is None:
                    continue  # nothing captured yet: keep waiting, a stall at a time
                self.frames_repeated += 1
                captured = CapturedFrame(self._last.image, self._last.index, time.monotonic())
                return await self._convert(captured)
            if captured is None:
                self._source_ended = True
                raise MediaStreamError
            if not self._due(captured.captured_at):
                self.frames_dropped += 1
                continue
            self._last = captured
            return await self._convert(captured)

    def stop(self) -> None:
        self._source._unsubscribe(self)
        super().stop()

    def _offer(self, frame: CapturedFrame | None) -> None:
        """Called on the loop by the source: enqueue, dropping the oldest frame when full."""
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
                self.frames_dropped += 1
        self._queue.put_nowait(frame)

    def _due(self, captured_at: float) -> bool:
        """Rate limit by capture time: keep a frame when this track's next slot has come."""
        period = 1.0 / self._profile.fps
        slack = period / 4  # capture jitter: a frame a little early still takes the slot
        if self._next_due is None or captured_at - self._next_due >= period:
            self._next_due = captured_at + period
            return True
        if captured_at + slack < self._next_due:
            return False
        self._next_due += period
        return True

    async def _convert(self, captured: CapturedFrame) -> av.VideoFrame:
        profile = self._profile
        data = await asyncio.to_thread(_to_i420, captured.image, profile.width, profile.height)
        frame = av.VideoFrame.from_ndarray(data, format="yuv420p")
        if self._first_capture is None:
            self._first_capture = captured.captured_at
        pts = round((captured.captured_at - self._first_capture) * VIDEO_CLOCK_RATE)
        pts = max(pts, self._last_pts + 1)
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        self.frames_delivered += 1
        return frame


def _to_i420(image: Image, width: int, height: int) -> Image:
    """Resize (when needed) and convert BGR to planar I420, in a worker thread."""
    fitted = _fit(image, width, height)
    return np.asarray(cv2.cvtColor(fitted, cv2.COLOR_BGR2YUV_I420))
