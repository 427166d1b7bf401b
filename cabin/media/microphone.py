"""The cabin's microphone: an audio track from a capture device, or a tone or silence for tests.

``microphone(spec)`` returns an aiortc ``MediaStreamTrack`` of kind ``audio``:

- ``"tone"``: a 440 Hz sine (a recognisable signal for end-to-end tests: the far end can find
  the peak in its spectrum);
- ``"silence"``: digital silence;
- ``"alsa:DEVICE"`` / ``"pulse:DEVICE"`` (``alsa:default``, ``pulse:default``, ``alsa:hw:1``):
  a capture device opened by FFmpeg through aiortc's ``MediaPlayer(device, format=...)``.

The synthetic tracks give what WebRTC's Opus path wants without resampling: 48 kHz, mono,
signed 16-bit, 20 ms frames (960 samples, the Opus frame aiortc packetises, ``AUDIO_PTIME``),
``pts`` counted in samples with ``time_base = 1/48000``; they pace themselves on the loop's
monotonic clock, like a device would.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import math

import av
import numpy as np
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

__all__ = ["DEVICE_FORMATS", "MicrophoneError", "SyntheticAudioTrack", "microphone"]

logger = logging.getLogger(__name__)

DEVICE_FORMATS = ("alsa", "pulse")
"""FFmpeg input formats accepted as ``FORMAT:DEVICE``."""


class MicrophoneError(Exception):
    """The microphone spec is not understood or the device could not be opened."""


class SyntheticAudioTrack(MediaStreamTrack):
    """A sine tone (``frequency`` Hz) or silence (``amplitude`` 0), paced in real time.

    ``paced=False`` returns frames as fast as they are asked for (tests that analyse many).
    """

    kind = "audio"

    def __init__(
        self,
        *,
        frequency: float = 440.0,
        amplitude: float = 0.25,
        sample_rate: int = 48_000,
        ptime: float = 0.020,
        paced: bool = True,
    ) -> None:
        super().__init__()
        if not 0.0 <= amplitude <= 1.0:
            raise ValueError(f"amplitude must be within 0..1: {amplitude}")
        if not 0 < frequency < sample_rate / 2:
            raise ValueError(f"frequency must be below Nyquist: {frequency}")
        self.frequency = frequency
        self.amplitude = amplitude
        self.sample_rate = sample_rate
        self.samples_per_frame = round(sample_rate * ptime)
        self._time_base = fractions.Fraction(1, sample_rate)
        self._paced = paced
        self._sent = 0  # samples handed out so far = the next frame's pts
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._paced:
            loop = asyncio.get_running_loop()
            if self._start is None:
                self._start = loop.time()
            delay = self._start + self._sent / self.sample_rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        frame = av.AudioFrame.from_ndarray(self._samples(), format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self._sent
        frame.time_base = self._time_base
        self._sent += self.samples_per_frame
        return frame

    def _samples(self) -> np.ndarray[tuple[int, int], np.dtype[np.int16]]:
        if self.amplitude == 0.0:
            return np.zeros((1, self.samples_per_frame), dtype=np.int16)
        n = np.arange(self._sent, self._sent + self.samples_per_frame, dtype=np.float64)
        wave = self.amplitude * np.sin(2 * math.pi * self.frequency * n / self.sample_rate)
        return np.round(wave * 32767).astype(np.int16).reshape(1, -1)


def microphone(spec: str, *, tone_frequency: float = 440.0) -> MediaStreamTrack:
    """The audio track ``spec`` names: ``tone``, ``silence``, ``alsa:DEVICE`` or ``pulse:DEVICE``.

    Opening a device happens here (FFmpeg opens it in ``MediaPlayer``'s constructor; quick
    for ALSA and Pulse); the player's reading thread starts when the track is first read.
    """
    spec = spec.strip()
    if spec == "tone":
        return SyntheticAudioTrack(frequency=tone_frequency)
    if spec == "silence":
        return SyntheticAudioTrack(amplitude=0.0)
    kind, _, device = spec.partition(":")
    if kind not in DEVICE_FORMATS or not device:
        raise MicrophoneError(
            f"unknown microphone {spec!r}: use tone, silence, alsa:DEVICE or pulse:DEVICE"
        )
    try:
        player = MediaPlayer(device, format=kind)
    except (av.FFmpegError, OSError) as error:
        raise MicrophoneError(f"cannot open microphone {spec!r}: {error}") from error
    if player.audio is None:
        raise MicrophoneError(f"microphone {spec!r} has no audio stream")
    logger.info("microphone %s opened", spec)
    track: MediaStreamTrack = player.audio
    return track
