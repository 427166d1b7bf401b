"""Band-pass design and application: scipy's Butterworth, streaming equal to whole-array."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from vitals.dsp.filters import StreamingFilter, apply, bandpass, zero_phase
from vitals.sim.pleth import synthesize


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("sampling_rate", [25.0, 60.0, 75.0, 100.0, 500.0])
def test_design_is_scipys_butterworth(order: int, sampling_rate: float) -> None:
    ours = bandpass(0.5, 8.0, sampling_rate=sampling_rate, order=order)
    theirs = signal.butter(order, [0.5, 8.0], btype="bandpass", fs=sampling_rate, output="sos")
    _, h_ours = signal.sosfreqz(ours.sos, 4096, fs=sampling_rate)
    _, h_theirs = signal.sosfreqz(theirs, 4096, fs=sampling_rate)
    assert np.max(np.abs(h_ours - h_theirs)) < 1e-9


@pytest.mark.parametrize("order", [1, 2, 4])
def test_steady_state_is_scipys(order: int) -> None:
    design = bandpass(0.5, 8.0, sampling_rate=60.0, order=order)
    assert np.allclose(design.steady_state, signal.sosfilt_zi(design.sos), atol=1e-12)


def test_a_constant_input_passes_nothing() -> None:
    design = bandpass(0.5, 8.0, sampling_rate=60.0)
    assert np.max(np.abs(apply(design, np.full(600, 87.0)))) < 1e-9


def test_streaming_in_any_chunks_equals_the_whole_array() -> None:
    design = bandpass(0.5, 8.0, sampling_rate=60.0)
    pleth = synthesize(20.0, sampling_rate=60.0, heart_rate=75.0, seed=4, noise=0.5).signal * 127
    whole = apply(design, pleth)
    rng = np.random.default_rng(11)
    for _ in range(5):
        cuts = np.sort(rng.choice(np.arange(1, pleth.size), size=40, replace=False))
        chunks = np.split(pleth, cuts)
        chunks.insert(3, pleth[:0])  # an empty read changes nothing
        stream = StreamingFilter(design)
        streamed = np.concatenate([stream.feed(chunk) for chunk in chunks])
        assert np.max(np.abs(streamed - whole)) <= 1e-12


def test_streaming_sample_by_sample_equals_the_whole_array() -> None:
    design = bandpass(0.5, 8.0, sampling_rate=25.0)
    pleth = synthesize(10.0, sampling_rate=25.0, heart_rate=120.0, seed=5).signal
    stream = StreamingFilter(design)
    streamed = np.concatenate([stream.feed([x]) for x in pleth])
    assert np.max(np.abs(streamed - apply(design, pleth))) <= 1e-12


def test_reset_starts_a_new_stream() -> None:
    design = bandpass(0.5, 8.0, sampling_rate=60.0)
    first, second = np.linspace(0, 50, 300), np.linspace(90, 20, 300)
    stream = StreamingFilter(design)
    stream.feed(first)
    stream.reset()
    assert np.max(np.abs(stream.feed(second) - apply(design, second))) <= 1e-12


def test_zero_phase_does_not_move_a_peak() -> None:
    t = np.arange(1000) / 100.0
    pulse = np.exp(-0.5 * ((t - 5.0) / 0.08) ** 2)  # a systolic-like peak at sample 500
    design = bandpass(0.5, 8.0, sampling_rate=100.0)
    assert int(np.argmax(zero_phase(design, pulse))) == 500
    assert int(np.argmax(apply(design, pulse))) > 500


@pytest.mark.parametrize(("low", "high", "rate"), [(0.5, 8.0, 16.0), (0.0, 8.0, 60.0), (8, 2, 60)])
def test_a_band_that_does_not_fit_is_refused(low: float, high: float, rate: float) -> None:
    with pytest.raises(ValueError, match="band"):
        bandpass(low, high, sampling_rate=rate)
