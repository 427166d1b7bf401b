"""CMS50D+ 4.6 / CMS50EW driver against its simulator, in scenario time (no port)."""

from __future__ import annotations

from statistics import median

from tests.vitals.devices.conftest import ManualClock, pump
from vitals.devices.contec_7d import Cms50ewDriver
from vitals.devices.driver import Condition
from vitals.model import Flag, Kind, Reading, Status
from vitals.protocols import contec_7d as proto
from vitals.sim.contec_7d import Cms50ewSimulator
from vitals.sim.truth import Period, Truth

START_LIVE = bytes.fromhex("7d 81 a1 80 80 80 80 80 80")
KEEP_ALIVE = bytes.fromhex("7d 81 af 80 80 80 80 80 80")


class RecordingSimulator(Cms50ewSimulator):
    """The simulator, noting every command the host sent and when."""

    def __init__(self, truth: Truth, *, seed: int = 0, fast: bool = False) -> None:
        super().__init__(truth, seed=seed, fast=fast)
        self.heard: list[tuple[float, bytes]] = []
        self.asleep_until = 0.0

    def receive(self, data: bytes, t: float) -> bytes:
        for offset in range(0, len(data), proto.PACKAGE_SIZE):
            self.heard.append((t, data[offset : offset + proto.PACKAGE_SIZE]))
        if t < self.asleep_until:
            return b""  # powered off: the command is lost
        return super().receive(data, t)


def valid(readings: list[Reading], kind: Kind) -> list[float]:
    return [float(r.value or 0) for r in readings if r.kind is kind and r.status is Status.VALID]


def test_start_live_is_queued_on_connect(manual_clock: ManualClock) -> None:
    driver = Cms50ewDriver(port="sim")
    driver.connect(manual_clock.at(0.0))
    assert driver.take_output() == START_LIVE
    assert driver.condition is Condition.WAITING


def test_keep_alive_every_5_seconds_while_streaming(manual_clock: ManualClock) -> None:
    sim = RecordingSimulator(Truth(), seed=1, fast=True)
    pump(sim, Cms50ewDriver(port="sim"), manual_clock, until=16.0)
    assert sim.heard[0] == (0.0, START_LIVE)
    keep_alives = [t for t, data in sim.heard if data == KEEP_ALIVE]
    assert [round(t) for t in keep_alives] == [5, 10, 15]
    assert all(0 <= t - 5 * (i + 1) < 0.55 for i, t in enumerate(keep_alives))
    assert len(sim.heard) == 4, "no other command while the stream flows"


def test_keep_alives_keep_the_stream_beyond_the_device_timeout(manual_clock: ManualClock) -> None:
    driver = Cms50ewDriver(port="sim")
    sim = Cms50ewSimulator(Truth(), seed=2, fast=True)
    readings = pump(sim, driver, manual_clock, until=20.0)
    late = [r for r in readings if r.kind is Kind.PLETH and r.at.seconds_since(readings[0].at) > 19]
    assert 50 <= len(late) <= 70, "still 60 Hz long after the 8 s fast timeout"
    assert sim.streaming


def test_simulator_is_silent_until_start_live() -> None:
    sim = Cms50ewSimulator(Truth(), fast=True)
    assert sim.emit(1.0) == b""
    assert sim.receive(START_LIVE, 1.0) == b""
    assert sim.emit(1.5).startswith(b"\x01")
    assert sim.streaming


def _stream_times(sim: Cms50ewSimulator, until: float, step: float = 0.1) -> list[float]:
    """Scenario times at which the simulator sent live frames."""
    times = []
    t = 0.0
    while t <= until:
        if sim.emit(t):
            times.append(t)
        t = round(t + step, 6)
    return times


def test_stream_stops_when_keep_alives_stop_fast() -> None:
    sim = Cms50ewSimulator(Truth(), fast=True)
    sim.receive(START_LIVE, 0.0)
    times = _stream_times(sim, 12.0)
    assert times[0] == 0.0
    assert 7.9 <= times[-1] <= 8.0
    assert not sim.streaming


def test_stream_stops_after_30_s_without_keep_alives() -> None:
    sim = Cms50ewSimulator(Truth())
    sim.receive(START_LIVE, 0.0)
    times = _stream_times(sim, 35.0, step=0.5)
    assert 29.5 <= times[-1] <= 30.0


def test_a_keep_alive_extends_the_stream() -> None:
    sim = Cms50ewSimulator(Truth(), fast=True)
    sim.receive(START_LIVE, 0.0)
    assert sim.emit(4.0)
    sim.receive(KEEP_ALIVE, 5.0)
    times = _stream_times(sim, 16.0)
    assert 12.9 <= times[-1] <= 13.0


def test_keep_alive_does_not_restart_a_stopped_stream() -> None:
    sim = Cms50ewSimulator(Truth(), fast=True)
    sim.receive(START_LIVE, 0.0)
    assert _stream_times(sim, 9.0)
    sim.receive(KEEP_ALIVE, 9.0)
    assert sim.emit(10.0) == b""


