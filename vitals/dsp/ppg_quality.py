"""Pleth signal quality: artefact segments, beat template matching, beat rises, skewness.

Independent views of whether a photoplethysmogram can be trusted, combined by
:func:`vitals.dsp.ppg.heart_rate`:

* :func:`artefact_mask` (method ``"amplitude"``) marks the samples where the pulse cannot be
  seen: the band-passed signal's local peak-to-peak amplitude far above the window's typical
  beat (motion, a knock on the sensor) or far below it (a dropout), clipping (runs pinned at
  the window's highest value, where the device's range was exceeded), and samples the caller
  already knows to be unusable (finger out, device-flagged), widened by the filter's settling
  time.  This is a heuristic in the spirit of the amplitude checks of Sukor, J. A., Redmond,
  S. J., Lovell, N. H. (2011), "Signal quality measures for pulse oximetry through waveform
  morphology analysis", *Physiological Measurement* 32(3), 369-384; the thresholds are this
  module's own, stated below.
* :func:`template_correlations` (method ``"orphanidou2015"``): every beat is cut out at
  +/- half the median beat interval around its systolic peak, the beats are averaged into a
  template, and each beat's Pearson correlation with the template is its quality; the window's
  mean correlation is accepted at 0.86 or more, the threshold Orphanidou, C., Bonnici, T.,
  Charlton, P., Clifton, D., Vallance, D., Tarassenko, L. (2015), "Signal-quality indices for
  the electrocardiogram and photoplethysmogram: derivation and applications to wireless
  monitoring", *IEEE Journal of Biomedical and Health Informatics* 19(3), 832-838, derived for
  the PPG.  As in the PPG template of Li, Q., Clifford, G. D. (2012), "Dynamic time warping and
  machine learning for signal quality assessment of pulsatile signals", *Physiological
  Measurement* 33(9), 1491-1501 (and Li's template code in the PhysioNet Cardiovascular Signal
  Toolbox), beats that match the first template at r < 0.8 are left out of a second one, so a
  few artefacts do not shape it.
* :func:`odd_amplitudes`: a beat whose rise (peak over the preceding trough) is more than
  twice or less than 0.4 times the median rise is an artefact - Sukor et al. (2011) likewise
  reject pulses whose amplitude strays from their neighbours'.
* :func:`skewness` (method ``"elgendi2016"``): Elgendi, M. (2016), "Optimal signal quality
  index for photoplethysmogram signals", *Bioengineering* 3(4), 21, found skewness the best
  single index: a clean pulse has sharp systolic peaks over a broad base (clearly positive
  skew, about 0.3 to 1 at 40-180 /min), while motion and noise are near-symmetric (about 0).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import ndimage

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IndexArray = npt.NDArray[np.intp]

AMPLITUDE_WINDOW_S = 1.6
"""Window of the local peak-to-peak amplitude: at least one whole beat down to ~38 /min."""
TOO_LARGE = 1.8
"""Local amplitude above this multiple of the window's median amplitude: an artefact."""
TOO_SMALL = 0.35
"""Local amplitude below this fraction of the window's median amplitude: a dropout."""
CLIPPED_RUN_S = 0.08
"""A run at the window's maximum at least this long: the device's range was hit."""
CLIP_MARGIN_S = 0.4
SETTLE_S = 1.0
"""Samples this close to a caller-excluded stretch are still ringing from the filter."""
FIRST_TEMPLATE_MATCH = 0.8
"""Beats matching the first template less than this are left out of the second one."""
RISE_RANGE = (0.4, 2.0)
"""A beat's rise outside these multiples of the median rise: an artefact."""
ORPHANIDOU_PPG_THRESHOLD = 0.86
"""Mean beat-to-template correlation at which Orphanidou et al. (2015) accept a PPG window."""


def artefact_mask(
    raw: npt.ArrayLike,
    cleaned: npt.ArrayLike,
    *,
    sampling_rate: float,
    unavailable: npt.ArrayLike | None = None,
    method: Literal["amplitude"] = "amplitude",
) -> BoolArray:
    """True where the pulse cannot be trusted (see the module docstring for the rules).

    ``raw`` is the pleth as the device sent it (clipping is judged there), ``cleaned`` the
    band-passed pleth (amplitude is judged there), ``unavailable`` the samples the caller
    already knows to be unusable (their values are ignored).
    """
    if method != "amplitude":
        raise ValueError(f"unknown artefact method {method!r}")
    x = np.asarray(raw, dtype=np.float64)
    y = np.asarray(cleaned, dtype=np.float64)
    gone = np.zeros(x.size, dtype=bool) if unavailable is None else np.asarray(unavailable, bool)
    fs = sampling_rate
    bad = _widen(gone, round(SETTLE_S * fs))
    if gone.all():
        return bad
    width = max(3, round(AMPLITUDE_WINDOW_S * fs))
    p2p = ndimage.maximum_filter1d(y, width) - ndimage.minimum_filter1d(y, width)
    typical = float(np.median(p2p[~bad])) if (~bad).any() else float(np.median(p2p))
    if typical <= 0:
        return np.ones(x.size, dtype=bool)
    bad |= (p2p > TOO_LARGE * typical) | (p2p < TOO_SMALL * typical)
    bad |= _widen(_clipped(x, gone, round(CLIPPED_RUN_S * fs)), round(CLIP_MARGIN_S * fs))
    return bad


