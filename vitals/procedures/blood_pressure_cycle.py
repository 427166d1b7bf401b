"""One cuff cycle of the blood-pressure procedure, and what the readings of several are worth.

A :class:`Cycle` collects what the BP module reports between a start command and its result:
the cuff pressure while it deflates (CUFF_PRESSURE readings flagged DEFLATING, with their
timestamps, ~25 Hz) and the four result readings (SYSTOLIC_BP, DIASTOLIC_BP, MEAN_BP,
PULSE_RATE).  :func:`judge` turns it into one reading:

- no values (an error code, no answer, nothing determined): a failure with its reason;
- values a person cannot have (:mod:`vitals.plausibility`, and MAP between DIA and SYS): an
  INVALID reading that still shows them, and a failure;
- otherwise the module's values, cross-checked against the envelope of the cuff signal
  (:func:`vitals.dsp.oscillometry.estimate_pressures`): QUESTIONABLE when a confident envelope
  (quality at least ``min_quality``) puts MAP, SYS or DIA more than ``margin`` mmHg away.

:func:`combine` makes the AHA protocol's result of two or three readings: their mean, with
the single readings as members.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from vitals.clock import Instant
from vitals.dsp.oscillometry import OscillometricEstimate, estimate_pressures
from vitals.measurement import Component, Measurement, Method, Reason
from vitals.model import DeviceInfo, Flag, Kind, Reading, Status
from vitals.plausibility import PlausibleRanges
from vitals.procedures.blood_pressure_reasons import (
    NO_ANSWER,
    NO_RESULT,
    for_error_code,
    pulse_unconfirmed,
    unconfirmed,
)
from vitals.reasons import implausible

PRESSURES = (Kind.SYSTOLIC_BP, Kind.DIASTOLIC_BP, Kind.MEAN_BP)
RESULT_KINDS = frozenset((*PRESSURES, Kind.PULSE_RATE))
MMHG = "mm[Hg]"
MIN_SAMPLES = 50
"""Fewer deflation samples (2 s at 25 Hz) are not worth an envelope."""


@dataclass(slots=True)
class Cycle:
    """What one cuff cycle has reported so far."""

    started: Instant
    device: DeviceInfo | None = None
    times: list[float] = field(default_factory=list)
    pressures: list[float] = field(default_factory=list)
    results: dict[Kind, Reading] = field(default_factory=dict)
    live: Decimal | None = None
    deflating: bool = False

    def from_cuff(self, reading: Reading) -> bool:
        """Whether ``reading`` comes from this cycle's module; the first BP reading names it."""
        if self.device is None and reading.kind is not Kind.PULSE_RATE:
            self.device = reading.device
        device = self.device
        return device is not None and (device.protocol, device.port) == (
            reading.device.protocol,
            reading.device.port,
        )

    def add(self, reading: Reading) -> None:
        if reading.kind is Kind.CUFF_PRESSURE:
            if reading.value is None:
                return
            self.live = reading.value
            if Flag.DEFLATING in reading.flags:
                self.deflating = True
                self.times.append(reading.at.monotonic)
                self.pressures.append(float(reading.value))
        elif reading.kind in RESULT_KINDS:
            self.results[reading.kind] = reading

    @property
    def complete(self) -> bool:
        return self.results.keys() >= RESULT_KINDS


@dataclass(frozen=True, slots=True)
class CrossCheck:
    """How the envelope's estimate compares with the module's result."""

    margin: float = 10.0
    min_quality: float = 0.3
    pulse_margin: float = 10.0
    ratios: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """One cycle judged: a reading (with values, possibly invalid) and/or why it failed."""

    reading: Measurement | None
    failure: Reason | None
    pulse: Decimal | None = None
    """The module's pulse rate, when plausible."""
    pulse_reason: Reason | None = None
    """Why that pulse rate is doubtful, if it is."""


