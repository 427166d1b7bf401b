"""Simulated Contec CMS50D+ speaking the legacy 5-byte live protocol at 60 Hz."""

from __future__ import annotations

from vitals.protocols import contec_legacy as proto
from vitals.sim.oximeter import OximeterModel
from vitals.sim.simulator import FrameClock, Simulator
from vitals.sim.truth import Truth


class Cms50LegacySimulator(Simulator):
    """Streams one frame per pleth sample; ignores anything the host sends."""

    name = "cms50d-legacy"
    link = proto.LINK

    def __init__(self, truth: Truth, *, seed: int = 0, fast: bool = False) -> None:
        super().__init__(truth, seed=seed, fast=fast)
        self._clock = FrameClock(proto.SAMPLE_RATE_HZ)
        self._model = OximeterModel(truth, self.rng, sampling_rate=proto.SAMPLE_RATE_HZ, fast=fast)

    def emit(self, t: float) -> bytes:
        out = bytearray()
        for state in self._model.advance(t, self._clock.due(t)):
            out += bytes(
                proto.LiveFrame(
                    signal_strength=state.signal_strength,
                    pleth=round(state.pleth * 127),
                    bar_graph=state.bar_graph,
                    pulse_rate=proto.NO_PULSE_RATE
                    if state.pulse_rate is None
                    else state.pulse_rate,
                    spo2=proto.NO_SPO2 if state.spo2 is None else state.spo2,
                    finger_out=state.finger_out,
                    pulse_beep=state.beep,
                    searching=state.searching,
                )
            )
        return bytes(out)
