"""Codes for the vital signs the cabin measures: LOINC, UCUM and ISO/IEEE 11073 MDC.

LOINC codes and UCUM units are those of the HL7 FHIR R4 vital-signs profiles; MDC codes (the
ISO/IEEE 11073-10101 nomenclature, partition 2 SCADA) are those the Personal Health Device
implementation guide puts beside them.  Pure data; the mapping to FHIR resources uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from vitals.model import Kind

LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
MDC: Final = "urn:iso:std:iso:11073:10101"

VITAL_SIGNS_PANEL: Final = "85353-1"
BLOOD_PRESSURE_PANEL: Final = "85354-9"
BMI: Final = "39156-5"
PULSE_OXIMETRY: Final = "59408-5"


@dataclass(frozen=True, slots=True)
class VitalCode:
    """How one kind of reading is coded in FHIR."""

    loinc: str
    display: str
    ucum: str
    mdc: int | None = None
    mdc_name: str | None = None


VITAL_CODES: Mapping[Kind, VitalCode] = MappingProxyType(
    {
        Kind.SPO2: VitalCode(
            "2708-6", "Oxygen saturation in Arterial blood", "%", 150456, "MDC_PULS_OXIM_SAT_O2"
        ),
        Kind.PULSE_RATE: VitalCode(
            "8867-4", "Heart rate", "/min", 149530, "MDC_PULS_OXIM_PULS_RATE"
        ),
        Kind.SYSTOLIC_BP: VitalCode(
            "8480-6", "Systolic blood pressure", "mm[Hg]", 150021, "MDC_PRESS_BLD_NONINV_SYS"
        ),
        Kind.DIASTOLIC_BP: VitalCode(
            "8462-4", "Diastolic blood pressure", "mm[Hg]", 150022, "MDC_PRESS_BLD_NONINV_DIA"
        ),
        Kind.MEAN_BP: VitalCode(
            "8478-0", "Mean blood pressure", "mm[Hg]", 150023, "MDC_PRESS_BLD_NONINV_MEAN"
        ),
        Kind.BODY_TEMPERATURE: VitalCode(
            "8310-5", "Body temperature", "Cel", 150364, "MDC_TEMP_BODY"
        ),
        Kind.BODY_HEIGHT: VitalCode("8302-2", "Body height", "cm", 188740, "MDC_LEN_BODY_ACTUAL"),
        Kind.BODY_WEIGHT: VitalCode("29463-7", "Body weight", "kg", 188736, "MDC_MASS_BODY_ACTUAL"),
    }
)
