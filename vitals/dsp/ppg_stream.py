"""A pleth stream as a device delivers it, put back on the device's sample clock.

Readings arrive in bursts stamped with the time their bytes were read, several samples to one
timestamp, while the samples themselves are evenly spaced by the device's own clock.  The
analysis in :mod:`vitals.dsp.ppg` needs evenly spaced samples: :func:`on_sample_clock` keeps
their order and spaces them one sample period apart, and where the stream paused (the device
stopped sending, the port hiccuped) it inserts the missing samples as unusable, so that time
on both sides of the pause stays right and no beat interval is measured across it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MAX_GAP_S = 0.5
"""A pause between two readings longer than this is a pause in the stream, not jitter."""


@dataclass(frozen=True, slots=True, eq=False)
class ClockedStream:
    """Evenly spaced samples: values (NaN where missing), usability, and sample times."""

    values: FloatArray
    usable: BoolArray
    times: FloatArray
    """Seconds on the caller's time base, anchored at the newest sample."""


def on_sample_clock(
    times: npt.ArrayLike,
    values: npt.ArrayLike,
    usable: npt.ArrayLike,
    *,
    sampling_rate: float,
    max_gap: float = MAX_GAP_S,
) -> ClockedStream:
    """Space the samples one period apart; fill pauses longer than ``max_gap`` as unusable."""
    if sampling_rate <= 0:
        raise ValueError(f"sampling rate must be positive, not {sampling_rate}")
    t = np.asarray(times, dtype=np.float64)
    if t.size == 0:
        return ClockedStream(np.zeros(0), np.zeros(0, dtype=bool), np.zeros(0))
    steps = np.diff(t, prepend=t[0])
    paused = steps > max_gap
    advance = np.where(paused, np.maximum(1, np.round(steps * sampling_rate)), 1)
    advance[0] = 0
    slot = np.cumsum(advance.astype(np.intp))
    size = int(slot[-1]) + 1
    filled = np.full(size, np.nan)
    filled[slot] = np.asarray(values, dtype=np.float64)
    ok = np.zeros(size, dtype=bool)
    ok[slot] = np.asarray(usable, dtype=bool)
    clock = t[-1] - (size - 1 - np.arange(size)) / sampling_rate
    return ClockedStream(filled, ok & np.isfinite(filled), clock)
