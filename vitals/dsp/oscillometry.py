"""Oscillometric blood pressure from one cuff deflation: MAP, SYS and DIA two ways.

From the beats of :func:`vitals.dsp.oscillogram.oscillogram` (pulse amplitude against cuff
pressure) the envelope is smoothed - a Gaussian-kernel local-linear regression with the
robustness weights of LOWESS (W. S. Cleveland, 1979, "Robust locally weighted regression and
smoothing scatterplots", Journal of the American Statistical Association 74:829-836) - and
the pressures are read off it two ways:

- maximum amplitude with characteristic ratios (``maximum_amplitude``): MAP where the envelope
  peaks (the vertex of a parabola fitted to the beats around the peak); SYS above MAP and DIA
  below it where the envelope, made non-increasing away from the peak, has fallen to a fixed
  fraction of the peak.  ``method="geddes1982"`` takes 0.5 and 0.8, the ratios Geddes et al.
  found in man (L. A. Geddes, M. Voelz, C. Combs, D. Reiner, C. F. Babbs, 1982,
  "Characterization of the oscillometric method for measuring indirect blood pressure",
  Annals of Biomedical Engineering 10:271-280); ``ratios=`` overrides them (a device-specific
  calibration, say).
- maximum slope, or derivative oscillometry (``maximum_slope``): SYS and DIA where the
  envelope changes fastest with cuff pressure above and below its peak, as surveyed by
  M. Forouzanfar, H. R. Dajani, V. Z. Groza, M. Bolic, S. Rajan, I. Batkin, 2015,
  "Oscillometric blood pressure estimation: past, present, and future", IEEE Reviews in
  Biomedical Engineering 8:44-63.

A. Chandrasekhar et al., 2019, "Formulas to explain popular oscillometric blood pressure
estimation algorithms", Frontiers in Physiology 10:1415, show why both are worth having and
neither is the truth: the derivative method is accurate on a clean envelope but sensitive to
noise, and the fixed ratios move (0.5-0.6) with pulse pressure and arterial stiffness.  The
estimate is a plausibility check on a module's result, not a validated measurement.  A value
the envelope does not reach (a deflation that began below systolic or stopped above
diastolic pressure) is ``None``, never extrapolated; so is everything when fewer than
``MIN_BEATS`` beats were found.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from vitals.dsp.oscillogram import Oscillogram, oscillogram

FloatArray = npt.NDArray[np.float64]
Method = Literal["geddes1982"]

RATIOS: Final[Mapping[str, tuple[float, float]]] = MappingProxyType({"geddes1982": (0.5, 0.8)})
"""Characteristic ratios (systolic, diastolic) by method name."""
MIN_BEATS: Final = 5
"""Fewer beats cannot outline an envelope (a real deflation gives 25-60, a fast one 8-12)."""
GRID_MMHG: Final = 0.25
BANDWIDTH_MMHG: Final = 4.0
"""The smoothing kernel's SD: this many mmHg, or the median beat spacing if wider."""
SLOPE_BANDWIDTH: Final = 2.0
"""The slope, a derivative and noisier than the level, is smoothed 1.5 x wider."""
ROBUST_ITERATIONS: Final = 2
SUMMIT_FRACTION: Final = 0.6
"""The parabola for the peak is fitted where the envelope is above 0.6 x its maximum."""
PRECISE_MMHG: Final = 4.0
"""A standard error of this many mmHg halves the quality."""
SNR_FLOOR, SNR_SPAN = 3.0, 7.0
"""The peak at 3 standard errors of one beat scores 0, at 10 or more 1."""


@dataclass(frozen=True, slots=True)
class PressureEstimate:
    """Mean, systolic and diastolic pressure by one method, mmHg; None where not reached."""

    method: str
    mean: float | None
    systolic: float | None
    diastolic: float | None


