"""Whether a weighing signal has come to rest: the trailing window and its spread.

A platform scale carrying a person never shows one value for long: the person sways, breathes
and shifts weight.  A weight is worth keeping only once the indication has stayed within the
scale's verification scale interval ``e`` for a whole window of time.  This module answers that
question for an evenly sampled series of indications; the weight procedure adds the
indicator's own stability flag on top (both must agree).

Method ``"oiml-r76"`` follows the stable-equilibrium idea of OIML R 76-1:2006, *Non-automatic
weighing instruments, Part 1: Metrological and technical requirements - Tests* (International
Organization of Legal Metrology): a weighing result counts only when the indication no longer
changes by more than one verification scale interval ``e`` (for a class III scale, ``e`` is
also the scale's division and the unit of its maximum permissible errors, 0.5 e to 1.5 e).
The window length is not fixed by R 76; it is the caller's choice (1.5 s in the cabin).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

_REL_EPS = 1e-9
"""Floating-point slack on the tolerance: 63.45 - 63.40 is 0.0500000000000043 in binary."""


@dataclass(frozen=True, slots=True)
class SteadyWindow:
    """The verdict on the trailing window of a series.

    ``needed`` is how many samples the window spans at the given sampling rate; ``start`` is
    the index where that window begins (None when the series is shorter); ``spread`` is its
    max - min (None when too short).  ``steady`` is true when the window is complete and its
    spread is within the tolerance.
    """

    steady: bool
    needed: int
    start: int | None
    spread: float | None


def window_samples(window: float, sampling_rate: float) -> int:
    """Samples that span ``window`` seconds at ``sampling_rate`` (both ends included)."""
    if window <= 0 or sampling_rate <= 0:
        raise ValueError("window and sampling rate must be positive")
    return math.floor(window * sampling_rate + _REL_EPS) + 1


def steady_window(
    values: npt.ArrayLike,
    *,
    sampling_rate: float,
    window: float,
    tolerance: float,
    method: Literal["oiml-r76"] = "oiml-r76",
) -> SteadyWindow:
    """Whether the last ``window`` seconds of ``values`` stay within ``tolerance``.

    ``values`` are evenly sampled at ``sampling_rate`` Hz, newest last; ``tolerance`` is the
    largest allowed max - min (for a scale: its verification interval ``e``).  NaN values
    (no indication) make a window unsteady.
    """
    if method != "oiml-r76":
        raise ValueError(f"unknown stability method {method!r}")
    if tolerance < 0:
        raise ValueError("tolerance must not be negative")
    series = np.asarray(values, dtype=float)
    if series.ndim != 1:
        raise ValueError("values must be one-dimensional")
    needed = window_samples(window, sampling_rate)
    if series.size < needed:
        return SteadyWindow(steady=False, needed=needed, start=None, spread=None)
    start = series.size - needed
    tail = series[start:]
    if np.isnan(tail).any():
        return SteadyWindow(steady=False, needed=needed, start=start, spread=None)
    spread = float(tail.max() - tail.min())
    steady = spread <= _limit(tolerance)
    return SteadyWindow(steady=steady, needed=needed, start=start, spread=spread)


def steady_run(values: npt.ArrayLike, *, tolerance: float) -> int:
    """How many trailing samples of ``values`` stay within ``tolerance`` of one another.

    Used to show progress while a weight settles: the run grows while the indication stays
    within ``e`` and starts again when it moves.
    """
    series = np.asarray(values, dtype=float)
    if series.ndim != 1:
        raise ValueError("values must be one-dimensional")
    limit = _limit(tolerance)
    run = 0
    low = high = math.nan
    for value in series[::-1]:
        if math.isnan(value):
            break
        low = value if run == 0 else min(low, value)
        high = value if run == 0 else max(high, value)
        if high - low > limit:
            break
        run += 1
    return run


def _limit(tolerance: float) -> float:
    return tolerance * (1 + _REL_EPS)
