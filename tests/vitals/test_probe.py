"""``probe`` recognises every simulated device on its pty, and nothing on a silent one."""

from __future__ import annotations

import asyncio
import os
import tty
from pathlib import Path

import pytest

from vitals.clock import Clock
from vitals.devices.catalog import DRIVERS
from vitals.errors import ProbeError
from vitals.probe import ProbeResult, probe
from vitals.sim.catalog import SIMULATORS
from vitals.sim.runtime import serve
from vitals.sim.truth import Truth


@pytest.mark.parametrize("name", sorted(SIMULATORS))
def test_recognises_each_device_within_3_s(name: str, pty_dir: Path) -> None:
    async def scenario() -> ProbeResult:
        sim = SIMULATORS[name](Truth(), seed=11)
        async with serve([sim], pty_dir) as devices:
            return await probe(str(devices[name].path), list(DRIVERS.values()), clock=Clock())

    result = asyncio.run(scenario())
    assert result.device == name
    assert result.link == DRIVERS[name].spec.link
    assert result.seconds < 3.0
    assert result.coverage >= 0.6


def test_a_silent_port_is_reported_within_the_budget() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        loop_started = asyncio.run(_timed_probe(os.ttyname(slave)))
    finally:
        os.close(master)
        os.close(slave)
    message, seconds = loop_started
    assert "no known device recognised" in message
    assert seconds < 3.5


async def _timed_probe(port: str) -> tuple[str, float]:
    clock = Clock()
    start = clock.now()
    try:
        await probe(port, list(DRIVERS.values()), clock=clock)
    except ProbeError as exc:
        return str(exc), clock.now().seconds_since(start)
    raise AssertionError("a silent port was recognised")


def test_a_missing_port_is_a_probe_error(tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match="No such file"):
        asyncio.run(probe(str(tmp_path / "nothing"), list(DRIVERS.values()), clock=Clock()))
