"""Masimo ASCII 1 driver against its simulator, in scenario time (no port)."""

from __future__ import annotations

from statistics import median

from tests.vitals.devices.conftest import ManualClock, pump
from vitals.devices.driver import Condition
from vitals.devices.masimo import MasimoDriver
from vitals.model import Flag, Kind, Reading, Status
from vitals.sim.masimo import SERIAL_NUMBER, MasimoSimulator
from vitals.sim.truth import Period, Truth


def of_kind(readings: list[Reading], kind: Kind) -> list[Reading]:
    return [r for r in readings if r.kind is kind]


def valid(readings: list[Reading], kind: Kind) -> list[Reading]:
    return [r for r in of_kind(readings, kind) if r.status is Status.VALID]


def test_reports_truth_after_acquisition(manual_clock: ManualClock) -> None:
    truth = Truth(hr=64, spo2=95, perfusion_index=2.0)
    driver = MasimoDriver(port="sim")
    readings = pump(MasimoSimulator(truth, seed=3), driver, manual_clock, until=10.0)
    spo2, rate, pi = (
        valid(readings, k) for k in (Kind.SPO2, Kind.PULSE_RATE, Kind.PERFUSION_INDEX)
    )
    assert spo2, "no valid SpO2 within 10 s"
    assert abs(median(float(r.value or 0) for r in spo2) - 95) <= 1
    assert abs(median(float(r.value or 0) for r in rate) - 64) <= 3
    assert all(abs(float(r.value or 0) - 2.0) <= 0.25 for r in pi)
    assert all(r.value is not None and r.value.as_tuple().exponent == -2 for r in pi)
    assert not of_kind(readings, Kind.PLETH), "ASCII 1 carries no waveform"
    assert driver.condition is Condition.MEASURING
    assert driver.device.serial_number == SERIAL_NUMBER
    assert all(r.device.protocol == "masimo-ascii1" for r in readings)


def test_one_line_per_second(manual_clock: ManualClock) -> None:
    driver = MasimoDriver(port="sim")
    pump(MasimoSimulator(Truth(), seed=1), driver, manual_clock, until=10.0)
    assert driver.stats.frames in (10, 11)
    assert driver.stats.discarded_bytes == 0


def test_search_and_finger_out_never_become_values(manual_clock: ManualClock) -> None:
    truth = Truth(finger_out=(Period(6.0, 9.0),))
    driver = MasimoDriver(port="sim")
    readings = pump(MasimoSimulator(truth, seed=2), driver, manual_clock, until=8.5)
    numbers = of_kind(readings, Kind.SPO2) + of_kind(readings, Kind.PULSE_RATE)
    searching = [r for r in numbers if Flag.SEARCHING in r.flags]
    finger_out = [r for r in numbers if Flag.FINGER_OUT in r.flags]
    assert searching
    assert finger_out
    for reading in searching + finger_out:
        assert reading.value is None
        assert reading.status is Status.NOT_AVAILABLE
    assert {r.error_code for r in searching} == {0x008}
    assert {r.note for r in finger_out} == {"Masimo exception 000020: sensor off the finger"}
    assert {r.error_code for r in finger_out} == {0x020}
    assert driver.condition is Condition.NO_CONTACT


def test_motion_makes_numbers_questionable_with_a_reason(manual_clock: ManualClock) -> None:
    truth = Truth(motion=(Period(5.0, 8.0),))
    driver = MasimoDriver(port="sim")
    readings = pump(MasimoSimulator(truth, seed=4), driver, manual_clock, until=8.5)
    doubtful = [r for r in of_kind(readings, Kind.SPO2) if Flag.LOW_SIGNAL_QUALITY in r.flags]
    assert doubtful
    for reading in doubtful:
        assert reading.status is Status.QUESTIONABLE
        assert reading.value is not None
        assert reading.error_code == 0x400
        assert reading.note == "Masimo exception 000400: low signal quality"


def test_low_perfusion_is_flagged(manual_clock: ManualClock) -> None:
    driver = MasimoDriver(port="sim")
    sim = MasimoSimulator(Truth(perfusion_index=0.3), seed=5, fast=True)
    readings = pump(sim, driver, manual_clock, until=4.0)
    pi = [r for r in of_kind(readings, Kind.PERFUSION_INDEX) if r.value is not None]
    assert pi
    assert all(Flag.LOW_PERFUSION in r.flags and r.status is Status.QUESTIONABLE for r in pi)


def test_a_defective_sensor_is_a_device_error(manual_clock: ManualClock) -> None:
    driver = MasimoDriver(port="sim")
    driver.connect(manual_clock.at(0.0))
    line = b"11/21/25 08:00:00 SN=0000072951 SPO2=---% BPM=--- PI=--.--% ALARM=0040 EXC=000002\r\n"
    readings = driver.receive(line, manual_clock.at(1.0))
    assert {r.kind for r in readings} == {Kind.SPO2, Kind.PULSE_RATE}
    for reading in readings:
        assert reading.value is None
        assert reading.flags == {Flag.PROBE_ERROR, Flag.LOW_BATTERY}
        assert (reading.error_code, reading.note) == (
            2,
            "Masimo exception 000002: defective sensor",
        )
    assert driver.condition is Condition.ERROR


def test_takes_and_needs_no_commands(manual_clock: ManualClock) -> None:
    driver = MasimoDriver(port="sim")
    sim = MasimoSimulator(Truth(), seed=6)
    driver.connect(manual_clock.at(0.0))
    driver.tick(manual_clock.at(0.5))
    assert driver.take_output() == b""
    assert sim.receive(b"SPO2?\r\n", 0.5) == b""


def test_fast_mode_shortens_acquisition() -> None:
    def first_valid(fast: bool) -> float:
        driver = MasimoDriver(port="sim")
        readings = pump(MasimoSimulator(Truth(), seed=7, fast=fast), driver, ManualClock(), until=5)
        start = readings[0].at
        return min(r.at.seconds_since(start) for r in valid(readings, Kind.SPO2))

    assert first_valid(fast=True) <= 1.05
    assert 3.0 <= first_valid(fast=False) <= 4.05
