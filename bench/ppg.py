"""Pulse rate from the pleth: ``vitals.dsp.ppg.heart_rate`` against HeartPy and NeuroKit2.

All three methods run in the same process on the same windows, one after the other:

* **synthetic corpus** (:mod:`bench.ppg_corpus`): 30 s windows at 60 Hz with known truth, four
  levels from clean to severe (motion inside the pulse band over 30-50 % of the window, knocks
  and slipped-sensor steps, broadband noise).  Per method and level: windows reported, mean
  absolute error (MAE), 90th percentile of the absolute error (p90) and the share within
  5 /min, all over the windows reported.  *Reported* means ``reliable`` for
  ``heart_rate``; for HeartPy (``heartpy.process``, defaults) and NeuroKit2
  (``neurokit2.ppg_process``, defaults; the rate is the mean of its ``PPG_Rate``) it means the
  call returned a finite rate without raising - neither says when not to trust its answer.
  ``heart_rate`` is also scored on every window where it gives a rate at all, reliable or not,
  and HeartPy also after the band-pass its documentation applies to noisy PPG
  (``filter_signal``, 0.75-3.5 Hz, order 3), since plain ``process`` is not meant for noise.
* **speed**: milliseconds per window over the whole corpus, the median of several timed passes
  taken in turns.
* **real recordings**: HeartPy's bundled example PPG recordings, cut into 30 s windows -
  ``data.csv`` (100 Hz, clean, 24.8 s: one shorter window), ``data2.csv`` (its ms timer gives
  ~117 Hz; ~2 min with missing signal and noise spikes) and ``data3.csv`` (its timestamps give
  ~100.4 Hz; ~11.5 min from a finger sensor in a driving simulator); sampling rates as HeartPy's
  own documentation derives them (``get_samplerate_mstimer``, ``get_samplerate_datetime``).
  No truth exists here: the table shows how often each pair of methods agrees within 5 /min.

HeartPy and NeuroKit2 are a bench extra (``pip install -e '.[bench]'``); nothing in ``vitals``
imports them.
"""

from __future__ import annotations

import contextlib
import io
import math
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from bench import machine, ppg_corpus
from vitals.dsp.ppg import heart_rate

FloatArray = npt.NDArray[np.float64]
RateMethod = Callable[[FloatArray, float], float | None]
TOLERANCE_BPM = 5.0
WINDOW_S = 30.0


def _ours(signal: FloatArray, sampling_rate: float) -> float | None:
    rate = heart_rate(signal, sampling_rate=sampling_rate)
    return rate.bpm if rate.reliable else None


def _ours_any(signal: FloatArray, sampling_rate: float) -> float | None:
    return heart_rate(signal, sampling_rate=sampling_rate).bpm


def _heartpy(signal: FloatArray, sampling_rate: float) -> float | None:
    import heartpy as hp  # noqa: PLC0415 - a bench extra, imported only when benchmarked

    try:
        _, measures = hp.process(signal, sample_rate=sampling_rate)
    except Exception:  # any failure is "no rate" for the benchmark
        return None
    return _finite(measures.get("bpm"))


def _heartpy_filtered(signal: FloatArray, sampling_rate: float) -> float | None:
    import heartpy as hp  # noqa: PLC0415 - a bench extra, imported only when benchmarked

    try:
        filtered = hp.filter_signal(
            signal, cutoff=[0.75, 3.5], sample_rate=sampling_rate, order=3, filtertype="bandpass"
        )
        _, measures = hp.process(filtered, sample_rate=sampling_rate)
    except Exception:  # any failure is "no rate" for the benchmark
        return None
    return _finite(measures.get("bpm"))


def _neurokit(signal: FloatArray, sampling_rate: float) -> float | None:
    import neurokit2 as nk  # noqa: PLC0415 - a bench extra, imported only when benchmarked

    try:
        signals, _ = nk.ppg_process(signal, sampling_rate=sampling_rate)
    except Exception:  # any failure is "no rate" for the benchmark
        return None
    return _finite(float(signals["PPG_Rate"].mean()))


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


