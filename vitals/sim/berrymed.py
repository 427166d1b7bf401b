"""Simulated BerryMed oximeter speaking the BCI protocol: 5-byte frames at 100 Hz.

What the device shows in each state follows the only public observation of a BM1000
(ScheindorfHyenetics/berrymedBluetoothOxymeter): with no finger, pleth 0, signal strength 15
and the sentinels; while searching, the waveform with the sentinels.  "No signal" is raised
when the model's signal strength falls to its floor (noise or motion swamping the pulse).
"""

from __future__ import annotations

from vitals.protocols import berrymed as proto
from vitals.sim.oximeter import OximeterModel, OximeterState
from vitals.sim.simulator import FrameClock, Simulator
from vitals.sim.truth import Truth


class BerryMedSimulator(Simulator):
    """Streams one frame per pleth sample; ignores anything the host sends."""

    name = "berrymed-bci"
    link = proto.LINK

    def __init__(self, truth: Truth, *, seed: int = 0, fast: bool = False) -> None:
        super().__init__(truth, seed=seed, fast=fast)
        self._clock = FrameClock(proto.SAMPLE_RATE_HZ)
        self._model = OximeterModel(truth, self.rng, sampling_rate=proto.SAMPLE_RATE_HZ, fast=fast)

    def emit(self, t: float) -> bytes:
        out = bytearray()
        for state in self._model.advance(t, self._clock.due(t)):
            out += bytes(frame_of(state))
        return bytes(out)


def frame_of(state: OximeterState) -> proto.LiveFrame:
    """The BCI frame a BM1000 sends for one model state."""
    if state.finger_out:
        return proto.LiveFrame(
            signal_strength=15,
            pleth=0,
            bar_graph=0,
            pulse_rate=proto.NO_PULSE_RATE,
            spo2=proto.NO_SPO2,
            no_finger=True,
        )
    return proto.LiveFrame(
        signal_strength=state.signal_strength,
        pleth=round(state.pleth * proto.PLETH_MAX),
        bar_graph=state.bar_graph,
        pulse_rate=proto.NO_PULSE_RATE if state.pulse_rate is None else state.pulse_rate,
        spo2=proto.NO_SPO2 if state.spo2 is None else state.spo2,
        no_signal=state.signal_strength <= 1,
        pulse_beep=state.beep,
        searching=state.searching,
    )
