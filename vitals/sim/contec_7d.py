"""Simulated Contec CMS50D+ 4.6 / CMS50EW speaking the "0x7D" protocol.

Silent until the host sends START_LIVE; then one live package per pleth sample at 60 Hz for as
long as the host keeps sending KEEP_ALIVE (or START_LIVE).  A CMS50D+ 4.6 started with
START_LIVE alone stops after about 30 s (MarkMLl's observation), so that is the default
timeout; ``fast`` shortens it to 8 s, still longer than the 5 s keep-alive period every driver
uses.  STOP_LIVE stops the stream at once.  STOP_LIVE and STOP_STORAGE are answered ``0C 80``
as the real device does; every other command, and anything malformed, is ignored (no public
capture shows the device answering one with an error).

The sensor keeps measuring while the stream is stopped, so the waveform and the truth's
periods stay aligned with scenario time whenever streaming resumes.
"""

from __future__ import annotations

from vitals.protocols import contec_7d as proto
from vitals.sim.oximeter import OximeterModel, OximeterState
from vitals.sim.simulator import FrameClock, Simulator
from vitals.sim.truth import Truth

KEEP_ALIVE_TIMEOUT_S = 30.0
KEEP_ALIVE_TIMEOUT_FAST_S = 8.0


class Cms50ewSimulator(Simulator):
    """Streams live packages while the host keeps the session alive."""

    name = "cms50ew"
    link = proto.LINK

    def __init__(self, truth: Truth, *, seed: int = 0, fast: bool = False) -> None:
        super().__init__(truth, seed=seed, fast=fast)
        self.timeout = KEEP_ALIVE_TIMEOUT_FAST_S if fast else KEEP_ALIVE_TIMEOUT_S
        self._clock = FrameClock(proto.SAMPLE_RATE_HZ)
        self._model = OximeterModel(truth, self.rng, sampling_rate=proto.SAMPLE_RATE_HZ, fast=fast)
        self._commands = proto.command_framer()
        self._live_since: float | None = None
        self._alive_at = 0.0

    @property
    def streaming(self) -> bool:
        return self._live_since is not None

    def receive(self, data: bytes, t: float) -> bytes:
        reply = bytearray()
        for command in self._commands.feed(data):
            code = command.meaning
            expired = t >= self._alive_at + self.timeout
            if code is proto.CommandCode.START_LIVE:
                if self._live_since is None or expired:
                    self._live_since = t
                self._alive_at = t
            elif code is proto.CommandCode.KEEP_ALIVE and not expired:
                self._alive_at = t
            elif code is proto.CommandCode.STOP_LIVE:
                self._live_since = None
                reply += proto.STOP_REPLY
            elif code is proto.CommandCode.STOP_STORAGE:
                reply += proto.STOP_REPLY
        return bytes(reply)

    def emit(self, t: float) -> bytes:
        out = bytearray()
        due = self._clock.due(t)
        stop_at = self._alive_at + self.timeout
        for index, state in enumerate(self._model.advance(t, due)):
            sample_t = t - (due - 1 - index) / proto.SAMPLE_RATE_HZ
            if self._live_since is not None and self._live_since <= sample_t < stop_at:
                out += bytes(frame_of(state))
        if self._live_since is not None and t >= stop_at:
            self._live_since = None
        return bytes(out)


def frame_of(state: OximeterState) -> proto.LiveFrame:
    """The live package a CMS50D+ 4.6 sends for one model state."""
    if state.finger_out:
        return proto.LiveFrame(
            signal_strength=0,
            pleth=0,
            bar_graph=0,
            pulse_rate=proto.NO_PULSE_RATE,
            spo2=proto.NO_SPO2,
            finger_out=True,
            pi_flag=True,
        )
    return proto.LiveFrame(
        signal_strength=state.signal_strength,
        pleth=round(state.pleth * 127),
        bar_graph=state.bar_graph,
        pulse_rate=proto.NO_PULSE_RATE if state.pulse_rate is None else state.pulse_rate,
        spo2=proto.NO_SPO2 if state.spo2 is None else state.spo2,
        pulse_beep=state.beep,
        searching=state.searching,
        pi_flag=True,
    )
