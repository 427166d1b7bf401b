"""The physiological truth a simulated cabin measures, and the mishaps it can stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Period:
    """A span of scenario time, in seconds since the simulator started: [start, end)."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"a period needs 0 <= start < end, not {self.start}-{self.end}")

    def __contains__(self, t: float) -> bool:
        return self.start <= t < self.end

    @classmethod
    def parse_list(cls, text: str) -> tuple[Period, ...]:
        """Parse ``"10-15,30-32.5"`` into periods."""
        periods = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            start, sep, end = part.partition("-")
            if not sep:
                raise ValueError(f"period {part!r} is not START-END")
            periods.append(cls(float(start), float(end)))
        return tuple(periods)


def _during(periods: tuple[Period, ...], t: float) -> bool:
    return any(t in p for p in periods)


@dataclass(frozen=True, slots=True, kw_only=True)
class Truth:
    """What the resident's body and the cabin really are, for the simulators to report.

    Defaults describe a healthy older adult in a cabin in Ho Chi Minh City.
    """

    hr: float = 72.0
    """Heart rate, beats per minute."""
    spo2: float = 97.0
    """Arterial oxygen saturation, %."""
    perfusion_index: float = 3.5
    """Perfusion index, % (pulsatile / non-pulsatile infrared absorption)."""
    sys: int = 128
    """Systolic blood pressure, mmHg."""
    dia: int = 82
    """Diastolic blood pressure, mmHg."""
    weight: Decimal = Decimal("63.4")
    """Body weight, kg."""
    height: float = 158.0
    """Body height, cm."""
    temp: float = 36.8
    """Temperature the IR thermometer's target shows, °C."""
    ambient: float = 29.0
    """Room temperature, °C."""
    noise: float = 0.0
    """Measurement noise, 0 (none) to 1 (poor contact)."""
    motion: tuple[Period, ...] = field(default_factory=tuple)
    """Periods in which the resident moves (pleth artefacts, unsteady scale)."""
    finger_out: tuple[Period, ...] = field(default_factory=tuple)
    """Periods with no finger in the oximeter."""
    scale_settle: float = 2.0
    """Seconds the scale needs to settle after the resident steps on."""
    unstable_scale: bool = False
    """The scale never settles (someone holding the rail, a swaying resident)."""
    cuff_error: int | None = None
    """A BP cuff error code the module reports instead of a result."""
    mount_height_mm: int = 2200
    """Height of the ultrasonic sensor above the platform the resident stands on, mm."""

    def __post_init__(self) -> None:
        checks = (
            ("hr", 20 <= self.hr <= 300),
            ("spo2", 50 <= self.spo2 <= 100),
            ("perfusion_index", 0.02 <= self.perfusion_index <= 20),
            ("sys", 40 <= self.sys <= 280),
            ("dia", 20 <= self.dia < self.sys),
            ("weight", Decimal(0) < self.weight <= Decimal(300)),
            ("height", 50 <= self.height <= 250),
            ("temp", 20 <= self.temp <= 45),
            ("ambient", 0 <= self.ambient <= 50),
            ("noise", 0 <= self.noise <= 1),
            ("scale_settle", 0 <= self.scale_settle <= 60),
            ("mount_height_mm", self.height * 10 < self.mount_height_mm <= 3000),
        )
        for name, ok in checks:
            if not ok:
                raise ValueError(f"implausible truth: {name}={getattr(self, name)}")

    def finger_in(self, t: float) -> bool:
        return not _during(self.finger_out, t)

    def moving(self, t: float) -> bool:
        return _during(self.motion, t)

    def finger_in_since(self, t: float) -> float:
        """Seconds since the finger was last (re)inserted, at scenario time ``t``."""
        since = 0.0
        for period in self.finger_out:
            if period.end <= t:
                since = max(since, period.end)
        return t - since
