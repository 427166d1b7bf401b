"""SunTech Advantage driver against its simulator, in scenario time (no port)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.vitals.devices.conftest import ManualClock, pump
from vitals.devices.driver import Condition
from vitals.devices.suntech import BP_KINDS, SunTechDriver
from vitals.model import Flag, Kind, Reading, Status
from vitals.protocols import suntech as proto
from vitals.protocols.suntech import Ack, AckCode, BpData, ReturnString, WordReply
from vitals.sim.suntech import SunTechSimulator, mean_arterial
from vitals.sim.truth import Period, Truth

START = bytes.fromhex("3a 20 a6")
CUFF = bytes.fromhex("3a 79 05 00 48")
BP_DATA = bytes.fromhex("3a 79 03 00 4a")
ABORT = bytes.fromhex("3a 79 01 00 4c")
STATUS = bytes.fromhex("3a 79 10 03 3a")
RETURN_STRING = bytes.fromhex("3a 79 02 40 0b")
DONE = bytes.fromhex("3e 04 4b 73")


def of_kind(readings: list[Reading], kind: Kind) -> list[Reading]:
    return [r for r in readings if r.kind is kind]


def seconds(reading: Reading) -> float:
    """Scenario time of a reading (the manual clock starts at 1 s)."""
    return reading.at.monotonic - 1.0


def handshake(driver: SunTechDriver, clock: ManualClock) -> None:
    """Connect and answer the status and return-string requests by hand."""
    driver.connect(clock.at(0.0))
    assert driver.take_output() == STATUS
    assert driver.receive(bytes(WordReply(0)), clock.at(0.01)) == []
    assert driver.take_output() == RETURN_STRING
    driver.receive(bytes(ReturnString(b"LX2.0".ljust(64, b"\0"))), clock.at(0.02))
    assert driver.take_output() == b""
    assert driver.condition is Condition.READY


def started(clock: ManualClock) -> SunTechDriver:
    """A driver whose start command the module has just accepted, at t = 0.1 s."""
    driver = SunTechDriver(port="sim")
    handshake(driver, clock)
    driver.start_measurement(clock.at(0.05))
    assert driver.take_output() == START
    driver.receive(bytes(Ack(AckCode.RECEIVED)), clock.at(0.1))
    assert driver.condition is Condition.MEASURING
    assert driver.take_output() == CUFF  # polling starts at once
    return driver


class LostCompletion(SunTechSimulator):
    """The module's unprompted 'K' never reaches the host."""

    def emit(self, t: float) -> bytes:
        return super().emit(t).replace(DONE, b"")


class GarbledResultOnce(SunTechSimulator):
    """The first BP data reply arrives with a corrupted byte."""

    garbled = False

    def receive(self, data: bytes, t: float) -> bytes:
        reply = super().receive(data, t)
        if len(reply) == proto.BP_DATA_SIZE and not self.garbled:
            self.garbled = True
            return reply[:3] + bytes((reply[3] ^ 0x10,)) + reply[4:]
        return reply


def test_connect_asks_status_and_firmware(manual_clock: ManualClock) -> None:
    driver = SunTechDriver(port="sim")
    handshake(driver, manual_clock)
    assert driver.device.firmware == "LX2.0"


def test_reports_truth_after_a_real_length_cycle(manual_clock: ManualClock) -> None:
    truth = Truth(sys=142, dia=91, hr=64)
    driver = SunTechDriver(port="sim", repeat_every=300.0)
    readings = pump(SunTechSimulator(truth, seed=3), driver, manual_clock, until=45.0)
    results = {r.kind: r for r in readings if r.kind in BP_KINDS}
    assert {k: r.value for k, r in results.items()} == {
        Kind.SYSTOLIC_BP: 142,
        Kind.DIASTOLIC_BP: 91,
        Kind.MEAN_BP: round(mean_arterial(142, 91)),
        Kind.PULSE_RATE: 64,
    }
    assert all(r.status is Status.VALID and r.unit in ("mm[Hg]", "/min") for r in results.values())
    assert 30.0 <= seconds(results[Kind.SYSTOLIC_BP]) <= 40.0
    assert driver.condition is Condition.READY
    assert driver.device.firmware == "LX2.0-SIM"


def test_cuff_pressure_is_polled_at_25_hz_and_flagged_by_phase(manual_clock: ManualClock) -> None:
    truth = Truth()
    driver = SunTechDriver(port="sim", repeat_every=300.0)
    readings = pump(SunTechSimulator(truth, seed=1), driver, manual_clock, until=36.0)
    cuff = of_kind(readings, Kind.CUFF_PRESSURE)
    span = seconds(cuff[-1]) - seconds(cuff[0])
    assert len(cuff) / span == pytest.approx(25.0, rel=0.02)
    phases = [Flag.DEFLATING in r.flags for r in cuff]
    turn = phases.index(True)
    assert not any(phases[:turn]), "INFLATING first"
    assert all(phases[turn:]), "then DEFLATING to the end"
    assert all(r.flags & {Flag.INFLATING, Flag.DEFLATING} for r in cuff)
    peak = max(float(r.value or 0) for r in cuff)
    assert truth.sys + 25 <= peak <= truth.sys + 36
    assert 5.0 <= seconds(cuff[turn]) <= 9.0, "inflation takes 5-8 s"