@dataclass(frozen=True, slots=True)
class OscillometricEstimate:
    """Both estimates from one deflation, and how far the envelope can be trusted."""

    maximum_amplitude: PressureEstimate
    maximum_slope: PressureEstimate
    beats: int
    """Beats the envelope was built from."""
    rejected: int
    """Beats dropped as artefacts."""
    pulse_rate: float | None
    """Beats per minute from the median beat interval."""
    peak_amplitude: float
    """The envelope's maximum, mmHg."""
    uncertainty: float | None
    """Standard error (mmHg) of the least certain maximum-amplitude value: the beats'
    scatter about the envelope over the envelope's steepness where the value is read."""
    quality: float
    """0 (no usable envelope) to 1: enough beats, few artefacts, precise values, pulses well
    above the noise, an envelope that falls off on both sides, all three values found."""
    oscillogram: Oscillogram


def estimate_pressures(
    pressure: npt.ArrayLike,
    *,
    sampling_rate: float | None = None,
    times: npt.ArrayLike | None = None,
    method: Method = "geddes1982",
    ratios: tuple[float, float] | None = None,
) -> OscillometricEstimate:
    """MAP, SYS and DIA (mmHg) from the cuff-pressure samples of one deflation.

    Input as for :func:`~vitals.dsp.oscillogram.oscillogram`: ``times`` (seconds, any
    spacing) or ``sampling_rate``.  ``method`` names the characteristic ratios of the
    maximum-amplitude estimate; ``ratios`` (systolic, diastolic), each within (0, 1),
    overrides them.  A deflation too short or too noisy for an envelope gives ``None`` values
    and quality 0, not an error.
    """
    systolic_ratio, diastolic_ratio = ratios if ratios is not None else RATIOS[method]
    if not (0 < systolic_ratio < 1 and 0 < diastolic_ratio < 1):
        raise ValueError(f"characteristic ratios must be within (0, 1), not {ratios}")
    gram = oscillogram(pressure, sampling_rate=sampling_rate, times=times)
    name = method if ratios is None else "fixed-ratio"
    nothing = OscillometricEstimate(
        PressureEstimate(name, None, None, None),
        PressureEstimate("maximum-slope", None, None, None),
        gram.beats,
        gram.rejected,
        None,
        0.0,
        None,
        0.0,
        gram,
    )
    if gram.beats < MIN_BEATS:
        return nothing
    cuff, amplitude = np.array(gram.cuff), np.array(gram.amplitude)
    bandwidth = max(BANDWIDTH_MMHG, float(np.median(np.abs(np.diff(cuff)))))
    grid = np.arange(cuff.min(), cuff.max() + GRID_MMHG / 2, GRID_MMHG)
    robust, spread = _robustness(cuff, amplitude, bandwidth)
    level, _, support = _local_linear(cuff, amplitude, grid, bandwidth, robust)
    _, slope, _ = _local_linear(cuff, amplitude, grid, SLOPE_BANDWIDTH * bandwidth, robust)
    top, peak, mean_se, peak_se = _summit(
        cuff, amplitude, robust, grid=grid, level=level, spread=spread
    )
    if peak <= 0:
        return nothing
    beats_each_side = min(np.count_nonzero(cuff < grid[top]), np.count_nonzero(cuff > grid[top]))
    mean = float(grid[top]) if beats_each_side >= 2 else None
    # each flank made non-increasing away from the summit: a dip of the noisy curve near the
    # summit must not pass for the crossing
    upper = _crossing(grid[top:], _non_increasing(level[top:]), systolic_ratio * peak)
    lower = _crossing(grid[top::-1], _non_increasing(level[top::-1]), diastolic_ratio * peak)
    by_amplitude = PressureEstimate(name, mean, upper, lower)
    by_slope = PressureEstimate(
        "maximum-slope",
        mean,
        _steepest(grid[top:], -slope[top:], SLOPE_BANDWIDTH * bandwidth),
        _steepest(grid[: top + 1], slope[: top + 1], SLOPE_BANDWIDTH * bandwidth),
    )
    errors = [] if mean is None else [mean_se]
    level_se = spread / np.sqrt(np.maximum(support, 1.0))
    for value, ratio in ((upper, systolic_ratio), (lower, diastolic_ratio)):
        if value is not None:
            i = int(np.argmin(np.abs(grid - value)))
            height_se = float(np.hypot(level_se[i], ratio * peak_se))
            # the flank's mean steepness from the summit too: a noisy curve's local slope can
            # be steep by chance and would understate the error
            mean_steepness = (1.0 - ratio) * peak / max(abs(value - float(grid[top])), GRID_MMHG)
            errors.append(height_se / min(abs(float(slope[i])) + 1e-3 * peak, mean_steepness))
    uncertainty = max(errors) if errors else None
    tail = float(min(level[0], level[-1])) / peak
    return OscillometricEstimate(
        by_amplitude,
        by_slope,
        gram.beats,
        gram.rejected,
        60.0 / gram.beat_period if gram.beat_period else None,
        peak,
        uncertainty,
        _quality(gram, by_amplitude, uncertainty, peak, tail),
        gram,
    )


