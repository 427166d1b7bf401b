"""A seeded synthetic pleth corpus with ground truth, from clean to severe, for the rate benchmark.

Every window is 30 s of pleth at 60 Hz (the CMS50D+'s rate), quantised to the device's 0..127
range, with a heart rate drawn uniformly from 40-180 /min and 3 % beat-to-beat variability.
The pulse comes from :class:`vitals.sim.pleth.PlethSource` (two-Gaussian beats, respiratory
baseline and amplitude modulation, sensor noise, its motion model); this module adds what the
simulator lacks: extra broadband noise, slow baseline wander and *bursts*.  The truth is the
mean rate of the beats generated in the window (60 / mean inter-beat interval).

Levels (the same seed always gives the same windows):

* ``clean`` - the pulse, respiration and HRV only.
* ``noisy`` - sensor noise (``noise=1``, sd 4 % of full scale) plus white noise (sd 6 %),
  baseline wander (0.05-0.3 Hz, up to 20 % of full scale); no motion.
* ``motion`` - sensor noise (``noise=0.5``), one motion episode of 3-6 s and one burst.
* ``severe`` - sensor noise (``noise=1``) plus white noise (sd 4 %); two or three motion episodes
  covering 30-50 % of the window; three to six bursts.  A motion episode is the simulator's:
  three sinusoids at 0.8-3 Hz - inside the band of the pulse itself (48-180 /min) - of 20-50 %
  of full scale each, plus a random-walk drift, clipped at the device's range.  A burst is a
  knock (a 50-200 ms spike of 50-150 % of full scale, either sign) or a slipped sensor (a
  0.1-0.5 s step of 30-100 %).  The parameters were fixed before the first benchmark run and
  not changed since; they are stated, with the seed, in the report.

A caveat on reading the results: ``heart_rate``'s artefact handling was developed while looking
at windows like these (its thresholds come from the cited papers where they give one), so its
numbers on this corpus are likelier to flatter it than HeartPy's or NeuroKit2's; the motion
model is the simulator's, not recorded motion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from vitals.sim.pleth import PlethSource

FloatArray = npt.NDArray[np.float64]
LEVELS = ("clean", "noisy", "motion", "severe")
SAMPLING_RATE = 60.0
DURATION_S = 30.0
FULL_SCALE = 127
RATE_RANGE = (40.0, 180.0)
SEED = 20251121


@dataclass(frozen=True, slots=True, eq=False)
class Window:
    """One corpus window and its truth."""

    level: str
    signal: FloatArray = field(repr=False)
    """Pleth in device units (integers 0..127), at :data:`SAMPLING_RATE`."""
    sampling_rate: float
    heart_rate: float
    """True mean heart rate of the window's beats, /min."""
    disturbed_seconds: float
    """Seconds covered by motion episodes and bursts."""
    seed: int


def build(
    *, per_level: int = 50, seed: int = SEED, levels: tuple[str, ...] = LEVELS
) -> list[Window]:
    """``per_level`` windows of each level, reproducible from ``seed``."""
    windows = []
    for level_index, level in enumerate(levels):
        for i in range(per_level):
            window_seed = seed * 1000 + level_index * per_level + i
            windows.append(window(level, seed=window_seed))
    return windows


def window(level: str, *, seed: int) -> Window:
    """One window of ``level`` from ``seed``."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; levels are {', '.join(LEVELS)}")
    rng = np.random.default_rng(seed)
    count = round(DURATION_S * SAMPLING_RATE)
    rate = float(rng.uniform(*RATE_RANGE))
    sensor_noise = {"clean": 0.0, "noisy": 1.0, "motion": 0.5, "severe": 1.0}[level]
    source = PlethSource(sampling_rate=SAMPLING_RATE, heart_rate=rate, rng=rng, noise=sensor_noise)
    episodes = _motion_episodes(level, rng)
    moving = np.zeros(count, dtype=bool)
    for start, end in episodes:
        moving[round(start * SAMPLING_RATE) : round(end * SAMPLING_RATE)] = True
    pleth = np.concatenate(
        [source.samples(len(part), motion=bool(part[0])) for part in _split(moving)]
    )
    if level in ("noisy", "severe"):
        pleth += rng.normal(0.0, 0.06 if level == "noisy" else 0.04, count)
    if level == "noisy":
        t = np.arange(count) / SAMPLING_RATE
        pleth += rng.uniform(0.05, 0.2) * np.sin(
            2 * np.pi * rng.uniform(0.05, 0.3) * t + rng.uniform(0, 6.3)
        )
    bursts = {"clean": 0, "noisy": 0, "motion": 1, "severe": int(rng.integers(3, 7))}[level]
    disturbed = moving.copy()
    for _ in range(bursts):
        disturbed |= _add_burst(pleth, rng)
    signal = np.round(np.clip(pleth, 0.0, 1.0) * FULL_SCALE)
    truth = float(60.0 / np.diff(source.beat_times).mean())
    return Window(level, signal, SAMPLING_RATE, truth, float(disturbed.sum() / SAMPLING_RATE), seed)


def _motion_episodes(level: str, rng: np.random.Generator) -> list[tuple[float, float]]:
    """(start, end) seconds of the motion episodes of a window, not overlapping."""
    if level == "motion":
        length = rng.uniform(3.0, 6.0)
        start = rng.uniform(0.0, DURATION_S - length)
        return [(start, start + length)]
    if level != "severe":
        return []
    count = int(rng.integers(2, 4))
    total = rng.uniform(0.3, 0.5) * DURATION_S
    lengths = total * rng.dirichlet(np.ones(count))
    free = DURATION_S - total
    gaps = free * rng.dirichlet(np.ones(count + 1))
    episodes, t = [], 0.0
    for gap, length in zip(gaps[:-1], lengths, strict=True):
        t += gap
        episodes.append((t, t + length))
        t += length
    return episodes


def _split(moving: npt.NDArray[np.bool_]) -> list[npt.NDArray[np.bool_]]:
    """``moving`` cut where it changes, so each part is all motion or all still."""
    cuts = np.flatnonzero(np.diff(moving.astype(np.int8))) + 1
    return np.split(moving, cuts)


def _add_burst(pleth: FloatArray, rng: np.random.Generator) -> npt.NDArray[np.bool_]:
    """Add a knock or a slipped-sensor step in place; return the samples it covers."""
    fs = SAMPLING_RATE
    sign = rng.choice((-1.0, 1.0))
    if rng.random() < 0.5:
        length = max(3, round(rng.uniform(0.05, 0.2) * fs))
        shape = sign * rng.uniform(0.5, 1.5) * np.hanning(length)
    else:
        length = round(rng.uniform(0.1, 0.5) * fs)
        shape = np.full(length, sign * rng.uniform(0.3, 1.0))
    start = int(rng.integers(0, pleth.size - length))
    pleth[start : start + length] += shape
    covered = np.zeros(pleth.size, dtype=bool)
    covered[start : start + length] = True
    return covered
