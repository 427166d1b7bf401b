"""Simulated GY-MCU90615 infrared thermometer module.

It answers each query (A5 15 BA) with one frame, and after the continuous command (A5 45 EA)
sends frames at 10 per second until it is reset; the baud-rate and power-up commands are
stored (they only take effect at the next power-up, which a simulator never sees) and get no
answer; a command with a bad checksum or an unknown code gets no answer either.  The object
temperature is ``truth.temp`` and the ambient ``truth.ambient``, each with a little sensor
noise (more with ``truth.noise``) at the MLX90615's 0.02 °C resolution; while the resident
moves the target partly leaves the field of view and the object reading sags towards ambient.
"""

from __future__ import annotations

from typing import Final

from vitals.protocols import gy_mcu90615 as proto
from vitals.sim.simulator import FrameClock, Simulator
from vitals.sim.truth import Truth

OBJECT_NOISE_C: Final = 0.03
NOISY_OBJECT_C: Final = 0.3
AMBIENT_NOISE_C: Final = 0.02
RESOLUTION_CENTI: Final = 2


class GyMcu90615Simulator(Simulator):
    """A GY-MCU90615 at its default 115200 baud, silent until asked."""

    name = "gy-mcu90615"
    link = proto.LINK

    def __init__(self, truth: Truth, *, seed: int = 0, fast: bool = False) -> None:
        super().__init__(truth, seed=seed, fast=fast)
        self._commands = proto.command_framer()
        self._clock = FrameClock(proto.CONTINUOUS_RATE_HZ)
        self.continuous = False
        self.baudrate_after_power_up = proto.LINK.baudrate
        self.stream_at_power_up = False

    def emit(self, t: float) -> bytes:
        due = self._clock.due(t)
        if not self.continuous:
            return b""
        return b"".join(bytes(self._frame(t)) for _ in range(due))

    def receive(self, data: bytes, t: float) -> bytes:
        out = bytearray()
        for command in self._commands.feed(data):
            code = command.code
            if code is proto.CommandCode.QUERY:
                out += bytes(self._frame(t))
            elif code is proto.CommandCode.CONTINUOUS:
                self.continuous = True
                self._clock.restart(t)
            elif code in (proto.CommandCode.BAUD_9600, proto.CommandCode.BAUD_115200):
                self.baudrate_after_power_up = (
                    9600 if code is proto.CommandCode.BAUD_9600 else 115200
                )
            else:
                self.stream_at_power_up = code is proto.CommandCode.STREAM_AT_POWER_UP
        return bytes(out)

    def _frame(self, t: float) -> proto.TemperatureFrame:
        truth = self.truth
        rng = self.rng
        target = truth.temp
        if truth.moving(t):
            target -= float(rng.uniform(0.2, 0.8)) * (truth.temp - truth.ambient)
        sigma = OBJECT_NOISE_C + NOISY_OBJECT_C * truth.noise
        target += float(rng.normal(0.0, sigma))
        ambient = truth.ambient + float(rng.normal(0.0, AMBIENT_NOISE_C))
        return proto.TemperatureFrame(_centi(target), _centi(ambient))


def _centi(celsius: float) -> int:
    """Hundredths of a degree at the sensor's 0.02 °C resolution."""
    return RESOLUTION_CENTI * round(celsius * 100 / RESOLUTION_CENTI)
