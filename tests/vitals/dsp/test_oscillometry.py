"""Oscillometric envelope and pressures on seeded synthetic deflations with known truth."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from vitals.dsp.oscillogram import oscillogram
from vitals.dsp.oscillometry import estimate_pressures
from vitals.protocols import suntech as proto
from vitals.sim.suntech import SunTechSimulator, mean_arterial
from vitals.sim.truth import Truth

FloatArray = npt.NDArray[np.float64]


def deflation(
    *,
    systolic: float,
    diastolic: float,
    width: tuple[float, float] | None = None,
    hr: float = 72.0,
    rate: float = 3.5,
    fs: float = 25.0,
    noise: float = 0.2,
    seed: int = 0,
    above: float = 30.0,
    below: float = 15.0,
    jitter: float = 0.0,
) -> tuple[FloatArray, FloatArray]:
    """A linear deflation from SYS + ``above`` to DIA - ``below`` at ``rate`` mmHg/s, one
    pulse per beat (3 % beat-to-beat variability), rounded to the mmHg like a module's reply.

    The envelope is two half Gaussians about MAP = DIA + (SYS - DIA) / 3 whose widths put
    it at 0.5 x peak at SYS and 0.8 x at DIA (Geddes' ratios), unless ``width`` gives them.
    Returns (times, pressures); ``jitter`` (s) moves each timestamp at random.
    """
    rng = np.random.default_rng(seed)
    mean = diastolic + (systolic - diastolic) / 3.0
    if width is None:
        width = (
            (systolic - mean) / math.sqrt(-math.log(0.5)),
            (mean - diastolic) / math.sqrt(-math.log(0.8)),
        )
    top, floor = systolic + above, diastolic - below
    t = np.arange(0.0, (top - floor) / rate, 1.0 / fs)
    ramp = top - rate * t
    intervals = 60.0 / hr * (1.0 + 0.03 * rng.standard_normal(int(t[-1] * hr / 60.0) + 4))
    onsets = float(rng.uniform(0.0, 60.0 / hr)) + np.concatenate(([0.0], np.cumsum(intervals)))
    index = np.searchsorted(onsets, t, side="right") - 1
    phase = np.where(
        index >= 0, (t - onsets[np.maximum(index, 0)]) / intervals[np.maximum(index, 0)], 0.0
    )
    shape = np.exp(-0.5 * ((phase - 0.2) / 0.08) ** 2) + 0.4 * np.exp(
        -0.5 * ((phase - 0.5) / 0.1) ** 2
    )
    offset = ramp - mean
    envelope = 3.0 * np.exp(-((offset / np.where(offset >= 0, width[0], width[1])) ** 2))
    p = np.round(ramp + envelope * shape + noise * rng.standard_normal(len(t)))
    stamps = t + rng.uniform(-jitter, jitter, len(t)) if jitter else t
    return stamps, p


CASES = [(118, 76), (145, 92), (175, 105)]


@pytest.fixture(scope="module")
def geddes_errors() -> dict[str, list[float]]:
    """Maximum-amplitude estimate minus truth, 3 pressures x 8 seeds, envelope at 0.5/0.8."""
    errors: dict[str, list[float]] = {"mean": [], "systolic": [], "diastolic": []}
    for systolic, diastolic in CASES:
        for seed in range(8):
            t, p = deflation(systolic=systolic, diastolic=diastolic, seed=seed)
            found = estimate_pressures(p, times=t).maximum_amplitude
            assert found.method == "geddes1982"
            truth = (mean_arterial(systolic, diastolic), systolic, diastolic)
            for name, value, true in zip(
                errors, (found.mean, found.systolic, found.diastolic), truth, strict=True
            ):
                if value is not None:
                    errors[name].append(value - true)
    return errors


@pytest.mark.parametrize("value", ["mean", "systolic", "diastolic"])
def test_maximum_amplitude_recovers_known_pressures(
    geddes_errors: dict[str, list[float]], value: str
) -> None:
    errors = geddes_errors[value]
    assert len(errors) >= 22, "found in nearly every deflation"
    assert abs(float(np.mean(errors))) <= 3.5
    assert float(np.std(errors, ddof=1)) <= 5


def test_maximum_slope_finds_the_steepest_flanks() -> None:
    # a half Gaussian falls fastest 1/sqrt(2) widths from its peak: put SYS and DIA there.
    # The long, nearly straight systolic flank makes its steepest point vague: unbiased but
    # imprecise (Chandrasekhar et al. 2019); the short diastolic flank pins DIA down.
    systolic, diastolic = 140.0, 80.0
    mean = diastolic + (systolic - diastolic) / 3
    width = ((systolic - mean) * math.sqrt(2), (mean - diastolic) * math.sqrt(2))
    upper, lower = [], []
    for seed in range(8):
        t, p = deflation(
            systolic=systolic, diastolic=diastolic, width=width, above=40, below=35, seed=seed
        )
        found = estimate_pressures(p, times=t).maximum_slope
        assert found.systolic is not None
        assert found.diastolic is not None
        upper.append(found.systolic - systolic)
        lower.append(found.diastolic - diastolic)
    assert abs(float(np.mean(upper))) <= 5
    assert abs(float(np.mean(lower))) <= 3
    assert float(np.std(lower, ddof=1)) <= 5


def test_irregular_timestamps_are_followed() -> None:
    t, p = deflation(systolic=135, diastolic=85, seed=1, jitter=0.008)
    found = estimate_pressures(p, times=t)
    assert found.maximum_amplitude.systolic is not None
    assert abs(found.maximum_amplitude.systolic - 135) <= 5
    assert found.pulse_rate == pytest.approx(72, abs=2)


def test_sampling_rate_alone_serves_evenly_spaced_samples() -> None:
    t, p = deflation(systolic=135, diastolic=85, seed=2)
    by_rate = estimate_pressures(p, sampling_rate=25.0).maximum_amplitude
    by_times = estimate_pressures(p, times=t).maximum_amplitude
    for a, b in zip(
        (by_rate.mean, by_rate.systolic, by_rate.diastolic),
        (by_times.mean, by_times.systolic, by_times.diastolic),
        strict=True,
    ):
        assert a == pytest.approx(b, abs=0.5)


def test_pulse_rate_comes_from_the_beat_intervals() -> None:
    t, p = deflation(systolic=130, diastolic=80, hr=96, seed=4)
    assert estimate_pressures(p, times=t).pulse_rate == pytest.approx(96, abs=2)


def test_a_few_bad_beats_are_dropped() -> None:
    t, p = deflation(systolic=130, diastolic=80, seed=5)
    clean = oscillogram(p, times=t)
    spoiled = p.copy()
    for when in (6.0, 14.0, 19.0):  # three jolts of the arm, 9 mmHg for 0.2 s
        spoiled[(t >= when) & (t < when + 0.2)] += 9.0
    gram = oscillogram(spoiled, times=t)
    assert gram.rejected >= 3 > clean.rejected
    found = estimate_pressures(spoiled, times=t).maximum_amplitude
    assert found.systolic is not None
    assert found.diastolic is not None
    assert abs(found.systolic - 130) <= 5
    assert abs(found.diastolic - 80) <= 5


def test_inflation_and_dump_are_ignored() -> None:
    _, p = deflation(systolic=130, diastolic=80, seed=6)
    fs = 25.0
    inflation = np.linspace(0.0, p[0] - 1, int(6 * fs))
    dump = p[-1] * np.exp(-np.arange(1, int(1.5 * fs)) / (0.3 * fs))
    whole = np.concatenate((inflation, p, np.round(dump)))
    alone = estimate_pressures(p, sampling_rate=fs).maximum_amplitude
    within = estimate_pressures(whole, sampling_rate=fs).maximum_amplitude
    for a, b in zip(
        (alone.mean, alone.systolic, alone.diastolic),
        (within.mean, within.systolic, within.diastolic),
        strict=True,
    ):
        assert a is not None
        assert b is not None
        assert abs(a - b) <= 1.0


def test_a_value_the_deflation_never_reached_is_none() -> None:
    # the cuff stopped 10 mmHg above diastolic pressure: the 0.8 crossing is not in the data
    t, p = deflation(systolic=150, diastolic=90, below=-10.0, seed=7)
    found = estimate_pressures(p, times=t).maximum_amplitude
    assert found.diastolic is None
    assert found.systolic is not None


@pytest.mark.parametrize("seconds", [0.0, 1.0])
def test_too_little_signal_gives_no_estimate(seconds: float) -> None:
    p = np.full(int(25 * seconds), 120.0)
    found = estimate_pressures(p, sampling_rate=25.0)
    assert found.quality == 0.0
    assert found.maximum_amplitude.systolic is None
    assert found.beats == 0


def test_a_ramp_without_pulses_is_not_an_envelope() -> None:
    rng = np.random.default_rng(8)
    ramp = np.round(160.0 - 3.5 * np.arange(0.0, 30.0, 0.04) + 0.3 * rng.standard_normal(750))
    assert estimate_pressures(ramp, sampling_rate=25.0).quality < 0.1


def test_noise_lowers_the_quality() -> None:
    t, p = deflation(systolic=130, diastolic=80, seed=9, noise=0.2)
    _, noisy = deflation(systolic=130, diastolic=80, seed=9, noise=1.2)
    assert estimate_pressures(noisy, times=t).quality < estimate_pressures(p, times=t).quality


def test_ratios_can_be_given() -> None:
    t, p = deflation(systolic=130, diastolic=80, seed=10)
    geddes = estimate_pressures(p, times=t).maximum_amplitude
    wider = estimate_pressures(p, times=t, ratios=(0.3, 0.6)).maximum_amplitude
    assert wider.method == "fixed-ratio"
    assert geddes.systolic is not None
    assert wider.systolic is not None
    assert wider.systolic > geddes.systolic  # a lower ratio is met further from the peak


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="sampling_rate or times"):
        estimate_pressures([1.0, 2.0])
    with pytest.raises(ValueError, match="times for"):
        estimate_pressures([1.0, 2.0], times=[0.0])
    with pytest.raises(ValueError, match="ratios"):
        estimate_pressures([1.0, 2.0], sampling_rate=25.0, ratios=(0.5, 1.2))


def simulated_deflation(truth: Truth, seed: int) -> tuple[FloatArray, FloatArray]:
    """One cycle of the SunTech simulator, polled at 25 Hz and rounded as the module does."""
    sim = SunTechSimulator(truth, seed=seed)
    sim.receive(bytes(proto.START_BP), 0.0)
    t = np.arange(0.04, 120.0, 0.04)
    values = []
    for now in t:
        if sim.emit(float(now)):
            break
        values.append(round(sim.cuff_pressure(float(now))))
    p = np.array(values, dtype=np.float64)
    top = int(np.argmax(p))
    return t[top : len(p)], p[top:]


@pytest.fixture(scope="module")
def simulated_errors() -> dict[str, list[float]]:
    """Estimate minus truth over 12 seeded residents measured by the simulated module."""
    rng = np.random.default_rng(2025)
    errors: dict[str, list[float]] = {"mean": [], "systolic": [], "diastolic": []}
    for seed in range(12):
        systolic = int(rng.integers(100, 181))
        diastolic = int(rng.integers(60, systolic - 29))
        truth = Truth(sys=systolic, dia=diastolic, hr=float(rng.uniform(55, 100)))
        t, p = simulated_deflation(truth, seed)
        found = estimate_pressures(p, times=t).maximum_amplitude
        for name, value, true in (
            ("mean", found.mean, mean_arterial(systolic, diastolic)),
            ("systolic", found.systolic, systolic),
            ("diastolic", found.diastolic, diastolic),
        ):
            if value is not None:
                errors[name].append(value - true)
    return errors


@pytest.mark.parametrize("value", ["mean", "systolic", "diastolic"])
def test_simulated_module_deflations_meet_the_iso_81060_2_bounds(
    simulated_errors: dict[str, list[float]], value: str
) -> None:
    # ISO 81060-2: mean error <= 5 mmHg, SD <= 8.  The simulator's envelope has the ratios
    # 0.55/0.85, so Geddes' 0.5/0.8 read SYS a little high and DIA a little low.
    errors = simulated_errors[value]
    assert len(errors) >= 10, "found for nearly every resident"
    assert abs(float(np.mean(errors))) <= 5
    assert float(np.std(errors, ddof=1)) <= 8
