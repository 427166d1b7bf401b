"""Standing height from an ultrasonic rangefinder above the platform.

The sensor looks down from ``mount_height_mm`` above the platform and reports the distance to
the first echo: the top of the head, or now and then an arm in the beam, a lost echo, or the
platform when the resident leans away.  Standing height is ``mount height - distance``.

The procedure keeps the last ``samples`` readings that can be a person (an echo at least
``min_body_height_mm`` above the platform) and, once it has them, rejects spikes with the
Hampel identifier (:mod:`vitals.dsp.spikes`, Hampel 1974 / Pearson 2002).  The readings are
consistent when at least ``min_inliers`` of them survive and the survivors' standard deviation
is at most ``max_spread_mm``; the height is then the median of the survivors, to 0.1 cm, and
the measurement's quality is the share of readings kept.  (The MAD alone is not enough: a head
bobbing while the resident shifts weight lingers near the turning points of its swing, so many
readings cluster there and the MAD can stay small; the spread of all the survivors does not.)
While the resident moves the window keeps sliding, so a settled resident is measured as soon as
a clean window has gone by.

Speed-of-sound compensation (:mod:`vitals.dsp.sound_speed`) is off by default, because the
HRLV-MaxSonar the cabin uses compensates internally; for an LV-/XL-MaxSonar (which assume
22.5 °C) turn it on with the cabin's ambient temperature.  The ambient value given at
construction is replaced by the latest valid AMBIENT_TEMPERATURE reading, if one is fed (the
thermometer's sensor temperature).  The mount height itself is measured with a tape at
installation, so it needs no correction.

Failures: nothing under the sensor (stand under it), readings that never agree (stand straight
and still), a head inside the sensor's minimum range (staff), a silent sensor.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import ClassVar, Final

import numpy as np

from vitals.clock import Instant
from vitals.dsp.sound_speed import MAXSONAR_REFERENCE_C, compensate_range
from vitals.dsp.spikes import reject_spikes
from vitals.measurement import Measurement, Method, Reason
from vitals.model import DeviceInfo, Flag, Kind, Reading, Status
from vitals.plausibility import DEFAULT_RANGES, PlausibleRanges
from vitals.procedures.base import Command, Procedure, Progress
from vitals.reasons import DEVICE_SILENT

NO_TARGET: Final = Reason(
    "height-no-target",
    "The height sensor could not see you. Stand up straight right under the sensor and try again.",
    "Cảm biến chưa nhận thấy bạn. Hãy đứng thẳng ngay dưới cảm biến chiều cao rồi đo lại.",
)
INCONSISTENT: Final = Reason(
    "height-inconsistent",
    "The height readings did not agree. Stand up straight and still under the sensor with "
    "your hands down, and try again.",
    "Các lần đo chiều cao không khớp nhau. Hãy đứng thẳng, giữ yên dưới cảm biến, buông "
    "thõng hai tay rồi đo lại.",
)
TOO_CLOSE: Final = Reason(
    "height-too-close",
    "Your head is too close to the height sensor to be measured. Please ask the station "
    "staff for help.",
    "Đầu bạn ở quá gần cảm biến nên không đo được chiều cao. Vui lòng nhờ nhân viên tại "
    "trạm hỗ trợ.",
    retake=False,
)
CENTIMETRE_TENTH: Final = Decimal("0.1")


@dataclass(frozen=True, slots=True)
class _Echo:
    at: Instant
    millimetres: float


class HeightProcedure(Procedure):
    """Measures standing height as a spike-free median of ultrasonic ranges."""

    name: ClassVar[str] = "height"
    kinds: ClassVar[frozenset[Kind]] = frozenset({Kind.DISTANCE, Kind.AMBIENT_TEMPERATURE})

    def __init__(
        self,
        *,
        mount_height_mm: float = 2200.0,
        time_limit: float = 20.0,
        samples: int = 15,
        spike_threshold: float = 3.0,
        min_inliers: float = 0.8,
        max_spread_mm: float = 10.0,
        resolution_mm: float = 1.0,
        min_body_height_mm: float = 500.0,
        compensate_temperature: bool = False,
        ambient_celsius: float | None = None,
        reference_celsius: float = MAXSONAR_REFERENCE_C,
        ranges: PlausibleRanges = DEFAULT_RANGES,
    ) -> None:
        super().__init__(time_limit=time_limit)
        if samples < 3:
            raise ValueError(f"a median needs at least 3 samples, not {samples}")
        if not 0 < min_inliers <= 1:
            raise ValueError("min_inliers is a share in (0, 1]")
        if mount_height_mm <= min_body_height_mm:
            raise ValueError(f"mount height {mount_height_mm} mm is below any body height")
        if compensate_temperature and ambient_celsius is None:
            raise ValueError("temperature compensation needs the ambient temperature")
        self.mount_height_mm = mount_height_mm
        self.samples = samples
        self.spike_threshold = spike_threshold
        self.min_inliers = min_inliers
        self.max_spread_mm = max_spread_mm
        self.resolution_mm = resolution_mm
        self.min_body_height_mm = min_body_height_mm
        self.compensate_temperature = compensate_temperature
        self.ambient_celsius = ambient_celsius
        self.reference_celsius = reference_celsius
        self.ranges = ranges
        self._echoes: deque[_Echo] = deque(maxlen=samples)
        self._device: DeviceInfo | None = None
        self._now: Instant | None = None
        self._seen_person = False
        self._too_close = 0
        self._away = 0
        self._last_was_person = False

    # -- driving ---------------------------------------------------------------------------

    def feed(self, reading: Reading) -> list[Command]:
        if self.done or self.started is None:
            return []
        if reading.kind is Kind.AMBIENT_TEMPERATURE:
            if reading.status is Status.VALID and reading.value is not None:
                self.ambient_celsius = float(reading.value)
            return []
        if reading.kind is not Kind.DISTANCE:
            return []
        self._device = reading.device
        self._now = reading.at
        self._last_was_person = False
        if reading.value is None or Flag.NO_TARGET in reading.flags:
            self._away += 1
            return []
        if Flag.OUT_OF_RANGE in reading.flags:
            self._too_close += 1
            return []
        distance = float(reading.value)
        if self.mount_height_mm - distance < self.min_body_height_mm:
            self._away += 1  # the echo comes from the platform: nobody under the sensor
            return []
        self._seen_person = self._last_was_person = True
        self._echoes.append(_Echo(reading.at, distance))
        if len(self._echoes) == self.samples:
            self._try_accept()
        return []

    def tick(self, at: Instant) -> list[Command]:
        if not self.done and self.started is not None:
            self._now = at
        return super().tick(at)

    def _time_up(self, at: Instant) -> list[Command]:
        if self._device is None:
            reason = DEVICE_SILENT
        elif len(self._echoes) == self.samples:
            reason = INCONSISTENT
        elif self._too_close > self._away:
            reason = TOO_CLOSE
        else:
            reason = NO_TARGET
        self._finish_unavailable(
            kind=Kind.BODY_HEIGHT,
            method=Method.ULTRASONIC,
            at=at,
            reason=reason,
            device=self._device,
        )
        return []

    # -- the gate --------------------------------------------------------------------------

    def _try_accept(self) -> None:
        echoes = list(self._echoes)
        distances = np.array([echo.millimetres for echo in echoes])
        span = echoes[-1].at.seconds_since(echoes[0].at)
        rate = (len(echoes) - 1) / span if span > 0 else 1.0
        verdict = reject_spikes(
            distances,
            sampling_rate=rate,
            threshold=self.spike_threshold,
            min_scale=self.resolution_mm,
        )
        if verdict.median is None or verdict.inlier_fraction < self.min_inliers:
            return
        spread = float(np.std(distances[verdict.inliers], ddof=1))
        if spread > self.max_spread_mm:
            return
        distance = verdict.median
        details = [
            ("samples", str(len(echoes))),
            ("spikes-rejected", str(verdict.rejected)),
            ("spread-mm", f"{spread:.1f}"),
            ("distance-mm", f"{distance:.1f}"),
            ("mount-height-mm", f"{self.mount_height_mm:g}"),
        ]
        if self.compensate_temperature and self.ambient_celsius is not None:
            distance = compensate_range(
                distance,
                ambient_celsius=self.ambient_celsius,
                reference_celsius=self.reference_celsius,
            )
            details.append(("sound-speed-compensation", f"{self.ambient_celsius:g} °C"))
        height = Decimal(repr((self.mount_height_mm - distance) / 10)).quantize(
            CENTIMETRE_TENTH, rounding=ROUND_HALF_UP
        )
        reason = self.ranges.check(Kind.BODY_HEIGHT, height, "cm")
        self._finish(
            [
                Measurement(
                    kind=Kind.BODY_HEIGHT,
                    value=height,
                    unit="cm",
                    at=echoes[-1].at,
                    status=Status.VALID if reason is None else Status.INVALID,
                    method=Method.ULTRASONIC,
                    device=self._device,
                    quality=verdict.inlier_fraction,
                    reasons=() if reason is None else (reason,),
                    procedure=self.name,
                    details=tuple(details),
                )
            ]
        )

    # -- what the resident sees ------------------------------------------------------------

    @property
    def progress(self) -> Progress:
        if self.done:
            return Progress("done", "Height measured.", "Đã đo xong chiều cao.", fraction=1.0)
        left = None
        if self._now is not None and self.started is not None:
            left = max(0.0, self.time_limit - self.elapsed(self._now))
        if not self._last_was_person:
            return Progress(
                "waiting",
                "Stand up straight under the height sensor and look straight ahead.",
                "Mời bạn đứng thẳng dưới cảm biến chiều cao, mắt nhìn thẳng phía trước.",
                fraction=0.0,
                seconds_left=left,
            )
        live = Decimal(repr((self.mount_height_mm - self._echoes[-1].millimetres) / 10))
        if len(self._echoes) == self.samples:
            return Progress(
                "hold-still",
                "Stand up straight and keep still, with your hands down.",
                "Xin đứng thẳng và giữ yên, buông thõng hai tay.",
                seconds_left=left,
                live=live.quantize(CENTIMETRE_TENTH, rounding=ROUND_HALF_UP),
            )
        return Progress(
            "measuring",
            "Measuring your height. Keep still.",
            "Đang đo chiều cao. Xin giữ yên.",
            fraction=len(self._echoes) / self.samples,
            seconds_left=left,
            live=live.quantize(CENTIMETRE_TENTH, rounding=ROUND_HALF_UP),
        )
