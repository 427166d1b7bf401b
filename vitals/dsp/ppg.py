"""Pulse rate from a photoplethysmogram (pleth) window, with a quality index and a verdict.

:func:`heart_rate` is the entry point the oximetry procedure and the benchmarks use::

    rate = heart_rate(pleth, sampling_rate=60.0)
    rate.bpm, rate.quality, rate.reliable

It works on windows of 8-60 s sampled at 25-500 Hz, in five steps:

1. :func:`clean` - Elgendi et al. (2013): a second-order Butterworth band-pass, 0.5-8 Hz, run
   forward and backward so beat times are not delayed.
2. :func:`vitals.dsp.ppg_quality.artefact_mask` - stretches where the pulse cannot be seen
   (motion, knocks, clipping, dropouts, samples the caller excludes) are set aside.
3. :func:`find_beats` - Elgendi, M., Norton, I., Brearley, M., Abbott, D., Schuurmans, D.
   (2013), "Systolic peak detection in acceleration photoplethysmograms measured from
   emergency responders in tropical conditions", *PLoS ONE* 8(10), e76585: the clipped,
   squared signal is averaged over a systolic-peak window (W1 = 111 ms) and a beat window
   (W2 = 667 ms); blocks where the first exceeds the second plus an offset
   (beta = 0.02 of the mean squared signal) and last at least W1 are systolic waves, and each
   block's maximum is its peak.  Peaks are refined to sub-sample time by a parabola through
   the three samples at the top.  Added here: of two peaks closer than half the beat period
   (from the autocorrelation of the clean stretches, :func:`beat_period`) the higher is kept,
   because at slow rates the diastolic wave can form a block of its own.
4. Beat gating: beats in artefact stretches are dropped, and so is every beat that matches the
   window's template beat less well than Orphanidou et al. (2015) require of a PPG window on
   average (r < 0.86, applied here to each beat) or whose rise is implausibly large or small;
   such a beat's whole cycle is set aside.  Inter-beat intervals are taken only between
   neighbouring accepted beats with no artefact between them, and an interval more than 30 %
   away from their median (a missed or an extra beat) is rejected.  The rate is 60 over the
   mean accepted interval.
5. The verdict.  ``reliable`` needs: at least 4 accepted intervals spanning 5 s or more; a rate
   inside ``rate_range``; at most 30 % of the candidate intervals rejected; at least a third
   of the usable samples left after gating (below that, the "clean" stretches are islands
   between artefacts); and no clean stretch of more than 3 s without a beat (Orphanidou et
   al.'s rule that no more than one beat may be missed).  ``quality`` (0-1) is the window's
   mean template correlation (Orphanidou's index, over every beat outside the artefact
   stretches) x the clean share x the accepted-interval share, lowered when the skewness
   (Elgendi 2016) says the waveform is not pulse-shaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from vitals.dsp import ppg_quality
from vitals.dsp.filters import bandpass, zero_phase

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IndexArray = npt.NDArray[np.intp]

BAND_HZ = (0.5, 8.0)
"""Elgendi et al. (2013): the band that keeps the systolic wave and drops drift and tremor."""
PEAK_WINDOW_S = 0.111
BEAT_WINDOW_S = 0.667
OFFSET_BETA = 0.02
SAMPLING_RATES = (25.0, 500.0)
MIN_WINDOW_S = 8.0
RATE_RANGE = (30.0, 240.0)
"""Pulse rates the analysis accepts, /min: adult bradycardia to supraventricular tachycardia."""
INTERVAL_TOLERANCE = 0.3
MAX_REJECTED_SHARE = 0.3
MIN_CLEAN_SHARE = 1 / 3
MIN_INTERVALS = 4
MIN_INTERVAL_SECONDS = 5.0
MAX_BEAT_GAP_S = 3.0
SKEW_FULL = 0.2
"""Skewness below which quality is scaled down (0 at a symmetric or inverted waveform)."""
BEAT_MATCH = ppg_quality.ORPHANIDOU_PPG_THRESHOLD
PERIODIC = 0.3
"""Autocorrelation a beat period needs to count: below it the window is not periodic."""
ECHO_FRACTION = 0.5
"""Peaks closer than this fraction of the beat period are one beat (systolic and diastolic)."""


class Issue(StrEnum):
    """Why a window does not support a trustworthy rate."""

    NO_PULSE = "no-pulse"
    """Too few clean beats to count."""
    ARTEFACT = "artefact"
    """Most of the window is motion, clipping or dropouts."""
    IRREGULAR = "irregular"
    """Too many intervals are outliers (missed or extra beats, or an irregular rhythm)."""
    LOST_PULSE = "lost-pulse"
    """A clean stretch of more than 3 s without a beat."""
    OUT_OF_RANGE = "out-of-range"
    """The rate is outside the accepted range."""


@dataclass(frozen=True, slots=True)
class PulseRate:
    """The rate a pleth window supports, how good the window is, and whether to trust it."""

    bpm: float | None
    """Pulse rate, /min, from the accepted intervals (None when there are none)."""
    quality: float
    """Signal-quality index, 0 (unusable) to 1 (clean, regular, pulse-shaped)."""
    reliable: bool
    """Whether the window supports a trustworthy rate (``issues`` says why not)."""
    beats: int = 0
    """Systolic peaks detected in the window."""
    intervals: int = 0
    """Inter-beat intervals the rate was computed from."""
    clean_seconds: float = 0.0
    """Time covered by the accepted intervals, s."""
    clean_share: float = 0.0
    """Share of the usable samples free of artefact, 0-1."""
    template_match: float | None = None
    """Mean beat-to-template correlation outside the artefact stretches, before beat gating
    (Orphanidou et al. 2015, who accept a PPG window at 0.86)."""
    skewness: float | None = None
    """Skewness of the band-passed pleth over its clean samples (Elgendi 2016)."""
    artefacts: tuple[tuple[float, float], ...] = ()
    """Stretches set aside, as (start, end) seconds from the start of the window."""
    issues: tuple[Issue, ...] = ()


def clean(
    pleth: npt.ArrayLike, *, sampling_rate: float, method: Literal["elgendi2013"] = "elgendi2013"
) -> FloatArray:
    """The pleth band-passed as Elgendi et al. (2013) do, without phase shift.

    The upper edge drops below 8 Hz only where the Nyquist frequency requires (never at the
    25 Hz and faster rates :func:`heart_rate` accepts).
    """
    if method != "elgendi2013":
        raise ValueError(f"unknown cleaning method {method!r}")
    low, high = BAND_HZ
    design = bandpass(low, min(high, 0.45 * sampling_rate), sampling_rate=sampling_rate)
    return zero_phase(design, pleth)


@dataclass(frozen=True, slots=True, eq=False)
class Beats:
    """Systolic peaks: their sample indices and their refined times in seconds."""

    peaks: IndexArray
    times: FloatArray


def find_beats(
    cleaned: npt.ArrayLike,
    *,
    sampling_rate: float,
    min_interval: float = 60.0 / RATE_RANGE[1],
    method: Literal["elgendi2013"] = "elgendi2013",
) -> Beats:
    """Systolic peaks of a cleaned pleth by Elgendi et al.'s two moving averages.

    Of two peaks closer than ``min_interval`` seconds, the higher is kept (Elgendi et al. need
    no such rule at their subjects' high rates; at slow rates the diastolic wave can form a
    block of its own, and :func:`heart_rate` sets ``min_interval`` from the beat period).
    """
    if method != "elgendi2013":
        raise ValueError(f"unknown beat detection method {method!r}")
    y = np.asarray(cleaned, dtype=np.float64)
    fs = sampling_rate
    squared = np.clip(y, 0.0, None)
    squared *= squared
    peak_window = max(1, round(PEAK_WINDOW_S * fs))
    ma_peak = ndimage.uniform_filter1d(squared, peak_window, mode="nearest")
    ma_beat = ndimage.uniform_filter1d(squared, max(1, round(BEAT_WINDOW_S * fs)), mode="nearest")
    blocks = ma_peak > ma_beat + OFFSET_BETA * float(squared.mean())
    starts, ends = ppg_quality.edges(blocks)
    wide = ends - starts >= peak_window
    peaks = _refractory(_block_maxima(y, starts[wide], ends[wide]), y, min_interval * fs)
    return Beats(peaks, _refine(y, peaks) / fs)


def _block_maxima(y: FloatArray, starts: IndexArray, ends: IndexArray) -> IndexArray:
    """The index of the (first) maximum of ``y`` in each block ``[start, end)``."""
    if starts.size == 0:
        return np.zeros(0, dtype=np.intp)
    lengths = ends - starts
    firsts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    positions = np.arange(lengths.sum()) + np.repeat(starts - firsts, lengths)
    values = y[positions]
    tops = np.flatnonzero(values == np.repeat(np.maximum.reduceat(values, firsts), lengths))
    block = np.searchsorted(firsts, tops, side="right") - 1
    return np.asarray(positions[tops[np.r_[True, block[1:] != block[:-1]]]], dtype=np.intp)


def _refractory(peaks: IndexArray, y: FloatArray, min_gap: float) -> IndexArray:
    """Of peaks closer than ``min_gap`` samples, keep the higher."""
    if peaks.size < 2 or np.diff(peaks).min() >= min_gap:
        return peaks
    kept = [int(peaks[0])]
    for peak in peaks[1:].tolist():
        if peak - kept[-1] >= min_gap:
            kept.append(peak)
        elif y[peak] > y[kept[-1]]:
            kept[-1] = peak
    return np.asarray(kept, dtype=np.intp)


def _refine(y: FloatArray, peaks: IndexArray) -> FloatArray:
    """Sub-sample peak positions from a parabola through each peak and its neighbours."""
    positions = peaks.astype(np.float64)
    inner = (peaks > 0) & (peaks < y.size - 1)
    p = peaks[inner]
    left, mid, right = y[p - 1], y[p], y[p + 1]
    curvature = left - 2 * mid + right
    shift = np.divide(0.5 * (left - right), curvature, out=np.zeros(p.size), where=curvature < 0)
    positions[inner] += np.clip(shift, -0.5, 0.5)
    return positions


def beat_period(
    cleaned: npt.ArrayLike, *, sampling_rate: float, rate_range: tuple[float, float] = RATE_RANGE
) -> float | None:
    """The dominant beat period, s, from the autocorrelation (None without a periodic pulse).

    The first autocorrelation peak within ``rate_range`` that reaches 0.7 of the highest is the
    period: a later, higher peak is a multiple of it; an earlier, lower one is the diastolic
    wave echoing the systolic.  The signal is first thinned to about 20 Hz (it holds nothing
    above 8 Hz once cleaned), which is precise enough for what the period is used for.
    """
    step = max(1, int(sampling_rate // 20))
    y = np.asarray(cleaned, dtype=np.float64)[::step]
    fs = sampling_rate / step
    n = y.size
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(y - y.mean(), size)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), size)[:n]
    if acf[0] <= 0:
        return None
    shortest = max(1, int(fs * 60 / rate_range[1]))
    longest = min(n - 2, int(np.ceil(fs * 60 / rate_range[0])))
    lags = acf[shortest - 1 : longest + 2] / acf[0]
    tops = np.flatnonzero((lags[1:-1] > lags[:-2]) & (lags[1:-1] >= lags[2:])) + 1
    tops = tops[lags[tops] > PERIODIC]
    if not tops.size:
        return None
    first = tops[lags[tops] >= 0.7 * lags[tops].max()][0] - 1
    return float((shortest + first) / fs)


def heart_rate(
    pleth: npt.ArrayLike,
    *,
    sampling_rate: float,
    exclude: npt.ArrayLike | None = None,
    rate_range: tuple[float, float] = RATE_RANGE,
    method: Literal["elgendi2013"] = "elgendi2013",
) -> PulseRate:
    """The pulse rate of a pleth window, its quality and whether it can be trusted.

    ``exclude`` marks samples known to be unusable (finger out, flagged by the device);
    non-finite samples are excluded too.  Raises ``ValueError`` for a sampling rate outside
    25-500 Hz or a window shorter than 8 s.
    """
    x = np.asarray(pleth, dtype=np.float64).ravel()
    fs = float(sampling_rate)
    if not SAMPLING_RATES[0] <= fs <= SAMPLING_RATES[1]:
        raise ValueError(f"sampling rate must be 25-500 Hz, not {fs}")
    if x.size < MIN_WINDOW_S * fs:
        raise ValueError(f"a window needs at least {MIN_WINDOW_S} s, not {x.size / fs:.1f} s")
    gone = ~np.isfinite(x)
    if exclude is not None:
        gone |= np.asarray(exclude, dtype=bool).ravel()
    if gone.all():
        return PulseRate(None, 0.0, False, issues=(Issue.NO_PULSE,))
    if gone.any():  # bridge the gaps so that they do not ring through the filter
        index = np.arange(x.size)
        x = np.interp(index, index[~gone], x[~gone])
    cleaned = clean(x, sampling_rate=fs, method=method)
    bad = ppg_quality.artefact_mask(x, cleaned, sampling_rate=fs, unavailable=gone)
    period = beat_period(np.where(bad, 0.0, cleaned), sampling_rate=fs, rate_range=rate_range)
    shortest = 60.0 / rate_range[1]
    if period is not None:
        shortest = max(shortest, ECHO_FRACTION * period)
    beats = find_beats(cleaned, sampling_rate=fs, min_interval=shortest, method=method)
    return _assess(cleaned, beats, bad=bad, gone=gone, fs=fs, rate_range=rate_range)


def _assess(
    cleaned: FloatArray,
    beats: Beats,
    *,
    bad: BoolArray,
    gone: BoolArray,
    fs: float,
    rate_range: tuple[float, float],
) -> PulseRate:
    """Gate the beats, set misfits' cycles aside, compute the rate, quality and verdict."""
    peaks, times = beats.peaks, beats.times
    intervals = np.diff(times)
    in_clean = ~bad[peaks]
    neighbours = in_clean[1:] & in_clean[:-1] & _clear_between(bad, peaks)
    half = int(np.median(intervals[neighbours]) * fs / 2) if neighbours.any() else 0
    match = ppg_quality.template_correlations(cleaned, peaks, half_width=half, usable=in_clean)
    misfit = in_clean & (
        (match < BEAT_MATCH) | ppg_quality.odd_amplitudes(cleaned, peaks, usable=in_clean)
    )
    bad = bad | _cycles(misfit, peaks, half, bad.size)
    accepted = ~bad[peaks]
    candidate = accepted[1:] & accepted[:-1] & _clear_between(bad, peaks)
    candidates = intervals[candidate]
    kept = candidates
    if kept.size:
        middle = float(np.median(kept))
        kept = kept[np.abs(kept - middle) <= INTERVAL_TOLERANCE * middle]
    scored = in_clean & ~np.isnan(match)
    template_match = float(match[scored].sum() / scored.sum()) if scored.any() else None
    clean_share = float((~bad).sum() / (~gone).sum())
    accepted_share = kept.size / candidates.size if candidates.size else 0.0
    skew = ppg_quality.skewness(cleaned, usable=~bad)
    quality = max(0.0, template_match or 0.0) * clean_share * accepted_share
    if skew is not None and skew < SKEW_FULL:  # not pulse-shaped: symmetric noise, inverted
        quality *= min(1.0, max(0.0, skew / SKEW_FULL))
    bpm = float(60.0 * kept.size / kept.sum()) if kept.size else None
    issues: list[Issue] = []
    if kept.size < MIN_INTERVALS or kept.sum() < MIN_INTERVAL_SECONDS:
        issues.append(Issue.NO_PULSE)
    if clean_share < MIN_CLEAN_SHARE:
        issues.append(Issue.ARTEFACT)
    if candidates.size and 1.0 - accepted_share > MAX_REJECTED_SHARE:
        issues.append(Issue.IRREGULAR)
    if _lost_pulse(bad, times, candidates, fs):
        issues.append(Issue.LOST_PULSE)
    if bpm is not None and not rate_range[0] <= bpm <= rate_range[1]:
        issues.append(Issue.OUT_OF_RANGE)
    return PulseRate(
        bpm=bpm,
        quality=min(1.0, max(0.0, float(quality))),
        reliable=not issues,
        beats=int(peaks.size),
        intervals=int(kept.size),
        clean_seconds=float(kept.sum()),
        clean_share=clean_share,
        template_match=template_match,
        skewness=skew,
        artefacts=tuple((s / fs, e / fs) for s, e in ppg_quality.runs(bad & ~gone)),
        issues=tuple(issues),
    )


