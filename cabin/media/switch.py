"""Tracks whose source can change while they play: the resident page's view of the call.

The local leg to the resident's screen is set up once, when the page loads, long before any
doctor answers. Its tracks are :class:`SwitchableVideoTrack` and :class:`SwitchableAudioTrack`:
they play a quiet filler (black frames, silence) until :meth:`use` points them at a real
source (the doctor's relayed video and audio), and go back to the filler when the call ends.
Timestamps are the switch's own, so the browser sees one continuous stream throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

VIDEO_CLOCK = 90_000
AUDIO_RATE = 48_000
AUDIO_PTIME = 0.02


class _Switch(MediaStreamTrack):
    def __init__(self) -> None:
        super().__init__()
        self._source: MediaStreamTrack | None = None
        self._started: float | None = None

    def use(self, source: MediaStreamTrack | None) -> None:
        """Play ``source`` from now on (None: the filler)."""
        self._source = source

    @property
    def live(self) -> bool:
        return self._source is not None and self._source.readyState == "live"

    def _elapsed(self) -> float:
        now = time.monotonic()
        if self._started is None:
            self._started = now
        return now - self._started

    async def _from_source(self, wait_s: float) -> av.VideoFrame | av.AudioFrame | None:
        source = self._source
        if source is None or source.readyState != "live":
            return None
        try:
            async with asyncio.timeout(wait_s):
                frame = await source.recv()
        except (MediaStreamError, TimeoutError):
            if self._source is source:
                self._source = None
            return None
        return frame if isinstance(frame, av.VideoFrame | av.AudioFrame) else None


class SwitchableVideoTrack(_Switch):
    """Video that is the current source's, or black at ``filler_fps`` when there is none."""

    kind = "video"

    def __init__(self, *, width: int = 640, height: int = 360, filler_fps: float = 10.0) -> None:
        super().__init__()
        self._filler_period = 1.0 / filler_fps
        black = np.zeros((height, width, 3), dtype=np.uint8)
        self._black = av.VideoFrame.from_ndarray(black, format="bgr24").reformat(format="yuv420p")

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._from_source(wait_s=1.0)
        if frame is None:
            await asyncio.sleep(self._filler_period)
            frame = self._black
        out = frame if isinstance(frame, av.VideoFrame) else self._black
        out.pts = int(self._elapsed() * VIDEO_CLOCK)
        out.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return out


class SwitchableAudioTrack(_Switch):
    """Audio that is the current source's, or 20 ms frames of silence when there is none.

    Every frame leaves as 48 kHz stereo s16 (what aiortc's Opus decoder gives): an encoder
    downstream is set up by the first frame it sees and refuses any other format.
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._samples = 0
        self._resampler = av.AudioResampler(format="s16", layout="stereo", rate=AUDIO_RATE)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._from_source(wait_s=0.5)
        if frame is None or not isinstance(frame, av.AudioFrame):
            # pace the silence on the wall clock, as a microphone would
            due = self._samples / AUDIO_RATE
            with contextlib.suppress(ValueError):
                await asyncio.sleep(max(0.0, due - self._elapsed()))
            count = int(AUDIO_RATE * AUDIO_PTIME)
            frame = av.AudioFrame(format="s16", layout="stereo", samples=count)
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.sample_rate = AUDIO_RATE
        elif (frame.format.name, frame.layout.name, frame.sample_rate) != (
            "s16",
            "stereo",
            AUDIO_RATE,
        ):
            frame.pts = None
            converted = self._resampler.resample(frame)
            if not converted:
                return await self.recv()
            frame = converted[0]
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, frame.sample_rate or AUDIO_RATE)
        self._samples += frame.samples
        return frame