def test_oscillations_peak_near_mean_arterial_pressure(manual_clock: ManualClock) -> None:
    truth = Truth(sys=150, dia=90, hr=70)
    driver = SunTechDriver(port="sim", repeat_every=300.0)
    readings = pump(SunTechSimulator(truth, seed=5), driver, manual_clock, until=40.0)
    deflating = [
        r
        for r in of_kind(readings, Kind.CUFF_PRESSURE)
        if Flag.DEFLATING in r.flags and float(r.value or 0) > truth.dia - 8
    ]
    t = np.array([seconds(r) for r in deflating])
    p = np.array([float(r.value or 0) for r in deflating])
    trend = np.polyval(np.polyfit(t, p, 1), t)
    beat = round(25.0 * 60.0 / truth.hr)
    windows = range(0, len(p) - beat, beat)
    ripple = np.array([np.ptp(p[i : i + beat] - trend[i : i + beat]) for i in windows])
    cuff = np.array([trend[i : i + beat].mean() for i in windows])
    curve, slope, _ = np.polyfit(cuff, ripple, 2)  # the oscillogram, as a parabola
    assert curve < 0
    assert abs(-slope / (2 * curve) - mean_arterial(truth.sys, truth.dia)) <= 12
    near_map = ripple[abs(cuff - mean_arterial(truth.sys, truth.dia)) < 10].mean()
    above_sys = ripple[cuff > truth.sys + 15].mean()
    assert near_map > 1.5 * above_sys


def test_fast_cycle_ends_within_10_s_with_enough_beats(manual_clock: ManualClock) -> None:
    sim = SunTechSimulator(Truth(), seed=2, fast=True)
    driver = SunTechDriver(port="sim", repeat_every=300.0)
    readings = pump(sim, driver, manual_clock, until=11.0)
    systolic = of_kind(readings, Kind.SYSTOLIC_BP)
    assert [r.value for r in systolic] == [128]
    assert seconds(systolic[0]) <= 10.0
    packet = proto.framer().feed(sim.receive(BP_DATA, 11.0))[0]
    assert isinstance(packet, BpData)
    assert packet.beats >= 8


@pytest.mark.parametrize(("code", "flag"), [(1, None), (2, Flag.MOTION), (87, None), (89, None)])
def test_cuff_errors_never_become_values(
    manual_clock: ManualClock, code: int, flag: Flag | None
) -> None:
    truth = Truth(cuff_error=code)
    driver = SunTechDriver(port="sim", repeat_every=300.0)
    readings = pump(SunTechSimulator(truth, seed=4, fast=True), driver, manual_clock, until=10.0)
    results = [r for r in readings if r.kind in BP_KINDS]
    assert {r.kind for r in results} == set(BP_KINDS)
    for reading in results:
        assert reading.value is None
        assert reading.status is Status.NOT_AVAILABLE
        assert reading.error_code == code
        assert reading.note == proto.describe_error(code)
        assert Flag.CUFF_ERROR in reading.flags
        assert flag is None or flag in reading.flags
    assert driver.condition is Condition.ERROR


def test_leaking_cuff_never_reaches_pressure(manual_clock: ManualClock) -> None:
    driver = SunTechDriver(port="sim", repeat_every=300.0)
    sim = SunTechSimulator(Truth(cuff_error=87), seed=4, fast=True)
    readings = pump(sim, driver, manual_clock, until=5.0)
    assert max(float(r.value or 0) for r in of_kind(readings, Kind.CUFF_PRESSURE)) < 30


def test_idle_module_is_polled_once_a_second_without_readings(manual_clock: ManualClock) -> None:
    driver = SunTechDriver(port="sim")
    sim = SunTechSimulator(Truth(), seed=1)
    driver.connect(manual_clock.at(0.0))
    sent: list[tuple[float, bytes]] = []
    readings: list[Reading] = []
    for step in range(501):
        t = step * 0.02
        at = manual_clock.at(t)
        driver.tick(at)
        out = driver.take_output()
        if out:
            sent.append((t, out))
        readings += driver.receive(sim.emit(t) + sim.receive(out, t), at)
    assert [out for _, out in sent[:2]] == [STATUS, RETURN_STRING]
    polls = [t for t, out in sent[2:]]
    assert all(out == CUFF for _, out in sent[2:])
    assert len(polls) == 10
    assert np.diff(polls) == pytest.approx(1.0, abs=0.03)
    assert readings == []
    assert driver.condition is Condition.READY
    assert sim.cycles == 0