def judge(cycle: Cycle, *, protocol: str, ranges: PlausibleRanges, check: CrossCheck) -> Verdict:
    """The reading one complete cycle gives (see the module docstring)."""
    results = {kind: cycle.results[kind] for kind in RESULT_KINDS}
    at = max(reading.at for reading in results.values())
    values = [results[kind].value for kind in PRESSURES]
    if any(value is None for value in values):
        codes = [r.error_code for r in results.values() if r.error_code is not None]
        if codes:
            return Verdict(None, for_error_code(codes[0]))
        return Verdict(None, NO_RESULT if cycle.times else NO_ANSWER)
    systolic, diastolic, mean = (v for v in values if v is not None)
    device = results[Kind.SYSTOLIC_BP].device
    estimate = None
    if len(cycle.pressures) >= MIN_SAMPLES:
        estimate = estimate_pressures(cycle.pressures, times=cycle.times, ratios=check.ratios)
    details = _envelope_details(estimate, len(cycle.pressures))
    problem = _implausible(systolic, diastolic, mean, ranges)
    if problem is not None:
        reading = _panel(
            (systolic, diastolic, mean),
            at,
            device,
            status=Status.INVALID,
            reasons=(problem,),
            protocol=protocol,
            details=details,
        )
        return Verdict(reading, problem)
    status, reasons, verdict = _cross_check(estimate, (mean, systolic, diastolic), check)
    details += (("cross-check", verdict), ("cross-check-margin-mmhg", f"{check.margin:g}"))
    pulse, pulse_reason = _pulse(results[Kind.PULSE_RATE], estimate, ranges, check)
    if pulse is not None:
        details += (("pulse-rate", str(pulse)),)
    reading = _panel(
        (systolic, diastolic, mean),
        at,
        device,
        status=status,
        reasons=reasons,
        protocol=protocol,
        details=details,
        quality=None if estimate is None else round(estimate.quality, 3),
    )
    return Verdict(reading, None, pulse, pulse_reason)


def combine(
    readings: Sequence[Measurement],
    *,
    protocol: str,
    extra: tuple[Reason, ...] = (),
    details: tuple[tuple[str, str], ...] = (),
) -> Measurement:
    """The mean of single readings (whole mmHg, half up) with them as members; questionable
    when any member is or ``extra`` reasons say so."""
    means = []
    for kind in PRESSURES:
        values = [_value(reading, kind) for reading in readings]
        means.append(_mean(values))
    reasons = _unique([r for reading in readings for r in reading.reasons] + list(extra))
    doubtful = extra or any(r.status is not Status.VALID for r in readings)
    qualities = [r.quality for r in readings if r.quality is not None]
    last = readings[-1]
    return _panel(
        (means[0], means[1], means[2]),
        last.at,
        last.device,
        status=Status.QUESTIONABLE if doubtful else Status.VALID,
        reasons=tuple(reasons),
        protocol=protocol,
        details=details,
        quality=min(qualities) if qualities else None,
        members=tuple(readings),
    )


def average(values: Sequence[Decimal]) -> Decimal:
    """Mean to whole units, half up (how devices and guidelines write pressures and rates)."""
    return _mean(list(values))


def _mean(values: list[Decimal]) -> Decimal:
    total = sum(values, Decimal(0)) / len(values)
    return total.quantize(Decimal(1), rounding=ROUND_HALF_UP)


def _value(reading: Measurement, kind: Kind) -> Decimal:
    component = reading.component(kind)
    if component is None or component.value is None:
        raise ValueError(f"reading without a {kind} value cannot be averaged")
    return component.value


def _unique(reasons: list[Reason]) -> list[Reason]:
    seen: set[str] = set()
    out = []
    for reason in reasons:
        if reason.code not in seen:
            seen.add(reason.code)
            out.append(reason)
    return out


def _implausible(
    systolic: Decimal, diastolic: Decimal, mean: Decimal, ranges: PlausibleRanges
) -> Reason | None:
    problem = ranges.check_pressures(systolic, diastolic) or ranges.check(
        Kind.MEAN_BP, mean, "mmHg"
    )
    if problem is None and not diastolic <= mean <= systolic:
        problem = implausible(Kind.MEAN_BP, mean, "mmHg")
    return problem


