"""Driver for a MaxBotix MaxSonar mounted above the platform, measuring body height (9600 8N1).

The sensor free-runs; no command is sent.  Each reading gives two values:

* DISTANCE, mm: the range the sensor reported.  Its "nothing detected" value (255 in, 5000 mm)
  is never a distance (NOT_AVAILABLE, flagged NO_TARGET); a range at the sensor's minimum is
  QUESTIONABLE and flagged OUT_OF_RANGE, because anything closer is reported as the minimum.
* BODY_HEIGHT, cm: ``(mount_height_mm - distance) / 10``, when something at least
  ``MIN_BODY_HEIGHT_MM`` tall is under the sensor; otherwise (the echo comes from the platform,
  or from nothing) NOT_AVAILABLE and flagged NO_TARGET.

LV (3 digits, inches) and HRLV (4 digits, millimetres) readings are told apart by their digit
count; inches are converted to millimetres exactly (1 in = 25.4 mm).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from vitals.clock import Instant
from vitals.devices.driver import Condition, DeviceDriver, DeviceSpec
from vitals.model import Flag, Kind, Reading, Status
from vitals.protocols import maxbotix as proto
from vitals.protocols.framing import FramerStats

MIN_BODY_HEIGHT_MM: Final = 500
"""Anything shorter under the sensor is taken for the platform, not a person."""
_NO_TARGET = frozenset({Flag.NO_TARGET})
_AT_MINIMUM = frozenset({Flag.OUT_OF_RANGE})


class MaxBotixDriver(DeviceDriver):
    """MaxBotix MaxSonar (LV-EZ or HRLV-EZ serial output) used as a height rod."""

    spec = DeviceSpec(
        name="maxbotix",
        model="MaxBotix MaxSonar ultrasonic rangefinder (LV-EZ / HRLV-EZ)",
        link=proto.LINK,
        silence_timeout=1.0,
        frame_rate=proto.HRLV.rate_hz,
    )

    def __init__(self, *, port: str, mount_height_mm: int = 2200) -> None:
        super().__init__(port=port)
        if mount_height_mm <= MIN_BODY_HEIGHT_MM:
            raise ValueError(f"mount height {mount_height_mm} mm is below any body height")
        self.mount_height_mm = mount_height_mm
        self._framer = proto.framer()

    @property
    def stats(self) -> FramerStats:
        return self._framer.stats

    def connect(self, at: Instant) -> None:
        super().connect(at)
        self._framer.reset()

    def receive(self, data: bytes, at: Instant) -> list[Reading]:
        readings: list[Reading] = []
        for frame in self._framer.feed(data):
            readings += self._readings(frame, at)
        return readings

    def _readings(self, frame: proto.RangeFrame, at: Instant) -> list[Reading]:
        if frame.no_target:
            self.condition = Condition.NO_CONTACT
            note = f"no echo within the {frame.series.name}'s range"
            return [
                self.reading(Kind.DISTANCE, None, at, flags=_NO_TARGET, note=note),
                self.reading(Kind.BODY_HEIGHT, None, at, flags=_NO_TARGET, note=note),
            ]
        distance = frame.millimetres
        if frame.at_minimum:
            status, flags = Status.QUESTIONABLE, _AT_MINIMUM
            note = "target at or inside the sensor's minimum range; it may be closer"
        else:
            status, flags, note = Status.VALID, frozenset(), ""
        out = [self.reading(Kind.DISTANCE, distance, at, status=status, flags=flags, note=note)]
        height_mm = Decimal(self.mount_height_mm) - distance
        if height_mm < MIN_BODY_HEIGHT_MM:
            self.condition = Condition.NO_CONTACT
            out.append(
                self.reading(
                    Kind.BODY_HEIGHT,
                    None,
                    at,
                    flags=_NO_TARGET,
                    note="nothing under the sensor (the echo comes from the platform)",
                )
            )
        else:
            self.condition = Condition.MEASURING
            out.append(
                self.reading(
                    Kind.BODY_HEIGHT,
                    height_mm.scaleb(-1),
                    at,
                    status=status,
                    flags=flags,
                    note=note,
                )
            )
        return out
