"""Body weight on a platform scale: accepted only once the scale has come to rest.

The resident steps on; the indicator streams the load at every display update.  A weight is
kept only when **both** agree, over a trailing window (1.5 s by default):

* the indications stay within the scale's verification interval ``e`` (0.05 kg by default;
  max - min of the window at most ``e``, method ``oiml-r76`` in :mod:`vitals.dsp.stability`),
* and every line in the window carries the indicator's own ST (stable) header.

The weight is then the last stable indication, shown at ``e`` (``Decimal`` with the
interval's decimals: ``63.40`` kg).  A scale that never settles (someone holding the rail, a
swaying resident) is never accepted: at the time limit the result is not available, with a
reason that says to stand still in the middle without holding the rail.  An overload that
lasts ``overload_hold`` seconds ends the procedure at once with a reason that a retake cannot
fix.  While the weight settles, :attr:`WeightProcedure.progress` shows it live.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import ClassVar, Final

from vitals.clock import Instant
from vitals.dsp.stability import steady_run, steady_window
from vitals.measurement import Measurement, Method, Reason
from vitals.model import DeviceInfo, Flag, Kind, Reading, Status
from vitals.plausibility import DEFAULT_RANGES, PlausibleRanges
from vitals.procedures.base import Command, Procedure, Progress
from vitals.reasons import DEVICE_SILENT

KILOGRAMS_PER_UNIT: Final = {
    "kg": Decimal(1),
    "g": Decimal("0.001"),
    "t": Decimal(1000),
    "[lb_av]": Decimal("0.45359237"),
}
"""UCUM units an indicator may report, in kilograms."""

UNSTABLE: Final = Reason(
    "weight-unstable",
    "The scale could not settle. Stand still in the middle of the scale without holding the "
    "rail, then try again.",
    "Số cân chưa ổn định. Hãy đứng yên ở giữa bàn cân, không vịn tay vào thanh, rồi cân lại.",
)
OVERLOAD: Final = Reason(
    "weight-overload",
    "The load is more than this scale can weigh. Please step off and ask the station staff "
    "for help.",
    "Trọng lượng vượt quá mức cân tối đa của cân này. Vui lòng bước xuống và nhờ nhân viên "
    "tại trạm hỗ trợ.",
    retake=False,
)
NO_LOAD: Final = Reason(
    "weight-no-load",
    "Nobody was on the scale. Step onto the scale, stand still, and try again.",
    "Không có ai đứng trên cân. Hãy bước lên cân, đứng yên rồi cân lại.",
)


@dataclass(frozen=True, slots=True)
class _Indication:
    at: Instant
    kilograms: Decimal
    stable: bool
    """The indicator said ST (a VALID reading without the UNSTABLE flag)."""
    device: DeviceInfo
    net: bool


class WeightProcedure(Procedure):
    """Weighs the resident once the platform scale is at rest (see the module docstring)."""

    name: ClassVar[str] = "weight"
    kinds: ClassVar[frozenset[Kind]] = frozenset({Kind.BODY_WEIGHT})

    def __init__(
        self,
        *,
        time_limit: float = 30.0,
        window: float = 1.5,
        division: Decimal = Decimal("0.05"),
        overload_hold: float = 1.0,
        empty_below: Decimal = Decimal(1),
        ranges: PlausibleRanges = DEFAULT_RANGES,
    ) -> None:
        super().__init__(time_limit=time_limit)
        if window <= 0 or overload_hold < 0:
            raise ValueError("window must be positive and overload_hold not negative")
        if division <= 0:
            raise ValueError(f"the verification interval must be positive, not {division}")
        self.window = window
        self.division = division
        self.overload_hold = overload_hold
        self.empty_below = empty_below
        self.ranges = ranges
        self._history: deque[_Indication] = deque()
        self._now: Instant | None = None
        self._device: DeviceInfo | None = None
        self._overload_since: Instant | None = None
        self._empty = True

    # -- driving ---------------------------------------------------------------------------

    def feed(self, reading: Reading) -> list[Command]:
        if self.done or self.started is None or reading.kind is not Kind.BODY_WEIGHT:
            return []
        self._device = reading.device
        self._now = reading.at
        if Flag.OVERLOAD in reading.flags:
            self._history.clear()
            self._empty = False
            since = self._overload_since = self._overload_since or reading.at
            if reading.at.seconds_since(since) >= self.overload_hold:
                self._fail(reading.at, OVERLOAD, reading.device)
            return []
        self._overload_since = None
        factor = KILOGRAMS_PER_UNIT.get(reading.unit)
        if reading.value is None or factor is None or reading.status is Status.INVALID:
            return []
        kilograms = reading.value * factor
        self._empty = abs(kilograms) < self.empty_below and Flag.NET_WEIGHT not in reading.flags
        if self._empty:
            self._history.clear()
            return []
        stable = reading.status is Status.VALID and Flag.UNSTABLE not in reading.flags
        net = Flag.NET_WEIGHT in reading.flags
        self._history.append(_Indication(reading.at, kilograms, stable, reading.device, net))
        self._prune(reading.at)
        self._try_accept()
        return []

    def tick(self, at: Instant) -> list[Command]:
        if not self.done and self.started is not None:
            self._now = at
        return super().tick(at)

    def _time_up(self, at: Instant) -> list[Command]:
        if self._device is None:
            reason = DEVICE_SILENT
        elif self._overload_since is not None:
            reason = OVERLOAD
        elif self._empty or not self._history:
            reason = NO_LOAD
        else:
            reason = UNSTABLE
        self._fail(at, reason, self._device)
        return []

    # -- the gate --------------------------------------------------------------------------

    def _prune(self, now: Instant) -> None:
        keep = 2 * self.window
        while self._history and now.seconds_since(self._history[0].at) > keep:
            self._history.popleft()

    def _sampling_rate(self) -> float | None:
        """Indications per second, from the history's own timestamps (streams and polls)."""
        span = self._history[-1].at.seconds_since(self._history[0].at)
        count = len(self._history)
        return (count - 1) / span if count > 1 and span > 0 else None

    def _try_accept(self) -> None:
        rate = self._sampling_rate()
        if rate is None:
            return
        values = [float(item.kilograms) for item in self._history]
        verdict = steady_window(
            values, sampling_rate=rate, window=self.window, tolerance=float(self.division)
        )
        if not verdict.steady or verdict.start is None:
            return
        window = list(self._history)[verdict.start :]
        if not all(item.stable for item in window):
            return
        last = window[-1]
        if last.at.seconds_since(window[0].at) < self.window * 0.9:
            return  # an irregular stream: the samples do not yet cover the window in time
        self._accept(last, spread=Decimal(str(verdict.spread)))

    def _accept(self, last: _Indication, *, spread: Decimal) -> None:
        value = self._at_division(last.kilograms)
        reason = self.ranges.check(Kind.BODY_WEIGHT, value, "kg")
        details = [
            ("window-s", f"{self.window:g}"),
            ("division-kg", str(self.division)),
            ("spread-kg", str(self._at_division(spread))),
        ]
        if last.net:
            details.append(("weighing-mode", "net"))
        self._finish(
            [
                Measurement(
                    kind=Kind.BODY_WEIGHT,
                    value=value,
                    unit="kg",
                    at=last.at,
                    status=Status.VALID if reason is None else Status.INVALID,
                    method=Method.PLATFORM_SCALE,
                    device=last.device,
                    reasons=() if reason is None else (reason,),
                    procedure=self.name,
                    details=tuple(details),
                )
            ]
        )

    def _at_division(self, kilograms: Decimal) -> Decimal:
        """``kilograms`` rounded to the verification interval, written with its decimals."""
        steps = (kilograms / self.division).to_integral_value(rounding=ROUND_HALF_UP)
        return (steps * self.division).quantize(self.division)

    def _fail(self, at: Instant, reason: Reason, device: DeviceInfo | None) -> None:
        details: tuple[tuple[str, str], ...] = ()
        if self._history:
            details = (("last-shown-kg", str(self._history[-1].kilograms)),)
        self._finish_unavailable(
            kind=Kind.BODY_WEIGHT,
            method=Method.PLATFORM_SCALE,
            at=at,
            reason=reason,
            device=device,
            details=details,
        )

    # -- what the resident sees ------------------------------------------------------------

    @property
    def progress(self) -> Progress:
        if self.done:
            return Progress("done", "Weighing finished.", "Đã cân xong.", fraction=1.0)
        left = self._seconds_left()
        if self._overload_since is not None:
            return Progress(
                "overload",
                "The scale cannot weigh this much. Please step off the scale.",
                "Cân không cân được mức nặng này. Vui lòng bước xuống khỏi cân.",
                seconds_left=left,
            )
        if self._empty or not self._history:
            return Progress(
                "waiting",
                "Step onto the scale and stand still in the middle.",
                "Mời bạn bước lên cân và đứng yên ở giữa bàn cân.",
                fraction=0.0,
                seconds_left=left,
            )
        return Progress(
            "measuring",
            "Weighing. Stand still and do not hold the rail.",
            "Đang cân. Xin đứng yên, không vịn tay vào thanh.",
            fraction=self._settled_fraction(),
            seconds_left=left,
            live=self._history[-1].kilograms,
        )

    def _seconds_left(self) -> float | None:
        if self._now is None or self.started is None:
            return None
        return max(0.0, self.time_limit - self.elapsed(self._now))

    def _settled_fraction(self) -> float:
        """How much of the window the indication has already stayed at rest."""
        items = list(self._history)
        run = steady_run([float(i.kilograms) for i in items], tolerance=float(self.division))
        stable_run = 0
        for item in reversed(items[len(items) - run :]):
            if not item.stable:
                break
            stable_run += 1
        if stable_run < 2:
            return 0.0
        span = items[-1].at.seconds_since(items[-stable_run].at)
        return min(1.0, span / self.window)