def test_repeat_every_starts_on_connect_and_after_each_result(manual_clock: ManualClock) -> None:
    sim = SunTechSimulator(Truth(), seed=6, fast=True)
    driver = SunTechDriver(port="sim", repeat_every=3.0)
    readings = pump(sim, driver, manual_clock, until=13.0)
    first = of_kind(readings, Kind.SYSTOLIC_BP)[0]
    assert sim.cycles == 2
    assert sim.measuring
    assert driver.condition is Condition.MEASURING
    later = [r for r in of_kind(readings, Kind.CUFF_PRESSURE) if seconds(r) > seconds(first)]
    assert seconds(later[0]) == pytest.approx(seconds(first) + 3.0, abs=0.1)


def test_start_and_abort_send_their_bytes(manual_clock: ManualClock) -> None:
    driver = started(manual_clock)
    driver.receive(bytes(WordReply(40)), manual_clock.at(0.12))
    driver.abort(manual_clock.at(0.13))
    assert driver.take_output() == ABORT
    driver.receive(bytes(Ack(AckCode.ABORTED)), manual_clock.at(0.15))
    assert driver.take_output() == CUFF, "the cuff is watched while it empties"
    driver.receive(bytes(WordReply(20)), manual_clock.at(0.16))
    readings = driver.receive(DONE, manual_clock.at(1.0))
    assert readings == []
    assert driver.take_output() == b"", "no result is asked for after an abort"
    assert driver.condition is Condition.READY
    assert not driver.measuring


def test_abort_stops_the_simulated_cycle(manual_clock: ManualClock) -> None:
    sim = SunTechSimulator(Truth(), seed=1)
    driver = SunTechDriver(port="sim", repeat_every=300.0)
    pump(sim, driver, manual_clock, until=8.0)
    assert sim.measuring
    driver.abort(manual_clock.at(8.0))
    readings = pump_on(sim, driver, manual_clock, 8.02, 12.0)
    assert sim.receive(START, 12.1) == bytes(Ack(AckCode.RECEIVED)), "idle again, not busy"
    assert not of_kind(readings, Kind.SYSTOLIC_BP)
    assert driver.condition is Condition.READY


def pump_on(
    sim: SunTechSimulator, driver: SunTechDriver, clock: ManualClock, start: float, until: float
) -> list[Reading]:
    """Like ``pump`` but without reconnecting: keeps an ongoing conversation going."""
    readings: list[Reading] = []
    t = start
    while t <= until:
        at = clock.at(t)
        driver.tick(at)
        reply = sim.receive(driver.take_output(), t)
        readings += driver.receive(sim.emit(t) + reply, at)
        t += 0.02
    return readings


def test_refusal_is_answered_by_one_resend_then_an_error_reading(
    manual_clock: ManualClock,
) -> None:
    driver = SunTechDriver(port="sim")
    handshake(driver, manual_clock)
    driver.start_measurement(manual_clock.at(0.1))
    assert driver.take_output() == START
    assert driver.receive(bytes(Ack(AckCode.NOT_ACKNOWLEDGED)), manual_clock.at(0.12)) == []
    assert driver.take_output() == START, "sent once more"
    readings = driver.receive(bytes(Ack(AckCode.BUSY)), manual_clock.at(0.14))
    assert [r.kind for r in readings] == list(BP_KINDS)
    assert all(r.value is None and r.status is Status.NOT_AVAILABLE for r in readings)
    assert "start request, sent twice" in readings[0].note
    assert "'B'" in readings[0].note
    assert not driver.measuring


def test_reply_timeout_resends_once_then_reports(manual_clock: ManualClock) -> None:
    driver = started(manual_clock)
    driver.receive(bytes(WordReply(12)), manual_clock.at(0.12))
    driver.tick(manual_clock.at(0.14))
    assert driver.take_output() == CUFF
    driver.tick(manual_clock.at(0.60))
    assert driver.take_output() == b"", "not yet timed out"
    driver.tick(manual_clock.at(0.65))
    assert driver.take_output() == CUFF, "sent once more after 0.5 s"
    readings = driver.tick(manual_clock.at(1.16))
    assert driver.take_output() == CUFF, "given up: the next poll goes out"
    assert [(r.kind, r.value, r.status) for r in readings] == [
        (Kind.CUFF_PRESSURE, None, Status.NOT_AVAILABLE)
    ]
    assert readings[0].note.startswith("No valid answer to the cuff-pressure request")


