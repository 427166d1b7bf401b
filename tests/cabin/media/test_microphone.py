"""The synthetic microphones: 20 ms frames at 48 kHz, monotonic pts, a real 440 Hz tone."""

from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np
import pytest

from cabin.media.microphone import MicrophoneError, SyntheticAudioTrack, microphone


async def _frames(track: SyntheticAudioTrack, count: int) -> list[av.AudioFrame]:
    async with asyncio.timeout(10):
        return [await track.recv() for _ in range(count)]


def test_tone_frames_are_20_ms_of_48_khz_mono_s16_with_sample_counted_pts() -> None:
    track = microphone("tone")
    assert isinstance(track, SyntheticAudioTrack)
    assert track.kind == "audio"
    frames = asyncio.run(_frames(track, 5))
    assert {(f.samples, f.sample_rate, f.format.name, f.layout.name) for f in frames} == {
        (960, 48_000, "s16", "mono")
    }
    assert [f.pts for f in frames] == [0, 960, 1920, 2880, 3840]
    assert all(f.time_base == fractions.Fraction(1, 48_000) for f in frames)


def test_the_tone_is_440_hz() -> None:
    track = SyntheticAudioTrack(paced=False)
    frames = asyncio.run(_frames(track, 50))  # one second
    signal = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    peak_hz = np.fft.rfftfreq(len(signal), d=1 / 48_000)[int(np.argmax(spectrum))]
    assert peak_hz == pytest.approx(440.0, abs=1.0)
    assert 0.2 < np.abs(signal).max() / 32767 < 0.3  # the default amplitude, no clipping


def test_the_tone_is_continuous_across_frames() -> None:
    frames = asyncio.run(_frames(SyntheticAudioTrack(paced=False), 3))
    signal = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float64)
    step = np.abs(np.diff(signal)).max()
    assert step < 0.25 * 32767 * 2 * np.pi * 440 / 48_000 * 1.05  # no jump at frame edges


def test_silence_is_all_zeros() -> None:
    frames = asyncio.run(_frames(microphone("silence"), 3))  # type: ignore[arg-type]
    assert all(not f.to_ndarray().any() for f in frames)
    assert [f.pts for f in frames] == [0, 960, 1920]


def test_a_paced_track_runs_in_real_time() -> None:
    async def scenario() -> float:
        track = SyntheticAudioTrack()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await _frames(track, 11)  # the first is immediate, then 10 x 20 ms
        return loop.time() - started

    assert 0.18 <= asyncio.run(scenario()) < 0.5


def test_a_stopped_track_ends() -> None:
    from aiortc.mediastreams import MediaStreamError

    track = SyntheticAudioTrack(paced=False)
    track.stop()
    with pytest.raises(MediaStreamError):
        asyncio.run(track.recv())


@pytest.mark.parametrize("spec", ["", "beep", "alsa:", "oss:default"])
def test_unknown_microphones_are_refused(spec: str) -> None:
    with pytest.raises(MicrophoneError):
        microphone(spec)
