"""BerryMed BCI driver against its simulator, in scenario time (no port)."""

from __future__ import annotations

from statistics import median

from tests.vitals.devices.conftest import ManualClock, pump
from vitals.devices.berrymed import BerryMedDriver
from vitals.devices.driver import Condition
from vitals.model import Flag, Kind, Reading, Status
from vitals.protocols import berrymed as proto
from vitals.sim.berrymed import BerryMedSimulator
from vitals.sim.truth import Period, Truth


class ListeningSimulator(BerryMedSimulator):
    """The simulator, keeping whatever the host sent."""

    def __init__(self, truth: Truth, *, seed: int = 0, fast: bool = False) -> None:
        super().__init__(truth, seed=seed, fast=fast)
        self.heard = bytearray()

    def receive(self, data: bytes, t: float) -> bytes:
        self.heard += data
        return super().receive(data, t)


def valid(readings: list[Reading], kind: Kind) -> list[float]:
    return [float(r.value or 0) for r in readings if r.kind is kind and r.status is Status.VALID]


def test_reports_truth_after_acquisition(manual_clock: ManualClock) -> None:
    truth = Truth(hr=88, spo2=93)
    driver = BerryMedDriver(port="sim")
    readings = pump(BerryMedSimulator(truth, seed=3), driver, manual_clock, until=8.0)
    spo2 = valid(readings, Kind.SPO2)
    assert spo2, "no valid SpO2 within 8 s"
    assert abs(median(spo2) - 93) <= 1
    assert abs(median(valid(readings, Kind.PULSE_RATE)) - 88) <= 3
    assert driver.condition is Condition.MEASURING
    assert all(r.device.protocol == "berrymed-bci" for r in readings)


def test_pulse_rate_above_127_survives_bit_7_in_byte_2(manual_clock: ManualClock) -> None:
    sim = BerryMedSimulator(Truth(hr=150), seed=6, fast=True)
    readings = pump(sim, BerryMedDriver(port="sim"), manual_clock, until=4.0)
    assert abs(median(valid(readings, Kind.PULSE_RATE)) - 150) <= 4


def test_pleth_streams_at_100_hz_within_0_to_100(manual_clock: ManualClock) -> None:
    driver = BerryMedDriver(port="sim")
    readings = pump(BerryMedSimulator(Truth(), seed=1), driver, manual_clock, until=5.0)
    pleth = [r for r in readings if r.kind is Kind.PLETH]
    assert 490 <= len(pleth) <= 510
    assert all(r.value is not None and 0 <= r.value <= 100 for r in pleth)
    assert max(r.value or 0 for r in pleth) >= 80, "the waveform uses the device's range"
    assert any(Flag.PULSE_BEEP in r.flags for r in pleth)
    assert driver.stats.discarded_bytes == 0


def test_no_command_is_ever_sent(manual_clock: ManualClock) -> None:
    sim = ListeningSimulator(Truth(), fast=True)
    readings = pump(sim, BerryMedDriver(port="sim"), manual_clock, until=3.0)
    assert readings
    assert sim.heard == b""


def test_searching_and_finger_out_never_become_values(manual_clock: ManualClock) -> None:
    truth = Truth(finger_out=(Period(5.0, 7.0),))
    driver = BerryMedDriver(port="sim")
    readings = pump(BerryMedSimulator(truth, seed=2), driver, manual_clock, until=6.0)
    early = [r for r in readings if r.kind is Kind.SPO2 and r.at.seconds_since(readings[0].at) < 2]
    assert early
    assert all(r.value is None and r.status is Status.NOT_AVAILABLE for r in early)
    assert all(Flag.SEARCHING in r.flags for r in early)
    out = [r for r in readings if r.kind is Kind.SPO2 and Flag.FINGER_OUT in r.flags]
    assert out
    assert all(r.value is None for r in out)
    assert driver.condition is Condition.NO_CONTACT


def test_probe_unplugged_is_a_disconnected_sensor_with_no_values(
    manual_clock: ManualClock,
) -> None:
    driver = BerryMedDriver(port="sim")
    driver.connect(manual_clock.at(0.0))
    unplugged = proto.LiveFrame(
        signal_strength=0,
        pleth=0,
        bar_graph=0,
        pulse_rate=72,
        spo2=97,
        probe_unplugged=True,
    )
    readings = driver.receive(bytes(unplugged), manual_clock.at(0.01))
    numbers = [r for r in readings if r.kind in (Kind.SPO2, Kind.PULSE_RATE)]
    assert len(numbers) == 2
    assert all(r.value is None and Flag.SENSOR_DISCONNECTED in r.flags for r in numbers)
    assert driver.condition is Condition.NO_CONTACT


def test_no_signal_makes_the_numbers_questionable(manual_clock: ManualClock) -> None:
    driver = BerryMedDriver(port="sim")
    driver.connect(manual_clock.at(0.0))
    weak = proto.LiveFrame(
        signal_strength=1, pleth=10, bar_graph=1, pulse_rate=72, spo2=97, no_signal=True
    )
    readings = driver.receive(bytes(weak), manual_clock.at(0.01))
    spo2 = [r for r in readings if r.kind is Kind.SPO2]
    assert spo2[0].status is Status.QUESTIONABLE
    assert Flag.LOW_SIGNAL_QUALITY in spo2[0].flags


def test_sentinels_never_become_values(manual_clock: ManualClock) -> None:
    driver = BerryMedDriver(port="sim")
    driver.connect(manual_clock.at(0.0))
    sentinels = proto.LiveFrame(signal_strength=4, pleth=50, bar_graph=4, pulse_rate=255, spo2=127)
    zeros = proto.LiveFrame(signal_strength=4, pleth=50, bar_graph=4, pulse_rate=0, spo2=0)
    readings = driver.receive(bytes(sentinels), manual_clock.at(0.01))
    readings += driver.receive(bytes(zeros), manual_clock.at(0.5))
    numbers = [r for r in readings if r.kind in (Kind.SPO2, Kind.PULSE_RATE)]
    assert len(numbers) == 2, "an unchanged no-value is reported once"
    assert all(r.value is None and r.status is Status.NOT_AVAILABLE for r in numbers)


def test_fast_mode_shortens_acquisition(manual_clock: ManualClock) -> None:
    fast_sim = BerryMedSimulator(Truth(), seed=7, fast=True)
    fast = pump(fast_sim, BerryMedDriver(port="a"), manual_clock, until=1.5)
    assert valid(fast, Kind.SPO2), "fast mode: numbers within 1.5 s"
    slow_sim = BerryMedSimulator(Truth(), seed=7)
    slow = pump(slow_sim, BerryMedDriver(port="b"), ManualClock(), until=2.5)
    assert not valid(slow, Kind.SPO2), "real timing: still searching at 2.5 s"
