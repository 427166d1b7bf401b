"""Child process of the latency benchmark: one simulated device on a pty, logging its writes.

It waits until the reader has opened the port at the device's link settings (and pyserial has
flushed its input), then starts the simulator and records ``(monotonic_ns, bytes)`` for every
write.  On SIGTERM it prints the log as JSON on stdout and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path

from vitals.sim.catalog import SIMULATORS
from vitals.sim.runtime import PtyDevice, link_matches
from vitals.sim.truth import Truth


async def _run(name: str, path: Path) -> list[tuple[int, int]]:
    log: list[tuple[int, int]] = []
    device = PtyDevice(
        SIMULATORS[name](Truth(), seed=1, fast=True),
        path,
        interval=0.005,
        on_write=lambda count: log.append((time.monotonic_ns(), count)),
    )
    device.plug()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    master = device._master
    assert master is not None
    while not link_matches(master, device.sim.link):  # noqa: ASYNC110 - nothing to wait on
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # past pyserial's input flush on open
    device.restart_clock()
    while not stop.is_set():
        device.step()
        await asyncio.sleep(0.005)
    device.unplug()
    return log


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", required=True)
    parser.add_argument("--path", type=Path, required=True)
    args = parser.parse_args()
    log = asyncio.run(_run(args.device, args.path))
    json.dump(log, sys.stdout)


if __name__ == "__main__":
    main()
