"""GY-MCU90615 IR thermometer driver against its simulator, in scenario time (no port)."""

from __future__ import annotations

from decimal import Decimal
from statistics import mean

from tests.vitals.devices.conftest import ManualClock, pump
from vitals.devices.driver import Condition
from vitals.devices.gy_mcu90615 import GyMcu90615Driver
from vitals.model import Flag, Kind, Reading, Status
from vitals.protocols.gy_mcu90615 import CommandCode, ModuleCommand, TemperatureFrame
from vitals.sim.gy_mcu90615 import GyMcu90615Simulator
from vitals.sim.truth import Period, Truth

QUERY = bytes.fromhex("a5 15 ba")
CONTINUOUS = bytes.fromhex("a5 45 ea")


def of_kind(readings: list[Reading], kind: Kind) -> list[Reading]:
    return [r for r in readings if r.kind is kind]


def test_readings_match_truth_within_the_thermometer_accuracy(
    manual_clock: ManualClock,
) -> None:
    truth = Truth(temp=36.8, ambient=29.0)
    driver = GyMcu90615Driver(port="sim")
    readings = pump(GyMcu90615Simulator(truth, seed=1), driver, manual_clock, until=5.0)
    objects = of_kind(readings, Kind.OBJECT_TEMPERATURE)
    ambients = of_kind(readings, Kind.AMBIENT_TEMPERATURE)
    assert objects
    assert len(objects) == len(ambients)
    for reading in objects + ambients:
        assert reading.status is Status.VALID
        assert reading.unit == "Cel"
        assert reading.value is not None
        assert reading.value.as_tuple().exponent == -2  # two decimals, e.g. 36.80
    assert all(abs(float(r.value or 0) - 36.8) <= 0.3 for r in objects)  # ISO 80601-2-56
    assert all(abs(float(r.value or 0) - 29.0) <= 0.3 for r in ambients)
    assert driver.condition is Condition.MEASURING
    assert all(r.device.protocol == "gy-mcu90615" for r in readings)


def test_driver_queries_twice_a_second_with_a5_15_ba(manual_clock: ManualClock) -> None:
    driver = GyMcu90615Driver(port="sim")
    assert driver.spec.tick_interval == 0.5
    driver.connect(manual_clock.at(0.0))
    assert driver.take_output() == b""
    driver.tick(manual_clock.at(0.0))
    assert driver.take_output() == QUERY == bytes(ModuleCommand(CommandCode.QUERY))
    readings = pump(GyMcu90615Simulator(Truth(), seed=2), driver, manual_clock, until=4.9)
    assert len(of_kind(readings, Kind.OBJECT_TEMPERATURE)) == 10  # ticks at 0, 0.5, ... 4.5


def test_the_module_is_silent_until_asked() -> None:
    sim = GyMcu90615Simulator(Truth(), seed=3)
    assert sim.emit(1.0) == b""
    reply = sim.receive(QUERY, 1.0)
    assert len(reply) == 9
    assert reply[:4] == bytes.fromhex("5a 5a 45 04")


def test_continuous_mode_streams_and_the_driver_reads_it(manual_clock: ManualClock) -> None:
    sim = GyMcu90615Simulator(Truth(), seed=4)
    assert sim.receive(CONTINUOUS, 0.0) == b""
    driver = GyMcu90615Driver(port="sim")
    driver.connect(manual_clock.at(0.0))
    readings = []
    for step in range(1, 101):  # one second, no queries
        t = step / 100
        readings += driver.receive(sim.emit(t), manual_clock.at(t))
    assert 9 <= len(of_kind(readings, Kind.OBJECT_TEMPERATURE)) <= 11


def test_bad_or_unknown_commands_get_no_answer() -> None:
    sim = GyMcu90615Simulator(Truth(), seed=5)
    assert sim.receive(bytes.fromhex("a5 15 bb"), 1.0) == b""  # bad checksum
    assert sim.receive(bytes.fromhex("a5 33 d8"), 1.0) == b""  # unknown code
    assert sim.receive(bytes.fromhex("a5 ae 53"), 1.0) == b""  # 9600 baud, after power-up
    assert sim.baudrate_after_power_up == 9600
    assert sim.emit(2.0) == b""


def test_out_of_range_temperatures_never_become_values(manual_clock: ManualClock) -> None:
    driver = GyMcu90615Driver(port="sim")
    driver.connect(manual_clock.at(0.0))
    frame = TemperatureFrame(object_centi=12000, ambient_centi=-4500)  # 120 °C, -45 °C
    obj, ambient = driver.receive(bytes(frame), manual_clock.at(0.1))
    for reading in (obj, ambient):
        assert reading.value is None
        assert reading.status is Status.NOT_AVAILABLE
        assert Flag.OUT_OF_RANGE in reading.flags
    assert obj.note == "object temperature 120.00 °C is outside the sensor's -40..115 °C range"
    assert ambient.note == "sensor temperature -45.00 °C is outside the sensor's -40..85 °C range"
    assert driver.condition is Condition.ERROR


def test_limits_of_the_range_are_still_values(manual_clock: ManualClock) -> None:
    driver = GyMcu90615Driver(port="sim")
    driver.connect(manual_clock.at(0.0))
    obj, ambient = driver.receive(bytes(TemperatureFrame(11500, -4000)), manual_clock.at(0.1))
    assert (obj.value, ambient.value) == (Decimal("115.00"), Decimal("-40.00"))


def test_motion_pulls_the_object_reading_towards_ambient(manual_clock: ManualClock) -> None:
    truth = Truth(temp=36.8, ambient=29.0, motion=(Period(0.0, 10.0),))
    readings = pump(
        GyMcu90615Simulator(truth, seed=6), GyMcu90615Driver(port="sim"), manual_clock, until=5.0
    )
    objects = [float(r.value or 0) for r in of_kind(readings, Kind.OBJECT_TEMPERATURE)]
    assert mean(objects) < 36.0
    assert all(29.0 <= value <= 37.0 for value in objects)
