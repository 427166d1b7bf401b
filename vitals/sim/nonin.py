"""Simulated Nonin OEM III module streaming serial data format #2 (75 frames/s, 25-frame packets).

Each packet takes its numbers from the oximeter model when its SYNC frame is due: the
recording-formatted values (HR, SpO2, E-HR, E-SpO2, fast, beat-to-beat) turn to the markers
511/127 as soon as the model has no value, the display-formatted ``-D`` values hold the last
value for 10 s as the real module does.  The timer counts packets; the software revision is a
constant of this simulated module.  Status bits: SNSA while the finger is out; the perfusion
class (from the model's signal strength) for 12 frames (160 ms) at each pulse; ARTF on those
frames while the resident moves.  The module has no host input: bytes sent to it are ignored.
"""

from __future__ import annotations

from vitals.protocols import nonin as proto
from vitals.sim.oximeter import OximeterModel, OximeterState
from vitals.sim.simulator import FrameClock, Simulator
from vitals.sim.truth import Truth

SOFTWARE_REVISION = 0x2B
"""The revision byte this simulated module reports (made up; real modules report their own)."""
PULSE_INDICATION_FRAMES = 12
DISPLAY_HOLD_FRAMES = 10 * proto.FRAME_RATE_HZ


class NoninOem3Simulator(Simulator):
    """Streams format #2 frames from an :class:`OximeterModel` at 75 Hz."""

    name = "nonin-oem3"
    link = proto.LINK

    def __init__(self, truth: Truth, *, seed: int = 0, fast: bool = False) -> None:
        super().__init__(truth, seed=seed, fast=fast)
        self._clock = FrameClock(proto.FRAME_RATE_HZ)
        self._model = OximeterModel(truth, self.rng, sampling_rate=proto.FRAME_RATE_HZ, fast=fast)
        self._frame_number = 0
        self._timer = -1
        self._data = proto.PacketValues().data_bytes()
        self._pulse_frames_left = 0
        self._perfusion = proto.Perfusion.NONE
        self._frames_sent = 0
        # the last (SpO2, pulse rate) on the display, and the frame count when it expires
        self._shown: tuple[int, int] | None = None
        self._shown_until = 0

    def emit(self, t: float) -> bytes:
        out = bytearray()
        for state in self._model.advance(t, self._clock.due(t)):
            if self._frame_number == 0:
                self._timer = (self._timer + 1) % proto.TIMER_MODULO
                self._data = self._packet_values(state).data_bytes()
            out += bytes(self._frame(state))
            self._frame_number = (self._frame_number + 1) % proto.FRAMES_PER_PACKET
            self._frames_sent += 1
        return bytes(out)

    def _packet_values(self, state: OximeterState) -> proto.PacketValues:
        spo2 = proto.NO_SPO2 if state.spo2 is None else state.spo2
        rate = proto.NO_HEART_RATE if state.pulse_rate is None else state.pulse_rate
        if state.spo2 is not None and state.pulse_rate is not None:
            self._shown = (state.spo2, state.pulse_rate)
            self._shown_until = self._frames_sent + DISPLAY_HOLD_FRAMES
        elif self._frames_sent > self._shown_until:
            self._shown = None
        shown_spo2, shown_rate = self._shown or (proto.NO_SPO2, proto.NO_HEART_RATE)
        return proto.PacketValues(
            heart_rate=rate,
            spo2=spo2,
            software_revision=SOFTWARE_REVISION,
            timer=self._timer,
            spo2_display=shown_spo2,
            spo2_fast=spo2,
            spo2_beat_to_beat=spo2,
            extended_heart_rate=rate,
            extended_spo2=spo2,
            extended_spo2_display=shown_spo2,
            heart_rate_display=shown_rate,
            extended_heart_rate_display=shown_rate,
        )

    def _frame(self, state: OximeterState) -> proto.Frame:
        if state.finger_out:
            self._pulse_frames_left = 0
        elif state.beep:
            self._pulse_frames_left = PULSE_INDICATION_FRAMES
            self._perfusion = perfusion_class(state.signal_strength)
        in_pulse = self._pulse_frames_left > 0
        self._pulse_frames_left = max(0, self._pulse_frames_left - 1)
        return proto.Frame(
            pleth=round(state.pleth * 255),
            data=self._data[self._frame_number],
            sync=self._frame_number == 0,
            artifact=in_pulse and state.moving,
            sensor_alarm=state.finger_out,
            perfusion=self._perfusion if in_pulse else proto.Perfusion.NONE,
        )


def perfusion_class(signal_strength: int) -> proto.Perfusion:
    """The pulse amplitude class the module would show for a model signal strength 0..15."""
    if signal_strength >= 5:
        return proto.Perfusion.GREEN
    if signal_strength >= 2:
        return proto.Perfusion.YELLOW
    return proto.Perfusion.RED
