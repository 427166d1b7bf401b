"""Simulated Masimo Rad-8 printing its ASCII 1 serial output: one line per second, no pleth.

The line shows what the oximeter model displays that second.  EXC: 020 (sensor off) while the
finger is out, 008 (pulse search) while acquiring, otherwise 800 (full Masimo SET) plus 400
(low signal IQ) during motion or heavy noise and 004 (low perfusion) when the truth's PI is
below 0.5 %, where the Rad-8 shows PI in red.  ALARM uses the Rad-8's factory limits (SpO2
below 88 %, pulse rate outside 50..140 /min).  The device clock starts at a fixed time and ticks
with scenario time.  The oximeter has no host input: bytes sent to it are ignored.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from vitals.protocols import masimo as proto
from vitals.sim.oximeter import OximeterModel, OximeterState
from vitals.sim.simulator import FrameClock, Simulator
from vitals.sim.truth import Truth

SERIAL_NUMBER = "0000072951"
"""The serial number this simulated oximeter prints (made up)."""
CLOCK_START = datetime(2025, 11, 21, 8, 0, 0)
SPO2_LOW_LIMIT = 88
PULSE_RATE_LIMITS = (50, 140)
LOW_PERFUSION_BELOW = 0.5

_EXC = proto.ExceptionCode
_ALARM = proto.AlarmCode


class MasimoSimulator(Simulator):
    """Prints one ASCII 1 line per second from an :class:`OximeterModel`."""

    name = "masimo-ascii1"
    link = proto.LINK

    def __init__(self, truth: Truth, *, seed: int = 0, fast: bool = False) -> None:
        super().__init__(truth, seed=seed, fast=fast)
        self._clock = FrameClock(proto.LINE_RATE_HZ)
        self._model = OximeterModel(truth, self.rng, sampling_rate=proto.LINE_RATE_HZ, fast=fast)
        self._lines = 0

    def emit(self, t: float) -> bytes:
        out = bytearray()
        for state in self._model.advance(t, self._clock.due(t)):
            out += bytes(self._record(state))
            self._lines += 1
        return bytes(out)

    def _record(self, state: OximeterState) -> proto.AsciiRecord:
        pi = state.perfusion_index
        return proto.AsciiRecord.build(
            taken_at=CLOCK_START + timedelta(seconds=self._lines),
            serial_number=SERIAL_NUMBER,
            spo2=state.spo2,
            pulse_rate=state.pulse_rate,
            perfusion_index=None if pi is None else Decimal(f"{pi:.2f}"),
            alarm=self._alarm(state),
            exceptions=self._exceptions(state),
        )

    def _exceptions(self, state: OximeterState) -> int:
        if state.finger_out:
            return _EXC.SENSOR_OFF
        if state.searching:
            return _EXC.PULSE_SEARCH
        exceptions = _EXC.MASIMO_SET
        if state.moving or self.truth.noise >= 0.5:
            exceptions |= _EXC.LOW_SIGNAL_IQ
        if self.truth.perfusion_index < LOW_PERFUSION_BELOW:
            exceptions |= _EXC.LOW_PERFUSION
        return exceptions

    def _alarm(self, state: OximeterState) -> int:
        alarm = _ALARM(0)
        if state.spo2 is not None and state.spo2 < SPO2_LOW_LIMIT:
            alarm |= _ALARM.SPO2_LOW
        low, high = PULSE_RATE_LIMITS
        if state.pulse_rate is not None and state.pulse_rate < low:
            alarm |= _ALARM.PULSE_RATE_LOW
        if state.pulse_rate is not None and state.pulse_rate > high:
            alarm |= _ALARM.PULSE_RATE_HIGH
        return alarm | _ALARM.ACTIVE if alarm else alarm
