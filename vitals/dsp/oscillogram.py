"""The oscillogram of one cuff deflation: each heartbeat's pulse amplitude and cuff pressure.

An automatic cuff deflates slowly from above systolic to below diastolic pressure; each
heartbeat adds a small pressure pulse (1-4 mmHg) to the falling cuff pressure.  The
*oscillogram* is the pulse amplitude against cuff pressure: it rises from almost nothing
above systolic pressure to a maximum near mean arterial pressure and falls again below
diastolic pressure.  :func:`oscillogram` rebuilds it from the cuff-pressure samples a module
reports while it deflates (:mod:`vitals.dsp.oscillometry` reads the pressures off it)::

    samples at any, even irregular, times
      -> a uniform grid (linear interpolation at the median sample interval)
      -> the deflation only: from the highest pressure to just before the dump valve opens
      -> oscillations: a zero-phase Butterworth high-pass (0.5 Hz) removes the deflation ramp;
         the ramp is what it removed
      -> beat period: the strongest autocorrelation peak at a lag of 35-200 /min
      -> beat template: the mean of the strongest third of the beats, one period long
      -> per beat: the least-squares scale of the template there; amplitude = that scale times
         the template's peak-to-trough height; cuff pressure = the ramp at the beat's peak
      -> beats tracked one per period from the strongest outwards; a beat lost in noise is
         looked for only where the clear beats around it put it
      -> artefacts: a beat far above or below its neighbours' median is dropped

A template fit, rather than the raw peak minus trough, because the module reports whole
mmHg: on a ramp of 3.5 mmHg/s the rounding alone makes a 1-mmHg staircase at 3-4 Hz, in the
pulse band, whose peak-to-trough (always positive) would fill the envelope's tails; a fit
over the whole beat averages it out and is as often negative as positive where there is no
pulse.

Pure numpy/scipy: no I/O, no state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import signal

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]

HIGH_PASS_HZ: Final = 0.5
"""Below the slowest heart rate measured (35 /min = 0.58 Hz), above the deflation ramp."""
RATE_RANGE_PER_MIN: Final = (35.0, 200.0)
DUMP_WINDOW_S: Final = 0.3
DUMP_DROP_MMHG: Final = 12.0
"""A fall by this much (beyond the deflation itself) within ``DUMP_WINDOW_S`` that never
recovers is the dump valve opening, not a pulse or a movement."""
DUMP_STEP_MMHG: Final = 4.0
"""Where it opens: the first fall between two samples steeper than this and than 3 x the
ramp's own."""
MIN_CUFF_MMHG: Final = 10.0
MIN_SPAN_MMHG: Final = 20.0
"""A deflation spanning less than this cannot outline an envelope."""
TEMPLATE_BEFORE: Final = 0.3
"""Share of the beat template before its peak (the foot and upstroke)."""
TRACK_SPAN: Final = (0.75, 1.25)
"""Where the next beat is looked for, in beat periods from the last one."""
CLEAR_SNR: Final = 3.0
NARROW: Final = 0.08
BEAT_VARIABILITY: Final = 0.03
"""A beat fitted below 3 standard errors is looked for within 0.08 periods of its place,
or two beat-to-beat SDs (3 % of the period) times the square root of its distance in beats
from the nearest clear beat, whichever is wider."""
OUTLIER_HIGH, OUTLIER_LOW = 1.6, 0.4
"""A beat above 1.6 x or below 0.4 x the median of its four neighbours is an artefact
(motion, an ectopic beat); the envelope's own curvature stays well inside these."""
MIN_OUTLIER_BEATS: Final = 5


