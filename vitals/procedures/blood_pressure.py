"""Blood pressure with an oscillometric cuff: a screening reading, or the AHA protocol.

Two modes (``mode=``):

- ``screening``: one reading.  A cycle that fails (a module error, no answer, values a person
  cannot have) is retaken once automatically after ``retake_after`` seconds, unless its reason
  says a retake cannot help (a hardware fault: call the staff).
- ``aha2019``: the American Heart Association's protocol for a reliable office reading
  (P. Muntner et al., 2019, "Measurement of blood pressure in humans: a scientific statement
  from the American Heart Association", Hypertension 73:e35-e66): a rest countdown (5 minutes
  by default) seated with the back supported, feet flat and the arm resting at heart level,
  without talking; then two readings 1 minute apart (``interval``, measured from one result to
  the next start, so the arm's veins refill); a third when the first two differ by more than
  5 mmHg systolic or diastolic (the cabin's rule, issue 3).  The result is their mean (whole
  mmHg, half up) with the single readings as its ``members``.  A failed cycle is retaken after
  the interval while retakes are left (``retakes``, 1 by default).

Every cycle is cross-checked (:mod:`vitals.procedures.blood_pressure_cycle`): the cuff
pressure samples of the deflation give an envelope estimate of MAP/SYS/DIA, and a reading
whose module values disagree with a confident estimate by more than ``margin`` (10 mmHg) is
QUESTIONABLE.  The procedure emits :attr:`Command.START_BP` when a cycle is due and
:attr:`Command.ABORT_BP` when one runs past ``cycle_timeout`` or the time limit.

Results: the BLOOD_PRESSURE panel (components SYSTOLIC_BP, DIASTOLIC_BP, MEAN_BP; method
OSCILLOMETRY; ``procedure`` = the mode), and, when the module reported one, the cuff's
PULSE_RATE (the mean of the readings' rates) - the rate at the moment of the BP reading is
worth keeping beside it, and is the only rate when the oximeter was skipped; its ``details``
say it came from the cuff.
"""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal
from enum import Enum
from typing import ClassVar, Literal

from vitals.clock import Instant
from vitals.measurement import Measurement, Method, Reason
from vitals.model import DeviceInfo, Kind, Reading, Status
from vitals.plausibility import DEFAULT_RANGES, PlausibleRanges
from vitals.procedures.base import Command, Procedure, Progress
from vitals.procedures.blood_pressure_cycle import (
    PRESSURES,
    CrossCheck,
    Cycle,
    average,
    combine,
    judge,
    not_available,
)
from vitals.procedures.blood_pressure_reasons import (
    CYCLE_TIMEOUT,
    INCOMPLETE,
    NO_ANSWER,
    READINGS_VARY,
)
from vitals.reasons import DEVICE_SILENT, TIMED_OUT

Mode = Literal["screening", "aha2019"]


class _Phase(Enum):
    WAITING = "waiting"
    REST = "rest"
    MEASURING = "measuring"
    PAUSE = "pause"
    DONE = "done"


