"""The degradation ladder: which video level the call sends, from what the link and CPU say.

Levels, best first: ``720p30`` -> ``480p30`` -> ``480p15`` -> ``audio-only``.  Video never goes
below 15 fps (issue 6); below 480p15 the call drops video and keeps audio (and the vitals
channel, which is not the ladder's business).

Once a second the peer feeds a ``LinkSample``: the available outgoing bitrate estimate (kbps;
``None`` when the far end sends no estimate), the loss fraction (0..1), the round-trip time
(ms) and the cabin's CPU use (0..1).  Any of them may be ``None``: an unknown signal is neither
bad nor good.  The ladder then

- steps **down fast**, one level per decision: after ``bad_samples`` (2) bad samples in a row,
  or at once on one very bad sample (a collapse from 720p30 reaches audio only in about 3 s);
  the new level gets its own ``bad_samples`` before the next step, so the CPU or the encoder
  has a moment to settle;
- steps **up slowly**: after ``hold_up_s`` (10 s) of samples that would be good *at the next
  level up* (the bitrate with ``up_headroom`` over what that level needs, low loss, RTT, CPU);
- never **flaps**: the gap between "bad" (below ``down_fraction`` x need) and "good" (above
  ``up_headroom`` x need) is hysteresis, and a step up that fails within ``probe_window_s``
  doubles the hold before the next try (up to ``max_hold_up_s``); a step up that lasts the
  window resets it.

The core is ``step(state, sample, options) -> (state, decision)``, a pure function over frozen
values; ``DegradationLadder`` keeps the state for the peer.

Where the default thresholds come from:

- Bitrate each level needs (``need_*_kbps``): the low end of typical VP8 rates - 720p30
  1.5-2.5 Mbps, 480p30 0.8-1.2 Mbps, 480p15 about 0.5 Mbps.  libwebrtc's own table agrees in
  shape (``kSimulcastFormats`` in media/engine/simulcast.cc: 1280x720 max 2500 / min 600 kbps,
  960x540 900 / 450, 640x360 700 / 150).  aiortc's VP8 encoder caps its target at 1.5 Mbps
  (``MAX_BITRATE`` in aiortc/codecs/vpx.py), so feed the far end's estimate (REMB), not the
  encoder's clamped target, or 720p30 can never earn its headroom back.
- Loss: Google Congestion Control (draft-ietf-rmcat-gcc-02, section 6) lowers its rate above
  10 % loss and raises it below 2 %: ``loss_bad`` 0.10, ``loss_good`` 0.02; 20 % is very bad.
- RTT: ITU-T G.114 keeps one-way delay under 150 ms for most uses and calls above 400 ms
  unacceptable for planning: ``rtt_good_ms`` 300 and ``rtt_bad_ms`` 800 (twice those).
- CPU: libwebrtc's overuse detector adapts down above 85 % encode usage
  (``CpuOveruseOptions.high_encode_usage_threshold_percent``): ``cpu_bad`` 0.85; ``cpu_good``
  0.60 leaves room for the next level, which encodes up to 2.25x the pixels.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "DegradationLadder",
    "LadderDecision",
    "LadderOptions",
    "LadderState",
    "Level",
    "LinkSample",
    "step",
]

logger = logging.getLogger(__name__)


class Level(StrEnum):
    """What the call sends; the values are the ``quality`` message's ``level`` (docs schemas)."""

    HD = "720p30"
    SD = "480p30"
    SD_LOW_RATE = "480p15"
    AUDIO_ONLY = "audio-only"

    @property
    def video(self) -> tuple[int, int, float] | None:
        """Width, height and fps of the call's video at this level; ``None`` for audio only."""
        match self:
            case Level.HD:
                return (1280, 720, 30.0)
            case Level.SD:
                return (854, 480, 30.0)
            case Level.SD_LOW_RATE:
                return (854, 480, 15.0)
            case _:
                return None

    @property
    def below(self) -> Level | None:
        index = _ORDER.index(self)
        return _ORDER[index + 1] if index + 1 < len(_ORDER) else None

    @property
    def above(self) -> Level | None:
        index = _ORDER.index(self)
        return _ORDER[index - 1] if index > 0 else None


