"""Pleth quality: artefact stretches, template matching, skewness, and the sample clock."""

from __future__ import annotations

import numpy as np
import pytest

from vitals.dsp.ppg import clean
from vitals.dsp.ppg_quality import (
    artefact_mask,
    odd_amplitudes,
    runs,
    skewness,
    template_correlations,
)
from vitals.dsp.ppg_stream import on_sample_clock
from vitals.sim.pleth import synthesize

FS = 60.0


def _pulse(seconds: float = 20.0, *, seed: int = 1) -> np.ndarray:
    return np.round(synthesize(seconds, sampling_rate=FS, heart_rate=75.0, seed=seed).signal * 127)


def test_runs_are_half_open_ranges() -> None:
    mask = np.array([1, 1, 0, 0, 1, 0, 1, 1, 1], dtype=bool)
    assert runs(mask) == [(0, 2), (4, 5), (6, 9)]
    assert runs(np.zeros(4, dtype=bool)) == []


def test_a_clean_pulse_has_no_artefact() -> None:
    pleth = _pulse()
    assert not artefact_mask(pleth, clean(pleth, sampling_rate=FS), sampling_rate=FS).any()


def test_a_clipped_stretch_is_an_artefact() -> None:
    pleth = _pulse()
    pleth[600:630] = 127  # half a second pinned at the top of the range
    bad = artefact_mask(pleth, clean(pleth, sampling_rate=FS), sampling_rate=FS)
    assert bad[600:630].all()
    assert not bad[:300].any()


def test_a_large_swing_is_an_artefact() -> None:
    pleth = _pulse()
    t = np.arange(240) / FS
    pleth[600:840] += 250 * np.sin(2 * np.pi * 1.3 * t)  # a 4 s swing of twice full scale
    bad = artefact_mask(pleth, clean(pleth, sampling_rate=FS), sampling_rate=FS)
    assert bad[620:820].all()
    assert bad.mean() < 0.5


def test_a_dropout_is_an_artefact() -> None:
    pleth = _pulse()
    pleth[600:780] = pleth[600]  # the pulse disappears for 3 s
    bad = artefact_mask(pleth, clean(pleth, sampling_rate=FS), sampling_rate=FS)
    assert bad[660:720].all()


def test_excluded_samples_and_their_filter_settling_are_artefact() -> None:
    pleth = _pulse()
    gone = np.zeros(pleth.size, dtype=bool)
    gone[600:700] = True
    bad = artefact_mask(pleth, clean(pleth, sampling_rate=FS), sampling_rate=FS, unavailable=gone)
    assert bad[540:760].all()  # widened by one second of filter settling each side
    assert not bad[:400].any()


def test_identical_beats_match_their_template_and_a_distorted_one_does_not() -> None:
    beat = np.sin(np.linspace(0, np.pi, 30)) ** 3
    y = np.tile(np.concatenate([np.zeros(10), beat, np.zeros(10)]), 10)
    peaks = np.arange(10) * 50 + 25
    y[5 * 50 + 10 : 5 * 50 + 40] = np.linspace(1, -1, 30)  # beat 5 is a ramp, not a pulse
    r = template_correlations(y, peaks, half_width=20)
    assert np.all(np.delete(r, 5) > 0.99)
    assert r[5] < 0.5


def test_a_beat_too_near_the_edge_is_not_scored() -> None:
    y = np.tile(np.sin(np.linspace(0, 2 * np.pi, 50)), 6)
    r = template_correlations(y, np.array([5, 62, 112, 162, 212, 262]), half_width=20)
    assert np.isnan(r[0])
    assert np.all(r[1:] > 0.99)


def test_odd_rises_are_flagged() -> None:
    y = np.tile(np.concatenate([np.zeros(20), np.hanning(20)]), 8)
    y[40 * 3 : 40 * 4] *= 3.0  # beat 3 rises three times as high
    peaks = np.arange(8) * 40 + 30
    assert odd_amplitudes(y, peaks).tolist() == [i == 3 for i in range(8)]


def test_a_pulse_is_skewed_and_noise_is_not() -> None:
    pulse = clean(_pulse(), sampling_rate=FS)
    noise = clean(np.random.default_rng(3).normal(size=1200), sampling_rate=FS)
    pulse_skew, noise_skew = skewness(pulse), skewness(noise)
    assert pulse_skew is not None
    assert pulse_skew > 0.3
    assert noise_skew is not None
    assert abs(noise_skew) < 0.2
    assert skewness(np.ones(100)) is None


def test_the_sample_clock_spaces_samples_and_fills_pauses() -> None:
    # 3 samples read together at 0.05 s, 2 at 0.1 s, then a 1 s pause, then 2 more
    times = [0.05, 0.05, 0.05, 0.1, 0.1, 1.1, 1.1]
    stream = on_sample_clock(times, [1, 2, 3, 4, 5, 6, 7], [True] * 7, sampling_rate=50.0)
    assert stream.values.size == 5 + 50 + 1
    assert stream.values[:5].tolist() == [1, 2, 3, 4, 5]
    assert np.isnan(stream.values[5:54]).all()
    assert stream.values[-2:].tolist() == [6, 7]
    assert not stream.usable[5:54].any()
    assert stream.times[-1] == 1.1
    assert np.allclose(np.diff(stream.times), 0.02)


def test_the_sample_clock_needs_a_rate() -> None:
    with pytest.raises(ValueError, match="sampling rate"):
        on_sample_clock([0.0], [1.0], [True], sampling_rate=0.0)
