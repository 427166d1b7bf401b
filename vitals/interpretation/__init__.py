"""What a vital-sign value means, in plain words for the resident and a code for the doctor.

:func:`interpret` attaches an :class:`~vitals.measurement.Interpretation` to a measurement
(and, for blood pressure, to its systolic and diastolic components): the HL7 v3
ObservationInterpretation code (``N`` normal, ``L``/``H`` low/high, ``LL``/``HH`` critically
low/high; ``A``, abnormal without a direction, is not needed by these bands), the band's name
in its guideline, one sentence in English and one in Vietnamese,
and ``urgent`` when the value asks for the emergency path (talk to the doctor now).

Only **valid** measurements are interpreted.  A questionable, invalid or missing measurement
gets no interpretation at all (not even a cautious one): its reasons already ask for a retake,
and a sentence about a value the cabin does not stand behind - "your oxygen is very low" from a
finger half out of the probe - would frighten or falsely reassure.  Weight and height alone are
not interpreted; BMI is.

Bands, codes and sources (low to high; "urgent" = talk to the doctor now):

* **Blood pressure**, mmHg (:mod:`.pressure`): normal < 120 and < 80 (N); elevated 120-129
  and < 80 (H); stage 1 130-139 or 80-89 (H); stage 2 >= 140 or >= 90 (H); hypertensive crisis
  >= 180 and/or >= 120 (HH, urgent); the higher of the two numbers' categories applies.  Source:
  Whelton et al., "2017 ACC/AHA/.../NMA/PCNA Guideline for the prevention, detection, evaluation,
  and management of high blood pressure in adults", Hypertension 71:e13-e115 (2018), and the
  AHA's category chart.  The guideline writes the crisis as "> 180 and/or > 120"; the cabin
  flags 180/120 itself, as issue 3 asks (the safer side for a screening kiosk).  Low pressure
  (< 90 or < 60, with neither number high: L) is not an AHA category; the cabin adds it.
* **BMI**, kg/m2: < 18.5 underweight (L); 18.5-22.9 normal (N); 23.0-27.4 overweight,
  increased risk (H); >= 27.5 obese, high risk (H).  Source: WHO Expert Consultation,
  "Appropriate body-mass index for Asian populations and its implications for policy and
  intervention strategies", Lancet 363:157-163 (2004), public-health action points 23 and 27.5.
* **SpO2**, %: >= 95 normal (N); 90-94 low (L); < 90 very low (LL, urgent).  These are the
  cabin's bands (issue 3).  Context: the BTS guideline for oxygen use in adults (O'Driscoll et
  al., Thorax 72 Suppl 1, 2017) targets 94-98 %; NEWS2 (Royal College of Physicians, 2017) is
  stricter and scores <= 91 % as 3, its trigger for an urgent review.
* **Pulse rate**, /min: <= 40 very slow (LL, urgent); 41-49 slow (L); 50-100 normal (N);
  101-130 fast (H); > 130 very fast (HH, urgent).  Urgent extremes: NEWS2 (RCP 2017) scores
  <= 40 and >= 131 as 3, a "red" single-parameter score that calls for an urgent clinical
  review.  Slow below 50: the working definition of bradycardia in the AHA adult bradycardia
  (ACLS) algorithm and the 2018 ACC/AHA/HRS bradycardia guideline (Kusumoto et al.); fast
  above 100: the usual definition of tachycardia.
* **Body temperature**, °C: < 35.0 hypothermia (LL, urgent); 35.0-35.9 low (L); 36.0-37.4
  normal (N); 37.5-37.9 slightly raised (H); 38.0-39.9 fever (H); >= 40.0 very high fever
  (HH, urgent).  Sources: hypothermia is a core temperature below 35 °C, and NEWS2 scores
  <= 35.0 as 3; fever from 38.0 °C, with 37.5 already flagged because older adults mount
  smaller fevers (IDSA guideline for older residents of long-term care, High et al., Clin
  Infect Dis 48:149-171, 2009, counts a single oral > 37.8 °C or a rectal > 37.5 °C as fever);
  40 °C is the core temperature that defines heat stroke (Bouchama & Knochel, "Heat stroke",
  N Engl J Med 346:1978-1988, 2002).

The forehead temperature is interpreted as the body temperature the cabin reports, so its
bands are only as right as the thermometer's calibration (see
:class:`vitals.procedures.temperature.SurfaceToBody`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from typing import Final

from vitals.interpretation.bands import bmi, body_temperature, pulse_rate, spo2
from vitals.interpretation.pressure import (
    blood_pressure,
    diastolic_pressure,
    interpret_pressure,
    systolic_pressure,
)
from vitals.measurement import Interpretation, Measurement
from vitals.model import Kind

__all__ = [
    "blood_pressure",
    "bmi",
    "body_temperature",
    "diastolic_pressure",
    "interpret",
    "pulse_rate",
    "spo2",
    "systolic_pressure",
]

_SINGLE: Final[dict[Kind, tuple[str, Callable[[Decimal], Interpretation]]]] = {
    Kind.SPO2: ("%", spo2),
    Kind.PULSE_RATE: ("/min", pulse_rate),
    Kind.BODY_TEMPERATURE: ("Cel", body_temperature),
    Kind.BMI: ("kg/m2", bmi),
}


def interpret(measurement: Measurement) -> Measurement:
    """``measurement`` with its interpretation (and its BP components' own) attached.

    Measurements that are not valid, and kinds without bands (weight, height), come back
    unchanged.  A unit other than the kind's own raises ``ValueError`` (a wiring error).
    """
    if not measurement.valid:
        return measurement
    if measurement.kind is Kind.BLOOD_PRESSURE:
        return interpret_pressure(measurement)
    entry = _SINGLE.get(measurement.kind)
    if entry is None or measurement.value is None:
        return measurement
    unit, classify = entry
    if measurement.unit != unit:
        raise ValueError(f"{measurement.kind} is interpreted in {unit}, not {measurement.unit}")
    return dataclasses.replace(measurement, interpretation=classify(measurement.value))
