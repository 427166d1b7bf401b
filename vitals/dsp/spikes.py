"""Spike rejection for repeated readings of one quantity: the Hampel identifier and filter.

An ultrasonic height sensor mostly reports the distance to the top of the head, but now and
then an arm or a hand crosses the beam (a much shorter range) or an echo is lost.  A mean
would be dragged by such spikes; the median and the median absolute deviation (MAD) are not,
as long as fewer than half the readings are spikes.

Method ``"hampel"``: the Hampel identifier.  A sample ``x`` is an outlier when
``|x - median| > threshold * S``, with ``S = 1.4826 * MAD`` (1.4826 = 1 / Phi^-1(3/4) makes
``S`` estimate the standard deviation of Gaussian noise).  With ``window=None`` the median and
``S`` come from the whole series (the identifier); with a ``window`` in seconds each sample is
judged against the samples within half a window on either side (the Hampel filter, a moving
window identifier).  ``min_scale`` keeps ``S`` from collapsing to 0 when most readings are
identical (quantised sensors), which would otherwise flag every sample one step away.

Sources: F. R. Hampel, "The influence curve and its role in robust estimation", Journal of the
American Statistical Association 69(346):383-393, 1974 (the median absolute deviation as a
robust scale and the influence of outliers); R. K. Pearson, "Outliers in process modeling and
identification", IEEE Transactions on Control Systems Technology 10(1):55-63, 2002 (the
Hampel identifier, its threshold of 3, and the moving-window Hampel filter).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

MAD_TO_SIGMA = 1.4826
"""Scale factor from the MAD to a Gaussian standard deviation (1 / Phi^-1(3/4))."""


@dataclass(frozen=True, slots=True, eq=False)
class SpikeRejection:
    """Which samples are kept, and the robust centre and scale each was judged against.

    ``center`` and ``scale`` have one entry per sample (constant for the whole-series
    identifier).  ``median`` is the median of the kept samples (None when none is kept).
    """

    inliers: npt.NDArray[np.bool_]
    center: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    median: float | None

    @property
    def rejected(self) -> int:
        """How many samples were judged spikes."""
        return int(self.inliers.size - np.count_nonzero(self.inliers))

    @property
    def inlier_fraction(self) -> float:
        """The share of samples kept (0 for an empty series)."""
        size = self.inliers.size
        return 0.0 if size == 0 else float(np.count_nonzero(self.inliers)) / size


def robust_scale(values: npt.ArrayLike) -> float:
    """``1.4826 * MAD`` of ``values``: the standard deviation of their Gaussian core."""
    series = np.asarray(values, dtype=float)
    if series.size == 0:
        raise ValueError("no values")
    return MAD_TO_SIGMA * float(np.median(np.abs(series - np.median(series))))


def reject_spikes(
    values: npt.ArrayLike,
    *,
    sampling_rate: float,
    window: float | None = None,
    threshold: float = 3.0,
    min_scale: float = 0.0,
    method: Literal["hampel"] = "hampel",
) -> SpikeRejection:
    """Flag the spikes in ``values`` (sampled at ``sampling_rate`` Hz) by Hampel's rule.

    ``window`` (seconds) selects the moving-window filter; None judges every sample against
    the whole series.  ``threshold`` is in robust standard deviations (3 per Pearson 2002).
    NaN samples are never inliers and do not count towards the medians.
    """
    if method != "hampel":
        raise ValueError(f"unknown spike rejection method {method!r}")
    if sampling_rate <= 0:
        raise ValueError("sampling rate must be positive")
    if threshold <= 0 or min_scale < 0:
        raise ValueError("threshold must be positive and min_scale not negative")
    series = np.asarray(values, dtype=float)
    if series.ndim != 1:
        raise ValueError("values must be one-dimensional")
    if series.size == 0 or np.isnan(series).all():
        empty = np.full(series.shape, np.nan)
        return SpikeRejection(np.zeros(series.shape, dtype=bool), empty, empty, None)
    if window is None:
        center = np.full(series.shape, np.nanmedian(series))
        mad = np.nanmedian(np.abs(series - center[0]))
        scale = np.full(series.shape, MAD_TO_SIGMA * mad)
    else:
        center, scale = _moving(series, half=max(1, round(window * sampling_rate / 2)))
    scale = np.maximum(scale, min_scale)
    with np.errstate(invalid="ignore"):
        inliers = np.abs(series - center) <= threshold * scale
    kept = series[inliers]
    median = float(np.median(kept)) if kept.size else None
    return SpikeRejection(inliers, center, scale, median)


def _moving(
    series: npt.NDArray[np.float64], *, half: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Median and 1.4826 * MAD over ``[i - half, i + half]`` (truncated at the ends)."""
    padded = np.pad(series, half, constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    center = np.nanmedian(windows, axis=1)
    mad = np.nanmedian(np.abs(windows - center[:, None]), axis=1)
    return center, MAD_TO_SIGMA * mad
