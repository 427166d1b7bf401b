"""Synthetic photoplethysmogram with a realistic pulse shape and known beat times.

Each beat is the sum of two Gaussian waves - the systolic (forward) wave and the later, smaller
diastolic (reflected) wave that leaves the dicrotic notch between them - the decomposition used
by Rubins (2008, "Photoplethysmography analysis of artery properties in patients with
cardiovascular diseases") and by PPG simulators after him.  Beat-to-beat intervals vary
(heart-rate variability), the baseline and amplitude follow respiration, and sensor noise and
motion artefacts can be added.  Output is normalised to 0..1; each device scales it to its
own range.

Pure: every random draw comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# Pulse template, as fractions of the beat interval (systolic peak, diastolic wave) and widths.
_SYSTOLE_AT, _SYSTOLE_WIDTH = 0.20, 0.075
_DIASTOLE_AT, _DIASTOLE_WIDTH, _DIASTOLE_GAIN = 0.47, 0.11, 0.45
_PEAK = 1.0 + _DIASTOLE_GAIN * np.exp(-0.5 * ((_SYSTOLE_AT - _DIASTOLE_AT) / _DIASTOLE_WIDTH) ** 2)


def pulse_shape(phase: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """One beat's waveform at ``phase`` in [0, 1), normalised so the systolic peak is ~1."""
    systole = np.exp(-0.5 * ((phase - _SYSTOLE_AT) / _SYSTOLE_WIDTH) ** 2)
    diastole = _DIASTOLE_GAIN * np.exp(-0.5 * ((phase - _DIASTOLE_AT) / _DIASTOLE_WIDTH) ** 2)
    # the tail of the previous beat's diastolic wave carries into the next beat's start
    carry = _DIASTOLE_GAIN * np.exp(-0.5 * ((phase + 1.0 - _DIASTOLE_AT) / _DIASTOLE_WIDTH) ** 2)
    return np.asarray((systole + diastole + carry) / _PEAK, dtype=np.float64)


class PlethSource:
    """Streams pleth samples at ``sampling_rate``; the heart rate may change between calls.

    ``beat_times`` lists the systolic peak time of every beat generated so far (the truth a
    beat detector is tested against); ``beat_samples`` the first sample at or after each peak.
    """

    def __init__(
        self,
        *,
        sampling_rate: float,
        heart_rate: float,
        rng: np.random.Generator,
        hrv: float = 0.03,
        respiration_rate: float = 15.0,
        noise: float = 0.0,
    ) -> None:
        if sampling_rate <= 0 or heart_rate <= 0:
            raise ValueError("sampling rate and heart rate must be positive")
        self.sampling_rate = float(sampling_rate)
        self.heart_rate = float(heart_rate)
        self.noise = noise
        self._rng = rng
        self._hrv = hrv
        self._resp_hz = respiration_rate / 60.0
        self._resp_phase = float(rng.uniform(0, 2 * np.pi))
        self._t = 0.0
        self._beat_start = 0.0
        self._beat_len = self._next_interval()
        self.beat_times: list[float] = []
        self.beat_samples: list[int] = []
        self._count = 0
        self._sway: tuple[npt.NDArray[np.float64], ...] | None = None
        self._drift = 0.0
        self._peak_logged = False

    def _next_interval(self) -> float:
        mean = 60.0 / self.heart_rate
        return float(mean * (1.0 + self._hrv * self._rng.standard_normal()))

    def samples(self, count: int, *, motion: bool = False) -> npt.NDArray[np.float64]:
        """The next ``count`` samples, in 0..1."""
        dt = 1.0 / self.sampling_rate
        phases = np.empty(count, dtype=np.float64)
        for i in range(count):
            t = self._t + i * dt
            while t >= self._beat_start + self._beat_len:
                self._beat_start += self._beat_len
                self._beat_len = self._next_interval()
                self._peak_logged = False
            phase = (t - self._beat_start) / self._beat_len
            if not self._peak_logged and phase >= _SYSTOLE_AT:
                self.beat_times.append(self._beat_start + _SYSTOLE_AT * self._beat_len)
                self.beat_samples.append(self._count + i)
                self._peak_logged = True
            phases[i] = phase
        times = self._t + np.arange(count, dtype=np.float64) * dt
        breathing = np.sin(2 * np.pi * self._resp_hz * times + self._resp_phase)
        out = pulse_shape(phases) * (0.8 + 0.05 * breathing) + 0.1 + 0.04 * breathing
        if self.noise:
            out += self._rng.normal(0.0, 0.04 * self.noise, count)
        if motion:
            out += self._motion(times)
        else:
            self._sway = None
            self._drift = 0.0
        self._t += count * dt
        self._count += count
        return np.asarray(np.clip(out, 0.0, 1.0), dtype=np.float64)

    def _motion(self, times: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Motion artefact: coherent low-frequency sways plus a drifting baseline.

        The sway frequencies, phases and gains are drawn once per motion episode (a new
        episode starts when a call with motion follows one without), so a stream fed a few
        samples at a time sways like a moving hand instead of turning into broadband noise.
        """
        if self._sway is None:
            self._sway = (
                self._rng.uniform(0.8, 3.0, 3),
                self._rng.uniform(0, 2 * np.pi, 3),
                self._rng.uniform(0.2, 0.5, 3),
            )
        freq, phase, gain = self._sway
        swing = (gain[:, None] * np.sin(2 * np.pi * freq[:, None] * times + phase[:, None])).sum(0)
        steps = self._drift + np.cumsum(self._rng.normal(0.0, 0.05, times.size))
        self._drift = float(steps[-1]) if steps.size else self._drift
        return np.asarray(swing + steps, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class SyntheticPleth:
    """A generated recording and its truth."""

    signal: npt.NDArray[np.float64]
    sampling_rate: float
    beat_times: npt.NDArray[np.float64]

    @property
    def heart_rate(self) -> float:
        """Mean heart rate of the generated beats, bpm."""
        intervals = np.diff(self.beat_times)
        return float(60.0 / intervals.mean())


def synthesize(
    duration: float,
    *,
    sampling_rate: float,
    heart_rate: float,
    seed: int,
    hrv: float = 0.03,
    noise: float = 0.0,
) -> SyntheticPleth:
    """A whole pleth recording of ``duration`` seconds with its beat times (for DSP tests)."""
    source = PlethSource(
        sampling_rate=sampling_rate,
        heart_rate=heart_rate,
        rng=np.random.default_rng(seed),
        hrv=hrv,
        noise=noise,
    )
    signal = source.samples(round(duration * sampling_rate))
    return SyntheticPleth(signal, float(sampling_rate), np.asarray(source.beat_times))
