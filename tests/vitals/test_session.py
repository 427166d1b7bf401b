"""Device sessions: reconnects, silence, shutdown; over an in-memory port and over real ptys."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tests.vitals.protocols.test_contec_legacy import NORMAL
from vitals.clock import Clock
from vitals.devices.contec_legacy import Cms50LegacyDriver
from vitals.devices.suntech import SunTechDriver
from vitals.errors import PortClosed, PortError
from vitals.link import LinkSettings
from vitals.model import Kind, Reading, Status
from vitals.protocols.suntech import START_BP
from vitals.session import Backoff, DeviceSession, Link, SessionStatus
from vitals.sim.contec_legacy import Cms50LegacySimulator
from vitals.sim.runtime import serve
from vitals.sim.simulator import Simulator
from vitals.sim.suntech import SunTechSimulator
from vitals.sim.truth import Truth
from vitals.transport import Port


class MemoryPort:
    """An in-memory port: the test pushes device bytes, reads what the host wrote."""

    def __init__(self, name: str = "mem") -> None:
        self.name = name
        self.incoming: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.written = bytearray()
        self.closed = False

    async def read(self) -> bytes:
        data = await self.incoming.get()
        if data is None:
            raise PortClosed(f"{self.name}: unplugged")
        return data

    async def write(self, data: bytes) -> None:
        self.written += data

    async def close(self) -> None:
        self.closed = True


class MemoryOpener:
    """Hands out MemoryPorts; fails while ``available`` is False."""

    def __init__(self) -> None:
        self.ports: list[MemoryPort] = []
        self.available = True
        self.attempts = 0

    async def __call__(self, url: str, link: LinkSettings) -> Port:
        self.attempts += 1
        if not self.available:
            raise PortError(f"cannot open {url} at {link}: No such file or directory")
        port = MemoryPort(url)
        self.ports.append(port)
        return port


FAST_BACKOFF = Backoff(initial=0.01, maximum=0.05)


async def _wait_for(condition: object, timeout: float = 3.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def test_readings_flow_and_statuses_are_reported() -> None:
    readings: list[Reading] = []
    statuses: list[SessionStatus] = []

    async def scenario() -> None:
        opener = MemoryOpener()
        session = DeviceSession(
            Cms50LegacyDriver(port="mem"),
            "mem",
            clock=Clock(),
            on_reading=readings.append,
            on_status=statuses.append,
            opener=opener,
            backoff=FAST_BACKOFF,
        )
        async with asyncio.TaskGroup() as group:
            task = group.create_task(session.run())
            await _wait_for(lambda: opener.ports)
            opener.ports[0].incoming.put_nowait(NORMAL * 3)
            await _wait_for(lambda: len(readings) >= 5)
            task.cancel()

    asyncio.run(scenario())
    assert [r.kind for r in readings].count(Kind.PLETH) == 3
    assert [(s.link, s.condition.value) for s in statuses][:3] == [
        (Link.CONNECTING, "waiting"),
        (Link.CONNECTED, "waiting"),
        (Link.CONNECTED, "measuring"),
    ]


def test_unplug_reconnects_and_resumes() -> None:
    readings: list[Reading] = []
    statuses: list[SessionStatus] = []

    async def scenario() -> None:
        opener = MemoryOpener()
        session = DeviceSession(
            Cms50LegacyDriver(port="mem"),
            "mem",
            clock=Clock(),
            on_reading=readings.append,
            on_status=statuses.append,
            opener=opener,
            backoff=FAST_BACKOFF,
        )
        async with asyncio.TaskGroup() as group:
            task = group.create_task(session.run())
            await _wait_for(lambda: opener.ports)
            first = opener.ports[0]
            first.incoming.put_nowait(NORMAL)
            await _wait_for(lambda: readings)
            opener.available = False
            first.incoming.put_nowait(None)  # unplugged
            await _wait_for(lambda: opener.attempts >= 3)
            assert first.closed
            opener.available = True
            await _wait_for(lambda: len(opener.ports) == 2)
            count = len(readings)
            opener.ports[1].incoming.put_nowait(NORMAL)
            await _wait_for(lambda: len(readings) > count)
            task.cancel()

    asyncio.run(scenario())
    details = [s.detail for s in statuses if s.link is Link.DISCONNECTED]
    assert details[0] == "mem: unplugged"
    assert "No such file or directory" in details[1]
    assert statuses[-1].reconnects == 1


def test_silence_closes_and_reopens_the_port() -> None:
    statuses: list[SessionStatus] = []

    async def scenario() -> None:
        opener = MemoryOpener()
        session = DeviceSession(
            QuickToGiveUpDriver(port="mem"),
            "mem",
            clock=Clock(),
            on_reading=lambda _: None,
            on_status=statuses.append,
            opener=opener,
            backoff=FAST_BACKOFF,
        )
        async with asyncio.TaskGroup() as group:
            task = group.create_task(session.run())
            await _wait_for(lambda: len(opener.ports) >= 2)
            assert opener.ports[0].closed
            task.cancel()

    asyncio.run(scenario())
    silent = [s for s in statuses if s.link is Link.DISCONNECTED]
    assert silent
    assert silent[0].detail.startswith("no valid frame for 0.")


class QuickToGiveUpDriver(Cms50LegacyDriver):
    spec = replace(Cms50LegacyDriver.spec, silence_timeout=0.2, tick_interval=0.05)


def test_cancelling_the_session_closes_the_port() -> None:
    async def scenario() -> MemoryPort:
        opener = MemoryOpener()
        session = DeviceSession(
            Cms50LegacyDriver(port="mem"),
            "mem",
            clock=Clock(),
            on_reading=lambda _: None,
            opener=opener,
        )
        task = asyncio.create_task(session.run())
        await _wait_for(lambda: opener.ports)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return opener.ports[0]

    assert asyncio.run(scenario()).closed


@pytest.mark.slow
def test_a_replugged_pty_device_is_read_again_within_2_s(pty_dir: Path) -> None:
    """Acceptance: unplug a simulated device (close its pty), plug it back, readings resume."""
    readings: list[Reading] = []

    async def scenario() -> float:
        sim = Cms50LegacySimulator(Truth(), seed=5, fast=True)
        async with serve([sim], pty_dir) as devices:
            device = devices["cms50d-legacy"]
            session = DeviceSession(
                Cms50LegacyDriver(port=str(device.path)),
                str(device.path),
                clock=Clock(),
                on_reading=readings.append,
            )
            async with asyncio.TaskGroup() as group:
                task = group.create_task(session.run())
                await _wait_for(lambda: len(readings) > 30)
                device.unplug()
                await asyncio.sleep(1.5)  # long enough for the backoff to reach its cap
                count = len(readings)
                device.plug()
                plugged = time.monotonic()
                await _wait_for(lambda: len(readings) > count, timeout=5)
                resumed = time.monotonic() - plugged
                task.cancel()
        return resumed

    assert asyncio.run(scenario()) < 2.0


class SimulatorPort:
    """A port backed by an in-memory simulator (scenario time = wall time since opening)."""

    def __init__(self, sim: Simulator) -> None:
        self.name = sim.name
        self._sim = sim
        self._start = time.monotonic()
        self._replies = bytearray()

    async def read(self) -> bytes:
        while True:
            data = self._sim.emit(time.monotonic() - self._start) + bytes(self._replies)
            self._replies.clear()
            if data:
                return data
            await asyncio.sleep(0.005)

    async def write(self, data: bytes) -> None:
        self._replies += self._sim.receive(data, time.monotonic() - self._start)

    async def close(self) -> None:
        pass


class MuteAfterStart(SunTechSimulator):
    """A BP module that accepts the start command and then never answers again."""

    muted = False

    def receive(self, data: bytes, t: float) -> bytes:
        if self.muted:
            return b""
        reply = super().receive(data, t)
        self.muted = bytes(START_BP) in data
        return reply


def test_readings_made_by_time_alone_are_delivered() -> None:
    """A BP module that stops answering mid-cycle still yields its "no reply" reading."""
    readings: list[Reading] = []

    async def opener(url: str, link: LinkSettings) -> Port:
        return SimulatorPort(MuteAfterStart(Truth(), fast=True))

    async def scenario() -> None:
        session = DeviceSession(
            SunTechDriver(port="mem", repeat_every=60.0),
            "mem",
            clock=Clock(),
            on_reading=readings.append,
            opener=opener,
        )
        async with asyncio.TaskGroup() as group:
            task = group.create_task(session.run())
            await _wait_for(lambda: readings, timeout=3.0)
            task.cancel()

    asyncio.run(scenario())
    assert readings[0].kind is Kind.CUFF_PRESSURE
    assert readings[0].status is Status.NOT_AVAILABLE
    assert readings[0].note.startswith("No valid answer to the cuff-pressure request")