@dataclass(frozen=True, slots=True)
class Oscillogram:
    """The beats of one deflation: when, at which cuff pressure, and how big (mmHg)."""

    times: tuple[float, ...]
    """Seconds, in the time base of the input, of each kept beat's peak."""
    cuff: tuple[float, ...]
    """Cuff pressure (the deflation ramp without the pulse) at each kept beat, mmHg."""
    amplitude: tuple[float, ...]
    """Peak-to-trough oscillation amplitude of each kept beat, mmHg."""
    rejected: int
    """Beats found but dropped as artefacts."""
    beat_period: float | None
    """Mean interval between heartbeats over the kept beats' span, s (None with fewer than
    two)."""
    noise: float
    """Standard error of one beat's amplitude, mmHg (infinite without beats)."""

    @property
    def beats(self) -> int:
        return len(self.amplitude)


EMPTY: Final = Oscillogram((), (), (), 0, None, float("inf"))


def oscillogram(
    pressure: npt.ArrayLike,
    *,
    sampling_rate: float | None = None,
    times: npt.ArrayLike | None = None,
) -> Oscillogram:
    """The beats of one deflation from cuff-pressure samples (mmHg).

    Give ``times`` (seconds, any spacing, e.g. when each poll was answered; ``sampling_rate``
    then sets the rate they are resampled at, by default their median spacing) or only
    ``sampling_rate`` for evenly spaced samples.  Samples of the inflation before the
    deflation and of the dump after it are ignored.
    """
    t, p = _uniform(pressure, sampling_rate=sampling_rate, times=times)
    if len(p) < 2:
        return EMPTY
    fs = 1.0 / (t[1] - t[0])
    t, p = _deflation(t, p, fs)
    if len(p) < 2 * fs or np.ptp(p) < MIN_SPAN_MMHG:
        return EMPTY  # no deflation to speak of
    sos = signal.butter(2, HIGH_PASS_HZ, btype="highpass", fs=fs, output="sos")
    osc = signal.sosfiltfilt(sos, p, padtype="odd")  # odd padding continues a ramp as a ramp
    ramp = p - osc
    period = _beat_period(osc, fs)
    if period is None:
        return EMPTY
    template, before = _template(osc, period * fs)
    if template is None:
        return EMPTY
    score = _fit_scale(osc, template, before)
    peaks = _track(score, period * fs)
    peaks, standard_error = _realign_weak(
        osc, score, peaks, template, before=before, period=period * fs
    )
    peaks = peaks[ramp[peaks] >= MIN_CUFF_MMHG]
    height = float(np.ptp(template))
    amplitude = np.maximum(score[peaks], 0.0) * height
    good = _not_outliers(amplitude)
    kept = peaks[good]
    return Oscillogram(
        times=tuple(t[kept].tolist()),
        cuff=tuple(ramp[kept].tolist()),
        amplitude=tuple(amplitude[good].tolist()),
        rejected=int(np.count_nonzero(~good)),
        beat_period=_mean_period(t[kept]),
        noise=standard_error * height,
    )


def _mean_period(times: FloatArray) -> float | None:
    """The mean beat period over the whole span, counting a gap left by dropped beats as the
    whole number of periods it holds (the median interval alone is only as fine as the
    sampling)."""
    if len(times) < 2:
        return None
    gaps = np.diff(times)
    periods = np.maximum(1, np.round(gaps / np.median(gaps)))
    return float(gaps.sum() / periods.sum())


def _uniform(
    pressure: npt.ArrayLike, *, sampling_rate: float | None, times: npt.ArrayLike | None
) -> tuple[FloatArray, FloatArray]:
    """Finite samples in time order on an evenly spaced grid."""
    p = np.asarray(pressure, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"pressure must be one-dimensional, not {p.ndim}-dimensional")
    if sampling_rate is not None and not sampling_rate > 0:
        raise ValueError(f"sampling_rate must be positive, not {sampling_rate}")
    if times is None:
        if sampling_rate is None:
            raise ValueError("give sampling_rate or times")
        t = np.arange(len(p)) / sampling_rate
    else:
        t = np.asarray(times, dtype=np.float64)
        if t.shape != p.shape:
            raise ValueError(f"{t.size} times for {p.size} pressure samples")
    finite = np.isfinite(p) & np.isfinite(t)
    t, p = t[finite], p[finite]
    order = np.argsort(t, kind="stable")
    t, p = t[order], p[order]
    if len(t) < 2:
        return t, p
    distinct = np.concatenate(([True], np.diff(t) > 0))
    t, p = t[distinct], p[distinct]
    step = 1.0 / sampling_rate if sampling_rate is not None else float(np.median(np.diff(t)))
    grid = t[0] + step * np.arange(int(np.floor((t[-1] - t[0]) / step + 1e-9)) + 1)
    return grid, np.interp(grid, t, p)


