"""The values everything downstream consumes: what a device reported, when, and how sure it was.

A :class:`Reading` is one value from one device at one instant, in UCUM units, with the
device's own status flags.  Values are :class:`~decimal.Decimal` so that the precision a device
wrote (``72.35`` kg, ``120`` mmHg) survives to the FHIR record.  Device sentinels (SpO2 127,
pulse rate 255, SpO2 above 100 %, Nonin's 511) never become values: they become a reading with
``value=None`` and status :attr:`Status.NOT_AVAILABLE`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from vitals.clock import Instant


class Kind(StrEnum):
    """What a reading measures."""

    PLETH = "pleth"
    SPO2 = "spo2"
    PULSE_RATE = "pulse-rate"
    PERFUSION_INDEX = "perfusion-index"
    SYSTOLIC_BP = "systolic-bp"
    DIASTOLIC_BP = "diastolic-bp"
    MEAN_BP = "mean-bp"
    CUFF_PRESSURE = "cuff-pressure"
    BODY_WEIGHT = "body-weight"
    DISTANCE = "distance"
    BODY_HEIGHT = "body-height"
    OBJECT_TEMPERATURE = "object-temperature"
    AMBIENT_TEMPERATURE = "ambient-temperature"
    BODY_TEMPERATURE = "body-temperature"
    BLOOD_PRESSURE = "blood-pressure"
    """The systolic/diastolic/mean panel (a measurement with components, no value of its own)."""
    BMI = "bmi"

    @property
    def unit(self) -> str:
        """The UCUM unit this kind is reported in unless the device says otherwise."""
        return _UNITS[self]


_UNITS: dict[Kind, str] = {
    Kind.PLETH: "1",
    Kind.SPO2: "%",
    Kind.PULSE_RATE: "/min",
    Kind.PERFUSION_INDEX: "%",
    Kind.SYSTOLIC_BP: "mm[Hg]",
    Kind.DIASTOLIC_BP: "mm[Hg]",
    Kind.MEAN_BP: "mm[Hg]",
    Kind.CUFF_PRESSURE: "mm[Hg]",
    Kind.BODY_WEIGHT: "kg",
    Kind.DISTANCE: "mm",
    Kind.BODY_HEIGHT: "cm",
    Kind.OBJECT_TEMPERATURE: "Cel",
    Kind.AMBIENT_TEMPERATURE: "Cel",
    Kind.BODY_TEMPERATURE: "Cel",
    Kind.BLOOD_PRESSURE: "mm[Hg]",
    Kind.BMI: "kg/m2",
}


class Status(StrEnum):
    """How far a reading can be trusted, as the device itself reported it."""

    VALID = "valid"
    QUESTIONABLE = "questionable"
    INVALID = "invalid"
    NOT_AVAILABLE = "not-available"


class Flag(StrEnum):
    """A condition the device reported alongside a value."""

    FINGER_OUT = "finger-out"
    SEARCHING = "searching"
    SEARCH_TOO_LONG = "search-too-long"
    PROBE_ERROR = "probe-error"
    SENSOR_DISCONNECTED = "sensor-disconnected"
    SENSOR_ALARM = "sensor-alarm"
    ARTIFACT = "artifact"
    OUT_OF_TRACK = "out-of-track"
    LOW_PERFUSION = "low-perfusion"
    MARGINAL_PERFUSION = "marginal-perfusion"
    SPO2_DROPPING = "spo2-dropping"
    PULSE_BEEP = "pulse-beep"
    LOW_SIGNAL_QUALITY = "low-signal-quality"
    INTERFERENCE = "interference"
    AMBIENT_LIGHT = "ambient-light"
    UNSTABLE = "unstable"
    OVERLOAD = "overload"
    NET_WEIGHT = "net-weight"
    NO_TARGET = "no-target"
    INFLATING = "inflating"
    DEFLATING = "deflating"
    CUFF_ERROR = "cuff-error"
    MOTION = "motion"
    IRREGULAR_PULSE = "irregular-pulse"
    OUT_OF_RANGE = "out-of-range"
    LOW_BATTERY = "low-battery"


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """The device that produced a reading."""

    model: str
    protocol: str
    port: str
    serial_number: str | None = None
    firmware: str | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """One value from one device at one instant.

    ``value`` is ``None`` exactly when the device had no usable value (a sentinel, a finger out,
    an error code); ``status`` then says which and ``note`` says why in words.
    """

    kind: Kind
    value: Decimal | None
    unit: str
    at: Instant
    device: DeviceInfo
    status: Status = Status.VALID
    flags: frozenset[Flag] = field(default_factory=frozenset)
    error_code: int | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.value is None and self.status in (Status.VALID, Status.QUESTIONABLE):
            raise ValueError(f"a {self.status} {self.kind} reading needs a value")
        if self.value is not None and self.status is Status.NOT_AVAILABLE:
            raise ValueError(f"a not-available {self.kind} reading cannot carry a value")
        if self.value is not None and not self.value.is_finite():
            raise ValueError(f"{self.kind} value must be finite, not {self.value}")

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (values as strings keep their written precision)."""
        out: dict[str, Any] = {
            "kind": self.kind.value,
            "value": None if self.value is None else str(self.value),
            "unit": self.unit,
            "time": self.at.utc.isoformat(timespec="milliseconds"),
            "status": self.status.value,
            "device": self.device.protocol,
            "port": self.device.port,
        }
        if self.flags:
            out["flags"] = sorted(flag.value for flag in self.flags)
        if self.error_code is not None:
            out["error_code"] = self.error_code
        if self.note:
            out["note"] = self.note
        return out
