"""Pulse rate from the pleth: accuracy on seeded signals with known truth, and the verdict."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from vitals.dsp.ppg import Issue, PulseRate, clean, find_beats, heart_rate
from vitals.sim.pleth import PlethSource, synthesize

FULL_SCALE = 127  # the CMS50D+'s pleth range


def _device(signal: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """A 0..1 pleth as a device sends it: clipped to its range, quantised to 7 bits."""
    return np.round(np.clip(signal, 0.0, 1.0) * FULL_SCALE)


def _with_motion(
    *, heart_rate: float, seed: int, still: float, moving: float, after: float
) -> tuple[npt.NDArray[np.float64], float]:
    """``still`` s of pulse, ``moving`` s of the simulator's motion, ``after`` s of pulse."""
    fs = 60.0
    source = PlethSource(sampling_rate=fs, heart_rate=heart_rate, rng=np.random.default_rng(seed))
    parts = [
        source.samples(round(still * fs)),
        source.samples(round(moving * fs), motion=True),
        source.samples(round(after * fs)),
    ]
    truth = float(60.0 / np.diff(source.beat_times).mean())
    return _device(np.concatenate(parts)), truth


def test_clean_windows_are_within_1_per_min_across_40_to_180() -> None:
    errors = []
    for seed, rate in enumerate(range(40, 181, 10)):
        recording = synthesize(30.0, sampling_rate=60.0, heart_rate=rate, seed=seed)
        result = heart_rate(_device(recording.signal), sampling_rate=60.0)
        assert result.reliable, (rate, result.issues)
        assert result.bpm is not None
        errors.append(abs(result.bpm - recording.heart_rate))
    assert float(np.mean(errors)) <= 1.0
    assert max(errors) <= 1.0


@pytest.mark.parametrize(
    ("sampling_rate", "seconds", "rate"),
    [(25.0, 8.0, 40.0), (25.0, 60.0, 180.0), (75.0, 12.0, 95.0), (500.0, 60.0, 55.0)],
)
def test_works_from_8_to_60_s_at_25_to_500_hz(
    sampling_rate: float, seconds: float, rate: float
) -> None:
    recording = synthesize(seconds, sampling_rate=sampling_rate, heart_rate=rate, seed=3)
    result = heart_rate(recording.signal, sampling_rate=sampling_rate)
    assert result.reliable, result.issues
    assert result.bpm == pytest.approx(recording.heart_rate, abs=1.0)


def test_beats_are_found_where_the_systolic_peaks_are() -> None:
    recording = synthesize(30.0, sampling_rate=100.0, heart_rate=66.0, seed=8)
    beats = find_beats(clean(recording.signal, sampling_rate=100.0), sampling_rate=100.0)
    truth = recording.beat_times[(recording.beat_times > 0.5) & (recording.beat_times < 29.5)]
    found = beats.times[(beats.times > 0.5) & (beats.times < 29.5)]
    assert found.size == truth.size
    assert np.max(np.abs(found - truth)) < 0.03  # within 30 ms of each systolic peak


def test_the_diastolic_wave_of_a_slow_pulse_is_not_a_beat() -> None:
    recording = synthesize(30.0, sampling_rate=25.0, heart_rate=40.0, seed=0)
    result = heart_rate(recording.signal, sampling_rate=25.0)
    assert result.beats == recording.beat_times.size
    assert result.reliable


def test_white_noise_is_not_reliable() -> None:
    result = heart_rate(np.random.default_rng(1).normal(60, 20, 1800), sampling_rate=60.0)
    assert not result.reliable
    assert result.quality < 0.2


def test_a_flat_line_has_no_rate() -> None:
    result = heart_rate(np.full(1800, 64.0), sampling_rate=60.0)
    assert result == PulseRate(
        None, 0.0, False, clean_share=0.0, artefacts=((0.0, 30.0),), issues=result.issues
    )
    assert Issue.NO_PULSE in result.issues


def test_a_pulse_buried_in_noise_is_not_reliable() -> None:
    recording = synthesize(30.0, sampling_rate=60.0, heart_rate=80.0, seed=2)
    noisy = recording.signal + np.random.default_rng(2).normal(0.0, 0.5, recording.signal.size)
    assert not heart_rate(noisy, sampling_rate=60.0).reliable


