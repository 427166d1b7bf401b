"""Hampel identifier and filter on seeded series with known spikes."""

from __future__ import annotations

import numpy as np
import pytest

from vitals.dsp.spikes import MAD_TO_SIGMA, reject_spikes, robust_scale


def _ranges(seed: int, *, size: int = 30, sigma: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 620.0 + rng.normal(0.0, sigma, size)


def test_robust_scale_estimates_gaussian_sigma() -> None:
    values = np.random.default_rng(1).normal(0.0, 5.0, 20_000)
    assert robust_scale(values) == pytest.approx(5.0, rel=0.03)


def test_arm_in_the_beam_is_rejected_and_the_median_is_the_head() -> None:
    values = _ranges(2)
    spikes = [3, 11, 17]
    values[spikes] = [250.0, 310.0, 400.0]  # an arm, much closer to the sensor
    result = reject_spikes(values, sampling_rate=10.0)
    assert set(np.flatnonzero(~result.inliers)) == set(spikes)
    assert result.rejected == 3
    assert result.median == pytest.approx(620.0, abs=1.5)


def test_clean_gaussian_readings_are_almost_all_kept() -> None:
    result = reject_spikes(_ranges(3, size=5000), sampling_rate=10.0)
    # beyond 3 sigma: 0.27 % of a Gaussian
    assert result.inlier_fraction == pytest.approx(0.9973, abs=0.003)


def test_min_scale_stops_identical_readings_from_flagging_one_step() -> None:
    values = np.array([620.0] * 12 + [621.0, 619.0])
    assert reject_spikes(values, sampling_rate=10.0).rejected == 2  # MAD is 0
    kept = reject_spikes(values, sampling_rate=10.0, min_scale=1.0)
    assert kept.rejected == 0


def test_moving_window_filter_follows_a_slow_drift() -> None:
    t = np.arange(200) / 10.0
    values = 600.0 + 10.0 * t + np.random.default_rng(4).normal(0.0, 1.0, t.size)
    values[[50, 120]] += 60.0
    moving = reject_spikes(values, sampling_rate=10.0, window=1.0)
    assert set(np.flatnonzero(~moving.inliers)) == {50, 120}
    # judged against the whole series, the drift itself would look like spread, not spikes
    assert reject_spikes(values, sampling_rate=10.0).rejected == 0


def test_nan_is_never_an_inlier_and_an_empty_series_has_no_median() -> None:
    values = np.array([620.0, np.nan, 621.0, 619.0])
    result = reject_spikes(values, sampling_rate=10.0, min_scale=1.0)
    assert not result.inliers[1]
    assert result.median == pytest.approx(620.0)
    assert reject_spikes([], sampling_rate=10.0).median is None


def test_scale_is_reported_in_standard_deviations() -> None:
    values = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    result = reject_spikes(values, sampling_rate=1.0)
    assert result.scale[0] == pytest.approx(MAD_TO_SIGMA * 1.0)
