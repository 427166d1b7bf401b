"""Pulse oximetry spot check: SpO2 and pulse rate, accepted only when the waveform backs them.

The procedure waits for a finger, then measures for at least ``min_good_seconds`` of good
signal and at most ``max_measure_seconds``.  Each second the last ``window_seconds`` of pleth,
without finger-out and device-flagged samples, go through :func:`vitals.dsp.ppg.heart_rate`,
which sets motion, knocks and clipping aside.  The device's SpO2 and rate count only from VALID
readings (never sentinels) outside those stretches and ``device_lag`` s after them (the
device's own average still carries them): each is the median of its last ``settle_samples``;
SpO2 is settled when they lie within ``spo2_spread``.  Both are VALID, and the procedure ends,
once the waveform is reliable with quality >= ``min_quality`` over ``min_good_seconds`` of clean
beats, its rate within ``rate_tolerance`` of the device's, and SpO2 settled; otherwise at
``max_measure_seconds`` they are QUESTIONABLE with the reason.  Impossible values are INVALID.

An oximeter without a waveform (Masimo ASCII 1) cannot be cross-checked: its values are gated
on its own flags and stability only; their quality is None and their details say so.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import ClassVar, Final, NamedTuple

import numpy as np

from vitals.clock import Instant
from vitals.devices.catalog import DRIVERS
from vitals.devices.oximetry import NO_CONTACT_FLAGS
from vitals.dsp.ppg import MIN_WINDOW_S, Issue, PulseRate, heart_rate
from vitals.dsp.ppg_stream import on_sample_clock
from vitals.measurement import Measurement, Method, Reason
from vitals.model import DeviceInfo, Flag, Kind, Reading, Status
from vitals.plausibility import DEFAULT_RANGES, PlausibleRanges
from vitals.procedures.base import Command, Procedure, Progress
from vitals.reasons import DEVICE_SILENT, MOTION

NO_FINGER: Final = Reason(
    "no-finger",
    "No finger was found in the oximeter. Put your index finger all the way into the clip "
    "and try again.",
    "Máy đo chưa nhận thấy ngón tay. Hãy đặt hẳn ngón trỏ vào trong kẹp đo rồi đo lại.",
)
POOR_SIGNAL: Final = Reason(
    "poor-signal",
    "The pulse signal was too weak or unsteady to trust. Warm your hand, rest it on the "
    "table, keep still and measure again.",
    "Tín hiệu mạch quá yếu hoặc không ổn định nên chưa đáng tin. Hãy làm ấm bàn tay, đặt "
    "tay lên bàn, giữ yên và đo lại.",
)
SPO2_UNSETTLED: Final = Reason(
    "spo2-unsettled",
    "The oxygen reading kept changing and did not settle. Keep still and measure again.",
    "Chỉ số oxy trong máu thay đổi liên tục, chưa ổn định. Hãy giữ yên và đo lại.",
)
NO_READING: Final = Reason(
    "no-reading",
    "The oximeter did not show a value. Check that your finger is all the way in the clip "
    "and measure again.",
    "Máy đo chưa hiển thị kết quả. Hãy kiểm tra ngón tay đã đặt hẳn vào kẹp đo rồi đo lại.",
)
NO_WAVEFORM: Final = "none: this oximeter sends no waveform; values gated on its flags only"
MOTION_FLAGS: Final = frozenset({Flag.ARTIFACT, Flag.MOTION, Flag.OUT_OF_TRACK})


def rate_mismatch(waveform: float, device: Decimal) -> Reason:
    """The device's pulse rate and the one counted from its waveform disagree."""
    return Reason(
        "rate-mismatch",
        f"The pulse counted from the waveform ({waveform:.0f} /min) does not match the "
        f"oximeter's reading ({device} /min). Keep still and measure again.",
        f"Nhịp mạch đếm từ sóng mạch ({waveform:.0f} lần/phút) không khớp với số đo của máy "
        f"({device} lần/phút). Hãy giữ yên và đo lại.",
    )


