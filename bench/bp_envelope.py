"""The oscillometric envelope estimator against the SunTech simulator's truth.

Each case is one simulated deflation: the simulator (``vitals.sim.suntech``) runs a cycle for
a drawn systolic/diastolic pressure, heart rate and noise level, and is polled as the driver
polls it - the cuff pressure rounded to the mmHg at 25 Hz, with a few milliseconds of timing
jitter - from the top of the inflation to the dump.  Both estimates of
:func:`vitals.dsp.oscillometry.estimate_pressures` are compared with the truth (MAP by the
simulator's one-third rule) and reported against the ISO 81060-2 criterion (mean error
<= 5 mmHg, SD <= 8 mmHg); a second table shows the cross-check as the BP procedure runs it.

What this proves, and what it does not: the simulator draws its envelope as two half
Gaussians that reach 0.55 x the peak at SYS and 0.85 x at DIA.  Passing here shows that the
signal chain (resampling, dump trimming, high-pass, beat template fits, robust smoothing)
recovers a known envelope through 1-mmHg rounding, sensor noise and the simulator's
beat-to-beat variability, and how fast it runs.  It says nothing about accuracy in people,
whose oscillograms vary in shape with pulse pressure and arterial stiffness: ISO 81060-2
validates against auscultation in at least 85 subjects, and even hardware NIBP simulators
cannot stand in for that (J. Havlik, V. Fabian, 2020, "Verification of clinical accuracy of
automated non-invasive sphygmomanometers: is it appropriate to use blood pressure
simulators?", Lekar a technika 50:5-11).  The maximum-slope estimates carry a bias that is a
property of a Gaussian envelope, not of people: a Gaussian falls fastest 0.71 widths from its
peak, so against this simulator the derivative method reads SYS about 0.09 x (SYS - MAP) low
and DIA about 0.75 x (MAP - DIA) low - usually below the end of the simulated deflation.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from vitals.dsp.oscillometry import OscillometricEstimate, estimate_pressures
from vitals.protocols import suntech as proto
from vitals.sim.suntech import SunTechSimulator, mean_arterial
from vitals.sim.truth import Truth

POLL_HZ = 25.0
JITTER_S = 0.004
NOISE_LEVELS = (0.0, 0.2, 0.5)
ISO_MEAN, ISO_SD = 5.0, 8.0
GATE, MARGIN = 0.3, 10.0
"""The BP procedure's defaults: minimum envelope quality, disagreement margin (mmHg)."""
MISREPORTS = (15.0, 25.0)


@dataclass(frozen=True, slots=True)
class Case:
    truth: Truth
    seed: int
    fast: bool


@dataclass(frozen=True, slots=True)
class Deflation:
    times: np.ndarray
    pressure: np.ndarray


def cases(count: int, *, noise: float, fast: bool, seed: int = 2025) -> list[Case]:
    """Seeded draws: SYS 90-200, DIA 50-120 with a pulse pressure of 25-90, HR 50-110."""
    rng = np.random.default_rng(seed)
    out: list[Case] = []
    while len(out) < count:
        systolic = int(rng.integers(90, 201))
        diastolic = int(rng.integers(50, 121))
        if not 25 <= systolic - diastolic <= 90:
            continue
        hr = float(rng.uniform(50, 110))
        truth = Truth(sys=systolic, dia=diastolic, hr=hr, noise=noise)
        out.append(Case(truth, seed=int(rng.integers(1 << 30)), fast=fast))
    return out


def deflation(case: Case) -> Deflation:
    """Poll one simulated cycle as the driver does; return the samples from the top onwards."""
    sim = SunTechSimulator(case.truth, seed=case.seed, fast=case.fast)
    jitter = np.random.default_rng(case.seed + 1)
    sim.receive(bytes(proto.START_BP), 0.0)
    times: list[float] = []
    values: list[float] = []
    t = 0.0
    while t < 300.0:
        t += 1.0 / POLL_HZ
        stamp = t + float(jitter.uniform(-JITTER_S, JITTER_S))
        if sim.emit(t):  # the unprompted 'K': the cycle is over
            break
        times.append(stamp)
        values.append(float(np.clip(round(sim.cuff_pressure(t)), 0, 0xFFFE)))
    p = np.array(values)
    top = int(np.argmax(p))
    return Deflation(np.array(times)[top:], p[top:])


@dataclass(frozen=True, slots=True)
class Errors:
    """Estimate minus truth per case (NaN where the method gave no value)."""

    mean: np.ndarray
    systolic: np.ndarray
    diastolic: np.ndarray


@dataclass(frozen=True, slots=True)
class Run:
    """Both methods' errors over one set of cases, the qualities, and the time per estimate."""

    amplitude: Errors
    slope: Errors
    quality: np.ndarray
    ms: float


def evaluate(count: int, *, noise: float, fast: bool) -> Run:
    """Estimate every case of a seeded set and compare with the simulator's truth."""
    runs = cases(count, noise=noise, fast=fast)
    signals = [deflation(case) for case in runs]
    started = time.perf_counter()
    estimates = [estimate_pressures(d.pressure, times=d.times) for d in signals]
    ms = (time.perf_counter() - started) * 1000.0 / count
    quality = np.array([e.quality for e in estimates])
    return Run(
        _errors(runs, estimates, "amplitude"), _errors(runs, estimates, "slope"), quality, ms
    )


