"""Nonin OEM III (format #2) driver against its simulator, in scenario time (no port)."""

from __future__ import annotations

from statistics import median

from tests.vitals.devices.conftest import ManualClock, pump
from vitals.devices.driver import Condition
from vitals.devices.nonin import NoninOem3Driver
from vitals.model import Flag, Kind, Reading, Status
from vitals.protocols import nonin as proto
from vitals.sim.nonin import SOFTWARE_REVISION, NoninOem3Simulator
from vitals.sim.truth import Period, Truth


def stream(sim: NoninOem3Simulator, until: float, step: float = 0.02) -> bytes:
    """Everything the simulated module sends up to ``until`` seconds."""
    out = bytearray()
    t = 0.0
    while t <= until:
        out += sim.emit(t)
        t += step
    return bytes(out)


def packets_of(data: bytes) -> list[proto.Packet]:
    assembler = proto.PacketAssembler()
    return [p for f in proto.framer().feed(data) if (p := assembler.add(f)) is not None]


def numbers(readings: list[Reading], kind: Kind) -> list[Reading]:
    return [r for r in readings if r.kind is kind]


def test_reports_truth_after_acquisition(manual_clock: ManualClock) -> None:
    driver = NoninOem3Driver(port="sim")
    readings = pump(
        NoninOem3Simulator(Truth(hr=64, spo2=95), seed=3), driver, manual_clock, until=8
    )
    spo2 = [r for r in numbers(readings, Kind.SPO2) if r.status is Status.VALID]
    rate = [r for r in numbers(readings, Kind.PULSE_RATE) if r.status is Status.VALID]
    assert spo2, "no valid SpO2 within 8 s"
    assert abs(median(float(r.value or 0) for r in spo2) - 95) <= 1
    assert abs(median(float(r.value or 0) for r in rate) - 64) <= 3
    assert driver.condition is Condition.MEASURING
    assert driver.device.firmware == f"revision {SOFTWARE_REVISION}"
    assert all(r.device.protocol == "nonin-oem3" for r in readings)


def test_pleth_streams_at_75_hz_and_numbers_per_packet(manual_clock: ManualClock) -> None:
    driver = NoninOem3Driver(port="sim")
    readings = pump(NoninOem3Simulator(Truth(), seed=1), driver, manual_clock, until=10.0)
    pleth = numbers(readings, Kind.PLETH)
    assert 745 <= len(pleth) <= 755
    assert all(0 <= (r.value or 0) <= 255 for r in pleth)
    assert any(Flag.PULSE_BEEP in r.flags for r in pleth)
    assert 28 <= driver.packet_stats.packets <= 31
    assert driver.packet_stats.dropped == 0
    # numbers change about once a second: reported on change or once a second, not per frame
    assert 8 <= len(numbers(readings, Kind.SPO2)) <= 25


def test_acquisition_markers_never_become_values(manual_clock: ManualClock) -> None:
    driver = NoninOem3Driver(port="sim")
    readings = pump(NoninOem3Simulator(Truth(), seed=2), driver, manual_clock, until=2.5)
    spo2 = numbers(readings, Kind.SPO2) + numbers(readings, Kind.PULSE_RATE)
    assert spo2
    assert all(r.value is None and r.status is Status.NOT_AVAILABLE for r in spo2)


def test_finger_out_uses_recording_values_not_the_held_display(manual_clock: ManualClock) -> None:
    truth = Truth(finger_out=(Period(6.0, 9.0),))
    sent = packets_of(stream(NoninOem3Simulator(truth, seed=5), until=8.5))
    late = [p.values for p in sent[20:]]  # packets from ~6.7 s on: finger out
    assert all(v.extended_spo2 == proto.NO_SPO2 for v in late)
    assert all(v.extended_heart_rate == proto.NO_HEART_RATE for v in late)
    assert all(v.spo2_display != proto.NO_SPO2 for v in late), "display holds the value 10 s"

    driver = NoninOem3Driver(port="sim")
    readings = pump(NoninOem3Simulator(truth, seed=5), driver, manual_clock, until=8.5)
    out = [r for r in readings if r.kind is not Kind.PLETH and Flag.SENSOR_ALARM in r.flags]
    assert out
    assert all(r.value is None and r.status is Status.NOT_AVAILABLE for r in out)
    assert driver.condition is Condition.NO_CONTACT


def test_motion_marks_numbers_questionable(manual_clock: ManualClock) -> None:
    truth = Truth(motion=(Period(5.0, 9.0),))
    driver = NoninOem3Driver(port="sim")
    readings = pump(NoninOem3Simulator(truth, seed=6), driver, manual_clock, until=9.0)
    doubtful = [r for r in numbers(readings, Kind.SPO2) if Flag.ARTIFACT in r.flags]
    assert doubtful
    assert all(r.status is Status.QUESTIONABLE and r.value is not None for r in doubtful)


def test_a_corrupted_frame_drops_only_its_packet(manual_clock: ManualClock) -> None:
    data = bytearray(stream(NoninOem3Simulator(Truth(), seed=7, fast=True), until=3.0))
    data[125 + 5 * 10 + 4] ^= 0xFF  # checksum of frame 11 in the second packet
    driver = NoninOem3Driver(port="sim")
    driver.connect(manual_clock.at(0.0))
    readings = driver.receive(bytes(data), manual_clock.at(3.0))
    assert driver.stats.discards["bad checksum"] >= 1
    assert driver.packet_stats.dropped == 1
    assert driver.packet_stats.packets == len(data) // 125 - 1
    assert len(numbers(readings, Kind.PLETH)) == len(data) // 5 - 1


def test_timer_counts_packets_and_revision_is_sent() -> None:
    sent = packets_of(stream(NoninOem3Simulator(Truth(), seed=8), until=4.0))
    assert [p.values.timer for p in sent] == list(range(len(sent)))
    assert {p.values.software_revision for p in sent} == {SOFTWARE_REVISION}
    assert all(bytes(p)[0] == 0x01 and bytes(p)[1] & 0x81 == 0x81 for p in sent)


def test_takes_and_needs_no_commands(manual_clock: ManualClock) -> None:
    driver = NoninOem3Driver(port="sim")
    sim = NoninOem3Simulator(Truth(), seed=9)
    driver.connect(manual_clock.at(0.0))
    driver.tick(manual_clock.at(0.5))
    assert driver.take_output() == b""
    assert sim.receive(b"\x02\x70\x02\x02\x07\x03", 0.5) == b""
    assert driver.spec.frame_rate == 75


def test_fast_mode_shortens_acquisition() -> None:
    def first_valid(fast: bool) -> float:
        driver = NoninOem3Driver(port="sim")
        sim = NoninOem3Simulator(Truth(), seed=10, fast=fast)
        readings = pump(sim, driver, ManualClock(), until=4.5)
        start = readings[0].at
        return min(
            r.at.seconds_since(start)
            for r in numbers(readings, Kind.SPO2)
            if r.status is Status.VALID
        )

    # acquisition (0.5 s fast, 3 s real) plus the packet that carries the first value
    assert first_valid(fast=True) <= 1.1
    assert 3.0 <= first_valid(fast=False) <= 3.7
