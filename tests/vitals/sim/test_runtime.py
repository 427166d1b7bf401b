"""Simulators on real pseudo-terminals: stable paths, unplugging, link settings."""

from __future__ import annotations

import asyncio
from pathlib import Path

from vitals.link import LinkSettings
from vitals.protocols import contec_legacy
from vitals.sim.contec_legacy import Cms50LegacySimulator
from vitals.sim.runtime import serve
from vitals.sim.truth import Truth
from vitals.transport import open_port


async def _collect(path: Path, link: LinkSettings, seconds: float) -> bytes:
    port = await open_port(str(path), link)
    data = b""
    async with port:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            try:
                async with asyncio.timeout(left):
                    data += await port.read()
            except TimeoutError:
                break
    return data


def test_the_device_speaks_only_at_its_own_baud_rate(pty_dir: Path) -> None:
    async def scenario() -> tuple[bytes, bytes]:
        async with serve([Cms50LegacySimulator(Truth(), seed=1)], pty_dir) as devices:
            path = devices["cms50d-legacy"].path
            wrong = await _collect(path, LinkSettings(9600), 0.5)
            right = await _collect(path, contec_legacy.LINK, 0.5)
        return wrong, right

    wrong, right = asyncio.run(scenario())
    assert len(wrong) > 100, "the device keeps sending: it arrives as line noise"
    noise_framer = contec_legacy.framer()
    noise_framer.feed(wrong)
    assert noise_framer.stats.discarded_bytes > len(wrong) / 2
    good_framer = contec_legacy.framer()
    frames = good_framer.feed(right)
    assert len(frames) >= 25  # 60 Hz for 0.5 s, less the first partial frame
    assert good_framer.stats.discarded_bytes < contec_legacy.FRAME_SIZE


def test_a_replugged_device_keeps_its_path(pty_dir: Path) -> None:
    async def scenario() -> tuple[str | None, bool, str | None, str]:
        async with serve([Cms50LegacySimulator(Truth())], pty_dir) as devices:
            device = devices["cms50d-legacy"]
            before = device.tty_name
            device.unplug()
            gone = not device.path.exists()
            device.plug()
            return before, gone, device.tty_name, str(device.path.resolve())

    before, gone, after, target = asyncio.run(scenario())
    assert gone
    assert before is not None
    assert after is not None
    assert target == after
    assert not (pty_dir / "cms50d-legacy").exists(), "the link goes when the simulator stops"