def _local_linear(
    x: FloatArray,
    y: FloatArray,
    grid: FloatArray,
    bandwidth: float,
    robustness: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Level, slope and support of a Gaussian-kernel local-linear regression of ``y`` on
    ``x`` at each grid point, each point also weighted by ``robustness``; the support is the
    effective number of points behind each value ((sum w)^2 / sum w^2, Kish)."""
    d = x[None, :] - grid[:, None]
    w = np.exp(-0.5 * (d / bandwidth) ** 2)
    if robustness is not None:
        w = w * robustness[None, :]
    s0, s1, s2 = w.sum(1), (w * d).sum(1), (w * d * d).sum(1)
    t0, t1 = (w * y).sum(1), (w * d * y).sum(1)
    det = np.maximum(s0 * s2 - s1 * s1, 1e-12)
    support = s0 * s0 / np.maximum((w * w).sum(1), 1e-12)
    return (s2 * t0 - s1 * t1) / det, (s0 * t1 - s1 * t0) / det, support


def _robustness(x: FloatArray, y: FloatArray, bandwidth: float) -> tuple[FloatArray, float]:
    """LOWESS robustness weights (bisquare of the residual over 6 median absolute
    residuals), so a beat the outlier test let through cannot bend the envelope; and the
    residuals' robust SD."""
    weights = np.ones(len(x))
    spread = 0.0
    for _ in range(ROBUST_ITERATIONS):
        fitted, _, _ = _local_linear(x, y, x, bandwidth, weights)
        residual = y - fitted
        mad = float(np.median(np.abs(residual)))
        spread = 1.4826 * mad
        if mad <= 0:
            break
        u = residual / (6.0 * mad)
        weights = np.where(np.abs(u) < 1, (1 - u * u) ** 2, 0.0)
    return weights, spread


def _summit(
    cuff: FloatArray,
    amplitude: FloatArray,
    weights: FloatArray,
    *,
    grid: FloatArray,
    level: FloatArray,
    spread: float,
) -> tuple[int, float, float, float]:
    """Grid index and height of the envelope's maximum, and the standard errors of both.

    A parabola fitted (with the robustness weights) to the beats around the maximum finds it
    more steadily than the smoothed curve's own highest point, which beat-to-beat scatter
    moves along the flat top and lifts.  The beats are taken symmetrically about the highest
    point, within the span where the envelope is above ``SUMMIT_FRACTION`` of it, so that a
    deflation that stops soon below diastolic pressure does not pull the vertex upwards.
    """
    top = int(np.argmax(level))
    high = level >= SUMMIT_FRACTION * level[top]
    lo, hi = top, top
    while lo > 0 and high[lo - 1]:
        lo -= 1
    while hi < len(grid) - 1 and high[hi + 1]:
        hi += 1
    reach = min(grid[top] - grid[lo], grid[hi] - grid[top])
    near = (np.abs(cuff - grid[top]) <= reach) & (weights > 0)
    if np.count_nonzero(near) < 6:
        near = (cuff >= grid[lo]) & (cuff <= grid[hi]) & (weights > 0)
    count = int(np.count_nonzero(near))
    fallback = (top, float(level[top]), float(grid[hi] - grid[lo]) / 2, spread)
    if count < 6 or np.ptp(cuff[near]) <= 0:
        return fallback
    x, y, w = cuff[near] - grid[top], amplitude[near], np.sqrt(weights[near])
    (curve, slope, height), cov = np.polyfit(x, y, 2, w=w, cov=True)
    shift = -slope / (2 * curve) if curve < 0 else np.inf
    if not grid[lo] <= grid[top] + shift <= grid[hi]:
        return fallback
    # delta method on shift = -slope / (2 curve)
    gradient = np.array([slope / (2 * curve**2), -1 / (2 * curve)])
    shift_se = float(np.sqrt(max(0.0, gradient @ cov[:2, :2] @ gradient)))
    index = int(np.argmin(np.abs(grid - (grid[top] + shift))))
    return index, float(np.polyval((curve, slope, height), shift)), shift_se, spread / count**0.5


def _non_increasing(values: FloatArray) -> FloatArray:
    """The closest non-increasing sequence in least squares (pool adjacent violators)."""
    means: list[float] = []
    sizes: list[int] = []
    for value in values.tolist():
        means.append(value)
        sizes.append(1)
        while len(means) > 1 and means[-2] < means[-1]:
            size = sizes[-2] + sizes[-1]
            means[-2] = (means[-2] * sizes[-2] + means[-1] * sizes[-1]) / size
            sizes[-2] = size
            means.pop()
            sizes.pop()
    return np.repeat(np.array(means), sizes)


def _crossing(pressure: FloatArray, level: FloatArray, target: float) -> float | None:
    """Where ``level``, walked from the summit outwards, first falls to ``target``
    (interpolated between grid points); None if it never does."""
    below = np.flatnonzero(level <= target)
    if len(below) == 0 or below[0] == 0:
        return None
    i = int(below[0])
    p0, p1, a0, a1 = pressure[i - 1], pressure[i], level[i - 1], level[i]
    return float(p0 + (p1 - p0) * (a0 - target) / (a0 - a1)) if a0 != a1 else float(p1)


def _steepest(pressure: FloatArray, steepness: FloatArray, edge: float) -> float | None:
    """Where ``steepness`` is largest at least ``edge`` inside the data; None when that is at
    the inner limit (the envelope was still steepening where the data became unreliable)."""
    inside = (pressure >= pressure.min() + edge) & (pressure <= pressure.max() - edge)
    if np.count_nonzero(inside) < 3:
        return None
    candidates = np.flatnonzero(inside)
    i = int(candidates[np.argmax(steepness[candidates])])
    at_limit = i in (candidates[0], candidates[-1])
    return None if at_limit or steepness[i] <= 0 else float(pressure[i])


def _quality(
    gram: Oscillogram,
    estimate: PressureEstimate,
    uncertainty: float | None,
    peak: float,
    tail: float,
) -> float:
    """Product of six 0..1 scores, each for one way an envelope can mislead."""
    found = sum(v is not None for v in (estimate.mean, estimate.systolic, estimate.diastolic))
    total = gram.beats + gram.rejected
    precision = 0.0 if uncertainty is None else 1.0 / (1.0 + (uncertainty / PRECISE_MMHG) ** 2)
    scores = (
        min(1.0, (gram.beats - MIN_BEATS + 2) / 6.0),  # beats: 5 -> 0.33, 9 or more -> 1
        max(0.0, 1.0 - 2.0 * gram.rejected / total),  # artefacts: a quarter dropped -> 0.5
        precision,  # the least certain value's standard error: 4 mmHg -> 0.5
        min(1.0, max(0.0, (1.0 - tail) / 0.6)),  # falls to 0.4 x peak at an end -> 1
        min(1.0, max(0.0, (peak / gram.noise - SNR_FLOOR) / SNR_SPAN)),  # pulse over noise
        found / 3.0,
    )
    return float(np.clip(np.prod(scores), 0.0, 1.0))