def _deflation(t: FloatArray, p: FloatArray, fs: float) -> tuple[FloatArray, FloatArray]:
    """From the highest pressure to just before the dump valve opens."""
    top = int(np.argmax(p))
    t, p = t[top:], p[top:]
    window = max(1, round(DUMP_WINDOW_S * fs))
    if len(p) <= window + 1:
        return t, p
    rate = max(0.0, -float(np.median(np.diff(p)))) * fs  # the ramp, mmHg/s
    threshold = DUMP_DROP_MMHG + rate * DUMP_WINDOW_S
    later_max = np.maximum.accumulate(p[::-1])[::-1]  # the highest pressure from i onwards
    dumped = later_max[window:] < p[:-window] - threshold
    if dumped.any():
        first = int(np.argmax(dumped))  # up to ``window`` samples before the valve opens
        drops = -np.diff(p[first : first + window + 1])
        falling = drops > max(DUMP_STEP_MMHG, 3.0 * rate / fs)
        opens = int(np.argmax(falling)) if falling.any() else int(np.argmax(drops))
        end = first + opens + 1
        t, p = t[:end], p[:end]
    return t, p


def _beat_period(osc: FloatArray, fs: float) -> float | None:
    """The beat period (s) at the strongest autocorrelation peak of a heart-rate lag; half
    of it when the half lag correlates nearly as well (a doubled period is the usual slip)."""
    shortest = int(fs * 60.0 / RATE_RANGE_PER_MIN[1])
    longest = int(fs * 60.0 / RATE_RANGE_PER_MIN[0])
    if len(osc) < 2 * longest or shortest < 1:
        return None
    centred = osc - osc.mean()
    spectrum = np.fft.rfft(centred, 2 * len(centred))
    corr = np.fft.irfft(spectrum * np.conj(spectrum))[: longest + 2]
    if corr[0] <= 0:
        return None
    corr = corr / corr[0]
    lags = np.arange(shortest, longest + 1)
    best = int(lags[np.argmax(corr[lags])])
    half = best // 2
    if half >= shortest and corr[half - 1 : half + 2].max() > 0.6 * corr[best]:
        best = half - 1 + int(np.argmax(corr[half - 1 : half + 2]))
    return best / fs if corr[best] >= 0.1 else None