class BloodPressureProcedure(Procedure):
    """Screening or AHA 2019 blood pressure on a cuff module (see the module docstring)."""

    name: ClassVar[str] = "blood-pressure"
    kinds: ClassVar[frozenset[Kind]] = frozenset({Kind.CUFF_PRESSURE, *PRESSURES, Kind.PULSE_RATE})

    def __init__(
        self,
        *,
        mode: Mode = "screening",
        rest: float = 300.0,
        interval: float = 60.0,
        retake_after: float = 30.0,
        retakes: int = 1,
        differ_by: float = 5.0,
        cycle_timeout: float = 150.0,
        time_limit: float | None = None,
        margin: float = 10.0,
        min_envelope_quality: float = 0.3,
        envelope_ratios: tuple[float, float] | None = None,
        ranges: PlausibleRanges = DEFAULT_RANGES,
    ) -> None:
        if mode not in ("screening", "aha2019"):
            raise ValueError(f"mode must be 'screening' or 'aha2019', not {mode!r}")
        if min(rest, interval, retake_after) < 0 or cycle_timeout <= 0 or retakes < 0:
            raise ValueError("times and retakes must not be negative, cycle_timeout positive")
        if margin <= 0 or differ_by < 0:
            raise ValueError("margin must be positive and differ_by not negative")
        aha = mode == "aha2019"
        pause = interval if aha else retake_after
        cycles = (3 if aha else 1) + retakes
        default_limit = (rest if aha else 0.0) + cycles * (cycle_timeout + pause) + 30.0
        super().__init__(time_limit=default_limit if time_limit is None else time_limit)
        self.mode: Mode = mode
        self.rest = rest if aha else 0.0
        self.interval = interval
        self.retake_after = retake_after
        self.differ_by = Decimal(str(differ_by))
        self.cycle_timeout = cycle_timeout
        self.check = CrossCheck(
            margin=margin, min_quality=min_envelope_quality, ratios=envelope_ratios
        )
        self.ranges = ranges
        self._phase = _Phase.WAITING
        self._retakes_left = retakes
        self._planned = 2 if aha else 1
        self._cycle: Cycle | None = None
        self._attempts = 0
        self._readings: list[Measurement] = []
        self._pulses: list[tuple[Decimal, Reason | None]] = []
        self._failure: Reason | None = None
        self._invalid: Measurement | None = None
        self._device: DeviceInfo | None = None
        self._resume: Instant | None = None
        self._now: Instant | None = None

    # -- driving ---------------------------------------------------------------------------

    def start(self, at: Instant) -> list[Command]:
        super().start(at)
        self._now = at
        if self.rest > 0:
            self._phase = _Phase.REST
            self._resume = _later(at, self.rest)
            return []
        return self._begin(at)

    def feed(self, reading: Reading) -> list[Command]:
        cycle = self._cycle
        if self.done or cycle is None or self._phase is not _Phase.MEASURING:
            return []
        if reading.kind not in self.kinds or not cycle.from_cuff(reading):
            return []
        self._now = max(self._now or reading.at, reading.at)
        self._device = reading.device
        cycle.add(reading)
        if cycle.complete:
            self._judge(cycle, reading.at)
        return []

    def tick(self, at: Instant) -> list[Command]:
        if self.started is None:
            return []
        commands = super().tick(at)  # the time limit
        if self.done:
            return commands
        self._now = at
        resume = self._resume
        if self._phase in (_Phase.REST, _Phase.PAUSE) and resume is not None and at >= resume:
            return self._begin(at)
        cycle = self._cycle
        overdue = cycle is not None and at.seconds_since(cycle.started) >= self.cycle_timeout
        if self._phase is _Phase.MEASURING and overdue:
            self._failed(CYCLE_TIMEOUT, at)
            return [Command.ABORT_BP]
        return []

    def _time_up(self, at: Instant) -> list[Command]:
        measuring = self._phase is _Phase.MEASURING
        if measuring:
            self._failure = TIMED_OUT
        self._conclude(at)
        return [Command.ABORT_BP] if measuring else []

    # -- the protocol ----------------------------------------------------------------------

    def _begin(self, at: Instant) -> list[Command]:
        self._phase = _Phase.MEASURING
        self._cycle = Cycle(started=at)
        self._attempts += 1
        self._resume = None
        return [Command.START_BP]

    def _judge(self, cycle: Cycle, at: Instant) -> None:
        verdict = judge(cycle, protocol=self.mode, ranges=self.ranges, check=self.check)
        if verdict.failure is not None:
            self._invalid = verdict.reading
            self._failed(verdict.failure, at)
            return
        if verdict.reading is None:  # judge gives a reading or a failure
            raise AssertionError("a verdict without a reading or a failure")
        self._readings.append(verdict.reading)
        if verdict.pulse is not None:
            self._pulses.append((verdict.pulse, verdict.pulse_reason))
        self._invalid = self._failure = None
        if len(self._readings) < self._planned:
            self._pause(at, self.interval)
        elif self._planned == 2 and self._spread() > self.differ_by:
            self._planned = 3
            self._pause(at, self.interval)
        else:
            self._conclude(at)

    def _failed(self, reason: Reason, at: Instant) -> None:
        if reason is NO_ANSWER and self._failure is NO_ANSWER:
            reason = DEVICE_SILENT  # twice no answer: the module is not there
        self._failure = reason
        self._cycle = None
        if reason.retake and self._retakes_left > 0:
            self._retakes_left -= 1
            self._pause(at, self.interval if self.mode == "aha2019" else self.retake_after)
        else:
            self._conclude(at)

    def _pause(self, at: Instant, seconds: float) -> None:
        self._phase = _Phase.PAUSE
        self._cycle = None
        self._resume = _later(at, seconds)

    def _spread(self) -> Decimal:
        """The larger of the systolic and diastolic differences between the readings."""
        spreads = [Decimal(0)]
        for kind in (Kind.SYSTOLIC_BP, Kind.DIASTOLIC_BP):
            components = [reading.component(kind) for reading in self._readings]
            values = [c.value for c in components if c is not None and c.value is not None]
            if values:
                spreads.append(max(values) - min(values))
        return max(spreads)

    def _conclude(self, at: Instant) -> None:
        self._phase = _Phase.DONE
        self._cycle = None
        self._finish([self._pressure(at), *self._pulse(at)])

    def _pressure(self, at: Instant) -> Measurement:
        readings = self._readings
        if not readings:
            if self._invalid is not None:
                return self._invalid
            return not_available(at, self._device, self._failure or TIMED_OUT, self.mode)
        if self.mode == "screening":
            return readings[0]
        details = (
            ("readings", str(len(readings))),
            ("attempts", str(self._attempts)),
            ("rest-s", f"{self.rest:g}"),
            ("interval-s", f"{self.interval:g}"),
            ("spread-mmhg", str(self._spread())),
        )
        extra: tuple[Reason, ...] = ()
        if len(readings) == 1:
            extra = (INCOMPLETE,)
        elif len(readings) < self._planned:
            extra = (READINGS_VARY,)
        if extra and self._failure is not None:
            extra += (self._failure,)  # why the protocol could not be completed
        return combine(readings, protocol=self.mode, extra=extra, details=details)

    def _pulse(self, at: Instant) -> list[Measurement]:
        if not self._pulses:
            return []
        value = average([value for value, _ in self._pulses])
        reasons = tuple(reason for _, reason in self._pulses if reason is not None)[:1]
        return [
            Measurement(
                kind=Kind.PULSE_RATE,
                value=value,
                unit=Kind.PULSE_RATE.unit,
                at=self._readings[-1].at if self._readings else at,
                status=Status.QUESTIONABLE if reasons else Status.VALID,
                method=Method.OSCILLOMETRY,
                device=self._device,
                reasons=reasons,
                procedure=self.mode,
                details=(("source", "bp-cuff"), ("readings", str(len(self._pulses)))),
            )
        ]

    # -- what the resident sees ------------------------------------------------------------

    @property
    def progress(self) -> Progress:
        planned, done_count = self._planned, len(self._readings)
        overall = done_count / planned
        match self._phase:
            case _Phase.WAITING:
                return Progress(
                    "waiting",
                    "Sit down, wrap the cuff on your bare upper arm and rest the arm on the "
                    "table at heart level.",
                    "Mời bạn ngồi xuống, quấn vòng bít trên bắp tay để trần và đặt tay lên bàn "
                    "ngang tầm tim.",
                    fraction=0.0,
                )
            case _Phase.REST:
                left = self._seconds_left()
                return Progress(
                    "rest",
                    "Sit quietly with your back against the chair, feet flat on the floor and "
                    f"your arm on the table. Do not talk. Measuring starts in {left} s.",
                    "Hãy ngồi yên, lưng tựa vào ghế, hai bàn chân đặt trên sàn, tay đặt trên bàn. "
                    f"Không nói chuyện. Sẽ bắt đầu đo sau {left} giây.",
                    fraction=min(1.0, 1.0 - left / self.rest) if self.rest else None,
                    seconds_left=left,
                )
            case _Phase.MEASURING:
                return self._measuring(done_count + 1, planned, overall)
            case _Phase.PAUSE:
                return self._pausing(done_count, planned, overall)
            case _Phase.DONE:
                return Progress(
                    "done", "Blood pressure measured.", "Đã đo huyết áp xong.", fraction=1.0
                )

    def _measuring(self, number: int, planned: int, overall: float) -> Progress:
        cycle = self._cycle
        live = None if cycle is None else cycle.live
        if cycle is None or not cycle.deflating:
            return Progress(
                "inflating",
                f"Reading {number} of {planned}: the cuff is tightening. Keep still and do "
                "not talk.",
                f"Lần đo {number}/{planned}: vòng bít đang bơm. Hãy ngồi yên và không nói chuyện.",
                fraction=overall,
                live=live,
            )
        return Progress(
            "deflating",
            f"Reading {number} of {planned}: measuring. Keep still and do not talk.",
            f"Lần đo {number}/{planned}: đang đo. Hãy ngồi yên và không nói chuyện.",
            fraction=overall,
            live=live,
        )

    def _pausing(self, done_count: int, planned: int, overall: float) -> Progress:
        left = self._seconds_left()
        failure = self._failure
        if failure is not None:
            return Progress(
                "retake",
                f"{failure.en} The next try starts in {left} s.",
                f"{failure.vi} Lần đo lại bắt đầu sau {left} giây.",
                fraction=overall,
                seconds_left=left,
            )
        return Progress(
            "between-readings",
            f"Reading {done_count} of {planned} done. Next reading in {left} s. Keep your arm "
            "relaxed on the table.",
            f"Đã xong lần đo {done_count}/{planned}. Lần đo tiếp theo sau {left} giây. Hãy để "
            "tay thả lỏng trên bàn.",
            fraction=overall,
            seconds_left=left,
        )

    def _seconds_left(self) -> int:
        if self._resume is None or self._now is None:
            return 0
        return max(0, math.ceil(self._resume.seconds_since(self._now) - 1e-9))


def _later(at: Instant, seconds: float) -> Instant:
    """The instant ``seconds`` after ``at`` (a deadline, compared by monotonic time)."""
    delta = round(seconds * 1e9)
    return Instant(at.monotonic_ns + delta, at.utc + timedelta(microseconds=delta / 1000))
