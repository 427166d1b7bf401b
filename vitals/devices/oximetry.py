"""Readings common to every pulse oximeter: pleth samples, SpO2, pulse rate, perfusion.

Each oximeter driver decodes its own frames into an :class:`OximeterSample` and hands it to an
:class:`OximeterReporter`, which applies the rules every oximeter shares: sentinels never become
values, a finger-out or probe error makes the numbers not available, searching makes them
questionable, and the numbers are reported on change or once a second, not per pleth sample.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Generic, TypeVar

from vitals.clock import Instant
from vitals.devices.driver import Condition, DeviceDriver, ReportGate
from vitals.model import Flag, Kind, Reading, Status
from vitals.protocols.framing import Framer, FramerStats

F = TypeVar("F")

# Conditions under which an oximeter's numbers mean nothing.
# Nonin's "sensor alarm" (SNSA) means unusable data, and it is what a finger taken out looks like.
NO_CONTACT_FLAGS = frozenset({Flag.FINGER_OUT, Flag.SENSOR_DISCONNECTED, Flag.SENSOR_ALARM})
FAULT_FLAGS = frozenset({Flag.PROBE_ERROR})
DOUBT_FLAGS = frozenset(
    {
        Flag.SEARCHING,
        Flag.SEARCH_TOO_LONG,
        Flag.ARTIFACT,
        Flag.OUT_OF_TRACK,
        Flag.LOW_PERFUSION,
        Flag.LOW_SIGNAL_QUALITY,
        Flag.INTERFERENCE,
        Flag.AMBIENT_LIGHT,
    }
)


@dataclass(frozen=True, slots=True)
class OximeterSample:
    """What one oximeter frame (or packet, or line) says, in device-neutral terms.

    ``pleth`` is None for devices that send no waveform; ``spo2`` and ``pulse_rate`` are None
    when the device sent its "no value" sentinel; ``flags`` are the device's conditions.
    """

    spo2: int | None
    pulse_rate: int | None
    pleth: int | None = None
    perfusion_index: Decimal | None = None
    flags: frozenset[Flag] = field(default_factory=frozenset)
    pulse_beep: bool = False


class OximeterReporter:
    """Turns :class:`OximeterSample` values into readings for one driver."""

    def __init__(self, driver: DeviceDriver, *, period: float = 1.0) -> None:
        self._driver = driver
        self._gate = ReportGate(period=period)

    def reset(self) -> None:
        self._gate.reset()

    def readings(self, sample: OximeterSample, at: Instant) -> list[Reading]:
        driver = self._driver
        flags = sample.flags
        out: list[Reading] = []
        if flags & FAULT_FLAGS:
            driver.condition = Condition.ERROR
        elif flags & NO_CONTACT_FLAGS:
            driver.condition = Condition.NO_CONTACT
        else:
            driver.condition = Condition.MEASURING
        unusable = bool(flags & (FAULT_FLAGS | NO_CONTACT_FLAGS))
        doubtful = bool(flags & DOUBT_FLAGS)
        if sample.pleth is not None:
            pleth_flags = flags | {Flag.PULSE_BEEP} if sample.pulse_beep else flags
            status = (
                Status.INVALID if unusable else (Status.QUESTIONABLE if doubtful else Status.VALID)
            )
            out.append(
                driver.reading(Kind.PLETH, sample.pleth, at, status=status, flags=pleth_flags)
            )
        for kind, reported in (
            (Kind.SPO2, sample.spo2),
            (Kind.PULSE_RATE, sample.pulse_rate),
            (Kind.PERFUSION_INDEX, sample.perfusion_index),
        ):
            if kind is Kind.PERFUSION_INDEX and reported is None:
                continue
            value = None if unusable else reported
            status = (
                Status.NOT_AVAILABLE
                if value is None
                else Status.QUESTIONABLE
                if doubtful
                else Status.VALID
            )
            if self._gate.due(kind, (value, status, flags), at):
                out.append(driver.reading(kind, value, at, status=status, flags=flags))
        return out


class OximeterDriver(DeviceDriver, Generic[F]):
    """The skeleton every oximeter driver shares: one framer, one reporter, frames in order.

    A subclass names its framer and says what a frame means (:meth:`_on_frame`, usually an
    :class:`OximeterSample` handed to ``self._reporter``); it adds commands only if its device
    needs them.
    """

    def __init__(self, *, port: str) -> None:
        super().__init__(port=port)
        self._framer = self._new_framer()
        self._reporter = OximeterReporter(self)

    @abstractmethod
    def _new_framer(self) -> Framer[F]:
        """A fresh framer for this device's stream."""

    @property
    def stats(self) -> FramerStats:
        return self._framer.stats

    def connect(self, at: Instant) -> None:
        super().connect(at)
        self._framer.reset()
        self._reporter.reset()

    def receive(self, data: bytes, at: Instant) -> list[Reading]:
        readings: list[Reading] = []
        for frame in self._framer.feed(data):
            readings += self._on_frame(frame, at)
        return readings

    @abstractmethod
    def _on_frame(self, frame: F, at: Instant) -> list[Reading]:
        """The readings one frame completes."""