def test_garbled_reply_is_discarded_and_the_request_repeated(manual_clock: ManualClock) -> None:
    sim = GarbledResultOnce(Truth(), seed=2, fast=True)
    driver = SunTechDriver(port="sim", repeat_every=300.0)
    readings = pump(sim, driver, manual_clock, until=11.0)
    assert sim.garbled
    assert driver.stats.discards["bad checksum"] == 1
    assert [r.value for r in of_kind(readings, Kind.SYSTOLIC_BP)] == [128]


def test_lost_completion_falls_back_to_the_empty_cuff(manual_clock: ManualClock) -> None:
    driver = SunTechDriver(port="sim", repeat_every=300.0)
    readings = pump(LostCompletion(Truth(), seed=2, fast=True), driver, manual_clock, until=13.0)
    systolic = of_kind(readings, Kind.SYSTOLIC_BP)
    assert [r.value for r in systolic] == [128]
    assert 9.0 < seconds(systolic[0]) < 12.5


def test_no_pressure_marker_never_becomes_a_value(manual_clock: ManualClock) -> None:
    driver = started(manual_clock)
    (reading,) = driver.receive(bytes(WordReply(proto.NO_PRESSURE)), manual_clock.at(0.12))
    assert reading.kind is Kind.CUFF_PRESSURE
    assert reading.value is None
    assert reading.status is Status.NOT_AVAILABLE


def test_result_without_values_is_not_a_reading_of_zero(manual_clock: ManualClock) -> None:
    driver = started(manual_clock)
    driver.receive(bytes(WordReply(0)), manual_clock.at(0.12))
    driver.receive(DONE, manual_clock.at(0.2))
    assert driver.take_output() == BP_DATA
    readings = driver.receive(bytes(BpData(0, 0, 0, 70)), manual_clock.at(0.25))
    assert [(r.kind, r.value) for r in readings] == [
        (Kind.SYSTOLIC_BP, None),
        (Kind.DIASTOLIC_BP, None),
        (Kind.MEAN_BP, None),
        (Kind.PULSE_RATE, 70),
    ]


def test_error_code_wins_over_values_in_the_packet(manual_clock: ManualClock) -> None:
    driver = started(manual_clock)
    driver.receive(bytes(WordReply(0)), manual_clock.at(0.12))
    driver.receive(DONE, manual_clock.at(0.2))
    assert driver.take_output() == BP_DATA
    packet = BpData(131, 85, 100, 77, error_code=2)
    readings = driver.receive(bytes(packet), manual_clock.at(0.25))
    assert [(r.kind, r.value, r.error_code) for r in readings] == [
        (kind, None, 2) for kind in BP_KINDS
    ]
    assert all(r.flags == {Flag.CUFF_ERROR, Flag.MOTION} for r in readings)
    assert driver.condition is Condition.ERROR


def test_a_cycle_that_never_ends_is_given_up(manual_clock: ManualClock) -> None:
    driver = started(manual_clock)
    driver.receive(bytes(WordReply(150)), manual_clock.at(0.12))
    driver.tick(manual_clock.at(150.0))
    assert driver.take_output() == CUFF, "still polling at 150 s"
    driver.receive(bytes(WordReply(150)), manual_clock.at(150.01))
    driver.tick(manual_clock.at(201.0))
    assert driver.take_output() == BP_DATA
    assert not driver.measuring


def test_motion_disturbs_the_cuff_pressure(manual_clock: ManualClock) -> None:
    def roughness(truth: Truth) -> float:
        driver = SunTechDriver(port="sim", repeat_every=300.0)
        readings = pump(SunTechSimulator(truth, seed=7), driver, manual_clock, until=25.0)
        p = np.array([float(r.value or 0) for r in of_kind(readings, Kind.CUFF_PRESSURE)])
        return float(np.abs(np.diff(p[250:550])).mean())  # 10-22 s: deflating

    assert roughness(Truth(motion=(Period(10.0, 22.0),))) > 2 * roughness(Truth())


def test_poll_rate_must_fit_the_tick_interval() -> None:
    with pytest.raises(ValueError, match="pressure_poll_hz"):
        SunTechDriver(port="sim", pressure_poll_hz=100.0)
    with pytest.raises(ValueError, match="repeat_every"):
        SunTechDriver(port="sim", repeat_every=0.0)


def test_simulator_refuses_garbled_and_unmodelled_commands() -> None:
    sim = SunTechSimulator(Truth())
    refused = bytes(Ack(AckCode.NOT_ACKNOWLEDGED))
    assert sim.receive(bytes.fromhex("3a 20 a7"), 0.0) == refused  # bad checksum
    assert sim.receive(bytes(proto.Command(0x8A)), 0.0) == refused  # reset: not simulated
    assert sim.receive(bytes(proto.Command(0x79, b"\x07\x00")), 0.0) == refused
    assert sim.receive(START, 0.0) == bytes(Ack(AckCode.RECEIVED))
    assert sim.receive(START, 0.1) == bytes(Ack(AckCode.BUSY))
