"""Body temperature from an infrared forehead thermometer (object and ambient readings).

The module reports, twice a second, the temperature of whatever fills its field of view (the
object) and of the sensor itself (close to the room's).  A forehead in front of the sensor
reads several degrees above the room; a wall, the air or a hand far away reads about the
room's temperature.  So a reading counts as *the forehead* only when
``object - ambient >= min_contrast`` (2 °C by default).

The procedure keeps the last ``readings`` (3) object temperatures taken while the forehead
was present without a break; when they agree within ``tolerance`` (0.3 °C, the laboratory
accuracy ISO 80601-2-56 asks of a clinical thermometer) their median becomes the surface
temperature.  A forehead partly out of the field of view, or too far, reads *lower* (the
sensor averages it with the room), never higher; so the median must also be within
``peak_margin`` (0.5 °C) of the warmest forehead reading of the last ``peak_window`` seconds
(the peak-reading idea of scanning infrared thermometers): three readings that happen to agree
while the head moves are usually below an earlier, fuller view.  Readings that fail either
check (the resident moving, hair across the forehead) are not used: the window slides on, and
at the time limit the resident is asked to retake.  The body
temperature is the surface temperature through :class:`SurfaceToBody` and is plausibility
checked; an implausible value does not end the procedure at once (a forehead still coming into
view reads low), it is reported as invalid only if nothing plausible follows by the time limit.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from statistics import median
from typing import ClassVar, Final

from vitals.clock import Instant
from vitals.measurement import Measurement, Method, Reason
from vitals.model import DeviceInfo, Kind, Reading, Status
from vitals.plausibility import DEFAULT_RANGES, PlausibleRanges
from vitals.procedures.base import Command, Procedure, Progress
from vitals.reasons import DEVICE_SILENT

NO_FOREHEAD: Final = Reason(
    "temperature-no-target",
    "The thermometer could not find your forehead. Move your hair aside, hold your forehead "
    "in front of the thermometer, and try again.",
    "Nhiệt kế chưa nhận thấy trán của bạn. Hãy vén tóc sang một bên, đưa trán ra trước nhiệt "
    "kế rồi đo lại.",
)
INCONSISTENT: Final = Reason(
    "temperature-inconsistent",
    "The temperature readings did not agree. Keep your forehead still in front of the "
    "thermometer and try again.",
    "Các lần đo nhiệt độ không khớp nhau. Hãy giữ trán yên trước nhiệt kế rồi đo lại.",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SurfaceToBody:
    """A linear model from forehead surface temperature to body temperature, in °C.

    ``body = object_gain * object + ambient_gain * ambient + offset``.  The default is the
    identity (the body temperature is the surface reading as it is), which is **not** a
    validated clinical thermometer: forehead skin is cooler than the body core and follows the
    room.  Before a cabin reports body temperature to a doctor, the three coefficients must be
    fitted against a reference clinical thermometer on volunteers, and the result validated as
    ISO 80601-2-56 (clinical thermometers for body temperature measurement) requires for an
    infrared thermometer in adjusted mode: laboratory accuracy within ±0.3 °C, and a clinical
    accuracy study reporting clinical bias, limits of agreement and repeatability against the
    reference body site.  The ambient term lets such a fit model heat loss to a cooler room.
    """

    object_gain: float = 1.0
    ambient_gain: float = 0.0
    offset: float = 0.0

    def body(self, object_celsius: float, ambient_celsius: float) -> float:
        """The body temperature for one surface and ambient temperature."""
        return self.object_gain * object_celsius + self.ambient_gain * ambient_celsius + self.offset

    def __str__(self) -> str:
        return f"{self.object_gain:g}*object + {self.ambient_gain:g}*ambient + {self.offset:g}"


IDENTITY: Final = SurfaceToBody()
"""The uncalibrated default: body temperature = forehead surface reading."""


@dataclass(frozen=True, slots=True)
class _Sample:
    at: Instant
    object_celsius: float
    ambient_celsius: float


class TemperatureProcedure(Procedure):
    """Median of 3 agreeing forehead readings, checked against the room temperature."""

    name: ClassVar[str] = "temperature"
    kinds: ClassVar[frozenset[Kind]] = frozenset(
        {Kind.OBJECT_TEMPERATURE, Kind.AMBIENT_TEMPERATURE}
    )

    def __init__(
        self,
        *,
        time_limit: float = 30.0,
        readings: int = 3,
        min_contrast: float = 2.0,
        tolerance: float = 0.3,
        peak_margin: float = 0.5,
        peak_window: float = 10.0,
        mapping: SurfaceToBody = IDENTITY,
        resolution: Decimal = Decimal("0.1"),
        ranges: PlausibleRanges = DEFAULT_RANGES,
    ) -> None:
        super().__init__(time_limit=time_limit)
        if readings < 1:
            raise ValueError("at least one reading is needed")
        if min(tolerance, min_contrast, peak_margin, peak_window) < 0:
            raise ValueError("tolerances, margins and windows must not be negative")
        self.readings = readings
        self.min_contrast = min_contrast
        self.tolerance = tolerance
        self.peak_margin = peak_margin
        self.peak_window = peak_window
        self.mapping = mapping
        self.resolution = resolution
        self.ranges = ranges
        self._run: deque[_Sample] = deque(maxlen=readings)
        self._recent: deque[_Sample] = deque()
        """Forehead readings of the last ``peak_window`` seconds, for the peak check."""
        self._pending: dict[Kind, Reading] = {}
        self._device: DeviceInfo | None = None
        self._now: Instant | None = None
        self._present = False
        self._disagreed = False
        self._implausible: Measurement | None = None

    # -- driving ---------------------------------------------------------------------------

    def feed(self, reading: Reading) -> list[Command]:
        if self.done or self.started is None or reading.kind not in self.kinds:
            return []
        self._device = reading.device
        self._now = reading.at
        other = self._pending.pop(_OTHER[reading.kind], None)
        if other is None or other.at != reading.at:
            self._pending[reading.kind] = reading  # wait for the other half of the frame
            return []
        pair = {reading.kind: reading, other.kind: other}
        self._take(pair[Kind.OBJECT_TEMPERATURE], pair[Kind.AMBIENT_TEMPERATURE])
        return []

    def tick(self, at: Instant) -> list[Command]:
        if not self.done and self.started is not None:
            self._now = at
        return super().tick(at)

    def _time_up(self, at: Instant) -> list[Command]:
        if self._implausible is not None:
            self._finish([self._implausible])
            return []
        if self._device is None:
            reason = DEVICE_SILENT
        elif self._disagreed:
            reason = INCONSISTENT
        else:
            reason = NO_FOREHEAD
        self._finish_unavailable(
            kind=Kind.BODY_TEMPERATURE,
            method=Method.INFRARED_FOREHEAD,
            at=at,
            reason=reason,
            device=self._device,
        )
        return []

    # -- the gate --------------------------------------------------------------------------

    def _take(self, obj: Reading, ambient: Reading) -> None:
        if obj.value is None or ambient.value is None:
            self._present = False
            self._run.clear()
            return
        sample = _Sample(obj.at, float(obj.value), float(ambient.value))
        self._present = sample.object_celsius - sample.ambient_celsius >= self.min_contrast
        if not self._present:
            self._run.clear()
            return
        self._run.append(sample)
        self._recent.append(sample)
        while sample.at.seconds_since(self._recent[0].at) > self.peak_window:
            self._recent.popleft()
        if len(self._run) < self.readings:
            return
        objects = [s.object_celsius for s in self._run]
        peak = max(s.object_celsius for s in self._recent)
        agree = max(objects) - min(objects) <= self.tolerance + 1e-9
        if not agree or median(objects) < peak - self.peak_margin - 1e-9:
            self._disagreed = True
            return
        self._accept(list(self._run))

    def _accept(self, run: list[_Sample]) -> None:
        surface = median(s.object_celsius for s in run)
        ambient = median(s.ambient_celsius for s in run)
        body = Decimal(repr(self.mapping.body(surface, ambient))).quantize(
            self.resolution, rounding=ROUND_HALF_UP
        )
        reason = self.ranges.check(Kind.BODY_TEMPERATURE, body, "°C")
        measurement = Measurement(
            kind=Kind.BODY_TEMPERATURE,
            value=body,
            unit="Cel",
            at=run[-1].at,
            status=Status.VALID if reason is None else Status.INVALID,
            method=Method.INFRARED_FOREHEAD,
            device=self._device,
            reasons=() if reason is None else (reason,),
            procedure=self.name,
            details=(
                ("surface-celsius", f"{surface:.2f}"),
                ("ambient-celsius", f"{ambient:.2f}"),
                ("readings", " ".join(f"{s.object_celsius:.2f}" for s in run)),
                ("surface-to-body", str(self.mapping)),
            ),
        )
        if reason is None:
            self._finish([measurement])
        else:
            # A forehead still coming into view reads low; keep trying until the time limit.
            self._implausible = measurement

    # -- what the resident sees ------------------------------------------------------------

    @property
    def progress(self) -> Progress:
        if self.done:
            return Progress("done", "Temperature measured.", "Đã đo xong nhiệt độ.", fraction=1.0)
        left = None
        if self._now is not None and self.started is not None:
            left = max(0.0, self.time_limit - self.elapsed(self._now))
        if not self._present:
            return Progress(
                "waiting",
                "Bring your forehead close to the thermometer and keep still.",
                "Mời bạn đưa trán lại gần nhiệt kế và giữ yên.",
                fraction=0.0,
                seconds_left=left,
            )
        if len(self._run) == self.readings:
            return Progress(
                "hold-still",
                "Keep your forehead still in front of the thermometer.",
                "Xin giữ trán yên trước nhiệt kế.",
                seconds_left=left,
            )
        return Progress(
            "measuring",
            "Measuring your temperature. Keep still.",
            "Đang đo nhiệt độ. Xin giữ yên.",
            fraction=len(self._run) / self.readings,
            seconds_left=left,
        )


_OTHER: Final = {
    Kind.OBJECT_TEMPERATURE: Kind.AMBIENT_TEMPERATURE,
    Kind.AMBIENT_TEMPERATURE: Kind.OBJECT_TEMPERATURE,
}
