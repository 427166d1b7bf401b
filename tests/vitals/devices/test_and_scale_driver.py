"""A&D weighing indicator driver against its simulator, in scenario time (no port)."""

from __future__ import annotations

from decimal import Decimal

from tests.vitals.devices.conftest import ManualClock, pump
from vitals.devices.and_scale import AndScaleDriver
from vitals.devices.driver import Condition
from vitals.model import Flag, Kind, Reading, Status
from vitals.protocols.and_scale import CommandCode, ErrorCode, ErrorReply, ScaleCommand
from vitals.sim.and_scale import DIVISION, AndScaleSimulator
from vitals.sim.truth import Period, Truth


def seconds(reading: Reading) -> float:
    """Scenario time of a reading (the manual clock starts at 1 s monotonic)."""
    return (reading.at.monotonic_ns - 1_000_000_000) / 1e9


def advance(
    sim: AndScaleSimulator,
    driver: AndScaleDriver,
    clock: ManualClock,
    *,
    start: float,
    until: float,
    step: float = 0.02,
) -> list[Reading]:
    """Carry on a pumped scenario from ``start`` (no reconnect, no ticks)."""
    readings: list[Reading] = []
    t = start
    while t <= until:
        reply = sim.receive(driver.take_output(), t)
        readings += driver.receive(sim.emit(t) + reply, clock.at(t))
        t += step
    return readings


def test_stable_weight_matches_truth_at_the_scale_division(manual_clock: ManualClock) -> None:
    truth = Truth(weight=Decimal("63.43"), scale_settle=2.0)
    driver = AndScaleDriver(port="sim")
    readings = pump(AndScaleSimulator(truth, seed=1), driver, manual_clock, until=5.0)
    valid = [r for r in readings if r.status is Status.VALID]
    assert valid, "no stable weight within 5 s"
    for reading in valid:
        assert reading.kind is Kind.BODY_WEIGHT
        assert reading.unit == "kg"
        assert reading.value is not None
        assert abs(reading.value - truth.weight) <= DIVISION
        assert reading.value % DIVISION == 0
        assert reading.value.as_tuple().exponent == -2  # written as e.g. 63.45, not 63.4
    assert min(seconds(r) for r in valid) >= 2.0 - 1e-6
    assert driver.condition is Condition.MEASURING
    assert all(r.device.protocol == "and-scale" for r in readings)


def test_weight_is_unstable_while_the_resident_settles(manual_clock: ManualClock) -> None:
    truth = Truth(scale_settle=2.0)
    readings = pump(
        AndScaleSimulator(truth, seed=2), AndScaleDriver(port="sim"), manual_clock, until=1.9
    )
    assert readings
    assert all(r.status is Status.QUESTIONABLE for r in readings)
    assert all(Flag.UNSTABLE in r.flags for r in readings)
    assert all(r.value is not None for r in readings)


def test_stream_runs_at_ten_lines_a_second(manual_clock: ManualClock) -> None:
    readings = pump(
        AndScaleSimulator(Truth(), seed=3), AndScaleDriver(port="sim"), manual_clock, until=5.0
    )
    assert 49 <= len(readings) <= 51


def test_unstable_scale_is_never_accepted(manual_clock: ManualClock) -> None:
    truth = Truth(unstable_scale=True)
    readings = pump(
        AndScaleSimulator(truth, seed=4), AndScaleDriver(port="sim"), manual_clock, until=10.0
    )
    assert readings
    assert not [r for r in readings if r.status is Status.VALID]
    assert all(Flag.UNSTABLE in r.flags for r in readings)


def test_motion_makes_the_weight_unstable_until_it_settles_again(
    manual_clock: ManualClock,
) -> None:
    truth = Truth(scale_settle=1.0, motion=(Period(3.0, 4.0),))
    readings = pump(
        AndScaleSimulator(truth, seed=5), AndScaleDriver(port="sim"), manual_clock, until=7.0
    )
    valid_times = [seconds(r) for r in readings if r.status is Status.VALID]
    assert any(1.0 <= s < 3.0 for s in valid_times)
    assert not any(3.0 <= s < 5.0 for s in valid_times)
    assert any(s >= 5.0 for s in valid_times)


def test_overload_never_becomes_a_value(manual_clock: ManualClock) -> None:
    truth = Truth(weight=Decimal(250))
    driver = AndScaleDriver(port="sim")
    readings = pump(AndScaleSimulator(truth, seed=6), driver, manual_clock, until=4.0)
    late = [r for r in readings if seconds(r) >= 1.0]
    assert late
    for reading in late:
        assert reading.value is None
        assert reading.status is Status.INVALID
        assert Flag.OVERLOAD in reading.flags
        assert reading.note
    assert driver.condition is Condition.ERROR


def test_fast_mode_settles_in_half_a_second(manual_clock: ManualClock) -> None:
    truth = Truth(scale_settle=8.0)
    fast = pump(
        AndScaleSimulator(truth, seed=7, fast=True),
        AndScaleDriver(port="sim"),
        manual_clock,
        until=1.0,
    )
    assert min(seconds(r) for r in fast if r.status is Status.VALID) <= 0.6
    slow = pump(
        AndScaleSimulator(truth, seed=7), AndScaleDriver(port="sim"), manual_clock, until=7.0
    )
    assert not [r for r in slow if r.status is Status.VALID]


