"""The interface every measurement procedure implements.

A procedure is driven like a device driver (sans-I/O)::

    commands = procedure.start(at)        the resident is ready: begin
    commands = procedure.feed(reading)    a reading from one of its devices arrived
    commands = procedure.tick(at)         time passed (countdowns, timeouts)
    procedure.progress                    what to show the resident now
    procedure.done, procedure.results     the measurements, once done

The commands (start a BP cycle, abort it) are carried out by whoever runs the procedure; the
procedure never touches a device.  Every procedure ends: each has a time limit after which
it finishes with what it has, the missing values not available and the reason said.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar

from vitals.clock import Instant
from vitals.measurement import Measurement, Method, Reason
from vitals.model import DeviceInfo, Kind, Reading, Status


class Command(StrEnum):
    """A device action a procedure asks for."""

    START_BP = "start-bp"
    ABORT_BP = "abort-bp"


@dataclass(frozen=True, slots=True)
class Progress:
    """What the resident should see while a procedure runs.

    ``phase`` is a stable code (``waiting``, ``measuring``, ``rest``, ``inflating``,
    ``deflating``, ``between-readings``, ``done``…); ``en``/``vi`` say what to do;
    ``fraction`` (0..1) drives a progress bar, ``seconds_left`` a countdown, and ``live`` is
    the value worth showing as it changes (the settling weight, the cuff pressure).
    """

    phase: str
    en: str
    vi: str
    fraction: float | None = None
    seconds_left: float | None = None
    live: Decimal | None = None


class Procedure(ABC):
    """Base of every procedure: the done flag, the results and the time limit."""

    name: ClassVar[str]
    """Stable name, e.g. ``oximetry``, ``aha2019``."""
    kinds: ClassVar[frozenset[Kind]]
    """The reading kinds the procedure consumes (others may be fed; they are ignored)."""

    def __init__(self, *, time_limit: float) -> None:
        if time_limit <= 0:
            raise ValueError(f"time limit must be positive, not {time_limit}")
        self.time_limit = time_limit
        self._started: Instant | None = None
        self._results: tuple[Measurement, ...] | None = None

    @property
    def started(self) -> Instant | None:
        return self._started

    @property
    def done(self) -> bool:
        return self._results is not None

    @property
    def results(self) -> tuple[Measurement, ...]:
        """The measurements; raises ``RuntimeError`` before the procedure is done."""
        if self._results is None:
            raise RuntimeError(f"the {self.name} procedure has not finished")
        return self._results

    def start(self, at: Instant) -> list[Command]:
        self._started = at
        return []

    @abstractmethod
    def feed(self, reading: Reading) -> list[Command]:
        """Take one reading (ignored unless its kind is one of ``kinds``)."""

    def tick(self, at: Instant) -> list[Command]:
        """Let time pass: finish with what there is once the time limit is reached."""
        started = self._started
        if not self.done and started is not None and at.seconds_since(started) >= self.time_limit:
            return self._time_up(at)
        return []

    @abstractmethod
    def _time_up(self, at: Instant) -> list[Command]:
        """The time limit was reached: finish (call :meth:`_finish`) with what there is."""

    @property
    @abstractmethod
    def progress(self) -> Progress: ...

    def _finish(self, results: tuple[Measurement, ...] | list[Measurement]) -> None:
        self._results = tuple(results)

    def _finish_unavailable(
        self,
        *,
        kind: Kind,
        method: Method,
        at: Instant,
        reason: Reason,
        device: DeviceInfo | None,
        details: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Finish with one measurement that has no value, and the reason why."""
        self._finish(
            [
                Measurement(
                    kind=kind,
                    value=None,
                    unit=kind.unit,
                    at=at,
                    status=Status.NOT_AVAILABLE,
                    method=method,
                    device=device,
                    reasons=(reason,),
                    procedure=self.name,
                    details=details,
                )
            ]
        )

    def elapsed(self, at: Instant) -> float:
        return 0.0 if self._started is None else at.seconds_since(self._started)