def test_motion_throughout_is_not_reliable() -> None:
    pleth, _ = _with_motion(heart_rate=80.0, seed=5, still=0.0, moving=30.0, after=0.0)
    result = heart_rate(pleth, sampling_rate=60.0)
    assert not result.reliable
    assert result.quality < 0.5


def test_a_motion_episode_is_set_aside_and_the_rate_comes_from_clean_beats() -> None:
    pleth, truth = _with_motion(heart_rate=96.0, seed=7, still=12.0, moving=8.0, after=10.0)
    result = heart_rate(pleth, sampling_rate=60.0)
    assert result.reliable, result.issues
    assert result.bpm == pytest.approx(truth, abs=2.0)
    assert any(start < 20.0 and end > 12.0 for start, end in result.artefacts)
    assert result.clean_share < 0.85
    assert result.quality < heart_rate(pleth[:700], sampling_rate=60.0).quality


def test_severe_motion_windows_reported_reliable_are_within_2_per_min() -> None:
    """Two motion episodes (40 % of each window): most windows still give a trusted rate."""
    errors, reliable = [], 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        source = PlethSource(
            sampling_rate=60.0, heart_rate=rng.uniform(45, 150), rng=rng, noise=0.5
        )
        parts = [
            source.samples(seconds * 60, motion=moving)
            for seconds, moving in ((6, False), (5, True), (8, False), (7, True), (4, False))
        ]
        truth = float(60.0 / np.diff(source.beat_times).mean())
        result = heart_rate(_device(np.concatenate(parts)), sampling_rate=60.0)
        if result.reliable and result.bpm is not None:
            reliable += 1
            errors.append(abs(result.bpm - truth))
    assert reliable >= 8
    assert float(np.mean(errors)) <= 2.0


def test_a_knock_on_the_sensor_is_set_aside() -> None:
    recording = synthesize(30.0, sampling_rate=60.0, heart_rate=72.0, seed=9)
    knocked = recording.signal.copy()
    knocked[882:894] += 1.2 * np.hanning(12)  # a 0.2 s spike at 14.8 s, between two beats
    result = heart_rate(_device(knocked), sampling_rate=60.0)
    assert any(start <= 14.8 <= end for start, end in result.artefacts)
    assert result.reliable
    assert result.bpm == pytest.approx(recording.heart_rate, abs=1.0)


def test_excluded_samples_are_not_used() -> None:
    recording = synthesize(30.0, sampling_rate=60.0, heart_rate=110.0, seed=10)
    pleth = _device(recording.signal)
    exclude = np.zeros(pleth.size, dtype=bool)
    exclude[600:900] = True  # the finger was out from 10 to 15 s
    pleth[600:900] = 0.0
    result = heart_rate(pleth, sampling_rate=60.0, exclude=exclude)
    assert result.reliable
    assert result.bpm == pytest.approx(recording.heart_rate, abs=1.0)
    assert result.clean_share > 0.85  # of the samples that were not excluded


def test_missing_samples_count_as_excluded() -> None:
    recording = synthesize(20.0, sampling_rate=60.0, heart_rate=64.0, seed=12)
    pleth = _device(recording.signal)
    pleth[300:360] = np.nan
    result = heart_rate(pleth, sampling_rate=60.0)
    assert result.reliable
    assert result.bpm == pytest.approx(recording.heart_rate, abs=1.0)


def test_quality_is_high_for_a_clean_pulse() -> None:
    recording = synthesize(30.0, sampling_rate=60.0, heart_rate=75.0, seed=1)
    result = heart_rate(_device(recording.signal), sampling_rate=60.0)
    assert result.quality > 0.9
    assert result.template_match is not None
    assert result.template_match > 0.95
    assert result.skewness is not None
    assert result.skewness > 0.3
    assert result.clean_share == 1.0
    assert result.issues == ()


@pytest.mark.parametrize(("rate", "seconds"), [(20.0, 30.0), (60.0, 7.9), (600.0, 30.0)])
def test_windows_outside_the_working_range_are_refused(rate: float, seconds: float) -> None:
    with pytest.raises(ValueError, match=r"sampling rate|at least 8"):
        heart_rate(np.zeros(round(rate * seconds)), sampling_rate=rate)
