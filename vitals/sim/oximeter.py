"""What a simulated pulse oximeter shows from moment to moment, shared by every oximeter model.

Real oximeters search for a few seconds after a finger goes in (numbers blank, waveform
already drawn), then update their displayed SpO2 and pulse rate about once a second from an
averaging window; the waveform streams at the device's own rate.  Each protocol simulator turns
these device-neutral states into its own bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from vitals.sim.pleth import PlethSource
from vitals.sim.truth import Truth

ACQUIRE_S = 3.0
ACQUIRE_FAST_S = 0.5


@dataclass(frozen=True, slots=True)
class OximeterState:
    """The device's view at one pleth sample."""

    pleth: float
    """Waveform, 0..1."""
    spo2: int | None
    pulse_rate: int | None
    signal_strength: int
    """0..15."""
    bar_graph: int
    """0..15, follows the pulse."""
    perfusion_index: float | None
    finger_out: bool
    searching: bool
    beep: bool
    moving: bool


class OximeterModel:
    """Generates :class:`OximeterState` values at ``sampling_rate`` from a truth."""

    def __init__(
        self, truth: Truth, rng: np.random.Generator, *, sampling_rate: float, fast: bool
    ) -> None:
        self.truth = truth
        self.sampling_rate = sampling_rate
        self._rng = rng
        self._acquire = ACQUIRE_FAST_S if fast else ACQUIRE_S
        self._source = PlethSource(
            sampling_rate=sampling_rate, heart_rate=truth.hr, rng=rng, noise=truth.noise
        )
        self._index = 0
        self._shown_at = -1.0
        self._spo2: int | None = None
        self._pulse_rate: int | None = None

    def advance(self, t: float, count: int) -> Iterator[OximeterState]:
        """The next ``count`` samples (the caller's frame clock decides how many are due)."""
        if count <= 0:
            return
        start = self._index
        beats_before = len(self._source.beat_samples)
        moving_flags = [self.truth.moving((start + i) / self.sampling_rate) for i in range(count)]
        waveform = self._source.samples(count, motion=any(moving_flags))
        beat_indices = set(self._source.beat_samples[beats_before:])
        truth = self.truth
        for i in range(count):
            index = start + i
            ts = index / self.sampling_rate
            if not truth.finger_in(ts):
                self._spo2 = self._pulse_rate = None
                yield OximeterState(0.0, None, None, 0, 0, None, True, False, False, False)
                continue
            searching = truth.finger_in_since(ts) < self._acquire
            if searching:
                self._spo2 = self._pulse_rate = None
            elif ts - self._shown_at >= 1.0 or self._spo2 is None:
                self._update_display(moving_flags[i])
                self._shown_at = ts
            pleth = float(waveform[i])
            quality = max(0.0, 1.0 - truth.noise - (0.5 if moving_flags[i] else 0.0))
            strength = int(min(15, max(1, truth.perfusion_index * 2.5 * quality)))
            yield OximeterState(
                pleth=pleth,
                spo2=None if searching else self._spo2,
                pulse_rate=None if searching else self._pulse_rate,
                signal_strength=strength,
                bar_graph=min(15, int(pleth * 15.99)),
                perfusion_index=None
                if searching
                else truth.perfusion_index * (0.9 + 0.2 * quality),
                finger_out=False,
                searching=searching,
                beep=index in beat_indices,
                moving=moving_flags[i],
            )
        self._index += count

    def _update_display(self, moving: bool) -> None:
        spread = 1.0 + 3.0 * self.truth.noise + (8.0 if moving else 0.0)
        rate = self.truth.hr + self._rng.normal(0.0, spread)
        self._pulse_rate = int(np.clip(round(rate), 25, 250))
        level = self.truth.spo2 + self._rng.normal(0.0, 0.4 + 1.5 * self.truth.noise)
        self._spo2 = int(np.clip(round(level), 50, 100))