def _cross_check(
    estimate: OscillometricEstimate | None,
    module: tuple[Decimal, Decimal, Decimal],
    check: CrossCheck,
) -> tuple[Status, tuple[Reason, ...], str]:
    """VALID or QUESTIONABLE, its reasons, and the word for the details."""
    if estimate is None or estimate.quality < check.min_quality:
        return Status.VALID, (), "not-possible"
    envelope = estimate.maximum_amplitude
    gaps = [
        abs(float(value) - found)
        for value, found in zip(
            module, (envelope.mean, envelope.systolic, envelope.diastolic), strict=True
        )
        if found is not None
    ]
    worst = max(gaps, default=0.0)
    if worst > check.margin:
        difference = Decimal(round(worst))
        return Status.QUESTIONABLE, (unconfirmed(difference),), "disagrees"
    return Status.VALID, (), "agrees"


def _pulse(
    reading: Reading,
    estimate: OscillometricEstimate | None,
    ranges: PlausibleRanges,
    check: CrossCheck,
) -> tuple[Decimal | None, Reason | None]:
    value = reading.value
    if value is None or ranges.check(Kind.PULSE_RATE, value, reading.unit) is not None:
        return None, None
    if estimate is None or estimate.quality < check.min_quality or estimate.pulse_rate is None:
        return value, None
    gap = abs(float(value) - estimate.pulse_rate)
    return value, pulse_unconfirmed(Decimal(round(gap))) if gap > check.pulse_margin else None


def _envelope_details(
    estimate: OscillometricEstimate | None, samples: int
) -> tuple[tuple[str, str], ...]:
    details = [("cuff-samples", str(samples))]
    if estimate is None:
        return tuple(details)
    amplitude, slope = estimate.maximum_amplitude, estimate.maximum_slope
    named = (
        ("envelope-map-mmhg", amplitude.mean),
        ("envelope-sys-mmhg", amplitude.systolic),
        ("envelope-dia-mmhg", amplitude.diastolic),
        ("max-slope-sys-mmhg", slope.systolic),
        ("max-slope-dia-mmhg", slope.diastolic),
        ("envelope-uncertainty-mmhg", estimate.uncertainty),
        ("envelope-pulse-rate", estimate.pulse_rate),
    )
    details.append(("envelope-method", amplitude.method))
    details += [(name, f"{value:.1f}") for name, value in named if value is not None]
    details += [
        ("envelope-beats", str(estimate.beats)),
        ("envelope-rejected-beats", str(estimate.rejected)),
        ("envelope-quality", f"{estimate.quality:.2f}"),
    ]
    return tuple(details)


def _panel(
    values: tuple[Decimal, Decimal, Decimal],
    at: Instant,
    device: DeviceInfo | None,
    *,
    status: Status,
    reasons: tuple[Reason, ...],
    protocol: str,
    details: tuple[tuple[str, str], ...],
    quality: float | None = None,
    members: tuple[Measurement, ...] = (),
) -> Measurement:
    components = tuple(
        Component(kind, value, MMHG, status=status, reasons=reasons)
        for kind, value in zip(PRESSURES, values, strict=True)
    )
    return Measurement(
        kind=Kind.BLOOD_PRESSURE,
        value=None,
        unit=MMHG,
        at=at,
        status=status,
        method=Method.OSCILLOMETRY,
        device=device,
        quality=quality,
        reasons=reasons,
        components=components,
        members=members,
        procedure=protocol,
        details=details,
    )


def not_available(
    at: Instant, device: DeviceInfo | None, reason: Reason, protocol: str
) -> Measurement:
    """A BP panel with no values: each component not available, for ``reason``."""
    components = tuple(
        Component(kind, None, MMHG, status=Status.NOT_AVAILABLE, reasons=(reason,))
        for kind in PRESSURES
    )
    return Measurement(
        kind=Kind.BLOOD_PRESSURE,
        value=None,
        unit=MMHG,
        at=at,
        status=Status.NOT_AVAILABLE,
        method=Method.OSCILLOMETRY,
        device=device,
        reasons=(reason,),
        components=components,
        procedure=protocol,
    )
