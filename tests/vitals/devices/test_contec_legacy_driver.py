"""CMS50D+ legacy driver against its simulator, in scenario time (no port)."""

from __future__ import annotations

from statistics import median

from tests.vitals.devices.conftest import ManualClock, pump
from vitals.devices.contec_legacy import Cms50LegacyDriver
from vitals.devices.driver import Condition
from vitals.model import Flag, Kind, Status
from vitals.sim.contec_legacy import Cms50LegacySimulator
from vitals.sim.truth import Period, Truth


def test_reports_truth_after_acquisition(manual_clock: ManualClock) -> None:
    truth = Truth(hr=64, spo2=95)
    driver = Cms50LegacyDriver(port="sim")
    readings = pump(Cms50LegacySimulator(truth, seed=3), driver, manual_clock, until=8.0)
    spo2 = [r for r in readings if r.kind is Kind.SPO2 and r.status is Status.VALID]
    rate = [r for r in readings if r.kind is Kind.PULSE_RATE and r.status is Status.VALID]
    assert spo2, "no valid SpO2 within 8 s"
    assert abs(median(float(r.value or 0) for r in spo2) - 95) <= 1
    assert abs(median(float(r.value or 0) for r in rate) - 64) <= 3
    assert driver.condition is Condition.MEASURING
    assert all(r.device.protocol == "cms50d-legacy" for r in readings)


def test_pleth_streams_at_60_hz(manual_clock: ManualClock) -> None:
    driver = Cms50LegacyDriver(port="sim")
    readings = pump(Cms50LegacySimulator(Truth(), seed=1), driver, manual_clock, until=5.0)
    pleth = [r for r in readings if r.kind is Kind.PLETH]
    assert 290 <= len(pleth) <= 310
    assert any(Flag.PULSE_BEEP in r.flags for r in pleth)


def test_searching_and_finger_out_never_become_values(manual_clock: ManualClock) -> None:
    truth = Truth(finger_out=(Period(5.0, 7.0),))
    driver = Cms50LegacyDriver(port="sim")
    readings = pump(Cms50LegacySimulator(truth, seed=2), driver, manual_clock, until=6.0)
    early = [r for r in readings if r.kind is Kind.SPO2 and r.at.seconds_since(readings[0].at) < 2]
    assert early
    assert all(r.value is None and r.status is Status.NOT_AVAILABLE for r in early)
    out = [r for r in readings if r.kind is Kind.SPO2 and Flag.FINGER_OUT in r.flags]
    assert out
    assert all(r.value is None for r in out)
    assert driver.condition is Condition.NO_CONTACT


def test_numbers_are_reported_per_change_not_per_frame(manual_clock: ManualClock) -> None:
    driver = Cms50LegacyDriver(port="sim")
    readings = pump(Cms50LegacySimulator(Truth(), seed=4), driver, manual_clock, until=10.0)
    spo2 = [r for r in readings if r.kind is Kind.SPO2]
    assert 5 <= len(spo2) <= 25