_ORDER = (Level.HD, Level.SD, Level.SD_LOW_RATE, Level.AUDIO_ONLY)


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkSample:
    """One second's measurements; ``at`` is a monotonic time in seconds."""

    at: float
    bitrate_kbps: float | None = None
    loss: float | None = None
    rtt_ms: float | None = None
    cpu: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LadderOptions:
    """Thresholds; the module docstring says where each default comes from."""

    need_720p30_kbps: float = 1500.0
    need_480p30_kbps: float = 800.0
    need_480p15_kbps: float = 500.0
    down_fraction: float = 0.8
    """Bad below this share of the current level's need."""
    very_bad_fraction: float = 0.5
    """Very bad (one sample is enough) below this share."""
    up_headroom: float = 1.25
    """Good for the next level at this multiple of its need."""
    loss_good: float = 0.02
    loss_bad: float = 0.10
    loss_very_bad: float = 0.20
    rtt_good_ms: float = 300.0
    rtt_bad_ms: float = 800.0
    rtt_very_bad_ms: float = 1500.0
    cpu_good: float = 0.60
    cpu_bad: float = 0.85
    cpu_very_bad: float = 0.95
    bad_samples: int = 2
    hold_up_s: float = 10.0
    probe_window_s: float = 30.0
    max_hold_up_s: float = 120.0

    def need_kbps(self, level: Level) -> float | None:
        match level:
            case Level.HD:
                return self.need_720p30_kbps
            case Level.SD:
                return self.need_480p30_kbps
            case Level.SD_LOW_RATE:
                return self.need_480p15_kbps
            case _:
                return None


@dataclass(frozen=True, slots=True, kw_only=True)
class LadderState:
    """Where the ladder stands and what it remembers between samples."""

    level: Level = Level.HD
    bad_streak: int = 0
    good_since: float | None = None
    hold_up_s: float = 10.0
    last_up_at: float | None = None
    changes: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class LadderDecision:
    """The level to send after one sample, and why."""

    at: float
    level: Level
    previous: Level
    reason: str

    @property
    def changed(self) -> bool:
        return self.level != self.previous


@dataclass(frozen=True, slots=True)
class _Verdict:
    very_bad: tuple[str, ...]
    bad: tuple[str, ...]


def _judge(sample: LinkSample, level: Level, options: LadderOptions) -> _Verdict:
    """What is wrong with ``sample`` for sending at ``level``."""
    very_bad: list[str] = []
    bad: list[str] = []
    need = options.need_kbps(level)
    if need is not None and sample.bitrate_kbps is not None:
        text = f"bitrate {sample.bitrate_kbps:.0f} kbps"
        if sample.bitrate_kbps < options.very_bad_fraction * need:
            very_bad.append(f"{text} < {options.very_bad_fraction * need:.0f} for {level}")
        elif sample.bitrate_kbps < options.down_fraction * need:
            bad.append(f"{text} < {options.down_fraction * need:.0f} for {level}")
    checks = (
        ("loss", sample.loss, options.loss_bad, options.loss_very_bad, "{:.1%}"),
        ("rtt", sample.rtt_ms, options.rtt_bad_ms, options.rtt_very_bad_ms, "{:.0f} ms"),
        ("cpu", sample.cpu, options.cpu_bad, options.cpu_very_bad, "{:.0%}"),
    )
    if level is not Level.AUDIO_ONLY:
        for name, value, bad_at, very_bad_at, form in checks:
            if value is None:
                continue
            if value > very_bad_at:
                very_bad.append(f"{name} {form.format(value)} > {form.format(very_bad_at)}")
            elif value > bad_at:
                bad.append(f"{name} {form.format(value)} > {form.format(bad_at)}")
    return _Verdict(tuple(very_bad), tuple(bad))