METHODS: dict[str, RateMethod] = {
    "vitals heart_rate (reliable)": _ours,
    "HeartPy 1.2 process": _heartpy,
    "NeuroKit2 ppg_process": _neurokit,
}
SCORED: dict[str, RateMethod] = {
    "vitals heart_rate (reliable)": _ours,
    "vitals heart_rate (every rate)": _ours_any,
    "HeartPy 1.2 process": _heartpy,
    "HeartPy 1.2 band-pass + process": _heartpy_filtered,
    "NeuroKit2 ppg_process": _neurokit,
}


@dataclass(frozen=True, slots=True)
class Score:
    method: str
    level: str
    windows: int
    reported: int
    mae: float | None
    p90: float | None
    within: float | None


def _quietly(method: RateMethod, signal: FloatArray, sampling_rate: float) -> float | None:
    """Run a method with the third-party warnings and prints out of the report."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return method(signal, sampling_rate)


def score(windows: Sequence[ppg_corpus.Window]) -> list[Score]:
    """Accuracy of every method on every level of the corpus."""
    scores = []
    for name, method in SCORED.items():
        for level in ppg_corpus.LEVELS:
            chosen = [w for w in windows if w.level == level]
            errors = []
            for window in chosen:
                rate = _quietly(method, window.signal, window.sampling_rate)
                if rate is not None:
                    errors.append(abs(rate - window.heart_rate))
            scores.append(_summary(name, level, len(chosen), errors))
    return scores


def _summary(name: str, level: str, count: int, errors: list[float]) -> Score:
    if not errors:
        return Score(name, level, count, 0, None, None, None)
    values = np.asarray(errors)
    return Score(
        name,
        level,
        count,
        len(errors),
        float(values.mean()),
        float(np.percentile(values, 90)),
        float((values <= TOLERANCE_BPM).mean()),
    )


def timing(windows: Sequence[ppg_corpus.Window], *, repeats: int) -> dict[str, float]:
    """Milliseconds per window for each method: the median of ``repeats`` timed passes.

    The passes take turns (ours, HeartPy, NeuroKit2, ours, ...) so that a busy machine slows
    every method alike.
    """
    passes: dict[str, list[float]] = {name: [] for name in METHODS}
    for _ in range(repeats):
        for name, method in METHODS.items():
            start = time.perf_counter()
            for window in windows:
                _quietly(method, window.signal, window.sampling_rate)
            passes[name].append((time.perf_counter() - start) * 1000 / len(windows))
    return {name: statistics.median(times) for name, times in passes.items()}


def recordings() -> list[tuple[str, FloatArray, float]]:
    """HeartPy's example recordings with the sampling rates its documentation gives them."""
    with warnings.catch_warnings():  # heartpy warns about pkg_resources on import
        warnings.simplefilter("ignore")
        import heartpy as hp  # noqa: PLC0415 - a bench extra

        folder = resources.files("heartpy") / "data"
        first = hp.get_data(str(folder / "data.csv"))
        second = hp.get_data(str(folder / "data2.csv"), column_name="hr")
        second_timer = hp.get_data(str(folder / "data2.csv"), column_name="timer")
        third = hp.get_data(str(folder / "data3.csv"), column_name="hr")
        third_timer = hp.get_data(str(folder / "data3.csv"), column_name="datetime")
    return [
        ("data.csv", np.asarray(first, dtype=np.float64), 100.0),
        (
            "data2.csv",
            np.asarray(second, dtype=np.float64),
            float(hp.get_samplerate_mstimer(second_timer)),
        ),
        (
            "data3.csv",
            np.asarray(third, dtype=np.float64),
            float(hp.get_samplerate_datetime(third_timer, timeformat="%Y-%m-%d %H:%M:%S.%f")),
        ),
    ]


def real_windows(signal: FloatArray, sampling_rate: float) -> list[FloatArray]:
    """Consecutive 30 s windows; a recording shorter than 30 s (but 8 s or more) is one."""
    size = round(WINDOW_S * sampling_rate)
    if signal.size < size:
        return [signal] if signal.size >= 8 * sampling_rate else []
    return [signal[i : i + size] for i in range(0, signal.size - size + 1, size)]


