"""Simulated SunTech Advantage BP module: a pumped cuff with a physiological oscillometric signal.

A cycle starts on the host's start command and runs as the real module runs it: a short valve
check, inflation to about systolic + 30 mmHg in 5-8 s, a linear deflation at 3.5 mmHg/s (about
3 mmHg per beat at 72 bpm; automatic monitors deflate at 3-5 mmHg/s) down to 20 mmHg below
diastolic, then the dump valve empties the cuff and the module sends its unprompted 'K'.  The
host reads the cuff pressure whenever it likes; the answer is the pressure at that instant, to
the mmHg, like the module's own word reply.

The cuff pressure is the pneumatic baseline plus one arterial pulse per heartbeat (beat-to-beat
intervals vary 3 %; the pulse has the systolic-wave/dicrotic shape of :mod:`vitals.sim.pleth`)
plus sensor noise (``truth.noise``) and motion artefacts (``truth.motion``: slow swings of
several mmHg).  The pulse amplitude follows the oscillometric envelope, a function of cuff
pressure: largest when the cuff is at mean arterial pressure, ~55 % of that at systolic and
~85 % at diastolic, the characteristic ratios of fixed-ratio algorithms (Geddes et al. 1982,
Ann Biomed Eng 10:271, "Characterization of the oscillometric method for measuring indirect
blood pressure", found about 0.5 and 0.8 in man; Chandrasekhar et al. 2019, Front Physiol
10:1415, show the ratios vary over 0.5-0.6 with pulse pressure and arterial compliance).  Each
side of the peak is a Gaussian in cuff pressure whose width puts those ratios exactly at SYS
and DIA; MAP = DIA + (SYS - DIA) / 3.  The peak grows with pulse pressure (1-4 mmHg, typical of
an adult arm cuff).

``fast=True`` inflates in 1 s and deflates in 7.5 s (still ~9 beats at 72 bpm), so a cycle
takes 9 s.  ``truth.cuff_error`` ends the cycle with that code instead of a result, and shapes
the cycle to match where the code describes a pneumatic fault: 87 (leak/loose cuff) never gets
past 25 mmHg and gives up, 89 (over-pressure) shoots to 300 mmHg and dumps, 1 (weak signal) has
5 % of the normal pulses, 2 (erratic) has motion throughout.

Answers: start -> 'O' (or 'B' during a cycle); abort -> 'A', dump, then 'K'; cuff pressure and
status -> word replies (status 0 = healthy); BP data -> the last cycle's packet; return string
-> illustrative firmware text (the real text is not public).  A message with a bad checksum or
one this simulation does not model (service commands, unknown data requests) gets 'N'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vitals.protocols import suntech as proto
from vitals.sim.pleth import pulse_shape
from vitals.sim.simulator import Simulator
from vitals.sim.truth import Truth

SYSTOLIC_RATIO = 0.55
DIASTOLIC_RATIO = 0.85
OVERSHOOT_MMHG = 30.0
BELOW_DIASTOLIC_MMHG = 20.0
DEFLATE_MMHG_PER_S = 3.5
FAST_DEFLATE_S = 7.5
LEAK_PLATEAU_MMHG = 25.0
OVER_PRESSURE_MMHG = 300.0
FIRMWARE_FIELDS = ("LX2.0", "SIM")
"""What the simulated return string says (the real module's text is not public)."""


def mean_arterial(systolic: float, diastolic: float) -> float:
    """MAP by the one-third rule."""
    return diastolic + (systolic - diastolic) / 3.0


@dataclass(frozen=True, slots=True)
class Envelope:
    """Oscillation amplitude (mmHg) as a function of cuff pressure, peaking at MAP."""

    mean: float
    peak: float
    above: float
    below: float

    @classmethod
    def of(cls, systolic: float, diastolic: float) -> Envelope:
        mean = mean_arterial(systolic, diastolic)
        peak = float(np.clip(0.8 + 0.04 * (systolic - diastolic), 1.0, 4.0))
        above = (systolic - mean) / math.sqrt(-math.log(SYSTOLIC_RATIO))
        below = (mean - diastolic) / math.sqrt(-math.log(DIASTOLIC_RATIO))
        return cls(mean, peak, above, below)

    def amplitude(self, cuff: float) -> float:
        offset = cuff - self.mean
        width = self.above if offset >= 0 else self.below
        return self.peak * math.exp(-((offset / width) ** 2))


@dataclass(frozen=True, slots=True)
class Artefact:
    """A motion artefact: a few slow sinusoidal swings of the cuff pressure, in mmHg."""

    freq: tuple[float, ...]
    phase: tuple[float, ...]
    gain: tuple[float, ...]

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Artefact:
        return cls(
            tuple(rng.uniform(0.4, 2.5, 3).tolist()),
            tuple(rng.uniform(0.0, 2 * math.pi, 3).tolist()),
            tuple(rng.uniform(2.0, 7.0, 3).tolist()),
        )

    def at(self, t: float) -> float:
        return sum(
            g * math.sin(2 * math.pi * f * t + p)
            for f, p, g in zip(self.freq, self.phase, self.gain, strict=True)
        )


@dataclass(slots=True)
class _Cycle:
    """One BP cycle's timeline (scenario seconds) and pneumatic plan."""

    start: float
    inflate_from: float
    inflate_end: float
    top: float
    deflate_end: float
    floor: float
    dump_s: float
    error: int
    beats: np.ndarray
    erratic: Artefact | None = None
    dump_at: float = field(init=False)
    dump_from: float = field(init=False)

    def __post_init__(self) -> None:
        self.dump_at = self.deflate_end
        self.dump_from = self.floor

    @property
    def end(self) -> float:
        return self.dump_at + self.dump_s

    def baseline(self, t: float) -> float:
        """Cuff pressure without pulses: valve check, inflation, linear deflation, dump."""
        if t >= self.dump_at:
            return self.dump_from * math.exp(-5.0 * (t - self.dump_at) / self.dump_s)
        if t < self.inflate_from:
            return 0.0
        if t < self.inflate_end:
            x = (t - self.inflate_from) / (self.inflate_end - self.inflate_from)
            if self.error == 87:  # the leak wins: pressure levels off and never reaches top
                return LEAK_PLATEAU_MMHG * (1.0 - math.exp(-4.0 * x))
            return self.top * math.pow(x, 1.3)  # a taut bladder stiffens as it fills
        x = (t - self.inflate_end) / (self.deflate_end - self.inflate_end)
        return self.top + (self.floor - self.top) * x

    def dump(self, t: float) -> None:
        """Open the dump valve now (abort)."""
        if t < self.dump_at:
            self.dump_from = self.baseline(t)
            self.dump_at = t

    def pulse(self, t: float, envelope: Envelope) -> float:
        """The arterial pulse riding on the cuff pressure at ``t``."""
        index = int(np.searchsorted(self.beats, t, side="right")) - 1
        if index < 0 or index + 1 >= len(self.beats) or self.baseline(t) < 1.0:
            return 0.0
        onset, next_onset = float(self.beats[index]), float(self.beats[index + 1])
        phase = np.array([(t - onset) / (next_onset - onset)])
        gain = 0.05 if self.error == 1 else 1.0
        return gain * envelope.amplitude(self.baseline(t)) * float(pulse_shape(phase)[0])

    def deflation_beats(self) -> int:
        window = (self.beats >= self.inflate_end) & (
            self.beats < min(self.deflate_end, self.dump_at)
        )
        return int(np.count_nonzero(window))


class SunTechSimulator(Simulator):
    """The module answers every host command; it speaks unprompted only to say a cycle ended."""

    name = "suntech-advantage"
    link = proto.LINK

    def __init__(self, truth: Truth, *, seed: int = 0, fast: bool = False) -> None:
        super().__init__(truth, seed=seed, fast=fast)
        self.envelope = Envelope.of(truth.sys, truth.dia)
        self._framer = proto.command_framer()
        self._motion = [(period, Artefact.draw(self.rng)) for period in truth.motion]
        self._cycle: _Cycle | None = None
        self._result = proto.BpData(0, 0, 0, 0)
        self._unsent = b""
        self.cycles = 0
        """Cycles started so far (for tests)."""

    @property
    def measuring(self) -> bool:
        return self._cycle is not None

    def emit(self, t: float) -> bytes:
        self._advance(t)
        out, self._unsent = self._unsent, b""
        return out

    def receive(self, data: bytes, t: float) -> bytes:
        self._advance(t)
        refused_before = self._framer.stats.discarded_bytes
        out = bytearray()
        for command in self._framer.feed(data):
            out += self._answer(command, t)
        if self._framer.stats.discarded_bytes > refused_before:
            out += bytes(proto.Ack(proto.AckCode.NOT_ACKNOWLEDGED))
        return bytes(out)

    def cuff_pressure(self, t: float) -> float:
        """The true cuff pressure at ``t`` (mmHg, before the module rounds it)."""
        noise = float(self.rng.normal(0.0, 0.2 + 1.5 * self.truth.noise))
        cycle = self._cycle
        if cycle is None:
            return noise
        value = cycle.baseline(t) + cycle.pulse(t, self.envelope) + noise
        if cycle.baseline(t) > 1.0:
            value += sum(a.at(t) for period, a in self._motion if t in period)
            if cycle.erratic is not None and cycle.inflate_end <= t < cycle.dump_at:
                value += cycle.erratic.at(t)
        return value

    def _answer(self, command: proto.Command, t: float) -> bytes:
        if command == proto.START_BP:
            if self._cycle is not None:
                return bytes(proto.Ack(proto.AckCode.BUSY))
            self._cycle = self._plan(t)
            self.cycles += 1
            return bytes(proto.Ack(proto.AckCode.RECEIVED))
        if command == proto.ABORT:
            if self._cycle is not None:
                self._cycle.dump(t)
                self._cycle.error = 86
            return bytes(proto.Ack(proto.AckCode.ABORTED))
        if command == proto.GET_CUFF_PRESSURE:
            return bytes(proto.WordReply(int(np.clip(round(self.cuff_pressure(t)), 0, 0xFFFE))))
        if command == proto.GET_STATUS:
            return bytes(proto.WordReply(0))
        if command == proto.GET_BP_DATA:
            return bytes(self._result)
        if command == proto.GET_RETURN_STRING:
            text = b"".join(f.encode("ascii")[:7].ljust(8, b"\0") for f in FIRMWARE_FIELDS)
            return bytes(proto.ReturnString(text.ljust(64, b"\0")))
        return bytes(proto.Ack(proto.AckCode.NOT_ACKNOWLEDGED))

    def _advance(self, t: float) -> None:
        cycle = self._cycle
        if cycle is None or t < cycle.end:
            return
        self._cycle = None
        self._result = self._result_of(cycle)
        self._unsent += bytes(proto.Ack(proto.AckCode.COMPLETED))

    def _result_of(self, cycle: _Cycle) -> proto.BpData:
        beats = min(cycle.deflation_beats(), 0xFF)
        if cycle.error:
            return proto.BpData(0, 0, 0, 0, error_code=cycle.error, beats=beats)
        truth = self.truth
        return proto.BpData(
            systolic=truth.sys,
            diastolic=truth.dia,
            mean=round(mean_arterial(truth.sys, truth.dia)),
            heart_rate=int(np.clip(round(truth.hr), 0, 0xFF)),
            beats=beats,
        )

    def _plan(self, t: float) -> _Cycle:
        truth, fast = self.truth, self.fast
        error = truth.cuff_error or 0
        top = truth.sys + OVERSHOOT_MMHG
        floor = max(5.0, truth.dia - BELOW_DIASTOLIC_MMHG)
        inflate_from = t + (0.1 if fast else 0.5)
        inflate_s = 1.0 if fast else float(np.clip(top / 25.0, 5.0, 8.0))
        deflate_s = FAST_DEFLATE_S if fast else (top - floor) / DEFLATE_MMHG_PER_S
        if error == 87:  # inflation timeout: the module gives up on a leaking cuff
            inflate_s, deflate_s = (2.0 if fast else 15.0), 0.0
            top = floor = LEAK_PLATEAU_MMHG * (1.0 - math.exp(-4.0))
        elif error == 89:  # over-pressure: the safety circuit dumps at once
            top = floor = OVER_PRESSURE_MMHG
            deflate_s = 0.0
        inflate_end = inflate_from + inflate_s
        deflate_end = inflate_end + deflate_s
        return _Cycle(
            start=t,
            inflate_from=inflate_from,
            inflate_end=inflate_end,
            top=top,
            deflate_end=deflate_end,
            floor=floor,
            dump_s=0.4 if fast else 1.5,
            error=error,
            beats=self._beats(t, deflate_end + 3.0),
            erratic=Artefact.draw(self.rng) if error == 2 else None,
        )

    def _beats(self, start: float, end: float) -> np.ndarray:
        """Beat onset times from ``start`` to past ``end``, with 3 % beat-to-beat variability."""
        mean = 60.0 / self.truth.hr
        count = int((end - start) / mean) + 3
        intervals = mean * (1.0 + 0.03 * self.rng.standard_normal(count))
        offset = float(self.rng.uniform(0.0, mean))
        return np.asarray(start + offset + np.concatenate(([0.0], np.cumsum(intervals))))
