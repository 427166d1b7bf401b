"""The procedure runner against live sessions on real ptys."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from vitals.clock import Clock, Instant
from vitals.devices.catalog import create_driver
from vitals.measurement import Measurement, Method
from vitals.model import Flag, Kind, Reading, Status
from vitals.procedures.base import Command, Procedure, Progress
from vitals.procedures.runner import ReadingHub, run_procedure
from vitals.reasons import TIMED_OUT
from vitals.session import DeviceSession
from vitals.sim.catalog import SIMULATORS
from vitals.sim.runtime import serve
from vitals.sim.truth import Truth


class FirstInflation(Procedure):
    """Starts a BP cycle and finishes once the inflating cuff passes 20 mmHg."""

    name = "first-inflation"
    kinds = frozenset({Kind.CUFF_PRESSURE})

    def __init__(self) -> None:
        super().__init__(time_limit=5.0)
        self.seen: list[Reading] = []

    def start(self, at: Instant) -> list[Command]:
        super().start(at)
        return [Command.START_BP]

    def feed(self, reading: Reading) -> list[Command]:
        inflating = reading.kind in self.kinds and Flag.INFLATING in reading.flags
        if inflating and reading.value is not None and reading.value >= 20:
            self.seen.append(reading)
            self._finish(
                [
                    Measurement(
                        Kind.CUFF_PRESSURE,
                        reading.value,
                        reading.unit,
                        reading.at,
                        Status.VALID,
                        Method.OSCILLOMETRY,
                    )
                ]
            )
            return [Command.ABORT_BP]
        return []

    def _time_up(self, at: Instant) -> list[Command]:
        self._finish(
            [
                Measurement(
                    Kind.CUFF_PRESSURE,
                    None,
                    "mm[Hg]",
                    at,
                    Status.NOT_AVAILABLE,
                    Method.OSCILLOMETRY,
                    reasons=(TIMED_OUT,),
                )
            ]
        )
        return []

    @property
    def progress(self) -> Progress:
        return Progress("done" if self.done else "inflating", "Inflating", "Đang bơm hơi")


def test_commands_reach_the_device_and_readings_reach_the_procedure(pty_dir: Path) -> None:
    progress: list[Progress] = []

    async def scenario() -> tuple[Measurement, ...]:
        hub = ReadingHub()
        clock = Clock()
        sim = SIMULATORS["suntech-advantage"](Truth(), fast=True)
        async with serve([sim], pty_dir) as devices:
            path = str(devices["suntech-advantage"].path)
            session = DeviceSession(
                create_driver("suntech-advantage", port=path),
                path,
                clock=clock,
                on_reading=hub.publish,
            )
            task = asyncio.create_task(session.run())
            try:
                return await run_procedure(
                    FirstInflation(),
                    hub=hub,
                    sessions=[session],
                    clock=clock,
                    on_progress=progress.append,
                )
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    results = asyncio.run(scenario())
    assert results[0].status is Status.VALID
    assert results[0].value is not None
    assert results[0].value >= Decimal(20)
    assert [p.phase for p in progress] == ["inflating", "done"]


def test_a_procedure_without_its_device_ends_at_its_time_limit() -> None:
    async def scenario() -> tuple[Measurement, ...]:
        procedure = FirstInflation()
        procedure.time_limit = 0.3
        return await run_procedure(procedure, hub=ReadingHub(), sessions=[], clock=Clock())

    results = asyncio.run(scenario())
    assert results[0].status is Status.NOT_AVAILABLE
    assert results[0].reasons == (TIMED_OUT,)