class _Number(NamedTuple):
    t: float
    value: Decimal | None
    usable: bool  # VALID, with a value


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What an evaluation concluded, for the results and for the progress shown."""

    waveform: PulseRate | None = None
    spo2: Decimal | None = None
    spo2_settled: bool = False
    device_rate: Decimal | None = None
    agree: bool = False  # the device's rate matches the waveform's (no waveform: is steady)
    trusted: bool = False  # a reliable waveform (no waveform: the device's own flags say so)
    moving: bool = False

    @property
    def good(self) -> bool:
        return self.trusted and self.agree and self.spo2_settled


class OximetryProcedure(Procedure):
    """Measures SpO2 and pulse rate with one oximeter (see the module docstring)."""

    name: ClassVar[str] = "oximetry"
    kinds: ClassVar[frozenset[Kind]] = frozenset({Kind.PLETH, Kind.SPO2, Kind.PULSE_RATE})

    def __init__(
        self,
        *,
        time_limit: float = 120.0,
        min_good_seconds: float = 10.0,
        max_measure_seconds: float = 45.0,
        window_seconds: float = 30.0,
        rate_tolerance: float = 5.0,
        min_quality: float = 0.5,
        settle_samples: int = 5,
        spo2_spread: Decimal = Decimal(2),
        device_lag: float = 4.0,
        pleth_rate: float | None = None,
        ranges: PlausibleRanges = DEFAULT_RANGES,
    ) -> None:
        super().__init__(time_limit=time_limit)
        if not (0 < min_good_seconds <= max_measure_seconds and window_seconds >= MIN_WINDOW_S):
            raise ValueError("need 0 < min_good_seconds <= max_measure_seconds, window >= 8 s")
        self.min_good_seconds = min_good_seconds
        self.max_measure_seconds = max_measure_seconds
        self.window_seconds = window_seconds
        self.rate_tolerance = rate_tolerance
        self.min_quality = min_quality
        self.settle_samples = settle_samples
        self.spo2_spread = spo2_spread
        self.device_lag = device_lag
        self.pleth_rate = pleth_rate
        self.ranges = ranges
        self._device: DeviceInfo | None = None
        self._values: list[float] = []
        self._ok: list[bool] = []
        self._times: list[float] = []
        self._numbers: dict[Kind, list[_Number]] = {Kind.SPO2: [], Kind.PULSE_RATE: []}
        self._contact_since: float | None = None  # finger first in: the measuring clock starts
        self._in_contact = False
        self._searching = False
        self._flagged_motion_at = -1e9
        self._evaluated_at = -1e9
        self._verdict: _Verdict | None = None
        self._now = 0.0

    # -- driving ---------------------------------------------------------------------------

    def feed(self, reading: Reading) -> list[Command]:
        started = self.started
        if self.done or started is None or reading.kind not in self.kinds:
            return []
        # one oximeter per measurement, known by its pleth or SpO2 (a BP module reports rates)
        oximeter = self._device.port if self._device else None
        if reading.device.port != oximeter and (oximeter or reading.kind is Kind.PULSE_RATE):
            return []
        self._device = reading.device  # drivers learn serial numbers and firmware on the way
        t = self._now = max(self._now, reading.at.seconds_since(started))
        if reading.kind is Kind.PLETH or not self._values:
            contact = reading.status is not Status.INVALID
            self._in_contact = contact and not reading.flags & NO_CONTACT_FLAGS
            if self._in_contact and self._contact_since is None:
                self._contact_since = t
            self._searching = Flag.SEARCHING in reading.flags
        if reading.flags & MOTION_FLAGS:
            self._flagged_motion_at = t
        usable = reading.status is Status.VALID and reading.value is not None
        if reading.kind is not Kind.PLETH:
            self._numbers[reading.kind].append(_Number(t, reading.value, usable))
            return []
        self._times.append(t)
        self._values.append(np.nan if reading.value is None else float(reading.value))
        self._ok.append(usable)  # kept whole: the time limit bounds it (120 s x 100 Hz)
        return []

    def tick(self, at: Instant) -> list[Command]:
        started = self.started
        if self.done or started is None:
            return []
        self._now = max(self._now, at.seconds_since(started))
        commands = super().tick(at)
        if self.done or self._contact_since is None or self._now - self._evaluated_at < 1.0:
            return commands
        self._evaluated_at = self._now
        self._verdict = self._evaluate()
        if self._verdict.good or self._now - self._contact_since >= self.max_measure_seconds:
            self._conclude(at)
        return commands

    def _time_up(self, at: Instant) -> list[Command]:
        self._verdict = self._evaluate() if self._contact_since is not None else None
        return self._conclude(at)

    def _rate(self) -> float:
        """Pleth samples per second: configured, the device model's, or measured."""
        driver = DRIVERS.get(self._device.protocol) if self._device else None
        nominal = (driver.spec.frame_rate or 0.0) if driver else 0.0
        span = self._times[-1] - self._times[0] if len(self._times) > 1 else 0.0
        measured = (len(self._times) - 1) / span if span > 0 else 60.0
        return self.pleth_rate or (nominal if nominal >= 25 else measured)

    # -- the gate --------------------------------------------------------------------------

    def _evaluate(self) -> _Verdict:
        waveform, aside = self._waveform() if self._values else (None, [])
        spo2, settled = self._settled(Kind.SPO2, aside, self.spo2_spread)
        rate_spread = None if self._values else Decimal(str(self.rate_tolerance))
        device_rate, rate_settled = self._settled(Kind.PULSE_RATE, aside, rate_spread)
        recently = self._now - 2.0
        moving = self._flagged_motion_at > recently or any(end > recently for _, end in aside)
        if not self._values:  # no waveform: the device's flags and stability only
            return _Verdict(None, spo2, settled, device_rate, rate_settled, self._quiet(), moving)
        trusted = (
            waveform is not None
            and waveform.reliable
            and waveform.quality >= self.min_quality
            and waveform.clean_seconds >= self.min_good_seconds
        )
        agree = (
            waveform is not None
            and waveform.bpm is not None
            and device_rate is not None
            and abs(waveform.bpm - float(device_rate)) <= self.rate_tolerance
        )
        return _Verdict(waveform, spo2, settled, device_rate, agree, trusted, moving)

    def _waveform(self) -> tuple[PulseRate | None, list[tuple[float, float]]]:
        """The analysis of the last window since contact, and the stretches it set aside."""
        fs = self._rate()
        times = np.asarray(self._times)
        keep = times >= max(self._contact_since or 0.0, self._now - self.window_seconds)
        values, ok = np.asarray(self._values)[keep], np.asarray(self._ok, dtype=bool)[keep]
        stream = on_sample_clock(times[keep], values, ok, sampling_rate=fs)
        usable = np.flatnonzero(stream.usable)
        if usable.size == 0 or usable[-1] + 1 - usable[0] < MIN_WINDOW_S * fs:
            return None, []
        span = slice(usable[0], usable[-1] + 1)
        rate = heart_rate(stream.values[span], sampling_rate=fs, exclude=~stream.usable[span])
        first = stream.times[span][0]
        return rate, [(first + start, first + stop) for start, stop in rate.artefacts]

    def _settled(
        self, kind: Kind, aside: list[tuple[float, float]], spread: Decimal | None
    ) -> tuple[Decimal | None, bool]:
        """The median of the last usable values of ``kind``, and whether enough agree."""
        since = max(self._contact_since or 0.0, self._now - self.window_seconds)
        values = [
            n.value
            for n in self._numbers[kind]
            if n.usable
            and n.value is not None
            and n.t >= since
            and not any(start <= n.t < end + self.device_lag for start, end in aside)
        ][-self.settle_samples :]
        if not values:
            return None, False
        steady = spread is None or max(values) - min(values) <= spread
        return statistics.median_low(values), steady and len(values) == self.settle_samples

    def _quiet(self) -> bool:
        """Without a waveform: every reading VALID for the last ``min_good_seconds``."""
        if self._contact_since is None or self._now - self._contact_since < self.min_good_seconds:
            return False
        since = self._now - self.min_good_seconds
        recent = [n for numbers in self._numbers.values() for n in numbers if n.t >= since]
        return bool(recent) and all(n.usable for n in recent)

    # -- the results -----------------------------------------------------------------------

    def _conclude(self, at: Instant) -> list[Command]:
        verdict = self._verdict or _Verdict()
        doubts = self._doubts(verdict)
        if self._device is None or self._contact_since is None:
            doubts = [DEVICE_SILENT if self._device is None else NO_FINGER]
        unsettled = [SPO2_UNSETTLED] if verdict.spo2 and not verdict.spo2_settled else []
        spo2 = self._result(Kind.SPO2, verdict.spo2, at, [*doubts, *unsettled], verdict)
        rate = self._result(Kind.PULSE_RATE, verdict.device_rate, at, doubts, verdict)
        self._finish([spo2, rate])
        return []

    def _doubts(self, verdict: _Verdict) -> list[Reason]:
        """Why the device's values cannot be accepted (none when they can)."""
        reasons: list[Reason] = []
        waveform = verdict.waveform
        if not verdict.trusted or (waveform is None and not verdict.agree):
            disturbed = verdict.moving or bool(
                waveform and (Issue.ARTEFACT in waveform.issues or waveform.clean_share < 0.75)
            )
            why = MOTION if disturbed else POOR_SIGNAL
            reasons.append(why if self._in_contact else NO_FINGER)
        rate = verdict.device_rate
        if waveform and waveform.reliable and waveform.bpm and rate and not verdict.agree:
            reasons.append(rate_mismatch(waveform.bpm, rate))
        return reasons

    def _result(
        self,
        kind: Kind,
        value: Decimal | None,
        at: Instant,
        doubts: list[Reason],
        verdict: _Verdict,
    ) -> Measurement:
        """The measurement of ``kind``: not available, invalid, questionable or valid."""
        reasons = list(doubts)
        if value is None:
            status, reasons = Status.NOT_AVAILABLE, reasons[:1] or [NO_READING]
        elif (implausible := self.ranges.check(kind, value, kind.unit)) is not None:
            status, reasons = Status.INVALID, [implausible, *reasons]
        else:
            status = Status.QUESTIONABLE if reasons else Status.VALID
        waveform = verdict.waveform
        return Measurement(
            kind=kind,
            value=value,
            unit=kind.unit,
            at=at,
            status=status,
            method=Method.PULSE_OXIMETRY,
            device=self._device,
            quality=None if waveform is None or value is None else waveform.quality,
            reasons=tuple(reasons),
            procedure=self.name,
            details=self._details(verdict) if self._contact_since is not None else (),
        )

    def _details(self, verdict: _Verdict) -> tuple[tuple[str, str], ...]:
        waveform = verdict.waveform
        details = [("rate-tolerance-per-min", f"{self.rate_tolerance:g}")]
        if verdict.device_rate is not None:
            details.append(("device-rate-per-min", str(verdict.device_rate)))
        if waveform is None:
            return (*details, ("waveform", "too short" if self._values else NO_WAVEFORM))
        details += [
            ("waveform-rate-per-min", "-" if waveform.bpm is None else f"{waveform.bpm:.1f}"),
            ("waveform-quality", f"{waveform.quality:.2f}"),
            ("waveform-reliable", "yes" if waveform.reliable else "no"),
            ("waveform-clean-s", f"{waveform.clean_seconds:.1f}"),
            ("waveform-issues", ",".join(issue.value for issue in waveform.issues) or "none"),
        ]
        return tuple(details)

    # -- what the resident sees ------------------------------------------------------------

    @property
    def progress(self) -> Progress:
        if self.done:
            en, vi = _SAY["done"]
            return Progress("done", en, vi, fraction=1.0)
        if not self._in_contact:
            en, vi = _SAY["came-out" if self._contact_since is not None else "insert"]
            return Progress("waiting", en, vi, fraction=0.0)
        verdict = self._verdict or _Verdict()
        measured = self._now - (self._contact_since or 0.0)
        recent = self._ok[-int(self.window_seconds * self._rate()) :]  # before any analysis
        clean = verdict.waveform.clean_seconds if verdict.waveform else sum(recent) / self._rate()
        clean = clean if self._values else measured
        left = max(0.0, min(self.min_good_seconds - clean, self.max_measure_seconds - measured))
        en, vi = _SAY["searching" if self._searching else "moving" if verdict.moving else "now"]
        return Progress(
            "measuring",
            en.format(left=left),
            vi.format(left=left),
            fraction=min(1.0, clean / self.min_good_seconds),
            seconds_left=left,
            live=verdict.spo2,
        )


_SAY: Final = MappingProxyType(
    {
        "insert": (
            "Put your index finger all the way into the oximeter clip.",
            "Hãy đặt hẳn ngón trỏ vào trong kẹp đo SpO2.",
        ),
        "came-out": (
            "Your finger came out of the clip. Put it back in and keep still.",
            "Ngón tay đã rời khỏi kẹp đo. Hãy đặt lại ngón tay và giữ yên.",
        ),
        "searching": (
            "Finding your pulse. Rest your hand on the table and keep still.",
            "Đang tìm nhịp mạch. Hãy đặt tay lên bàn và giữ yên.",
        ),
        "moving": (
            "Your hand moved. Rest it on the table and keep still.",
            "Tay bạn đang cử động. Hãy đặt tay lên bàn và giữ yên.",
        ),
        "now": (
            "Measuring. Keep still, about {left:.0f} s left.",
            "Đang đo. Hãy giữ yên, còn khoảng {left:.0f} giây.",
        ),
        "done": (
            "Measurement finished. You can take your finger out.",
            "Đã đo xong. Bạn có thể rút ngón tay ra.",
        ),
    }
)
"""What the resident is told, in English and Vietnamese, by situation."""
