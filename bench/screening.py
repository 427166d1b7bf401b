"""Time for a complete screening check with real device timings (goal: at most 3 minutes).

The five procedures run one after another as the cabin runs them - temperature, weight,
height, pulse oximetry, one screening blood-pressure reading - against the simulators at their
real timing (an oximeter searching ~3 s for the pulse, a BP cycle of ~33 s, a scale settling
in 2 s), each simulator with its real driver, in scenario time (the pure
:class:`~vitals.sim.scenario.Scenario`: minutes of device time in a second or two of CPU).

Anchor, same run: when the device itself first reported a valid value of the step's vital
(the first stable weight line, the oximeter's first SpO2 after its search, the BP module's
result) - what a cabin trusting the first number would take.  The ratio is the price of the
quality gates (settle windows, repeated readings, waveform checks).  The resident's own time
to move between devices and read the instructions is not measured; a separate line adds a
conservative 15 s per step for it.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from bench import machine
from vitals.devices.catalog import DriverOptions, create_driver
from vitals.model import Flag, Kind, Status
from vitals.procedures.base import Procedure
from vitals.procedures.blood_pressure import BloodPressureProcedure
from vitals.procedures.height import HeightProcedure
from vitals.procedures.oximetry import OximetryProcedure
from vitals.procedures.temperature import TemperatureProcedure
from vitals.procedures.weight import WeightProcedure
from vitals.sim.catalog import SIMULATORS
from vitals.sim.scenario import Scenario
from vitals.sim.truth import Truth

GOAL_S = 180.0
WALK_S = 15.0


@dataclass(frozen=True)
class Step:
    name: str
    device: str
    make: Callable[[Truth], Procedure]
    first: Kind
    """The device reading whose first valid value is the anchor."""


def _height(truth: Truth) -> Procedure:
    return HeightProcedure(mount_height_mm=truth.mount_height_mm)


STEPS = (
    Step("temperature", "gy-mcu90615", lambda _: TemperatureProcedure(), Kind.OBJECT_TEMPERATURE),
    Step("weight", "and-scale", lambda _: WeightProcedure(), Kind.BODY_WEIGHT),
    Step("height", "maxbotix", _height, Kind.BODY_HEIGHT),
    Step("oximetry", "cms50d-legacy", lambda _: OximetryProcedure(), Kind.SPO2),
    Step(
        "blood pressure", "suntech-advantage", lambda _: BloodPressureProcedure(), Kind.SYSTOLIC_BP
    ),
)


def run_step(step: Step, truth: Truth, seed: int) -> tuple[float, float, bool]:
    """Scenario seconds the step took, when the device first gave a valid value, and whether
    all the step's measurements came out valid."""
    sim = SIMULATORS[step.device](truth, seed=seed, fast=False)
    options = DriverOptions(mount_height_mm=truth.mount_height_mm)
    driver = create_driver(step.device, port="sim", options=options)
    procedure = step.make(truth)
    scenario = Scenario([(sim, driver)], step=0.02)
    start = scenario.clock.at(0.0)
    readings = scenario.run(procedure.time_limit + 5.0, procedure=procedure)
    first = next(
        (
            r.at.seconds_since(start)
            for r in readings
            if r.kind is step.first and r.status is Status.VALID and Flag.UNSTABLE not in r.flags
        ),
        float("nan"),
    )
    valid = procedure.done and all(m.status is Status.VALID for m in procedure.results)
    return scenario.t, first, valid


def _ratio(value: float, anchor: float) -> str:
    return f"{value / anchor:.2f}" if anchor > 0 else "-"


def main(runs: int = 5) -> str:
    rows = []
    totals = []
    anchors = []
    for step in STEPS:
        times, firsts, all_valid = [], [], True
        for seed in range(runs):
            took, first, valid = run_step(step, Truth(), seed)
            times.append(took)
            firsts.append(first)
            all_valid &= valid
        median, anchor = statistics.median(times), statistics.median(firsts)
        totals.append(median)
        anchors.append(anchor)
        rows.append(
            f"| {step.name} | {median:.1f} s | {max(times):.1f} s | {anchor:.1f} s "
            f"| {_ratio(median, anchor)} | {'yes' if all_valid else 'no'} |"
        )
    total, anchor_total = sum(totals), sum(anchors)
    with_walks = total + WALK_S * len(STEPS)
    verdict = "meets" if with_walks <= GOAL_S else "misses"
    return "\n".join(
        [
            "### A complete screening check at real device timings",
            "",
            machine.describe(),
            "",
            f"Median of {runs} seeded runs per step (healthy defaults: HR 72, SpO2 97, "
            "128/82 mmHg, 63.4 kg, 158 cm, 36.8 °C).",
            "",
            "| step | procedure (median) | max | device's first valid value (anchor) | ratio "
            "| all valid |",
            "|---|---:|---:|---:|---:|---|",
            *rows,
            f"| **total** | **{total:.1f} s** | | {anchor_total:.1f} s "
            f"| {_ratio(total, anchor_total)} | |",
            "",
            f"The procedures take {total:.0f} s of device time. With {WALK_S:.0f} s per step "
            f"for the resident to move and read: {with_walks:.0f} s, which {verdict} the "
            f"3-minute goal ({GOAL_S:.0f} s).",
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    print(main(parser.parse_args().runs))
