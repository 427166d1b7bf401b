"""Temperature procedure: median of 3 forehead readings, checked against ambient."""

from __future__ import annotations

from decimal import Decimal

import pytest

from vitals.devices.gy_mcu90615 import GyMcu90615Driver
from vitals.measurement import Method
from vitals.model import DeviceInfo, Kind, Reading, Status
from vitals.procedures.base import Progress
from vitals.procedures.temperature import (
    INCONSISTENT,
    NO_FOREHEAD,
    SurfaceToBody,
    TemperatureProcedure,
)
from vitals.reasons import DEVICE_SILENT
from vitals.sim.gy_mcu90615 import GyMcu90615Simulator
from vitals.sim.scenario import Scenario, ScenarioClock
from vitals.sim.truth import Period, Truth

THERMOMETER = DeviceInfo(model="GY-MCU90615", protocol="gy-mcu90615", port="test")


def measure(
    truth: Truth, *, seed: int = 0, **options: object
) -> tuple[TemperatureProcedure, Scenario]:
    """Run the procedure against the simulated thermometer until it finishes."""
    procedure = TemperatureProcedure(**options)  # type: ignore[arg-type]
    scenario = Scenario([(GyMcu90615Simulator(truth, seed=seed), GyMcu90615Driver(port="sim"))])
    scenario.run(procedure.time_limit + 1, procedure=procedure)
    assert procedure.done
    return procedure, scenario


class Hand:
    """Feeds hand-made object/ambient frames twice a second."""

    def __init__(self, procedure: TemperatureProcedure) -> None:
        self.clock = ScenarioClock()
        self.procedure = procedure
        self.t = 0.0
        procedure.start(self.clock.at(0.0))

    def frame(self, surface: str, ambient: str = "29.00", *, ambient_first: bool = False) -> None:
        self.t = round(self.t + 0.5, 6)
        at = self.clock.at(self.t)
        pair = [
            Reading(Kind.OBJECT_TEMPERATURE, Decimal(surface), "Cel", at, THERMOMETER),
            Reading(Kind.AMBIENT_TEMPERATURE, Decimal(ambient), "Cel", at, THERMOMETER),
        ]
        for reading in reversed(pair) if ambient_first else pair:
            self.procedure.feed(reading)
        self.procedure.tick(at)


@pytest.mark.parametrize(
    ("temp", "noise", "seed"), [(36.8, 0.0, 0), (37.9, 0.3, 1), (38.6, 0.3, 2)]
)
def test_temperature_is_the_median_of_three_agreeing_readings(
    temp: float, noise: float, seed: int
) -> None:
    procedure, scenario = measure(Truth(temp=temp, noise=noise), seed=seed)
    (measured,) = procedure.results
    assert measured.kind is Kind.BODY_TEMPERATURE
    assert measured.method is Method.INFRARED_FOREHEAD
    assert measured.status is Status.VALID
    assert measured.unit == "Cel"
    assert measured.value is not None
    assert abs(float(measured.value) - temp) <= 0.3
    assert len(dict(measured.details)["readings"].split()) == 3
    assert scenario.t <= 3.0  # three polls at 2 per second


def test_a_reading_close_to_the_room_is_not_a_forehead() -> None:
    procedure, _ = measure(Truth(temp=30.1, ambient=29.0), time_limit=5.0)
    (measured,) = procedure.results
    assert measured.status is Status.NOT_AVAILABLE
    assert measured.reasons == (NO_FOREHEAD,)
    assert measured.retake_advised


def test_readings_that_disagree_are_never_kept() -> None:
    hand = Hand(TemperatureProcedure(time_limit=6.0))
    while not hand.procedure.done:
        hand.frame("36.50" if round(hand.t * 2) % 2 else "37.10")
    (measured,) = hand.procedure.results
    assert measured.value is None
    assert measured.reasons == (INCONSISTENT,)


def test_a_resident_who_keeps_still_after_moving_is_measured() -> None:
    procedure, scenario = measure(Truth(temp=36.6, motion=(Period(0.0, 3.0),)), seed=4)
    (measured,) = procedure.results
    assert measured.value is not None
    assert abs(float(measured.value) - 36.6) <= 0.3
    assert scenario.t >= 3.0


def test_a_forehead_coming_into_view_is_not_mistaken_for_hypothermia() -> None:
    hand = Hand(TemperatureProcedure())
    for surface in ("32.30", "32.40", "32.30", "36.70", "36.72", "36.68"):
        hand.frame(surface)
    assert hand.procedure.results[0].value == Decimal("36.7")


def test_agreeing_readings_below_an_earlier_fuller_view_are_not_kept() -> None:
    hand = Hand(TemperatureProcedure())
    for surface in ("37.60", "35.00", "35.10", "35.00"):  # the head turned half away
        hand.frame(surface)
    assert not hand.procedure.done
    for surface in ("37.50", "37.62", "37.55"):
        hand.frame(surface)
    assert hand.procedure.results[0].value == Decimal("37.6")


def test_a_hot_object_is_invalid() -> None:
    procedure, _ = measure(Truth(temp=44.0), time_limit=4.0)
    (measured,) = procedure.results
    assert measured.status is Status.INVALID
    assert measured.reasons[0].code == "implausible-body-temperature"


def test_surface_to_body_mapping_is_applied_and_recorded() -> None:
    mapping = SurfaceToBody(object_gain=1.0, ambient_gain=-0.1, offset=4.9)
    hand = Hand(TemperatureProcedure(mapping=mapping))
    for _ in range(3):
        hand.frame("34.60", "28.00", ambient_first=True)
    (measured,) = hand.procedure.results
    assert measured.value == Decimal("36.7")  # 34.6 - 2.8 + 4.9
    assert dict(measured.details)["surface-to-body"] == "1*object + -0.1*ambient + 4.9"
    assert dict(measured.details)["surface-celsius"] == "34.60"


def test_the_uncalibrated_identity_says_it_needs_iso_80601_2_56_calibration() -> None:
    assert SurfaceToBody().body(36.2, 29.0) == 36.2
    assert "ISO 80601-2-56" in (SurfaceToBody.__doc__ or "")
    assert "reference" in (SurfaceToBody.__doc__ or "")


def test_silent_thermometer() -> None:
    procedure = TemperatureProcedure(time_limit=2.0)
    clock = ScenarioClock()
    procedure.start(clock.at(0.0))
    procedure.tick(clock.at(2.0))
    assert procedure.results[0].reasons == (DEVICE_SILENT,)


def test_progress_asks_for_the_forehead_then_measures() -> None:
    procedure = TemperatureProcedure()
    hand = Hand(procedure)
    shown: list[Progress] = [procedure.progress]
    hand.frame("29.10")
    shown.append(procedure.progress)
    hand.frame("36.80")
    shown.append(procedure.progress)
    assert [p.phase for p in shown] == ["waiting", "waiting", "measuring"]
    assert "trán" in shown[0].vi
    assert shown[-1].fraction == pytest.approx(1 / 3)
