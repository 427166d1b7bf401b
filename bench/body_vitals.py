"""Weight, height and temperature procedures against their simulators' truth.

Each case is one resident at the cabin: a seeded draw of the truth (weight 45-95 kg, height
140-185 cm, forehead 35.8-39.5 °C in a 24-32 °C room) under one condition (noise, motion,
an unsteady scale), run through the real simulator, driver and procedure in scenario time
(:class:`vitals.sim.scenario.Scenario`).  Per condition it reports how often a value was
accepted, its error against the truth, how long the resident waited (scenario seconds), and
the procedure's own cost (its readings replayed into a fresh procedure, wall time).

Anchor, from the same readings: what a naive reader would have reported - the first line the
scale flagged ST, the mean of the first 15 person readings of the rangefinder, the first
forehead reading of the thermometer.  What this shows is that the gates work against these
simulators' mishaps (sway, spikes, bobbing, a forehead moving); it is not an accuracy claim for
real scales, sensors or foreheads.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from bench import machine
from vitals.devices.and_scale import AndScaleDriver
from vitals.devices.driver import DeviceDriver
from vitals.devices.gy_mcu90615 import GyMcu90615Driver
from vitals.devices.maxbotix import MaxBotixDriver
from vitals.model import Kind, Reading, Status
from vitals.procedures.base import Procedure
from vitals.procedures.height import HeightProcedure
from vitals.procedures.temperature import TemperatureProcedure
from vitals.procedures.weight import WeightProcedure
from vitals.sim.and_scale import AndScaleSimulator
from vitals.sim.gy_mcu90615 import GyMcu90615Simulator
from vitals.sim.maxbotix import MaxBotixSimulator
from vitals.sim.scenario import Scenario, ScenarioClock
from vitals.sim.simulator import Simulator
from vitals.sim.truth import Period, Truth


@dataclass(frozen=True, slots=True)
class Case:
    """One run: the truth, what the procedure kept, and what the naive anchor would have."""

    truth: float
    value: float | None
    baseline: float | None
    seconds: float
    replay_ms: float
    readings: int


@dataclass(frozen=True, slots=True)
class Rig:
    """How to build one device's simulator, driver and procedure, and read its anchor."""

    name: str
    make_sim: Callable[[Truth, int], Simulator]
    make_driver: Callable[[Truth], DeviceDriver]
    make_procedure: Callable[[Truth], Procedure]
    truth_of: Callable[[Truth], float]
    baseline: Callable[[list[Reading]], float | None]


def _first_stable(readings: list[Reading]) -> float | None:
    return next((float(r.value) for r in readings if r.status is Status.VALID and r.value), None)


def _mean_of_first_heights(readings: list[Reading]) -> float | None:
    heights = [float(r.value) for r in readings if r.kind is Kind.BODY_HEIGHT and r.value]
    return statistics.fmean(heights[:15]) if len(heights) >= 15 else None


def _first_object(readings: list[Reading]) -> float | None:
    objects = [r for r in readings if r.kind is Kind.OBJECT_TEMPERATURE and r.value is not None]
    return float(objects[0].value or 0) if objects else None


WEIGHT = Rig(
    "weight",
    lambda truth, seed: AndScaleSimulator(truth, seed=seed),
    lambda truth: AndScaleDriver(port="sim"),
    lambda truth: WeightProcedure(),
    lambda truth: float(truth.weight),
    _first_stable,
)
HEIGHT = Rig(
    "height",
    lambda truth, seed: MaxBotixSimulator(truth, seed=seed),
    lambda truth: MaxBotixDriver(port="sim", mount_height_mm=truth.mount_height_mm),
    lambda truth: HeightProcedure(mount_height_mm=truth.mount_height_mm),
    lambda truth: truth.height,
    _mean_of_first_heights,
)
TEMPERATURE = Rig(
    "temperature",
    lambda truth, seed: GyMcu90615Simulator(truth, seed=seed),
    lambda truth: GyMcu90615Driver(port="sim"),
    lambda truth: TemperatureProcedure(),
    lambda truth: truth.temp,
    _first_object,
)