def _template(osc: FloatArray, period: float) -> tuple[FloatArray | None, int]:
    """The mean beat of the strongest third (zero mean, one period long, peak at index
    ``before``), and ``before``."""
    length = max(3, round(period))
    before = round(TEMPLATE_BEFORE * length)
    peaks, _ = signal.find_peaks(osc, distance=max(1, int(0.55 * period)))
    peaks = peaks[(peaks >= before) & (peaks - before + length <= len(osc))]
    if len(peaks) < 3:
        return None, before
    windows = np.stack([osc[k - before : k - before + length] for k in peaks])
    strongest = windows[np.argsort(np.ptp(windows, axis=1))[::-1][: max(3, len(peaks) // 3)]]
    template = strongest.mean(axis=0)
    template = template - template.mean()
    return (template, before) if np.ptp(template) > 0 else (None, before)


def _fit_scale(osc: FloatArray, template: FloatArray, before: int) -> FloatArray:
    """Least-squares scale of the template with its peak at each sample (NaN where the
    template does not fit inside the signal)."""
    fitted = np.correlate(osc, template, mode="valid") / float(template @ template)
    score = np.full(len(osc), np.nan)
    score[before : before + len(fitted)] = fitted
    return score


def _track(score: FloatArray, period: float) -> IndexArray:
    """One beat per period: from the best-fitting beat outwards, the best fit 0.75-1.25
    periods on from the last one found.

    Where pulses are buried in noise (above systolic, below diastolic pressure) noise peaks
    between beats can then never count as beats.
    """
    finite = np.isfinite(score)
    if not finite.any():
        return np.array([], dtype=np.intp)
    filled = np.where(finite, score, -np.inf)
    near, far = max(1, int(TRACK_SPAN[0] * period)), max(2, round(TRACK_SPAN[1] * period))
    start = int(np.argmax(filled))
    beats = [start]
    k = start
    while k + near < len(filled):
        k = k + near + int(np.argmax(filled[k + near : k + far + 1]))
        beats.append(k)
    k = start
    while k - near >= 0:
        low = max(0, k - far)
        k = low + int(np.argmax(filled[low : k - near + 1]))
        beats.insert(0, k)
    found = np.array(beats, dtype=np.intp)
    return found[finite[found]]


def _realign_weak(
    osc: FloatArray,
    score: FloatArray,
    peaks: IndexArray,
    template: FloatArray,
    *,
    before: int,
    period: float,
) -> tuple[IndexArray, float]:
    """Move each beat whose pulse is lost in noise to where the clear beats around it put it.

    Tracking takes the best fit within a quarter period either side, which, where there is
    no pulse, is the largest of several noise values: amplitudes biased upwards that flatten
    the envelope's tails.  A beat fitted below ``CLEAR_SNR`` standard errors is looked for
    only near its place interpolated between clear beats (or extrapolated beyond them).  Returns
    the beats and the standard error of one fit (in template scales), from the residual of
    the signal once every fitted beat is taken out.
    """
    if len(peaks) < 3:
        return peaks, float("inf")
    model = np.zeros(len(osc))
    for k in peaks:
        start = k - before
        model[start : start + len(template)] += score[k] * template
    residual = osc - model
    sigma = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    standard_error = sigma / float(np.sqrt(template @ template))
    clear = score[peaks] >= CLEAR_SNR * standard_error
    if np.count_nonzero(clear) < 2:
        return peaks, standard_error
    order = np.arange(len(peaks))
    anchors = order[clear]
    expected = np.interp(order, anchors, peaks[anchors].astype(np.float64))
    early, late = order < anchors[0], order > anchors[-1]
    expected[early] = peaks[anchors[0]] - (anchors[0] - order[early]) * period
    expected[late] = peaks[anchors[-1]] + (order[late] - anchors[-1]) * period
    # how far the guess can be off: beat-to-beat variability adds up away from clear beats
    distance = np.min(np.abs(order[:, None] - anchors[None, :]), axis=1)
    halves = np.maximum(NARROW, 2.0 * BEAT_VARIABILITY * np.sqrt(distance)) * period
    filled = np.where(np.isfinite(score), score, -np.inf)
    moved = peaks.copy()
    for i in order[~clear]:
        centre, half = round(float(expected[i])), max(1, round(float(halves[i])))
        lo, hi = max(0, centre - half), min(len(osc), centre + half + 1)
        if lo < hi and np.isfinite(filled[lo:hi]).any():
            moved[i] = lo + int(np.argmax(filled[lo:hi]))
    return np.unique(moved), standard_error


def _not_outliers(amplitude: FloatArray) -> npt.NDArray[np.bool_]:
    """False for beats far off the median of their two neighbours on each side."""
    n = len(amplitude)
    good = np.ones(n, dtype=bool)
    if n < MIN_OUTLIER_BEATS:
        return good
    floor = 0.05 * float(np.sort(amplitude)[max(0, n - 3)])  # 5 % of the third largest
    for i in range(n):
        neighbours = np.concatenate((amplitude[max(0, i - 2) : i], amplitude[i + 1 : i + 3]))
        ref = float(np.median(neighbours))
        if amplitude[i] > OUTLIER_HIGH * ref + floor or amplitude[i] < OUTLIER_LOW * ref - floor:
            good[i] = False
    return good