def test_command_mode_polls_rw_at_every_tick(manual_clock: ManualClock) -> None:
    driver = AndScaleDriver(port="sim", poll=True)
    driver.connect(manual_clock.at(0.0))
    driver.tick(manual_clock.at(0.0))
    assert driver.take_output() == b"RW\r\n"
    sim = AndScaleSimulator(Truth(scale_settle=1.0), seed=8, stream=False)
    readings = pump(sim, driver, manual_clock, until=4.0)
    assert 19 <= len(readings) <= 21  # one per 0.2 s tick
    assert readings[-1].status is Status.VALID


def test_stream_mode_sends_nothing(manual_clock: ManualClock) -> None:
    driver = AndScaleDriver(port="sim")
    driver.connect(manual_clock.at(0.0))
    driver.tick(manual_clock.at(0.2))
    assert driver.take_output() == b""
    silent = AndScaleSimulator(Truth(), seed=9, stream=False)
    assert pump(silent, AndScaleDriver(port="sim"), manual_clock, until=2.0) == []


def test_zero_is_refused_while_the_resident_stands_on_it(manual_clock: ManualClock) -> None:
    sim = AndScaleSimulator(Truth(scale_settle=1.0), seed=10)
    driver = AndScaleDriver(port="sim")
    pump(sim, driver, manual_clock, until=2.0)
    driver.zero()
    command = driver.take_output()
    assert command == b"MZ\r\n"
    reply = sim.receive(command, 2.0)
    assert reply == b"I\r\n"
    assert driver.receive(reply, manual_clock.at(2.0)) == []
    assert driver.last_reply == ErrorReply(ErrorCode.UNPERFORMED)


def test_tare_switches_to_net_weight_and_clear_tare_back(manual_clock: ManualClock) -> None:
    truth = Truth(weight=Decimal("63.40"), scale_settle=1.0)
    sim = AndScaleSimulator(truth, seed=11)
    driver = AndScaleDriver(port="sim")
    pump(sim, driver, manual_clock, until=2.0)
    driver.tare()
    command = driver.take_output()
    assert command == b"MT\r\n"
    echo = sim.receive(command, 2.0)
    assert echo == b"MT\r\n"
    assert driver.receive(echo, manual_clock.at(2.0)) == []
    assert driver.last_reply == ScaleCommand(CommandCode.TARE)
    net = advance(sim, driver, manual_clock, start=2.02, until=3.0)
    assert net
    assert all(Flag.NET_WEIGHT in r.flags for r in net)
    assert all(r.value == Decimal("0.00") and r.status is Status.VALID for r in net)
    assert sim.receive(b"RT\r\n", 3.0) == b"ST,TR,+0063.40kg\r\n"
    driver.clear_tare()
    gross = advance(sim, driver, manual_clock, start=3.02, until=4.0)
    assert driver.last_reply == ScaleCommand(CommandCode.CLEAR_TARE)
    assert all(Flag.NET_WEIGHT not in r.flags for r in gross)
    assert gross[-1].value == Decimal("63.40")


def test_tare_while_unstable_is_refused(manual_clock: ManualClock) -> None:
    sim = AndScaleSimulator(Truth(unstable_scale=True), seed=12)
    assert sim.receive(b"MT\r\n", 3.0) == b"I\r\n"


def test_unknown_commands_are_answered_with_a_question_mark() -> None:
    sim = AndScaleSimulator(Truth(), seed=13)
    assert sim.receive(b"XYZ\r\n", 1.0) == b"?\r\n"
    assert sim.receive(b"Q\r\n", 1.0) == b"?\r\n"


def test_tare_lines_update_the_tare_not_the_body_weight(manual_clock: ManualClock) -> None:
    driver = AndScaleDriver(port="sim")
    driver.connect(manual_clock.at(0.0))
    assert driver.receive(b"ST,TR,+0002.00kg\r\n", manual_clock.at(0.1)) == []
    assert driver.tare_weight == Decimal("2.00")


def test_line_headers_become_status_and_flags(manual_clock: ManualClock) -> None:
    driver = AndScaleDriver(port="sim")
    driver.connect(manual_clock.at(0.0))
    at = manual_clock.at(0.1)
    net, held, grams, unitless = driver.receive(
        b"ST,NT,+0063.40kg\r\nHD,GS,+0063.40kg\r\nST,GS,+0063400 g\r\nST,GS,+0063.40  \r\n", at
    )
    assert (net.status, net.flags, str(net.value)) == (
        Status.VALID,
        frozenset({Flag.NET_WEIGHT}),
        "63.40",
    )
    assert held.status is Status.QUESTIONABLE
    assert held.note
    assert (grams.value, grams.unit) == (Decimal(63400), "g")
    assert unitless.status is Status.INVALID
    assert driver.condition is Condition.MEASURING


def test_an_empty_platform_leaves_the_scale_ready(manual_clock: ManualClock) -> None:
    driver = AndScaleDriver(port="sim")
    driver.connect(manual_clock.at(0.0))
    (empty,) = driver.receive(b"ST,GS,+0000.05kg\r\n", manual_clock.at(0.1))
    assert empty.status is Status.VALID
    assert driver.condition is Condition.READY
