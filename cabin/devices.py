"""The cabin's measuring devices as one object: run a visit step's procedure on them.

:class:`SimulatedDevices` starts every simulator on its own pseudo-terminal and reads them
through the real serial code (the demo and the tests); a production cabin opens its real ports
the same way with :class:`DeviceSessions`. Either way one ``ReadingHub`` fans readings out to
the procedure that runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

from cabin.visit_machine import Step
from vitals.clock import Clock
from vitals.devices.catalog import DriverOptions, create_driver
from vitals.interpretation import interpret
from vitals.measurement import Measurement
from vitals.procedures.base import Procedure, Progress
from vitals.procedures.blood_pressure import BloodPressureProcedure
from vitals.procedures.height import HeightProcedure
from vitals.procedures.oximetry import OximetryProcedure
from vitals.procedures.runner import ReadingHub, run_procedure
from vitals.procedures.temperature import TemperatureProcedure
from vitals.procedures.weight import WeightProcedure
from vitals.session import DeviceSession
from vitals.sim.catalog import SIMULATORS
from vitals.sim.truth import Truth

DEVICES_BY_STEP: Mapping[Step, str] = {
    Step.TEMPERATURE: "gy-mcu90615",
    Step.WEIGHT: "and-scale",
    Step.HEIGHT: "maxbotix",
    Step.SPO2: "cms50d-legacy",
    Step.BLOOD_PRESSURE: "suntech-advantage",
}


def procedure_for(step: Step, *, mount_height_mm: int, fast: bool) -> Procedure:
    """The procedure a step runs (fast: the test and demo timings of the BP protocol)."""
    match step:
        case Step.TEMPERATURE:
            return TemperatureProcedure()
        case Step.WEIGHT:  # fast: the demo's and the tests' shorter patience
            return WeightProcedure(time_limit=8.0) if fast else WeightProcedure()
        case Step.HEIGHT:
            return HeightProcedure(mount_height_mm=mount_height_mm)
        case Step.SPO2:
            return OximetryProcedure(time_limit=30.0) if fast else OximetryProcedure()
        case Step.BLOOD_PRESSURE:
            return BloodPressureProcedure(
                mode="screening",
                rest=5.0 if fast else 300.0,
                interval=10.0 if fast else 60.0,
                retake_after=5.0 if fast else 30.0,
            )
    raise ValueError(step)  # pragma: no cover


class DeviceSessions:
    """Serial sessions on named ports, one hub, and the step procedures run on them."""

    def __init__(
        self, ports: Mapping[str, str], *, mount_height_mm: int, fast: bool = False
    ) -> None:
        self.hub = ReadingHub()
        self.clock = Clock()
        self._mount = mount_height_mm
        self._fast = fast
        options = DriverOptions(mount_height_mm=mount_height_mm)
        self.sessions = [
            DeviceSession(
                create_driver(name, port=port, options=options),
                port,
                clock=self.clock,
                on_reading=self.hub.publish,
            )
            for name, port in ports.items()
        ]

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[DeviceSessions]:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(session.run()) for session in self.sessions]
            try:
                yield self
            finally:
                for task in tasks:
                    task.cancel()

    async def measure(
        self, step: Step, on_progress: Callable[[Progress], None]
    ) -> tuple[Measurement, ...]:
        """Run ``step``'s procedure; its measurements interpreted for the resident."""
        results = await run_procedure(
            procedure_for(step, mount_height_mm=self._mount, fast=self._fast),
            hub=self.hub,
            sessions=self.sessions,
            clock=self.clock,
            on_progress=on_progress,
        )
        return tuple(interpret(m) for m in results)


@contextlib.asynccontextmanager
async def simulated_devices(
    *, truth: Truth | None = None, fast: bool = True, seed: int = 0, directory: Path | None = None
) -> AsyncIterator[DeviceSessions]:
    """Every device simulated on a pty (real wire protocols), read by the real serial code."""
    from vitals.sim.runtime import serve  # noqa: PLC0415 - the simulators only when simulating

    body = truth or Truth()
    sims = [
        SIMULATORS[name](body, seed=seed + i, fast=fast)
        for i, name in enumerate(DEVICES_BY_STEP.values())
    ]
    with contextlib.ExitStack() as stack:
        where = directory or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cabin-")))
        async with serve(sims, where) as devices:
            ports = {name: str(device.path) for name, device in devices.items()}
            sessions = DeviceSessions(ports, mount_height_mm=body.mount_height_mm, fast=fast)
            async with sessions.running():
                yield sessions