def _clipped(x: FloatArray, gone: BoolArray, min_run: int) -> BoolArray:
    """Runs of at least ``min_run`` samples pinned at the window's highest value.

    Only the top: a systolic peak is sharp, so a flat top means the device's range was hit,
    whereas the diastolic trough of a slow pulse is naturally flat for a few hundred ms once
    quantised to a device's 7 or 8 bits (motion that drives the pleth to the floor is caught
    by its amplitude instead).
    """
    starts, ends = edges((x == x[~gone].max()) & ~gone)
    long = ends - starts >= max(2, min_run)
    opened = np.bincount(starts[long], minlength=x.size + 1)
    closed = np.bincount(ends[long], minlength=x.size + 1)
    return np.asarray(np.cumsum(opened[:-1] - closed[:-1]) > 0)


def _widen(mask: BoolArray, margin: int) -> BoolArray:
    if margin <= 0 or not mask.any():
        return mask.copy()
    return np.asarray(ndimage.maximum_filter1d(mask.astype(np.uint8), 2 * margin + 1) > 0)


def runs(mask: BoolArray) -> list[tuple[int, int]]:
    """The ``[start, end)`` index ranges where ``mask`` is true, in order."""
    starts, ends = edges(mask)
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def edges(mask: BoolArray) -> tuple[IndexArray, IndexArray]:
    """The starts and (exclusive) ends of the runs where ``mask`` is true, as arrays."""
    padded = np.zeros(mask.size + 2, dtype=np.int8)
    padded[1:-1] = mask
    steps = padded[1:] - padded[:-1]
    return np.flatnonzero(steps == 1), np.flatnonzero(steps == -1)


def template_correlations(
    cleaned: npt.ArrayLike,
    peaks: npt.ArrayLike,
    *,
    half_width: int,
    usable: npt.ArrayLike | None = None,
    method: Literal["orphanidou2015"] = "orphanidou2015",
) -> FloatArray:
    """Each beat's correlation with the window's template beat (NaN where it cannot be cut).

    ``peaks`` are the beats' sample indices; ``half_width`` is half the median beat interval
    in samples; ``usable`` says which beats may shape the template (by default all).
    """
    if method != "orphanidou2015":
        raise ValueError(f"unknown template method {method!r}")
    y = np.asarray(cleaned, dtype=np.float64)
    index = np.asarray(peaks, dtype=np.intp)
    chosen = np.ones(index.size, bool) if usable is None else np.asarray(usable, bool)
    out = np.full(index.size, np.nan)
    if half_width < 2 or index.size == 0:
        return out
    whole = (index - half_width >= 0) & (index + half_width < y.size)
    beats = y[index[whole, None] + np.arange(-half_width, half_width + 1)]
    beats -= beats.sum(axis=1, keepdims=True) / beats.shape[1]
    norms = np.sqrt(np.einsum("ij,ij->i", beats, beats))
    beats /= np.where(norms > 0, norms, 1.0)[:, None]  # rows now centred, unit norm
    shaping = chosen[whole]
    if shaping.sum() < 2:
        return out
    first = _correlate(beats, beats[shaping].sum(axis=0))
    second = shaping & (first >= FIRST_TEMPLATE_MATCH)
    out[whole] = _correlate(beats, beats[second].sum(axis=0)) if second.sum() >= 2 else first
    return out


def odd_amplitudes(
    cleaned: npt.ArrayLike, peaks: npt.ArrayLike, *, usable: npt.ArrayLike | None = None
) -> BoolArray:
    """Beats whose rise (peak minus the lowest point since the previous peak) is more than
    twice, or less than 0.4 times, the median rise of the ``usable`` beats."""
    y = np.asarray(cleaned, dtype=np.float64)
    index = np.asarray(peaks, dtype=np.intp)
    chosen = np.ones(index.size, bool) if usable is None else np.asarray(usable, bool)
    if index.size < 2:
        return np.zeros(index.size, dtype=bool)
    troughs = np.minimum.reduceat(y, np.concatenate(([0], index[:-1])))
    rise = y[index] - troughs
    typical = float(np.median(rise[chosen])) if chosen.any() else float(np.median(rise))
    return np.asarray((rise > RISE_RANGE[1] * typical) | (rise < RISE_RANGE[0] * typical))


def _correlate(unit_beats: FloatArray, template: FloatArray) -> FloatArray:
    """Pearson correlation of each centred, unit-norm beat with a sum of such beats."""
    norm = float(np.sqrt(template @ template))
    if norm == 0:
        return np.zeros(unit_beats.shape[0])
    return np.asarray(unit_beats @ (template / norm), dtype=np.float64)


def skewness(
    cleaned: npt.ArrayLike,
    *,
    usable: npt.ArrayLike | None = None,
    method: Literal["elgendi2016"] = "elgendi2016",
) -> float | None:
    """Sample skewness of the band-passed pleth over the ``usable`` samples (None if < 3)."""
    if method != "elgendi2016":
        raise ValueError(f"unknown skewness method {method!r}")
    y = np.asarray(cleaned, dtype=np.float64)
    if usable is not None:
        y = y[np.asarray(usable, dtype=bool)]
    if y.size < 3:
        return None
    centred = y - y.mean()
    squares = centred * centred
    variance = float(squares.mean())
    if variance == 0:
        return None
    return float((squares * centred).mean() / variance**1.5)
