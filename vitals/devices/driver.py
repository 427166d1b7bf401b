"""The sans-I/O device driver interface and the pieces every driver shares.

A session drives a driver through four calls and moves the bytes it asks for::

    driver.connect(at)          port (re)opened: reset state, queue start commands
    driver.tick(at)             periodically: queue keep-alives and polls that are due;
                                returns readings that time alone completes (a reply timeout)
    driver.receive(data, at)    bytes arrived: returns the readings they complete
    driver.take_output()        bytes the driver wants written, drained by the session

so every conversation can be tested without a port, and the same driver runs over a pty, a
USB adapter or ``loop://``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar

from vitals.clock import Instant
from vitals.link import LinkSettings
from vitals.model import DeviceInfo, Flag, Kind, Reading, Status
from vitals.protocols.framing import FramerStats


class Condition(StrEnum):
    """What a device is doing, as far as its own frames tell."""

    WAITING = "waiting"
    """Connected, nothing valid heard yet."""
    READY = "ready"
    """Answering, idle (a BP module between measurements, a scale with nothing on it)."""
    NO_CONTACT = "no-contact"
    """Streaming, but nobody is measured: finger out, probe off, no target."""
    MEASURING = "measuring"
    """Producing values, or running a measurement cycle."""
    ERROR = "error"
    """The device reports a fault (probe error, cuff error, overload)."""


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """What a session and the probe need to know about a device model."""

    name: str
    """CLI name, e.g. ``cms50d-legacy``."""
    model: str
    """Human model name, e.g. ``Contec CMS50D+ (legacy protocol)``."""
    link: LinkSettings
    silence_timeout: float
    """Seconds without a valid frame after which the device is considered gone."""
    tick_interval: float = 0.5
    """How often the session calls :meth:`DeviceDriver.tick`, in seconds."""
    frame_rate: float | None = None
    """Frames per second the device sends unprompted (None: only when asked)."""


class DeviceDriver(ABC):
    """Base of every driver: the output queue, the device identity and the condition."""

    spec: ClassVar[DeviceSpec]

    def __init__(self, *, port: str) -> None:
        self.device = DeviceInfo(model=self.spec.model, protocol=self.spec.name, port=port)
        self.condition = Condition.WAITING
        self._output = bytearray()

    @property
    @abstractmethod
    def stats(self) -> FramerStats:
        """The framer's statistics (frames, discarded bytes by reason)."""

    def connect(self, at: Instant) -> None:
        """The port was (re)opened: forget partial frames and queue any start commands."""
        self._output.clear()
        self.condition = Condition.WAITING

    def tick(self, at: Instant) -> list[Reading]:
        """Called every ``spec.tick_interval`` seconds: queue keep-alives and polls.

        Returns the readings that the passing of time produced (e.g. a "no reply" reading
        after a poll timed out), which a silent device would otherwise never deliver.
        """
        return []

    @abstractmethod
    def receive(self, data: bytes, at: Instant) -> list[Reading]:
        """Feed bytes read from the port; return the readings they complete."""

    def take_output(self) -> bytes:
        """Bytes the driver wants written to the port, in order; the queue is emptied."""
        out = bytes(self._output)
        self._output.clear()
        return out

    def _send(self, data: bytes) -> None:
        self._output += data

    def reading(
        self,
        kind: Kind,
        value: Decimal | int | None,
        at: Instant,
        *,
        status: Status | None = None,
        flags: frozenset[Flag] = frozenset(),
        unit: str | None = None,
        error_code: int | None = None,
        note: str = "",
    ) -> Reading:
        """Build a reading from this device; ``None`` values become not-available."""
        if value is None:
            number = None
            status = status or Status.NOT_AVAILABLE
        else:
            number = value if isinstance(value, Decimal) else Decimal(value)
            status = status or Status.VALID
        return Reading(
            kind=kind,
            value=number,
            unit=unit or kind.unit,
            at=at,
            device=self.device,
            status=status,
            flags=flags,
            error_code=error_code,
            note=note,
        )


class ReportGate:
    """Lets a repeated numeric value through when it changes or when ``period`` has passed.

    Oximeters repeat their SpO2 and pulse rate in every 60-100 Hz frame although the numbers
    change about once a second; the gate turns that into one reading per change (or per period).
    """

    def __init__(self, *, period: float = 1.0) -> None:
        self._period_ns = int(period * 1e9)
        self._last: dict[Kind, tuple[object, int]] = {}

    def due(self, kind: Kind, key: object, at: Instant) -> bool:
        """True when ``key`` (value plus status) differs from the last one let through for
        ``kind`` or the period has passed since then; records it when so."""
        last = self._last.get(kind)
        if last is not None and last[0] == key and at.monotonic_ns - last[1] < self._period_ns:
            return False
        self._last[kind] = (key, at.monotonic_ns)
        return True

    def reset(self) -> None:
        self._last.clear()
