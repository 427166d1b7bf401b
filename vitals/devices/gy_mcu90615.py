"""Driver for the GY-MCU90615 infrared thermometer module (MLX90615 + MCU), 115200 8N1.

The driver asks for one reading with the query command (A5 15 BA) at every tick, twice a
second; it never starts the module's continuous output, but frames the module sends on its
own (continuous mode left on, or streaming at power-up) are read just the same.  Each frame
gives an OBJECT_TEMPERATURE and an AMBIENT_TEMPERATURE reading with the module's two decimals
(``Decimal("36.80")``).  A value outside the MLX90615's calibrated range (object -40..115 °C,
sensor -40..85 °C) is not a temperature: NOT_AVAILABLE, flagged OUT_OF_RANGE, with a note.
Turning the object temperature into a body temperature is not this driver's job.
"""

from __future__ import annotations

from decimal import Decimal

from vitals.clock import Instant
from vitals.devices.driver import Condition, DeviceDriver, DeviceSpec
from vitals.model import Flag, Kind, Reading
from vitals.protocols import gy_mcu90615 as proto
from vitals.protocols.framing import FramerStats

_QUERY = bytes(proto.ModuleCommand(proto.CommandCode.QUERY))
_OUT_OF_RANGE = frozenset({Flag.OUT_OF_RANGE})


class GyMcu90615Driver(DeviceDriver):
    """GY-MCU90615 serial IR thermometer module."""

    spec = DeviceSpec(
        name="gy-mcu90615",
        model="GY-MCU90615 infrared thermometer module (Melexis MLX90615)",
        link=proto.LINK,
        silence_timeout=2.0,
        tick_interval=0.5,
    )

    def __init__(self, *, port: str) -> None:
        super().__init__(port=port)
        self._framer = proto.framer()

    @property
    def stats(self) -> FramerStats:
        return self._framer.stats

    def connect(self, at: Instant) -> None:
        super().connect(at)
        self._framer.reset()

    def tick(self, at: Instant) -> list[Reading]:
        self._send(_QUERY)
        return []

    def receive(self, data: bytes, at: Instant) -> list[Reading]:
        readings: list[Reading] = []
        for frame in self._framer.feed(data):
            in_range = True
            for kind, value, valid, what in (
                (Kind.OBJECT_TEMPERATURE, frame.object_celsius, proto.OBJECT_RANGE, "object"),
                (Kind.AMBIENT_TEMPERATURE, frame.ambient_celsius, proto.AMBIENT_RANGE, "sensor"),
            ):
                reading = self._temperature(kind, value, at, valid=valid, what=what)
                in_range = in_range and reading.value is not None
                readings.append(reading)
            self.condition = Condition.MEASURING if in_range else Condition.ERROR
        return readings

    def _temperature(
        self, kind: Kind, value: Decimal, at: Instant, *, valid: tuple[Decimal, Decimal], what: str
    ) -> Reading:
        low, high = valid
        if low <= value <= high:
            return self.reading(kind, value, at)
        return self.reading(
            kind,
            None,
            at,
            flags=_OUT_OF_RANGE,
            note=f"{what} temperature {value} °C is outside the sensor's {low}..{high} °C range",
        )