def _clear_between(bad: BoolArray, peaks: IndexArray) -> BoolArray:
    """For each pair of neighbouring peaks: no artefact sample between them."""
    bad_before = np.concatenate(([0], np.cumsum(bad, dtype=np.intp)))
    return np.asarray(bad_before[peaks[1:]] == bad_before[peaks[:-1]])


def _cycles(chosen: BoolArray, peaks: IndexArray, half: int, size: int) -> BoolArray:
    """The samples between the neighbours of each chosen beat (its whole cycle)."""
    out = np.zeros(size, dtype=bool)
    if not chosen.any():
        return out
    index = np.flatnonzero(chosen)
    before = np.where(index > 0, peaks[np.maximum(index - 1, 0)] + 1, peaks[index] - half)
    after = np.where(
        index < peaks.size - 1, peaks[np.minimum(index + 1, peaks.size - 1)], peaks[index] + half
    )
    opened = np.bincount(np.clip(before, 0, size), minlength=size + 1)
    closed = np.bincount(np.clip(after, 0, size), minlength=size + 1)
    return np.asarray(np.cumsum(opened[:-1] - closed[:-1]) > 0)


def _lost_pulse(bad: BoolArray, times: FloatArray, intervals: FloatArray, fs: float) -> bool:
    """No beat for more than 3 s inside a clean stretch: the detector lost the pulse."""
    if intervals.size and intervals.max() > MAX_BEAT_GAP_S:
        return True  # between two beats
    begin, finish = ppg_quality.edges(~bad)
    starts, ends = begin / fs, finish / fs
    first, last = np.searchsorted(times, starts), np.searchsorted(times, ends) - 1
    empty = first > last
    head = np.where(empty, ends, times[np.minimum(first, times.size - 1)] if times.size else ends)
    tail = np.where(empty, starts, times[np.maximum(last, 0)] if times.size else starts)
    return bool(np.any((head - starts > MAX_BEAT_GAP_S) | (ends - tail > MAX_BEAT_GAP_S)))
