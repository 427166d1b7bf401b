"""The degradation ladder: down fast, up slowly, no flapping, never below 15 fps with video."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable

import pytest

from cabin.media.ladder import (
    DegradationLadder,
    LadderDecision,
    LadderOptions,
    LadderState,
    Level,
    LinkSample,
    step,
)

GOOD = {"bitrate_kbps": 3000.0, "loss": 0.0, "rtt_ms": 40.0, "cpu": 0.3}


def _run(
    ladder: DegradationLadder, seconds: Iterable[int], conditions: Callable[[int], dict[str, float]]
) -> list[LadderDecision]:
    return [ladder.observe(LinkSample(at=float(t), **conditions(t))) for t in seconds]


def _changes(decisions: list[LadderDecision]) -> list[LadderDecision]:
    return [d for d in decisions if d.changed]


def test_levels_never_send_video_below_15_fps() -> None:
    assert [level.video for level in Level] == [
        (1280, 720, 30.0),
        (854, 480, 30.0),
        (854, 480, 15.0),
        None,
    ]
    assert [level.value for level in Level] == ["720p30", "480p30", "480p15", "audio-only"]


def test_steady_good_conditions_stay_at_720p30() -> None:
    ladder = DegradationLadder()
    assert not _changes(_run(ladder, range(120), lambda t: GOOD))
    assert ladder.level is Level.HD


def test_a_bandwidth_drop_steps_down_within_two_seconds() -> None:
    ladder = DegradationLadder()
    decisions = _run(
        ladder, range(30), lambda t: GOOD if t < 10 else {**GOOD, "bitrate_kbps": 900.0}
    )
    (change,) = _changes(decisions)
    assert change.at - 10 <= 2
    assert (change.previous, change.level) == (Level.HD, Level.SD)
    assert "bitrate 900 kbps" in change.reason


def test_a_collapse_reaches_audio_only_within_three_seconds() -> None:
    ladder = DegradationLadder()
    decisions = _run(
        ladder, range(20), lambda t: GOOD if t < 10 else {**GOOD, "bitrate_kbps": 300.0}
    )
    changes = _changes(decisions)
    assert changes[0].at == 10  # one very bad sample: at once, one level
    assert changes[0].level is Level.SD
    assert ladder.level is Level.AUDIO_ONLY
    assert [c.level for c in changes] == [Level.SD, Level.SD_LOW_RATE, Level.AUDIO_ONLY]
    assert changes[-1].at <= 13


def test_recovery_steps_back_up_only_after_the_hold_time() -> None:
    ladder = DegradationLadder()

    def conditions(t: int) -> dict[str, float]:
        return {**GOOD, "bitrate_kbps": 900.0} if 10 <= t < 20 else GOOD

    changes = _changes(_run(ladder, range(60), conditions))
    assert [(c.previous, c.level) for c in changes] == [(Level.HD, Level.SD), (Level.SD, Level.HD)]
    assert changes[1].at - 20 >= 10
    assert changes[1].at - 20 <= 11
    assert changes[1].reason.startswith("up")


def test_between_the_thresholds_the_ladder_holds_its_level() -> None:
    ladder = DegradationLadder(start=Level.SD)
    # 1300 kbps: above 80 % of 720p30's 1500 (no reason to leave 720p30) but below the
    # 1875 it needs to step up to it - hysteresis
    assert not _changes(_run(ladder, range(60), lambda t: {**GOOD, "bitrate_kbps": 1300.0}))
    ladder = DegradationLadder()
    assert not _changes(_run(ladder, range(60), lambda t: {**GOOD, "bitrate_kbps": 1300.0}))


def test_cpu_overload_alone_steps_down() -> None:
    ladder = DegradationLadder()
    decisions = _run(ladder, range(20), lambda t: GOOD if t < 5 else {**GOOD, "cpu": 0.9})
    changes = _changes(decisions)
    assert changes[0].at == 6
    assert changes[0].level is Level.SD
    assert "cpu 90%" in changes[0].reason


def test_loss_and_rtt_step_down_and_unknown_signals_do_nothing() -> None:
    lossy = DegradationLadder()
    assert _changes(_run(lossy, range(3), lambda t: {**GOOD, "loss": 0.15}))[0].at == 1
    slow = DegradationLadder()
    assert _changes(_run(slow, range(3), lambda t: {**GOOD, "rtt_ms": 2000.0}))[0].at == 0
    blind = DegradationLadder(start=Level.SD)
    assert not _changes(_run(blind, range(60), lambda t: {}))


def test_oscillating_conditions_do_not_flap() -> None:
    ladder = DegradationLadder()

    def conditions(t: int) -> dict[str, float]:  # 15 s good, 3 s bad, for ten minutes
        return GOOD if t % 18 < 15 else {**GOOD, "bitrate_kbps": 700.0, "loss": 0.12}

    changes = _changes(_run(ladder, range(600), conditions))
    assert len(changes) <= 6, [(c.at, str(c.level)) for c in changes]
    # each failed probe doubled the wait, so the changes thin out
    late = [c for c in changes if c.at >= 300]
    assert len(late) <= 2


def test_a_seeded_noisy_link_changes_level_rarely() -> None:
    rng = random.Random(6)
    ladder = DegradationLadder()

    def conditions(t: int) -> dict[str, float]:
        return {
            "bitrate_kbps": max(rng.gauss(1700.0, 250.0), 0.0),
            "loss": max(rng.gauss(0.01, 0.01), 0.0),
            "rtt_ms": max(rng.gauss(80.0, 20.0), 0.0),
            "cpu": min(max(rng.gauss(0.5, 0.05), 0.0), 1.0),
        }

    changes = _changes(_run(ladder, range(600), conditions))
    assert len(changes) <= 8, [(c.at, str(c.level)) for c in changes]


def test_a_step_up_that_holds_resets_the_backoff() -> None:
    options = LadderOptions()
    state = LadderState(level=Level.SD, hold_up_s=40.0, last_up_at=0.0)
    state, _ = step(state, LinkSample(at=31.0, **GOOD), options)
    assert state.hold_up_s == options.hold_up_s


def test_audio_only_is_the_floor_and_recovers_one_level_at_a_time() -> None:
    ladder = DegradationLadder(start=Level.AUDIO_ONLY)
    bad = {**GOOD, "bitrate_kbps": 50.0, "loss": 0.5}
    assert not _changes(_run(ladder, range(10), lambda t: bad))
    changes = _changes(_run(ladder, range(10, 60), lambda t: GOOD))
    assert [c.level for c in changes] == [Level.SD_LOW_RATE, Level.SD, Level.HD]
    gaps = [b.at - a.at for a, b in itertools.pairwise(changes)]
    assert all(gap >= 10 for gap in gaps)


@pytest.mark.parametrize("field", ["need_720p30_kbps", "loss_bad", "hold_up_s"])
def test_thresholds_are_keyword_only_options(field: str) -> None:
    with pytest.raises(TypeError):
        LadderOptions(1.0)  # type: ignore[call-arg]
    assert hasattr(LadderOptions(), field)
