"""MaxBotix height-rod driver against its simulator, in scenario time (no port)."""

from __future__ import annotations

from decimal import Decimal
from statistics import median

import pytest

from tests.vitals.devices.conftest import ManualClock, pump
from vitals.devices.driver import Condition
from vitals.devices.maxbotix import MaxBotixDriver
from vitals.model import Flag, Kind, Reading, Status
from vitals.protocols import maxbotix as proto
from vitals.sim.maxbotix import MaxBotixSimulator
from vitals.sim.truth import Period, Truth


def values(readings: list[Reading], kind: Kind) -> list[float]:
    return [float(r.value) for r in readings if r.kind is kind and r.value is not None]


def test_hrlv_height_matches_truth(manual_clock: ManualClock) -> None:
    truth = Truth(height=158.0, mount_height_mm=2200)
    driver = MaxBotixDriver(port="sim", mount_height_mm=truth.mount_height_mm)
    readings = pump(MaxBotixSimulator(truth, seed=1), driver, manual_clock, until=5.0)
    heights = values(readings, Kind.BODY_HEIGHT)
    assert abs(median(heights) - 158.0) <= 0.5  # HRLV: 1 mm resolution, ~1 % accuracy
    assert abs(median(values(readings, Kind.DISTANCE)) - 620) <= 5
    height = next(r for r in readings if r.kind is Kind.BODY_HEIGHT and r.value is not None)
    assert height.unit == "cm"
    assert height.value is not None
    assert height.value.as_tuple().exponent == -1  # mm resolution: 158.0 cm, not 158 cm
    assert driver.condition is Condition.MEASURING
    assert all(r.device.protocol == "maxbotix" for r in readings)


def test_hrlv_streams_ten_readings_a_second(manual_clock: ManualClock) -> None:
    driver = MaxBotixDriver(port="sim")
    readings = pump(MaxBotixSimulator(Truth(), seed=2), driver, manual_clock, until=5.0)
    distances = [r for r in readings if r.kind is Kind.DISTANCE]
    assert 49 <= len(distances) <= 51
    assert driver.stats.frames == len(distances)


def test_lv_reports_inches_converted_exactly(manual_clock: ManualClock) -> None:
    truth = Truth(height=170.0, mount_height_mm=2400)
    driver = MaxBotixDriver(port="sim", mount_height_mm=2400)
    sim = MaxBotixSimulator(truth, seed=3, series=proto.LV)
    readings = pump(sim, driver, manual_clock, until=5.0)
    distances = [r for r in readings if r.kind is Kind.DISTANCE and r.value is not None]
    assert (
        95
        <= len(distances)
        + len([r for r in readings if r.kind is Kind.DISTANCE and r.value is None])
        <= 101
    )  # ~20 readings a second
    assert all(r.value is not None and r.value % Decimal("25.4") == 0 for r in distances)
    assert abs(median(values(readings, Kind.BODY_HEIGHT)) - 170.0) <= 2.54  # 1-inch steps


def test_the_sensor_is_never_sent_anything(manual_clock: ManualClock) -> None:
    driver = MaxBotixDriver(port="sim")
    driver.connect(manual_clock.at(0.0))
    for t in (0.0, 0.5, 1.0):
        driver.tick(manual_clock.at(t))
    assert driver.take_output() == b""
    assert MaxBotixSimulator(Truth()).receive(b"R\r", 0.1) == b""


@pytest.mark.parametrize("data", [b"R5000\r", b"R255\r"])
def test_no_target_never_becomes_a_distance(manual_clock: ManualClock, data: bytes) -> None:
    driver = MaxBotixDriver(port="sim")
    driver.connect(manual_clock.at(0.0))
    distance, height = driver.receive(data, manual_clock.at(0.1))
    for reading in (distance, height):
        assert reading.value is None
        assert reading.status is Status.NOT_AVAILABLE
        assert Flag.NO_TARGET in reading.flags
        assert reading.note
    assert (distance.kind, height.kind) == (Kind.DISTANCE, Kind.BODY_HEIGHT)
    assert driver.condition is Condition.NO_CONTACT


def test_an_echo_from_the_platform_is_not_a_body_height(manual_clock: ManualClock) -> None:
    driver = MaxBotixDriver(port="sim", mount_height_mm=2200)
    driver.connect(manual_clock.at(0.0))
    distance, height = driver.receive(b"R2195\r", manual_clock.at(0.1))
    assert (distance.value, distance.status) == (Decimal(2195), Status.VALID)
    assert height.value is None
    assert Flag.NO_TARGET in height.flags
    assert driver.condition is Condition.NO_CONTACT


def test_a_target_at_the_minimum_range_is_questionable(manual_clock: ManualClock) -> None:
    driver = MaxBotixDriver(port="sim", mount_height_mm=2200)
    driver.connect(manual_clock.at(0.0))
    distance, height = driver.receive(b"R0300\r", manual_clock.at(0.1))
    assert distance.status is Status.QUESTIONABLE
    assert Flag.OUT_OF_RANGE in distance.flags
    assert (height.value, height.status) == (Decimal("190.0"), Status.QUESTIONABLE)


def test_spikes_and_lost_echoes_do_not_move_the_median(manual_clock: ManualClock) -> None:
    truth = Truth(height=165.0, noise=0.5)
    driver = MaxBotixDriver(port="sim")
    readings = pump(MaxBotixSimulator(truth, seed=0), driver, manual_clock, until=10.0)
    heights = values(readings, Kind.BODY_HEIGHT)
    assert any(abs(h - 165.0) > 5 for h in heights), "expected some spikes"
    assert any(r.value is None for r in readings), "expected some lost echoes"
    assert abs(median(heights) - 165.0) <= 1.0


def test_motion_loses_the_head_now_and_then(manual_clock: ManualClock) -> None:
    truth = Truth(height=158.0, motion=(Period(1.0, 4.0),))
    driver = MaxBotixDriver(port="sim")
    readings = pump(MaxBotixSimulator(truth, seed=5), driver, manual_clock, until=4.0)
    lost = [r for r in readings if r.kind is Kind.BODY_HEIGHT and Flag.NO_TARGET in r.flags]
    assert lost
    assert all(r.value is None for r in lost)


def test_a_mount_lower_than_a_body_is_refused() -> None:
    with pytest.raises(ValueError, match="below any body height"):
        MaxBotixDriver(port="sim", mount_height_mm=400)
