"""The trailing-window stability test a weight must pass (OIML R 76 verification interval)."""

from __future__ import annotations

import numpy as np
import pytest

from vitals.dsp.stability import steady_run, steady_window, window_samples

E = 0.05


def test_window_spans_its_duration_at_the_sampling_rate() -> None:
    assert window_samples(1.5, 10.0) == 16
    assert window_samples(1.5, 5.0) == 8


def test_adjacent_divisions_are_steady_despite_binary_rounding() -> None:
    values = [63.40, 63.45] * 10  # max - min is 0.0500000000000043 in floating point
    verdict = steady_window(values, sampling_rate=10.0, window=1.5, tolerance=E)
    assert verdict.steady
    assert verdict.spread == pytest.approx(E)
    assert verdict.start == 4


def test_two_divisions_apart_is_not_steady() -> None:
    values = [63.40] * 15 + [63.50]
    verdict = steady_window(values, sampling_rate=10.0, window=1.5, tolerance=E)
    assert not verdict.steady


def test_a_window_not_yet_full_is_not_steady() -> None:
    verdict = steady_window([70.0] * 15, sampling_rate=10.0, window=1.5, tolerance=E)
    assert not verdict.steady
    assert verdict.start is None
    assert verdict.needed == 16


def test_only_the_trailing_window_counts() -> None:
    rng = np.random.default_rng(7)
    settling = 70 + 1.5 * np.exp(-np.arange(30) / 5) * np.sin(np.arange(30))
    resting = 70 + rng.integers(0, 2, size=16) * E
    verdict = steady_window(
        np.concatenate([settling, resting]), sampling_rate=10.0, window=1.5, tolerance=E
    )
    assert verdict.steady


def test_a_gap_in_the_indication_is_not_steady() -> None:
    values = [70.0] * 20
    values[-3] = float("nan")
    assert not steady_window(values, sampling_rate=10.0, window=1.5, tolerance=E).steady


def test_steady_run_counts_back_to_the_last_movement() -> None:
    values = [68.0, 69.5, 70.05, 70.0, 70.05, 70.0]
    assert steady_run(values, tolerance=E) == 4
    assert steady_run([], tolerance=E) == 0


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        steady_window([1.0], sampling_rate=0.0, window=1.5, tolerance=E)
    with pytest.raises(ValueError, match="method"):
        steady_window([1.0], sampling_rate=10.0, window=1.5, tolerance=E, method="x")  # type: ignore[arg-type]
