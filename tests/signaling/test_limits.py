"""Rate limiting, strike counting and send budgets (pure: time is a parameter)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from signaling.limits import SendBudget, StrikeCounter, TokenBucket


def test_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate_per_s=2, burst=3)
    assert [bucket.allow(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.allow(0.5)
    assert not bucket.allow(0.5)
    assert [bucket.allow(10.0) for _ in range(4)] == [True, True, True, False]


def test_bucket_gains_nothing_from_a_clock_going_backwards() -> None:
    bucket = TokenBucket(rate_per_s=1, burst=1)
    assert bucket.allow(100.0)
    assert not bucket.allow(50.0)
    assert not bucket.allow(100.5)
    assert bucket.allow(101.0)


def test_strikes_within_the_window_reach_the_limit() -> None:
    counter = StrikeCounter(limit=3, window_s=10)
    assert not counter.strike(0.0)
    assert not counter.strike(1.0)
    assert counter.strike(2.0)


def test_strikes_spread_beyond_the_window_never_reach_the_limit() -> None:
    counter = StrikeCounter(limit=3, window_s=10)
    assert not any(counter.strike(float(t)) for t in range(0, 100, 6))


def test_send_budget_refuses_too_many_messages_or_bytes() -> None:
    budget = SendBudget(max_messages=2, max_bytes=100)
    assert budget.reserve(60)
    assert not budget.reserve(41)
    assert budget.reserve(40)
    assert not budget.reserve(0)
    budget.release(60)
    assert (budget.messages, budget.bytes) == (1, 40)
    assert budget.reserve(60)


def test_send_budget_release_without_reserve_is_a_bug() -> None:
    with pytest.raises(ValueError, match="reserve"):
        SendBudget(max_messages=1, max_bytes=10).release(1)


@pytest.mark.parametrize(
    "build",
    [
        lambda: TokenBucket(0, 1),
        lambda: TokenBucket(1, 0.5),
        lambda: StrikeCounter(0, 1),
        lambda: StrikeCounter(1, 0),
        lambda: SendBudget(0, 1),
    ],
)
def test_nonsense_limits_are_refused(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="must be"):
        build()
