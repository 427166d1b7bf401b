"""Driver for an A&D weighing indicator speaking the A&D standard format (2400 baud 7E1).

In stream mode (the default) the indicator sends a weight line at every display update and
the driver only listens.  With ``poll=True`` (an indicator set to command mode) the driver
asks for the displayed weight with ``RW`` at every tick.  ``zero()``, ``tare()`` and
``clear_tare()`` queue MZ, MT and CT; the indicator's echo or its ``I`` refusal is kept in
``last_reply``.

Every weight line becomes a body-weight reading: stable gross is VALID, net is flagged
NET_WEIGHT, unstable is QUESTIONABLE and flagged UNSTABLE, a held value is QUESTIONABLE, and an
overload is INVALID with no value.  Tare lines (TR) are not a body weight: they update
``tare_weight`` instead.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Final

from vitals.clock import Instant
from vitals.devices.driver import Condition, DeviceDriver, DeviceSpec
from vitals.model import Flag, Kind, Reading, Status
from vitals.protocols import and_scale as proto
from vitals.protocols.framing import FramerStats

logger = logging.getLogger(__name__)

UCUM_UNITS: Final = {"kg": "kg", " g": "g", " t": "t", "lb": "[lb_av]"}
KILOGRAMS_PER_UNIT: Final = {
    "kg": Decimal(1),
    " g": Decimal("0.001"),
    " t": Decimal(1000),
    "lb": Decimal("0.45359237"),
}
EMPTY_BELOW_KG: Final = Decimal(1)
"""A stable gross load below this means nobody is on the platform (condition READY)."""


class AndScaleDriver(DeviceDriver):
    """A&D weighing indicator (AD-4329A / AD-4402 / AD-4406 family)."""

    spec = DeviceSpec(
        name="and-scale",
        model="A&D weighing indicator (A&D standard format)",
        link=proto.LINK,
        silence_timeout=2.0,
        tick_interval=0.2,
        frame_rate=proto.STREAM_RATE_HZ,
    )

    def __init__(self, *, port: str, poll: bool = False) -> None:
        super().__init__(port=port)
        self.poll = poll
        self._framer = proto.framer()
        self.tare_weight: Decimal | None = None
        """The last tare value the indicator reported (a TR line), in its unit."""
        self.last_reply: proto.ScaleCommand | proto.ErrorReply | None = None
        """The indicator's last answer to MZ/MT/CT: the echoed command or an error reply."""

    @property
    def stats(self) -> FramerStats:
        return self._framer.stats

    def connect(self, at: Instant) -> None:
        super().connect(at)
        self._framer.reset()
        self.last_reply = None

    def tick(self, at: Instant) -> list[Reading]:
        if self.poll:
            self._send(bytes(proto.ScaleCommand(proto.CommandCode.READ_WEIGHT)))
        return []

    def zero(self) -> None:
        """Ask the indicator to zero the display (refused with 'I' outside the zero range)."""
        self._send(bytes(proto.ScaleCommand(proto.CommandCode.ZERO)))

    def tare(self) -> None:
        """Ask the indicator to tare the current load (refused with 'I' while in motion)."""
        self._send(bytes(proto.ScaleCommand(proto.CommandCode.TARE)))

    def clear_tare(self) -> None:
        """Ask the indicator to clear its tare and show gross weight again."""
        self._send(bytes(proto.ScaleCommand(proto.CommandCode.CLEAR_TARE)))

    def receive(self, data: bytes, at: Instant) -> list[Reading]:
        readings: list[Reading] = []
        for line in self._framer.feed(data):
            if isinstance(line, proto.WeightLine):
                reading = self._weight_reading(line, at)
                if reading is not None:
                    readings.append(reading)
            else:
                self.last_reply = line
                if isinstance(line, proto.ErrorReply):
                    logger.info("%s refused a command: %r", self.device.port, line.code.value)
        return readings

    def _weight_reading(self, line: proto.WeightLine, at: Instant) -> Reading | None:
        if line.mode is proto.WeighMode.TARE:
            self.tare_weight = line.weight
            return None
        flags: set[Flag] = set()
        if line.mode is proto.WeighMode.NET:
            flags.add(Flag.NET_WEIGHT)
        unit = UCUM_UNITS.get(line.unit)
        weight = line.weight
        if weight is None:
            self.condition = Condition.ERROR
            return self.reading(
                Kind.BODY_WEIGHT,
                None,
                at,
                status=Status.INVALID,
                flags=frozenset(flags | {Flag.OVERLOAD}),
                unit=unit,
                note="overload: the load is outside the indicator's weighing range",
            )
        if line.stability is proto.Stability.STABLE:
            status, note = Status.VALID, ""
        elif line.stability is proto.Stability.UNSTABLE:
            status, note = Status.QUESTIONABLE, "the weight is still changing"
            flags.add(Flag.UNSTABLE)
        else:
            status, note = Status.QUESTIONABLE, "a held (averaged) value, not a live stable weight"
        if unit is None:
            status, note = Status.INVALID, "the indicator sent no weight unit"
        kilograms = weight * KILOGRAMS_PER_UNIT.get(line.unit, Decimal(1))
        loaded = line.mode is proto.WeighMode.NET or abs(kilograms) >= EMPTY_BELOW_KG
        self.condition = Condition.MEASURING if loaded else Condition.READY
        return self.reading(
            Kind.BODY_WEIGHT,
            weight,
            at,
            status=status,
            flags=frozenset(flags),
            unit=unit,
            note=note,
        )