def run_case(rig: Rig, truth: Truth, seed: int) -> Case:
    """Run one resident through ``rig``; replay its readings to time the procedure alone."""
    procedure = rig.make_procedure(truth)
    scenario = Scenario([(rig.make_sim(truth, seed), rig.make_driver(truth))])
    readings = scenario.run(procedure.time_limit + 1, procedure=procedure)
    (result,) = procedure.results
    replay = rig.make_procedure(truth)
    clock = ScenarioClock()
    began = time.perf_counter()
    replay.start(clock.at(0.0))
    for reading in readings:
        replay.feed(reading)
        replay.tick(reading.at)
        if replay.done:
            break
    replay_ms = (time.perf_counter() - began) * 1e3
    value = float(result.value) if result.valid and result.value is not None else None
    return Case(
        rig.truth_of(truth), value, rig.baseline(readings), scenario.t, replay_ms, len(readings)
    )


def _draw(rig: Rig, rng: np.random.Generator, condition: dict[str, object]) -> Truth:
    weight = Decimal(str(round(float(rng.uniform(45, 95)), 2)))
    return Truth(
        weight=weight,
        height=round(float(rng.uniform(140, 185)), 1),
        temp=round(float(rng.uniform(35.8, 39.5)), 2),
        ambient=round(float(rng.uniform(24, 32)), 1),
        scale_settle=round(float(rng.uniform(1.0, 4.0)), 1),
        **condition,  # type: ignore[arg-type]
    )


CONDITIONS: dict[str, list[tuple[str, dict[str, object]]]] = {
    "weight": [
        ("clean", {}),
        ("noise 1.0", {"noise": 1.0}),
        ("moves 1-4 s", {"motion": (Period(1.0, 4.0),)}),
        ("unsteady scale", {"unstable_scale": True}),
    ],
    "height": [
        ("clean", {}),
        ("noise 0.3", {"noise": 0.3}),
        ("noise 0.5", {"noise": 0.5}),
        ("noise 1.0", {"noise": 1.0}),
        ("moves 0-5 s", {"motion": (Period(0.0, 5.0),)}),
        ("moves throughout", {"motion": (Period(0.0, 60.0),)}),
    ],
    "temperature": [
        ("clean", {}),
        ("noise 0.3", {"noise": 0.3}),
        ("noise 1.0", {"noise": 1.0}),
        ("moves 0-3 s", {"motion": (Period(0.0, 3.0),)}),
        ("moves throughout", {"motion": (Period(0.0, 60.0),)}),
    ],
}
UNITS = {"weight": "kg", "height": "cm", "temperature": "°C"}


def _errors(pairs: list[tuple[float, float | None]]) -> str:
    errors = [abs(value - truth) for truth, value in pairs if value is not None]
    if not errors:
        return "- | - | -"
    p90 = float(np.percentile(errors, 90))
    return f"{statistics.fmean(errors):.2f} | {p90:.2f} | {max(errors):.2f}"


def evaluate(rig: Rig, condition: dict[str, object], runs: int) -> str:
    """One table row for ``rig`` under ``condition``."""
    rng = np.random.default_rng(2025)
    cases = [run_case(rig, _draw(rig, rng, condition), seed) for seed in range(runs)]
    accepted = [c for c in cases if c.value is not None]
    waits = [c.seconds for c in accepted] or [float("nan")]
    per_reading_us = 1e3 * sum(c.replay_ms for c in cases) / sum(c.readings for c in cases)
    return (
        f"{100 * len(accepted) / runs:.0f} % | {_errors([(c.truth, c.value) for c in cases])} | "
        f"{_errors([(c.truth, c.baseline) for c in cases])} | "
        f"{statistics.median(waits):.1f} | {per_reading_us:.1f}"
    )


def main(runs: int) -> str:
    lines = [
        "### Weight, height and temperature procedures against simulator truth",
        "",
        machine.describe(),
        "",
        f"{runs} seeded residents per condition (`python -m bench.body_vitals --runs {runs}`). "
        "Errors are |kept - truth| of the accepted values: mean, p90, max. The anchor is "
        "a naive reader on the same readings (first ST line; mean of the first 15 person "
        "ranges; first forehead reading). Wait is the median scenario time to a kept value; "
        "µs/reading is the procedure alone, its readings replayed.",
        "",
        "| vital | condition | kept | MAE | p90 | max | anchor MAE | anchor p90 | anchor max "
        "| wait s | µs/reading |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rig in (WEIGHT, HEIGHT, TEMPERATURE):
        for label, condition in CONDITIONS[rig.name]:
            row = evaluate(rig, condition, runs)
            lines.append(f"| {rig.name} ({UNITS[rig.name]}) | {label} | {row} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.body_vitals")
    parser.add_argument("--runs", type=int, default=50)
    print(main(parser.parse_args().runs))