def test_stop_live_is_acknowledged_and_stops_the_stream() -> None:
    sim = Cms50ewSimulator(Truth(), fast=True)
    sim.receive(START_LIVE, 0.0)
    assert sim.emit(1.0)
    assert sim.receive(bytes(proto.STOP_LIVE), 1.0) == bytes.fromhex("0c 80")
    assert sim.emit(2.0) == b""


def test_unknown_and_malformed_commands_get_no_answer() -> None:
    sim = Cms50ewSimulator(Truth(), fast=True)
    assert sim.receive(bytes(proto.Command(0xB0)), 0.0) == b""
    assert sim.receive(bytes.fromhex("7d 81 a1 80 00 80 80 80 80"), 0.1) == b""
    assert sim.emit(1.0) == b"", "a malformed START_LIVE starts nothing"


def test_driver_asks_again_when_the_device_missed_start_live(manual_clock: ManualClock) -> None:
    sim = RecordingSimulator(Truth(), seed=5, fast=True)
    sim.asleep_until = 1.0  # the oximeter is switched on a second after the port opened
    readings = pump(sim, Cms50ewDriver(port="sim"), manual_clock, until=4.0)
    starts = [t for t, data in sim.heard if data == START_LIVE]
    assert starts[0] == 0.0
    assert 2.0 <= starts[1] <= 2.55
    assert any(r.kind is Kind.PLETH for r in readings)


def test_reports_truth_after_acquisition(manual_clock: ManualClock) -> None:
    truth = Truth(hr=64, spo2=95)
    driver = Cms50ewDriver(port="sim")
    readings = pump(Cms50ewSimulator(truth, seed=3), driver, manual_clock, until=8.0)
    spo2 = valid(readings, Kind.SPO2)
    assert spo2, "no valid SpO2 within 8 s"
    assert abs(median(spo2) - 95) <= 1
    assert abs(median(valid(readings, Kind.PULSE_RATE)) - 64) <= 3
    assert driver.condition is Condition.MEASURING
    assert all(r.device.protocol == "cms50ew" for r in readings)
    assert not [r for r in readings if r.kind is Kind.PERFUSION_INDEX], "PI scale is unknown"


def test_pulse_rate_above_127_survives_the_high_byte(manual_clock: ManualClock) -> None:
    driver = Cms50ewDriver(port="sim")
    readings = pump(
        Cms50ewSimulator(Truth(hr=150), seed=6, fast=True), driver, manual_clock, until=4.0
    )
    assert abs(median(valid(readings, Kind.PULSE_RATE)) - 150) <= 4


def test_pleth_streams_at_60_hz(manual_clock: ManualClock) -> None:
    driver = Cms50ewDriver(port="sim")
    readings = pump(Cms50ewSimulator(Truth(), seed=1), driver, manual_clock, until=5.0)
    pleth = [r for r in readings if r.kind is Kind.PLETH]
    assert 290 <= len(pleth) <= 310
    assert any(Flag.PULSE_BEEP in r.flags for r in pleth)
    assert driver.stats.discarded_bytes == 0


def test_searching_and_finger_out_never_become_values(manual_clock: ManualClock) -> None:
    truth = Truth(finger_out=(Period(5.0, 7.0),))
    driver = Cms50ewDriver(port="sim")
    readings = pump(Cms50ewSimulator(truth, seed=2), driver, manual_clock, until=6.0)
    early = [r for r in readings if r.kind is Kind.SPO2 and r.at.seconds_since(readings[0].at) < 2]
    assert early
    assert all(r.value is None and r.status is Status.NOT_AVAILABLE for r in early)
    assert all(Flag.SEARCHING in r.flags for r in early)
    out = [r for r in readings if r.kind is Kind.SPO2 and Flag.FINGER_OUT in r.flags]
    assert out
    assert all(r.value is None for r in out)
    assert driver.condition is Condition.NO_CONTACT


def test_sentinel_frames_never_become_values(manual_clock: ManualClock) -> None:
    driver = Cms50ewDriver(port="sim")
    driver.connect(manual_clock.at(0.0))
    no_spo2 = proto.LiveFrame(signal_strength=3, pleth=40, bar_graph=3, pulse_rate=0, spo2=101)
    readings = driver.receive(bytes(no_spo2), manual_clock.at(0.1))
    numbers = [r for r in readings if r.kind in (Kind.SPO2, Kind.PULSE_RATE)]
    assert len(numbers) == 2
    assert all(r.value is None and r.status is Status.NOT_AVAILABLE for r in numbers)


def test_fast_mode_shortens_acquisition(manual_clock: ManualClock) -> None:
    fast = pump(
        Cms50ewSimulator(Truth(), seed=7, fast=True),
        Cms50ewDriver(port="a"),
        manual_clock,
        until=1.5,
    )
    assert valid(fast, Kind.SPO2), "fast mode: numbers within 1.5 s"
    slow = pump(
        Cms50ewSimulator(Truth(), seed=7), Cms50ewDriver(port="b"), ManualClock(), until=2.5
    )
    assert not valid(slow, Kind.SPO2), "real timing: still searching at 2.5 s"
