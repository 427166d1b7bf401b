"""Simulated MaxBotix MaxSonar above the cabin's platform, free-running at its series' rate.

The range is the distance from the sensor to the top of the resident's head,
``truth.mount_height_mm - truth.height * 10``, with a few millimetres of noise (more with
``truth.noise``), quantised to the series' unit (mm for HRLV, the default; inches for LV) and
clipped to its reported range.  Now and then a reading is a spike: an arm or hand in the beam
(a shorter range) or a lost echo (the no-target value), more often with noise.  During motion
the head bobs by a few centimetres and some readings miss it and hit the platform.  The sensor
takes no serial input, so anything the host sends is ignored.
"""

from __future__ import annotations

import math
from typing import Final

from vitals.protocols import maxbotix as proto
from vitals.sim.simulator import FrameClock, Simulator
from vitals.sim.truth import Truth

NOISE_MM: Final = 2.0
NOISY_MM: Final = 20.0
SPIKE_RATE: Final = 0.02
BOB_MM: Final = 40.0
MISS_RATE_MOVING: Final = 0.2


class MaxBotixSimulator(Simulator):
    """An HRLV-MaxSonar-EZ by default; ``series=proto.LV`` for the inch-reporting LV-EZ."""

    name = "maxbotix"
    link = proto.LINK

    def __init__(
        self,
        truth: Truth,
        *,
        seed: int = 0,
        fast: bool = False,
        series: proto.Series = proto.HRLV,
    ) -> None:
        super().__init__(truth, seed=seed, fast=fast)
        self.series = series
        self._clock = FrameClock(series.rate_hz)

    def emit(self, t: float) -> bytes:
        digits = self.series.digits
        due = self._clock.due(t)
        return b"".join(bytes(proto.RangeFrame(self._distance(t), digits)) for _ in range(due))

    def _distance(self, t: float) -> int:
        """One reading at ``t``, in the series' unit."""
        truth = self.truth
        series = self.series
        rng = self.rng
        mount = float(truth.mount_height_mm)
        head = mount - truth.height * 10
        millimetres = head + float(rng.normal(0.0, NOISE_MM + NOISY_MM * truth.noise))
        if truth.moving(t):
            millimetres += BOB_MM * math.sin(2 * math.pi * 0.7 * t)
            if rng.random() < MISS_RATE_MOVING:
                millimetres = mount + float(rng.normal(0.0, NOISE_MM))
        if rng.random() < SPIKE_RATE * (1 + 4 * truth.noise):
            if rng.random() < 0.5:
                return series.no_target
            millimetres = float(rng.uniform(0.3, 0.9)) * head
        value = round(millimetres / float(series.millimetres_per_unit))
        return max(series.minimum, min(series.no_target, value))
