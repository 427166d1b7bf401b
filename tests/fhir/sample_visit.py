"""A hand-made finished visit with every kind of measurement, valid and failed (test data)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from fhir.visit import CabinInfo, PatientIdentity, Sex, VisitRecord
from vitals.measurement import Component, Interpretation, Measurement, Method, Reason
from vitals.model import DeviceInfo, Kind, Status
from vitals.reasons import MOTION
from vitals.sim.scenario import ScenarioClock

CLOCK = ScenarioClock()
OXIMETER = DeviceInfo("Contec CMS50D+ (legacy protocol)", "cms50d-legacy", "/dev/ttyUSB0")
CUFF = DeviceInfo(
    "SunTech Advantage 2.0 OEM BP module", "suntech-advantage", "/dev/ttyUSB1", firmware="LX2.0-SIM"
)
SCALE = DeviceInfo("A&D AD-4406 indicator", "and-scale", "/dev/ttyUSB2", serial_number="A4406-7731")
HEIGHT = DeviceInfo("MaxBotix HRLV-MaxSonar", "maxbotix", "/dev/ttyUSB3")
THERMO = DeviceInfo("GY-MCU90615", "gy-mcu90615", "/dev/ttyUSB4")
CABIN = CabinInfo(
    "dkc-01",
    name="Cabin 1, Đảo Kim Cương",
    site="Trạm công dân số Đảo Kim Cương",
    software_version="0.1.0",
    manufacturer="Cabin Engineering",
)
RESIDENT = PatientIdentity(
    cccd="079085009876",
    full_name="Nguyễn Văn Bình",
    birth_date=date(1955, 4, 12),
    sex=Sex.MALE,
    bhyt="HC4797915123456",
)
NORMAL_BP = Interpretation("N", "normal", "Normal blood pressure.", "Huyết áp bình thường.")


def _m(  # noqa: PLR0917 - a compact table of test measurements reads best positionally
    kind: Kind,
    value: str | None,
    unit: str,
    t: float,
    method: Method,
    device: DeviceInfo | None,
    **more: Any,
) -> Measurement:
    status = more.pop("status", Status.VALID)
    number = None if value is None else Decimal(value)
    return Measurement(kind, number, unit, CLOCK.at(t), status, method, device, **more)


def bp_reading(t: float, sys: str, dia: str, mean: str) -> Measurement:
    return _m(
        Kind.BLOOD_PRESSURE,
        None,
        "mm[Hg]",
        t,
        Method.OSCILLOMETRY,
        CUFF,
        components=(
            Component(Kind.SYSTOLIC_BP, Decimal(sys), "mm[Hg]"),
            Component(Kind.DIASTOLIC_BP, Decimal(dia), "mm[Hg]"),
            Component(Kind.MEAN_BP, Decimal(mean), "mm[Hg]"),
        ),
        procedure="aha2019",
    )


def visit() -> VisitRecord:
    height = _m(Kind.BODY_HEIGHT, "158.0", "cm", 30, Method.ULTRASONIC, HEIGHT)
    weight = _m(Kind.BODY_WEIGHT, "72.35", "kg", 20, Method.PLATFORM_SCALE, SCALE)
    first, second = bp_reading(200, "128", "82", "97"), bp_reading(260, "126", "80", "95")
    measurements = (
        _m(Kind.BODY_TEMPERATURE, "36.80", "Cel", 10, Method.INFRARED_FOREHEAD, THERMO),
        weight,
        height,
        _m(Kind.BMI, "29.0", "kg/m2", 31, Method.CALCULATED, None, derived_from=(height, weight)),
        _m(Kind.SPO2, "97", "%", 90, Method.PULSE_OXIMETRY, OXIMETER, quality=0.93),
        _m(
            Kind.PULSE_RATE,
            "72",
            "/min",
            90,
            Method.PULSE_OXIMETRY,
            OXIMETER,
            quality=0.93,
            status=Status.QUESTIONABLE,
            reasons=(MOTION,),
            details=(("waveform rate", "79.5"),),
        ),
        _m(
            Kind.BLOOD_PRESSURE,
            None,
            "mm[Hg]",
            260,
            Method.OSCILLOMETRY,
            CUFF,
            components=(
                Component(Kind.SYSTOLIC_BP, Decimal(127), "mm[Hg]", interpretation=NORMAL_BP),
                Component(Kind.DIASTOLIC_BP, Decimal(81), "mm[Hg]"),
                Component(Kind.MEAN_BP, Decimal(96), "mm[Hg]"),
            ),
            members=(first, second),
            procedure="aha2019",
            interpretation=NORMAL_BP,
        ),
    )
    start = CLOCK.at(0).utc
    return VisitRecord(
        "7d4f2a10-9b1e-4c55-8f0e-1a2b3c4d5e6f",
        CABIN,
        RESIDENT,
        start,
        start + timedelta(minutes=6),
        measurements,
    )


def failed_visit() -> VisitRecord:
    """A visit whose measurements all failed, each its own way."""
    cuff_error = Reason(
        "cuff-loose",
        "The cuff seems loose. Wrap it snugly and try again.",
        "Vòng bít có vẻ bị lỏng. Hãy quấn chặt lại và đo lại.",
    )
    skipped = Reason("skipped", "This measurement was skipped.", "Bạn đã bỏ qua phép đo này.")
    measurements = (
        _m(
            Kind.BODY_TEMPERATURE,
            None,
            "Cel",
            10,
            Method.INFRARED_FOREHEAD,
            THERMO,
            status=Status.NOT_AVAILABLE,
            reasons=(skipped,),
        ),
        _m(
            Kind.PULSE_RATE,
            "300",
            "/min",
            20,
            Method.PULSE_OXIMETRY,
            OXIMETER,
            status=Status.INVALID,
            reasons=(MOTION,),
        ),
        _m(
            Kind.BLOOD_PRESSURE,
            None,
            "mm[Hg]",
            60,
            Method.OSCILLOMETRY,
            CUFF,
            components=(
                Component(Kind.SYSTOLIC_BP, None, "mm[Hg]", Status.NOT_AVAILABLE, (cuff_error,)),
                Component(Kind.DIASTOLIC_BP, None, "mm[Hg]", Status.NOT_AVAILABLE, (cuff_error,)),
            ),
            status=Status.NOT_AVAILABLE,
            reasons=(cuff_error,),
        ),
    )
    start = CLOCK.at(0).utc
    return VisitRecord(
        "0b0e6d3c-2f4a-4b8e-9d71-5c6e7f8a9b0c",
        CABIN,
        RESIDENT,
        start,
        start + timedelta(minutes=3),
        measurements,
    )