def _errors(runs: list[Case], estimates: list[OscillometricEstimate], which: str) -> Errors:
    rows = []
    for case, estimate in zip(runs, estimates, strict=True):
        e = estimate.maximum_amplitude if which == "amplitude" else estimate.maximum_slope
        truth = case.truth
        rows.append(
            [
                _minus(e.mean, mean_arterial(truth.sys, truth.dia)),
                _minus(e.systolic, truth.sys),
                _minus(e.diastolic, truth.dia),
            ]
        )
    table = np.array(rows)
    return Errors(table[:, 0], table[:, 1], table[:, 2])


def _minus(value: float | None, truth: float) -> float:
    return float("nan") if value is None else value - truth


def _cell(errors: np.ndarray) -> str:
    found = errors[np.isfinite(errors)]
    if len(found) < 2:
        return f"- ({len(errors) - len(found)} none)"
    mean, sd = float(found.mean()), float(found.std(ddof=1))
    verdict = "pass" if abs(mean) <= ISO_MEAN and sd <= ISO_SD else "FAIL"
    missing = len(errors) - len(found)
    gaps = f", {missing} none" if missing else ""
    return f"{mean:+.1f} ± {sd:.1f} ({verdict}{gaps})"


def _cross_check(run: Run) -> str:
    """Share cross-checked; false alarms on a truthful module; alarms when it misreports."""
    confident = run.quality >= GATE
    errors = np.stack((run.amplitude.mean, run.amplitude.systolic, run.amplitude.diastolic))
    worst = np.nanmax(np.abs(np.nan_to_num(errors, nan=0.0)), axis=0)
    false_alarms = int(np.count_nonzero(confident & (worst > MARGIN)))
    cells = [f"{np.mean(confident):.0%}", f"{false_alarms} of {int(confident.sum())}"]
    for offset in MISREPORTS:
        # the module reports SYS + offset: flagged when the envelope's SYS is > margin away
        gap = np.abs(run.amplitude.systolic - offset)
        caught = confident & np.isfinite(gap) & ((gap > MARGIN) | (worst > MARGIN))
        cells.append(f"{np.count_nonzero(caught)} of {int(confident.sum())}")
    return " | ".join(cells)


def main(count: int = 60) -> str:
    """The benchmark as a Markdown section for BENCHMARKS.md."""
    accuracy = [
        "### Oscillometric envelope vs the simulator's truth",
        "",
        f"{count} seeded cases per row: SYS 90-200, DIA 50-120 (pulse pressure 25-90), "
        "HR 50-110 /min; cuff pressure polled at 25 Hz with ±4 ms jitter and rounded to the "
        "mmHg, as the driver gets it. Mean error ± SD in mmHg (estimate - truth) against the "
        "ISO 81060-2 criterion (|mean| <= 5, SD <= 8); 'none' counts cases where the method "
        "found no value (the deflation did not reach it). Noise is `Truth.noise` (sensor noise "
        "SD 0.2 + 1.5 x noise mmHg on 1-4 mmHg pulses).",
        "",
        "| deflation | noise | method | MAP | SYS | DIA | ms / estimate |",
        "|---|---|---|---|---|---|---|",
    ]
    check = [
        "",
        f"Cross-check as the BP procedure uses it (envelope quality >= {GATE}, margin "
        f"{MARGIN:g} mmHg): share of deflations confident enough to check, false alarms on "
        "the truthful simulated module, and alarms when the module reports SYS too high by "
        + ", ".join(f"{o:g}" for o in MISREPORTS)
        + " mmHg.",
        "",
        "| deflation | noise | checked | false alarms | "
        + " | ".join(f"SYS +{o:g} caught" for o in MISREPORTS)
        + " |",
        "|---|---|---|---|" + "---|" * len(MISREPORTS),
    ]
    for fast in (False, True):
        kind = "fast (7.5 s)" if fast else "real (3.5 mmHg/s)"
        for noise in NOISE_LEVELS:
            run = evaluate(count, noise=noise, fast=fast)
            for name, errors in (("max amplitude", run.amplitude), ("max slope", run.slope)):
                accuracy.append(
                    f"| {kind} | {noise:g} | {name} | {_cell(errors.mean)} | "
                    f"{_cell(errors.systolic)} | {_cell(errors.diastolic)} | {run.ms:.1f} |"
                )
            check.append(f"| {kind} | {noise:g} | {_cross_check(run)} |")
    notes = [
        "",
        "What this shows: the signal chain (resampling, dump trimming, high-pass, beat "
        "template fits, robust smoothing) recovers a known envelope through 1-mmHg rounding, "
        "noise and 3 % beat-to-beat variability. What it does not: accuracy in people. The "
        "simulator's envelope is two half Gaussians at 0.55 x peak at SYS and 0.85 x at DIA; "
        "the maximum-amplitude estimate uses Geddes' 0.5/0.8, so part of its error (SYS high, "
        "DIA low) is that ratio difference, and the maximum-slope method's DIA sits 0.75 x "
        "(MAP - DIA) below DIA on a Gaussian - often past the end of the simulated deflation "
        "(20 mmHg below DIA), hence its 'none'. The fast mode (the whole deflation in 7.5 s, "
        "about 10 mmHg between beats) is for tests: its envelope is rarely confident enough to "
        "check, which the quality index says.",
    ]
    return "\n".join(accuracy + check + notes)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.bp_envelope")
    parser.add_argument("--cases", type=int, default=60)
    print(main(parser.parse_args().cases))
