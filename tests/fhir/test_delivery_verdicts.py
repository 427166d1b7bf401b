"""Delivery verdicts and backoff: what an answer means, how long to wait (pure, no worker)."""

from __future__ import annotations

import json
import random

import pytest

from fhir.delivery import Backoff, Outcome, judge
from fhir.transport import TransportResponse
from tests.fhir.test_delivery import OUTCOME, transaction_response

# Judging answers (pure).


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, transaction_response(["201 Created", "200 OK"]), Outcome.DELIVERED),
        (201, transaction_response(["201", "200"]), Outcome.DELIVERED),
        (200, transaction_response(["201 Created", "412 Precondition Failed"]), Outcome.DEAD),
        (200, transaction_response(["201 Created", "Created"]), Outcome.DEAD),
        (200, transaction_response(["201 Created"]), Outcome.DEAD),  # one entry unanswered
        (
            200,
            b'{"resourceType": "Bundle", "type": "transaction-response", "entry": [{}, 1]}',
            Outcome.DEAD,
        ),
        (200, b"<html>Welcome to the lobby Wi-Fi</html>", Outcome.RETRY),
        (200, b'{"resourceType": "Bundle", "type": "batch-response"}', Outcome.RETRY),
        (200, b"", Outcome.RETRY),
        (408, b"", Outcome.RETRY),
        (429, b"", Outcome.RETRY),
        (500, b"", Outcome.RETRY),
        (503, json.dumps(OUTCOME).encode(), Outcome.RETRY),
        (302, b"", Outcome.RETRY),
        (400, json.dumps(OUTCOME).encode(), Outcome.DEAD),
        (401, b"", Outcome.DEAD),
        (404, b"", Outcome.DEAD),
        (412, b"", Outcome.DEAD),
        (422, json.dumps(OUTCOME).encode(), Outcome.DEAD),
    ],
)
def test_answers_are_judged_as_the_issue_says(status: int, body: bytes, outcome: Outcome) -> None:
    assert judge(TransportResponse(status, body), sent_entries=2).outcome is outcome


def test_a_retry_verdict_carries_the_servers_retry_after() -> None:
    verdict = judge(TransportResponse(429, b"", retry_after=12.0), sent_entries=1)
    assert (verdict.outcome, verdict.retry_after, verdict.reason) == (
        Outcome.RETRY,
        12.0,
        "HTTP 429",
    )


def test_a_failed_entry_is_named_in_the_reason() -> None:
    body = transaction_response(["201 Created", "422 Unprocessable Entity"])
    assert judge(TransportResponse(200, body), sent_entries=2).reason == (
        "HTTP 200 but entry 2 answered 422"
    )


# Backoff (pure).


def test_full_jitter_stays_under_a_doubling_ceiling_and_the_cap() -> None:
    backoff, rng = Backoff(base=1.0, cap=300.0), random.Random(1)
    for failures, ceiling in [(1, 1.0), (2, 2.0), (5, 16.0), (9, 256.0), (10, 300.0), (500, 300.0)]:
        delays = [backoff.delay(failures, rng) for _ in range(300)]
        assert min(delays) >= 0.0
        assert max(delays) <= ceiling
        assert max(delays) > 0.8 * ceiling  # the whole range is used, not just its top


def test_a_longer_retry_after_wins_and_is_capped() -> None:
    backoff, rng = Backoff(base=0.01, cap=0.05, retry_after_cap=600.0), random.Random(1)
    assert backoff.delay(1, rng, retry_after=30.0) == 30.0
    assert backoff.delay(1, rng, retry_after=10**9) == 600.0
    assert backoff.delay(1, rng, retry_after=-5.0) <= 0.01
