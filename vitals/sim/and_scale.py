"""Simulated A&D weighing indicator under a platform scale, speaking the A&D standard format.

The resident stands on the platform from t=0: the load rises within a fraction of a second and
sways (a damped ~1 Hz oscillation, as a person finds their balance), the indicator shows US
until ``truth.scale_settle`` seconds have passed (a quarter of that, at most 0.5 s, when
``fast``), then ST with ``truth.weight`` at the scale's 0.05 kg division.  Motion periods set
the sway going again and restart the settling; ``truth.unstable_scale`` keeps a sway that
never settles.  The platform is 200 kg capacity; beyond capacity + 9 divisions the indicator
shows OL.

Stream mode (default) sends a line per display update at 10 lines/s; in either mode the
indicator answers RW/RG/RN/RT with a line, MZ/MT/CT with an echo or 'I', and anything else
with '?'.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Final

from vitals.protocols import and_scale as proto
from vitals.sim.simulator import FrameClock, Simulator
from vitals.sim.truth import Truth

DIVISION: Final = Decimal("0.05")
CAPACITY: Final = Decimal(200)
ZERO_RANGE: Final = CAPACITY * Decimal("0.02")
"""MZ works only within ±2 % of capacity of the calibrated zero."""
STEP_ON_S: Final = 0.6
SWAY_HZ: Final = 0.9
SWAY_KG: Final = 1.5
MOTION_SWAY_KG: Final = 2.5
UNSTABLE_SWAY_KG: Final = 0.4


class AndScaleSimulator(Simulator):
    """An A&D indicator in stream mode (or command mode with ``stream=False``)."""

    name = "and-scale"
    link = proto.LINK

    def __init__(
        self, truth: Truth, *, seed: int = 0, fast: bool = False, stream: bool = True
    ) -> None:
        super().__init__(truth, seed=seed, fast=fast)
        self.stream = stream
        self._clock = FrameClock(proto.STREAM_RATE_HZ)
        self._commands = proto.command_framer()
        self._settle = min(truth.scale_settle / 4, 0.5) if fast else truth.scale_settle
        self._step_on = STEP_ON_S / 4 if fast else STEP_ON_S
        self._phase = float(self.rng.uniform(0, 2 * math.pi))
        self._zero = Decimal(0)
        self._tare = Decimal(0)

    def emit(self, t: float) -> bytes:
        due = self._clock.due(t)
        if not self.stream:
            return b""
        mode = proto.WeighMode.NET if self._tare else proto.WeighMode.GROSS
        return b"".join(bytes(self._line(t, mode)) for _ in range(due))

    def receive(self, data: bytes, t: float) -> bytes:
        out = bytearray()
        for command in self._commands.feed(data):
            out += bytes(self._answer(command, t))
        return bytes(out)

    def _answer(
        self, command: proto.HostLine, t: float
    ) -> proto.WeightLine | proto.ScaleCommand | proto.ErrorReply:
        if isinstance(command, proto.UnknownCommand):
            return proto.ErrorReply(proto.ErrorCode.UNKNOWN)
        code = proto.CommandCode
        if command.code is code.READ_WEIGHT:
            return self._line(t, proto.WeighMode.NET if self._tare else proto.WeighMode.GROSS)
        if command.code is code.READ_GROSS:
            return self._line(t, proto.WeighMode.GROSS)
        if command.code is code.READ_NET:
            return self._line(t, proto.WeighMode.NET)
        if command.code is code.READ_TARE:
            return proto.WeightLine.of(proto.Stability.STABLE, proto.WeighMode.TARE, self._tare)
        if command.code is code.CLEAR_TARE:
            self._tare = Decimal(0)
            return command
        gross, stable = self._display(t)
        if not stable or gross > CAPACITY:
            return proto.ErrorReply(proto.ErrorCode.UNPERFORMED)
        if command.code is code.ZERO:
            if abs(gross + self._zero) > ZERO_RANGE:
                return proto.ErrorReply(proto.ErrorCode.UNPERFORMED)
            self._zero += gross
        elif gross <= 0:  # TARE needs a positive gross load
            return proto.ErrorReply(proto.ErrorCode.UNPERFORMED)
        else:
            self._tare = gross
        return command

    def _line(self, t: float, mode: proto.WeighMode) -> proto.WeightLine:
        gross, stable = self._display(t)
        if gross > CAPACITY + 9 * DIVISION:
            return proto.WeightLine.overload(mode)
        value = {
            proto.WeighMode.GROSS: gross,
            proto.WeighMode.NET: gross - self._tare,
            proto.WeighMode.TARE: self._tare,
        }[mode]
        stability = proto.Stability.STABLE if stable else proto.Stability.UNSTABLE
        return proto.WeightLine.of(stability, mode, value)

    def _display(self, t: float) -> tuple[Decimal, bool]:
        """The gross weight the indicator shows at ``t`` (at its division) and whether it is
        stable."""
        truth = self.truth
        weight = float(truth.weight)
        calm_since = max((p.end for p in truth.motion if p.end <= t), default=0.0)
        since = t - calm_since
        omega = 2 * math.pi * SWAY_HZ
        if truth.moving(t):
            load = weight + MOTION_SWAY_KG * math.sin(omega * t + self._phase)
            stable = False
        else:
            # Stepping on: the load ramps up, and the sway grows with it.
            on = min(1.0, since / self._step_on) if calm_since == 0 else 1.0
            load = weight * on
            amplitude = MOTION_SWAY_KG if calm_since else SWAY_KG
            if self._settle > 0:
                # Decay the sway to a hundredth of a division by the settle time.
                rate = math.log(amplitude / (float(DIVISION) / 100)) / self._settle
                sway = amplitude * on * math.exp(-rate * since)
                load += sway * math.sin(omega * t + self._phase)
            stable = since >= self._settle
        if truth.unstable_scale:
            load += UNSTABLE_SWAY_KG * math.sin(omega * 1.3 * t + self._phase)
            stable = False
        if truth.noise:
            load += float(self.rng.normal(0.0, 0.02 * truth.noise))
        shown = round(load / float(DIVISION)) * DIVISION - self._zero
        return shown, stable