def _good_for(sample: LinkSample, level: Level, options: LadderOptions) -> bool:
    """Would ``sample`` comfortably carry ``level``?  Needs at least one known signal."""
    signals = (sample.bitrate_kbps, sample.loss, sample.rtt_ms, sample.cpu)
    if all(value is None for value in signals):
        return False
    need = options.need_kbps(level)
    bitrate = sample.bitrate_kbps
    if need is not None and bitrate is not None and bitrate < options.up_headroom * need:
        return False
    if sample.loss is not None and sample.loss > options.loss_good:
        return False
    if sample.rtt_ms is not None and sample.rtt_ms > options.rtt_good_ms:
        return False
    return not (sample.cpu is not None and sample.cpu > options.cpu_good)


def step(
    state: LadderState, sample: LinkSample, options: LadderOptions
) -> tuple[LadderState, LadderDecision]:
    """The ladder's next state and decision after one sample (pure)."""
    level = state.level
    hold = state.hold_up_s
    last_up_at = state.last_up_at
    if last_up_at is not None and sample.at - last_up_at >= options.probe_window_s:
        hold, last_up_at = options.hold_up_s, None  # the last step up held: back to the base

    verdict = _judge(sample, level, options)
    lower = level.below
    if lower is not None and (verdict.very_bad or verdict.bad):
        streak = state.bad_streak + 1
        if verdict.very_bad or streak >= options.bad_samples:
            target = lower
            reasons = verdict.very_bad or verdict.bad
            kind = "very bad" if verdict.very_bad else f"{streak} bad samples"
            if last_up_at is not None:  # the last step up did not hold: wait longer next time
                hold = min(hold * 2, options.max_hold_up_s)
                last_up_at = None
            new_state = LadderState(
                level=target,
                hold_up_s=hold,
                changes=state.changes + 1,
            )
            reason = f"down ({kind}): " + "; ".join(reasons)
            return new_state, LadderDecision(
                at=sample.at, level=target, previous=level, reason=reason
            )
        new_state = dataclasses.replace(
            state, bad_streak=streak, good_since=None, hold_up_s=hold, last_up_at=last_up_at
        )
        reason = "hold (bad, waiting for confirmation): " + "; ".join(verdict.bad)
        return new_state, LadderDecision(at=sample.at, level=level, previous=level, reason=reason)

    higher = level.above
    if higher is not None and _good_for(sample, higher, options):
        good_since = state.good_since if state.good_since is not None else sample.at
        if sample.at - good_since >= hold:
            new_state = LadderState(
                level=higher, hold_up_s=hold, last_up_at=sample.at, changes=state.changes + 1
            )
            reason = f"up: good for {higher} for {sample.at - good_since:.0f} s"
            return new_state, LadderDecision(
                at=sample.at, level=higher, previous=level, reason=reason
            )
        new_state = dataclasses.replace(
            state, bad_streak=0, good_since=good_since, hold_up_s=hold, last_up_at=last_up_at
        )
        reason = f"hold (good for {higher} {sample.at - good_since:.0f} of {hold:.0f} s)"
        return new_state, LadderDecision(at=sample.at, level=level, previous=level, reason=reason)

    new_state = dataclasses.replace(
        state, bad_streak=0, good_since=None, hold_up_s=hold, last_up_at=last_up_at
    )
    return new_state, LadderDecision(at=sample.at, level=level, previous=level, reason="hold")


class DegradationLadder:
    """Keeps the ladder's state between samples: ``observe(sample) -> LadderDecision``."""

    def __init__(self, *, start: Level = Level.HD, options: LadderOptions | None = None) -> None:
        self.options = options or LadderOptions()
        self.state = LadderState(level=start, hold_up_s=self.options.hold_up_s)

    @property
    def level(self) -> Level:
        return self.state.level

    def observe(self, sample: LinkSample) -> LadderDecision:
        self.state, decision = step(self.state, sample, self.options)
        if decision.changed:
            logger.info("ladder %s -> %s: %s", decision.previous, decision.level, decision.reason)
        return decision