def agreement() -> str:
    """The real-recording table: per recording, how often each method reports and agrees."""
    names = list(METHODS)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    short = {name: name.split()[0] for name in names}
    header = "| recording | fs (Hz) | windows | " + " | ".join(f"{short[n]} rates" for n in names)
    header += " | " + " | ".join(f"{short[a]} ~ {short[b]}" for a, b in pairs) + " |"
    lines = [header, "|---" * (3 + len(names) + len(pairs)) + "|"]
    for name, signal, fs in recordings():
        windows = real_windows(signal, fs)
        rates = {m: [_quietly(METHODS[m], w, fs) for w in windows] for m in names}
        cells = [name, f"{fs:.1f}", str(len(windows))]
        cells += [str(sum(r is not None for r in rates[m])) for m in names]
        for a, b in pairs:
            both = [(x, y) for x, y in zip(rates[a], rates[b], strict=True) if x and y]
            near = sum(abs(x - y) <= TOLERANCE_BPM for x, y in both)
            cells.append(f"{near}/{len(both)}" if both else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def accuracy_table(scores: list[Score]) -> str:
    lines = [
        "| method | level | windows | reported | MAE (/min) | p90 (/min) | within 5 /min |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for s in scores:
        lines.append(
            f"| {s.method} | {s.level} | {s.windows} | {s.reported / s.windows:.0%} "
            f"| {_cell(s.mae, '.2f')} | {_cell(s.p90, '.2f')} "
            f"| {'-' if s.within is None else format(s.within, '.0%')} |"
        )
    return "\n".join(lines)


def targets(scores: list[Score], speed: dict[str, float]) -> str:
    """The issue's three targets, measured."""
    ours = {s.level: s for s in scores if s.method == "vitals heart_rate (reliable)"}
    clean, severe = ours["clean"], ours["severe"]
    ratio = speed["HeartPy 1.2 process"] / speed["vitals heart_rate (reliable)"]
    checks = [
        (f"MAE on clean windows <= 1.0 /min: {_cell(clean.mae, '.2f')}", (clean.mae or 99) <= 1),
        (
            f"severe windows: MAE <= 2.0 /min on those reported reliable: "
            f"{_cell(severe.mae, '.2f')}, reporting >= 80 %: "
            f"{severe.reported / severe.windows:.0%}",
            (severe.mae or 99) <= 2 and severe.reported >= 0.8 * severe.windows,
        ),
        (f">= 10x faster per window than HeartPy: {ratio:.1f}x", ratio >= 10),
    ]
    return "\n".join(f"- {'met' if ok else 'NOT met'}: {text}" for text, ok in checks)


def main(*, per_level: int = 50, repeats: int = 3, seed: int = ppg_corpus.SEED) -> str:
    """Run the benchmark; return its Markdown section for BENCHMARKS.md."""
    windows = ppg_corpus.build(per_level=per_level, seed=seed)
    scores = score(windows)
    speed = timing(windows, repeats=repeats)
    speed_lines = "\n".join(f"| {name} | {ms:.2f} |" for name, ms in speed.items())
    disturbed = ", ".join(
        f"{level} {statistics.mean(w.disturbed_seconds for w in windows if w.level == level):.1f} s"
        for level in ppg_corpus.LEVELS
    )
    return f"""## Pulse rate from the pleth (issue 3)

{machine.describe()}

Synthetic corpus: {per_level} windows per level, 30 s at 60 Hz, 40-180 /min, seed {seed}
(`bench/ppg_corpus.py` describes each level); mean time under motion or bursts per window:
{disturbed}. "Reported" is `reliable` for `heart_rate` and
"returned a finite rate without raising" for HeartPy and NeuroKit2; errors are over the
windows reported.

{accuracy_table(scores)}

Targets (issue 3):

{targets(scores, speed)}

### Time per 30 s window (all levels, median of {repeats} passes)

| method | ms per window |
|---|---:|
{speed_lines}

### HeartPy's example recordings, 30 s windows: rates given and pairwise agreement within 5 /min

{agreement()}
"""


if __name__ == "__main__":
    print(main())
