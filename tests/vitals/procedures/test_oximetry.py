"""The oximetry procedure against the real simulators and drivers, and on hand-made readings."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest

from vitals.clock import Instant
from vitals.devices.catalog import create_driver
from vitals.measurement import Measurement, Method
from vitals.model import DeviceInfo, Flag, Kind, Reading, Status
from vitals.procedures.oximetry import NO_FINGER, NO_READING, POOR_SIGNAL, OximetryProcedure
from vitals.reasons import DEVICE_SILENT, MOTION
from vitals.sim.catalog import SIMULATORS
from vitals.sim.contec_legacy import Cms50LegacySimulator
from vitals.sim.oximeter import OximeterModel
from vitals.sim.pleth import synthesize
from vitals.sim.scenario import Scenario, ScenarioClock
from vitals.sim.simulator import Simulator
from vitals.sim.truth import Period, Truth

PLETH_OXIMETERS = ["cms50d-legacy", "cms50ew", "berrymed-bci", "nonin-oem3"]


def _measure(
    sim: Simulator, name: str, *, until: float = 130.0, **options: float
) -> tuple[dict[Kind, Measurement], float]:
    """Run the procedure against ``sim`` and the driver for ``name``; results and end time."""
    procedure = OximetryProcedure(**options)  # type: ignore[arg-type]
    scenario = Scenario([(sim, create_driver(name, port="/dev/ttyUSB0"))])
    scenario.run(until, procedure=procedure)
    assert procedure.done
    return {m.kind: m for m in procedure.results}, scenario.t


def _detail(measurement: Measurement, name: str) -> str:
    return dict(measurement.details)[name]


@pytest.mark.parametrize("name", PLETH_OXIMETERS)
def test_a_still_resident_gets_valid_values_backed_by_the_waveform(name: str) -> None:
    truth = Truth(hr=68, spo2=95)
    results, ended = _measure(SIMULATORS[name](truth, seed=3), name)
    spo2, rate = results[Kind.SPO2], results[Kind.PULSE_RATE]
    assert spo2.status is Status.VALID
    assert rate.status is Status.VALID
    assert spo2.value is not None
    assert abs(spo2.value - 95) <= 1
    assert rate.value is not None
    assert abs(rate.value - 68) <= 3
    assert float(_detail(rate, "waveform-rate-per-min")) == pytest.approx(68, abs=3)
    assert rate.quality is not None
    assert rate.quality >= 0.5
    assert rate.method is Method.PULSE_OXIMETRY
    assert rate.device is not None
    assert rate.device.protocol == name
    assert ended < 20.0  # 3 s of device search, then 10 s of good signal


def test_an_oximeter_without_a_waveform_is_gated_on_its_own_flags() -> None:
    results, _ = _measure(
        SIMULATORS["masimo-ascii1"](Truth(hr=81, spo2=97), seed=1), "masimo-ascii1"
    )
    spo2, rate = results[Kind.SPO2], results[Kind.PULSE_RATE]
    assert spo2.status is Status.VALID
    assert spo2.value is not None
    assert abs(spo2.value - 97) <= 1
    assert rate.status is Status.VALID
    assert rate.value is not None
    assert abs(rate.value - 81) <= 3
    assert spo2.quality is None
    assert rate.quality is None
    assert _detail(rate, "waveform").startswith("none: this oximeter sends no waveform")


def test_a_motion_period_is_set_aside_and_the_values_still_count() -> None:
    truth = Truth(hr=90, motion=(Period(6.0, 12.0),))
    results, ended = _measure(Cms50LegacySimulator(truth, seed=5), "cms50d-legacy")
    rate = results[Kind.PULSE_RATE]
    assert rate.status is Status.VALID
    assert rate.value is not None
    assert abs(rate.value - 90) <= 3
    assert ended > 18.0  # the 10 s of good signal came after the motion
    assert results[Kind.SPO2].status is Status.VALID


def test_a_resident_who_never_keeps_still_gets_no_values_and_a_motion_reason() -> None:
    truth = Truth(hr=75, motion=(Period(4.0, 200.0),))
    results, ended = _measure(Cms50LegacySimulator(truth, seed=6), "cms50d-legacy")
    assert ended == pytest.approx(45.0, abs=1.0)  # the measuring window's end
    for measurement in results.values():
        assert measurement.status is Status.NOT_AVAILABLE
        assert MOTION in measurement.reasons
        assert measurement.retake_advised


def test_a_finger_put_in_late_is_measured_from_then_on() -> None:
    truth = Truth(hr=72, finger_out=(Period(0.0, 20.0),))
    results, ended = _measure(SIMULATORS["cms50ew"](truth, seed=2), "cms50ew")
    assert results[Kind.PULSE_RATE].status is Status.VALID
    assert 30.0 < ended < 40.0


def test_a_finger_taken_out_for_good_gives_no_values_and_says_why() -> None:
    truth = Truth(finger_out=(Period(8.0, 500.0),))
    results, _ = _measure(Cms50LegacySimulator(truth, seed=2), "cms50d-legacy")
    for measurement in results.values():
        assert measurement.status is Status.NOT_AVAILABLE
        assert measurement.reasons == (NO_FINGER,)


def test_no_finger_at_all_ends_at_the_time_limit() -> None:
    truth = Truth(finger_out=(Period(0.0, 500.0),))
    results, ended = _measure(
        SIMULATORS["berrymed-bci"](truth, seed=2), "berrymed-bci", time_limit=20.0
    )
    assert ended == pytest.approx(20.0, abs=0.1)
    assert all(m.reasons == (NO_FINGER,) for m in results.values())
    assert all(m.value is None for m in results.values())


def test_noise_makes_the_measurement_slower_but_not_wrong() -> None:
    truth = Truth(hr=75, spo2=96, noise=1.0)
    results, ended = _measure(Cms50LegacySimulator(truth, seed=0), "cms50d-legacy")
    spo2, rate = results[Kind.SPO2], results[Kind.PULSE_RATE]
    assert spo2.status is Status.VALID
    assert rate.status is Status.VALID
    assert spo2.value is not None
    assert abs(spo2.value - 96) <= 2
    assert rate.value is not None
    assert abs(rate.value - 75) <= 5
    assert ended > 15.0


def test_a_sensor_flagging_low_perfusion_is_never_accepted() -> None:
    # the Nonin module reports low perfusion when the noise swamps the pulse
    results, _ = _measure(SIMULATORS["nonin-oem3"](Truth(noise=1.0), seed=1), "nonin-oem3")
    for measurement in results.values():
        assert measurement.status is Status.NOT_AVAILABLE
        assert measurement.reasons == (POOR_SIGNAL,)


class _ShiftedDisplay(OximeterModel):
    """Shows a pulse rate 12 /min above the truth, as a faulty averaging would."""

    def _update_display(self, moving: bool) -> None:
        super()._update_display(moving)
        assert self._pulse_rate is not None
        self._pulse_rate += 12


class _WrongRateOximeter(Cms50LegacySimulator):
    def __init__(self, truth: Truth, *, seed: int = 0, fast: bool = False) -> None:
        super().__init__(truth, seed=seed, fast=fast)
        self._model = _ShiftedDisplay(truth, self.rng, sampling_rate=60.0, fast=fast)


def test_a_device_rate_the_waveform_contradicts_is_questionable() -> None:
    results, ended = _measure(_WrongRateOximeter(Truth(hr=70), seed=2), "cms50d-legacy")
    rate, spo2 = results[Kind.PULSE_RATE], results[Kind.SPO2]
    assert rate.status is Status.QUESTIONABLE
    assert spo2.status is Status.QUESTIONABLE
    assert rate.value is not None
    assert abs(rate.value - 82) <= 3
    assert [r.code for r in rate.reasons] == ["rate-mismatch"]
    assert "không khớp" in rate.reasons[0].vi
    assert float(_detail(rate, "waveform-rate-per-min")) == pytest.approx(70, abs=3)
    assert ended == pytest.approx(45.0, abs=1.0)


def test_progress_tells_the_resident_what_to_do() -> None:
    truth = Truth(hr=70, finger_out=(Period(0.0, 4.0),))
    procedure = OximetryProcedure()
    scenario = Scenario(
        [(Cms50LegacySimulator(truth, seed=1), create_driver("cms50d-legacy", port="p"))]
    )
    scenario.run(2.0, procedure=procedure)
    waiting = procedure.progress
    assert waiting.phase == "waiting"
    assert "finger" in waiting.en
    assert "ngón trỏ" in waiting.vi
    scenario.run(6.0, procedure=procedure)
    assert procedure.progress.phase == "measuring"
    assert "pulse" in procedure.progress.en  # the device is still searching
    scenario.run(14.0, procedure=procedure)
    middle = procedure.progress
    assert middle.phase == "measuring"
    assert "giữ yên" in middle.vi
    assert middle.seconds_left is not None
    assert 0 < middle.seconds_left < 10
    assert middle.fraction is not None
    assert 0 < middle.fraction < 1
    scenario.run(60.0, procedure=procedure)
    assert procedure.progress.phase == "done"


# -- hand-made readings ------------------------------------------------------------------------

DEVICE = DeviceInfo(model="test oximeter", protocol="test-oximeter", port="/dev/ttyUSB9")
CLOCK = ScenarioClock()


def _at(seconds: float) -> Instant:
    return CLOCK.at(seconds)


def _reading(kind: Kind, value: int | None, t: float) -> Reading:
    status = Status.VALID if value is not None else Status.NOT_AVAILABLE
    number = None if value is None else Decimal(value)
    return Reading(kind, number, kind.unit, _at(t), DEVICE, status=status)


def _session(
    spo2: list[int | None], *, rate: int = 75, seconds: float = 30.0, shown_rate: int = 75
) -> Iterator[Reading]:
    """60 Hz pleth of a pulse at ``rate``; SpO2 (cycled from ``spo2``) and rate once a second."""
    pleth = synthesize(seconds, sampling_rate=60.0, heart_rate=rate, seed=4).signal
    for i, value in enumerate(np.round(pleth * 127).astype(int).tolist()):
        t = i / 60.0
        yield _reading(Kind.PLETH, value, t)
        if i % 60 == 0:
            yield _reading(Kind.SPO2, spo2[(i // 60) % len(spo2)], t)
            yield _reading(Kind.PULSE_RATE, shown_rate, t)


def _run(procedure: OximetryProcedure, readings: Iterator[Reading], until: float) -> None:
    procedure.start(_at(0.0))
    last = 0.0
    for reading in readings:
        procedure.feed(reading)
        t = reading.at.seconds_since(_at(0.0))
        if t - last >= 0.1:
            procedure.tick(reading.at)
            last = t
        if procedure.done:
            return
    procedure.tick(_at(until))


def test_spo2_is_the_median_of_the_last_valid_samples() -> None:
    procedure = OximetryProcedure(pleth_rate=60.0)
    _run(procedure, _session([97, 96, 98, 96, 98]), until=130.0)
    spo2 = procedure.results[0]
    assert spo2.kind is Kind.SPO2
    assert spo2.status is Status.VALID
    assert spo2.value == 97


def test_a_sentinel_never_becomes_a_value() -> None:
    procedure = OximetryProcedure(pleth_rate=60.0, max_measure_seconds=25.0)
    _run(procedure, _session([None]), until=130.0)
    spo2 = procedure.results[0]
    assert spo2.value is None
    assert spo2.status is Status.NOT_AVAILABLE
    assert spo2.reasons == (NO_READING,)


def test_an_spo2_that_keeps_changing_is_questionable() -> None:
    procedure = OximetryProcedure(pleth_rate=60.0, max_measure_seconds=25.0)
    _run(procedure, _session([91, 97, 93, 99, 90, 96]), until=130.0)
    spo2, rate = procedure.results
    assert spo2.status is Status.QUESTIONABLE
    assert [r.code for r in spo2.reasons] == ["spo2-unsettled"]
    assert rate.status is Status.VALID


def test_an_impossible_spo2_is_invalid() -> None:
    procedure = OximetryProcedure(pleth_rate=60.0)
    _run(procedure, _session([40]), until=130.0)
    spo2 = procedure.results[0]
    assert spo2.status is Status.INVALID
    assert spo2.value == 40
    assert spo2.reasons[0].code == "implausible-spo2"


def test_questionable_device_values_do_not_count() -> None:
    procedure = OximetryProcedure(pleth_rate=60.0, max_measure_seconds=25.0)
    flagged = (
        replace(r, status=Status.QUESTIONABLE, flags=frozenset({Flag.LOW_SIGNAL_QUALITY}))
        if r.kind is Kind.SPO2
        else r
        for r in _session([97])
    )
    _run(procedure, flagged, until=130.0)
    assert procedure.results[0].status is Status.NOT_AVAILABLE


def test_readings_from_a_second_oximeter_are_ignored() -> None:
    other = replace(DEVICE, port="/dev/ttyUSB3")

    def mixed() -> Iterator[Reading]:
        for reading in _session([97, 97, 98]):
            yield reading
            if reading.kind is Kind.SPO2:
                yield replace(reading, device=other, value=Decimal(80))

    procedure = OximetryProcedure(pleth_rate=60.0)
    _run(procedure, mixed(), until=130.0)
    assert procedure.results[0].status is Status.VALID
    assert procedure.results[0].value == 97


def test_a_blood_pressure_modules_pulse_rate_does_not_claim_the_measurement() -> None:
    cuff = DeviceInfo(model="SunTech Advantage", protocol="suntech-advantage", port="/dev/ttyS1")
    first = replace(_reading(Kind.PULSE_RATE, 120, 0.0), device=cuff)
    procedure = OximetryProcedure(pleth_rate=60.0)
    _run(procedure, itertools.chain([first], _session([97])), until=130.0)
    rate = procedure.results[1]
    assert rate.value == 75
    assert rate.device == DEVICE


def test_a_silent_device_is_reported_as_such() -> None:
    procedure = OximetryProcedure(time_limit=5.0)
    procedure.start(_at(0.0))
    procedure.tick(_at(5.0))
    assert [m.reasons for m in procedure.results] == [(DEVICE_SILENT,), (DEVICE_SILENT,)]
    assert not procedure.results[0].retake_advised


@pytest.mark.parametrize(
    "options", [{"min_good_seconds": 50.0}, {"min_good_seconds": 0.0}, {"window_seconds": 5.0}]
)
def test_inconsistent_options_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="min_good_seconds"):
        OximetryProcedure(**options)  # type: ignore[arg-type]
