"""The delivery worker: drains each hospital's outbox queue through its transport, oldest first.

Each hospital has one task (all in one ``TaskGroup``) that loops: claim the head of its queue
when due, post it, judge the answer, record the outcome; otherwise wait for the head's retry
time, a :meth:`DeliveryWorker.wake` (the outbox calls it after every commit that made a bundle
pending) or ``idle_poll`` (rows another process enqueued or an operator retried).  A hanging
or failing hospital holds up only its own task.  Every outbox call goes through
``asyncio.to_thread``; every send is bounded by ``send_timeout``.

How an answer is judged (:func:`judge`)::

    2xx + transaction-response Bundle, one entry per entry sent, each 2xx  → delivered (kept)
    2xx + transaction-response with a failed entry, or a wrong entry count → dead (kept)
    2xx without a transaction-response Bundle (a proxy's or portal's page) → retry
    408, 429, 5xx, 1xx, 3xx; TransportError, timeout, a transport's bug    → retry
    any other 4xx                                               → dead (OperationOutcome kept)

Backoff is "full jitter": after a hospital's n-th failure in a row its head waits
``uniform(0, min(cap, base·2ⁿ⁻¹))`` seconds, or the server's ``Retry-After`` when that is longer
(itself capped, so a hostile header cannot park the queue for days).  The wait is stored on the
row, so it survives a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from fhir.errors import FhirError, OutboxError
from fhir.outbox import ClaimedBundle, Outbox
from fhir.transport import BundleTransport, TransportResponse

log = logging.getLogger(__name__)

MAX_KEPT_ANSWER_BYTES = 1024 * 1024
"""An answer larger than this is kept as a note of its size only."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Exponential backoff with full jitter, and the longest ``Retry-After`` honoured."""

    base: float = 1.0
    cap: float = 300.0
    retry_after_cap: float = 3600.0

    def delay(self, failures: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait after ``failures`` (≥ 1) failures in a row."""
        ceiling = min(self.cap, self.base * 2.0 ** min(max(failures, 1) - 1, 60))
        delay = rng.uniform(0.0, ceiling)
        if retry_after is not None and retry_after > 0:
            delay = max(delay, min(retry_after, self.retry_after_cap))
        return delay


class Outcome(StrEnum):
    """What an attempt means for its bundle."""

    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Verdict:
    """An attempt's outcome and why, in words that hold no PHI (they go to ``last_error``)."""

    outcome: Outcome
    reason: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    """Counters for one hospital since the worker started (for ``/metrics``)."""

    delivered: int = 0
    retried: int = 0
    dead: int = 0
    last_error: str | None = None
    last_error_at: float | None = None


def _entry_status(entry: Any) -> int | None:
    """The status code of a transaction-response entry (``"201 Created"`` → 201), or None."""
    response = entry.get("response") if isinstance(entry, dict) else None
    status = response.get("status") if isinstance(response, dict) else None
    code = status.split(" ", 1)[0] if isinstance(status, str) else ""
    return int(code) if code.isdigit() and len(code) == 3 else None


def judge(response: TransportResponse, *, sent_entries: int) -> Verdict:
    """Judge a server's answer to a transaction of ``sent_entries`` entries (see the table)."""
    status = response.status
    if not 200 <= status < 300:
        if 400 <= status < 500 and status not in (408, 429):
            return Verdict(Outcome.DEAD, f"HTTP {status}")
        return Verdict(Outcome.RETRY, f"HTTP {status}", response.retry_after)
    try:
        answer = json.loads(response.body)
    except (ValueError, RecursionError):
        answer = None
    if not (
        isinstance(answer, dict)
        and answer.get("resourceType") == "Bundle"
        and answer.get("type") == "transaction-response"
        and isinstance(entries := answer.get("entry", []), list)
    ):
        return Verdict(Outcome.RETRY, f"HTTP {status} without a transaction-response Bundle")
    if len(entries) != sent_entries:
        reason = f"HTTP {status} answered {len(entries)} entries of {sent_entries}"
        return Verdict(Outcome.DEAD, reason)
    for number, entry in enumerate(entries, 1):
        code = _entry_status(entry)
        if code is None or not 200 <= code < 300:
            return Verdict(Outcome.DEAD, f"HTTP {status} but entry {number} answered {code}")
    return Verdict(Outcome.DELIVERED, f"HTTP {status}")


def _entries_sent(bundle: bytes) -> int:
    entries = json.loads(bundle).get("entry", [])
    return len(entries) if isinstance(entries, list) else 0


def _kept(body: bytes) -> bytes:
    if len(body) <= MAX_KEPT_ANSWER_BYTES:
        return body
    return json.dumps({"note": "answer too large to keep", "bytes": len(body)}).encode()


class DeliveryWorker:
    """Delivers every hospital's pending bundles; runs until cancelled."""

    def __init__(
        self,
        outbox: Outbox,
        transports: Mapping[str, BundleTransport],
        *,
        backoff: Backoff | None = None,
        send_timeout: float = 60.0,
        idle_poll: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self._outbox = outbox
        self._transports = dict(transports)
        self._backoff = backoff or Backoff()
        self._send_timeout = send_timeout
        self._idle_poll = idle_poll
        self._rng = rng or random.Random()
        self._stats = {hospital: DeliveryStats() for hospital in self._transports}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def stats(self) -> dict[str, DeliveryStats]:
        """A snapshot of each hospital's counters."""
        return dict(self._stats)

    def wake(self, hospital_id: str) -> None:
        """Look at ``hospital_id``'s queue now.  Safe from any thread; a no-op when not running."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._set_wakeup, hospital_id)

    def _set_wakeup(self, hospital_id: str) -> None:
        wakeup = self._wakeups.get(hospital_id)
        if wakeup is None:
            log.debug("bundle queued for %s, which this worker does not serve", hospital_id)
        else:
            wakeup.set()

    async def run(self) -> None:
        """Serve every hospital until cancelled; cancellation leaves unsent bundles pending."""
        if self._loop is not None:
            raise RuntimeError("this delivery worker is already running")
        self._loop = asyncio.get_running_loop()
        self._wakeups = {hospital: asyncio.Event() for hospital in self._transports}
        self._outbox.listeners.append(self.wake)
        try:
            async with asyncio.TaskGroup() as tasks:
                for hospital in self._transports:
                    tasks.create_task(self._serve(hospital), name=f"deliver-{hospital}")
                if not self._transports:
                    await self._loop.create_future()  # nothing to serve: wait for cancellation
        finally:
            self._outbox.listeners.remove(self.wake)
            self._loop = None

    async def _serve(self, hospital: str) -> None:
        """One hospital's loop: its failures in a row drive its backoff."""
        failures = 0
        wakeup = self._wakeups[hospital]
        while True:
            wakeup.clear()  # before looking, so a wake during the look is not lost
            try:
                claimed = await asyncio.to_thread(self._outbox.claim_due, hospital)
                if claimed is None:
                    await self._idle(hospital, wakeup)
                    continue
                verdict, response = await self._attempt(hospital, claimed)
                failures = failures + 1 if verdict.outcome is Outcome.RETRY else 0
                await self._record(claimed, verdict, response, failures)
            except OutboxError as exc:  # database busy or unreadable row: keep it, back off
                failures += 1
                delay = self._backoff.delay(failures, self._rng)
                log.error("outbox trouble for %s (retrying in %.1f s): %s", hospital, delay, exc)
                self._note_error(hospital, f"outbox: {exc}")
                await asyncio.sleep(delay)

    async def _idle(self, hospital: str, wakeup: asyncio.Event) -> None:
        """Wait until the head is due, a wake-up comes, or ``idle_poll`` passes."""
        due = await asyncio.to_thread(self._outbox.next_due_at, hospital)
        wait = self._idle_poll
        if due is not None:
            wait = min(wait, max(0.0, due - self._outbox.now()))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await wakeup.wait()

    async def _attempt(
        self, hospital: str, claimed: ClaimedBundle
    ) -> tuple[Verdict, TransportResponse | None]:
        try:
            async with asyncio.timeout(self._send_timeout):
                response = await self._transports[hospital].post_transaction(claimed.bundle)
        except TimeoutError:
            return Verdict(Outcome.RETRY, f"no answer within {self._send_timeout:g} s"), None
        except FhirError as exc:
            return Verdict(Outcome.RETRY, f"{type(exc).__name__}: {exc}"), None
        except Exception as exc:  # a transport's bug must not stop every hospital's delivery
            log.exception("transport for %s failed on bundle %s", hospital, claimed.id)
            return Verdict(Outcome.RETRY, f"transport failed: {type(exc).__name__}"), None
        return judge(response, sent_entries=_entries_sent(claimed.bundle)), response

    async def _record(
        self,
        claimed: ClaimedBundle,
        verdict: Verdict,
        response: TransportResponse | None,
        failures: int,
    ) -> None:
        hospital, outbox = claimed.hospital, self._outbox
        if verdict.outcome is Outcome.DELIVERED and response is not None:
            answer = _kept(response.body)
            await asyncio.to_thread(
                outbox.mark_delivered, claimed, status=response.status, answer=answer
            )
            self._stats[hospital] = replace(
                self._stats[hospital], delivered=self._stats[hospital].delivered + 1
            )
            log.info("bundle %s delivered to %s (%s)", claimed.id, hospital, verdict.reason)
        elif verdict.outcome is Outcome.DEAD:
            status = None if response is None else response.status
            kept = None if response is None else _kept(response.body)
            await asyncio.to_thread(
                outbox.mark_dead, claimed, error=verdict.reason, status=status, answer=kept
            )
            self._note_error(hospital, verdict.reason, dead=1)
            log.warning("bundle %s dead-lettered for %s: %s", claimed.id, hospital, verdict.reason)
        else:
            delay = self._backoff.delay(failures, self._rng, verdict.retry_after)
            at = outbox.now() + delay
            await asyncio.to_thread(outbox.mark_retry, claimed, at=at, error=verdict.reason)
            self._note_error(hospital, verdict.reason, retried=1)
            log.info(
                "bundle %s to %s: %s; attempt %d failed, next in %.1f s",
                claimed.id,
                hospital,
                verdict.reason,
                claimed.attempt,
                delay,
            )

    def _note_error(self, hospital: str, error: str, *, retried: int = 0, dead: int = 0) -> None:
        stats = self._stats[hospital]
        self._stats[hospital] = replace(
            stats,
            retried=stats.retried + retried,
            dead=stats.dead + dead,
            last_error=error,
            last_error_at=self._outbox.now(),
        )
