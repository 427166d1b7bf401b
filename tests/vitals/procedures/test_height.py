"""Height procedure: median of ultrasonic ranges with spike rejection (simulator and hand-made)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from vitals.devices.maxbotix import MaxBotixDriver
from vitals.model import DeviceInfo, Flag, Kind, Reading, Status
from vitals.procedures.base import Progress
from vitals.procedures.height import INCONSISTENT, NO_TARGET, TOO_CLOSE, HeightProcedure
from vitals.protocols import maxbotix as proto
from vitals.reasons import DEVICE_SILENT
from vitals.sim.maxbotix import MaxBotixSimulator
from vitals.sim.scenario import Scenario, ScenarioClock
from vitals.sim.truth import Period, Truth

SONAR = DeviceInfo(model="MaxSonar", protocol="maxbotix", port="test")
THERMOMETER = DeviceInfo(model="GY-MCU90615", protocol="gy-mcu90615", port="test")


def measure(
    truth: Truth, *, seed: int = 0, series: proto.Series = proto.HRLV, **options: object
) -> tuple[HeightProcedure, Scenario]:
    """Run the procedure against the simulated sensor until it finishes."""
    procedure = HeightProcedure(mount_height_mm=truth.mount_height_mm, **options)  # type: ignore[arg-type]
    sim = MaxBotixSimulator(truth, seed=seed, series=series)
    driver = MaxBotixDriver(port="sim", mount_height_mm=truth.mount_height_mm)
    scenario = Scenario([(sim, driver)])
    scenario.run(procedure.time_limit + 1, procedure=procedure)
    assert procedure.done
    return procedure, scenario


class Hand:
    """Feeds hand-made DISTANCE readings at 10 per second."""

    def __init__(self, procedure: HeightProcedure) -> None:
        self.clock = ScenarioClock()
        self.procedure = procedure
        self.t = 0.0
        procedure.start(self.clock.at(0.0))

    def range(self, millimetres: int | None, *, at_minimum: bool = False) -> None:
        self.t = round(self.t + 0.1, 6)
        at = self.clock.at(self.t)
        if millimetres is None:
            reading = Reading(
                Kind.DISTANCE,
                None,
                "mm",
                at,
                SONAR,
                Status.NOT_AVAILABLE,
                frozenset({Flag.NO_TARGET}),
            )
        elif at_minimum:
            flags = frozenset({Flag.OUT_OF_RANGE})
            reading = Reading(
                Kind.DISTANCE, Decimal(millimetres), "mm", at, SONAR, Status.QUESTIONABLE, flags
            )
        else:
            reading = Reading(Kind.DISTANCE, Decimal(millimetres), "mm", at, SONAR)
        self.procedure.feed(reading)
        self.procedure.tick(at)

    def ambient(self, celsius: str) -> None:
        at = self.clock.at(self.t)
        self.procedure.feed(
            Reading(Kind.AMBIENT_TEMPERATURE, Decimal(celsius), "Cel", at, THERMOMETER)
        )


@pytest.mark.parametrize(
    ("height", "noise", "seed"), [(158.0, 0.0, 0), (171.3, 0.3, 1), (149.6, 0.5, 2)]
)
def test_height_is_mount_height_minus_the_median_range(
    height: float, noise: float, seed: int
) -> None:
    procedure, scenario = measure(Truth(height=height, noise=noise), seed=seed)
    (measured,) = procedure.results
    assert measured.status is Status.VALID
    assert measured.unit == "cm"
    assert measured.value is not None
    assert abs(float(measured.value) - height) <= 0.5
    assert measured.value.as_tuple().exponent == -1
    assert measured.quality is not None
    assert measured.quality >= 0.8
    assert scenario.t < 3.0  # 15 readings at 10 per second


def test_an_arm_in_the_beam_is_rejected() -> None:
    hand = Hand(HeightProcedure(samples=15))
    for i in range(15):
        hand.range(250 if i in (4, 9) else 620 + (i % 3) - 1)
    (measured,) = hand.procedure.results
    assert measured.value == Decimal("158.0")
    assert dict(measured.details)["spikes-rejected"] == "2"


def test_a_resident_who_stops_moving_is_measured() -> None:
    procedure, scenario = measure(Truth(height=163.0, motion=(Period(0.0, 5.0),)), seed=3)
    (measured,) = procedure.results
    assert measured.value is not None
    assert abs(float(measured.value) - 163.0) <= 0.5
    assert scenario.t >= 5.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_resident_who_never_stands_still_gets_a_retake(seed: int) -> None:
    procedure, _ = measure(Truth(motion=(Period(0.0, 60.0),)), seed=seed)
    (measured,) = procedure.results
    assert measured.status is Status.NOT_AVAILABLE
    assert measured.reasons == (INCONSISTENT,)
    assert measured.retake_advised


def test_nobody_under_the_sensor() -> None:
    hand = Hand(HeightProcedure(time_limit=3.0))
    while not hand.procedure.done:
        hand.range(None if round(hand.t * 10) % 2 else 2195)  # lost echoes and the platform
    (measured,) = hand.procedure.results
    assert measured.reasons == (NO_TARGET,)
    assert "dưới cảm biến" in NO_TARGET.vi


def test_a_head_inside_the_minimum_range_needs_staff() -> None:
    # 200 cm under a sensor mounted at 229 cm: 29 cm, inside the HRLV's 30 cm minimum
    procedure, _ = measure(Truth(height=200.0, mount_height_mm=2290), time_limit=4.0)
    (measured,) = procedure.results
    assert measured.reasons == (TOO_CLOSE,)
    assert not measured.retake_advised


def test_inch_sensor_is_accurate_to_its_resolution() -> None:
    procedure, _ = measure(Truth(height=158.0), series=proto.LV, resolution_mm=25.4)
    (measured,) = procedure.results
    assert measured.value is not None
    assert abs(float(measured.value) - 158.0) <= 1.27


def test_a_child_shorter_than_any_resident_is_invalid() -> None:
    procedure, _ = measure(Truth(height=75.0))
    (measured,) = procedure.results
    assert measured.status is Status.INVALID
    assert measured.value is not None
    assert abs(float(measured.value) - 75.0) <= 0.5
    assert measured.reasons[0].code == "implausible-body-height"


def test_speed_of_sound_compensation_uses_the_ambient_temperature() -> None:
    def height(**options: object) -> Decimal | None:
        hand = Hand(HeightProcedure(**options))  # type: ignore[arg-type]
        hand.ambient("32.0")
        for _ in range(15):
            hand.range(620)
        return hand.procedure.results[0].value

    assert height() == Decimal("158.0")
    # the reported 620 mm was timed assuming 22.5 °C; at 32 °C the range is 629.9 mm
    assert height(compensate_temperature=True, ambient_celsius=22.5) == Decimal("157.0")
    with pytest.raises(ValueError, match="ambient"):
        HeightProcedure(compensate_temperature=True)


def test_silent_sensor() -> None:
    procedure = HeightProcedure(time_limit=2.0)
    clock = ScenarioClock()
    procedure.start(clock.at(0.0))
    procedure.tick(clock.at(2.0))
    assert procedure.results[0].reasons == (DEVICE_SILENT,)


def test_progress_asks_the_resident_to_stand_under_the_sensor_then_measures() -> None:
    procedure = HeightProcedure()
    hand = Hand(procedure)
    shown: list[Progress] = []
    for _ in range(5):
        hand.range(None)
        shown.append(procedure.progress)
    for _ in range(10):
        hand.range(620)
        shown.append(procedure.progress)
    assert shown[0].phase == "waiting"
    assert "đứng thẳng" in shown[0].vi
    assert shown[-1].phase == "measuring"
    assert shown[-1].live == Decimal("158.0")
    assert shown[-1].fraction == pytest.approx(10 / 15)
