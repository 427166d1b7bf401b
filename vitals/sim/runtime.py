"""Runs simulators on pseudo-terminal pairs, so readers use the real serial code path.

Each simulated device gets a pty pair.  The reader opens the slave side by a stable path -
a symlink in a directory of our choosing, like udev's ``/dev/serial/by-id/...`` - so a device
that is unplugged (the pty closed) and plugged back (a new pty) keeps its name.

Like a real UART, a device speaks only at its own link settings: while the reader has the port
configured at another baud rate, the simulator's bytes arrive as line noise and the host's
commands are not understood.  (Linux reports the slave's termios through the master, so the
simulator can see the reader's settings.  A pty refuses parity, so only the baud rate is
compared; devices that differ only in parity cannot be told apart on a pty.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import termios
import time
import tty
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from vitals.link import LinkSettings
from vitals.sim.simulator import Simulator

log = logging.getLogger(__name__)

_BAUD_CONSTANTS = {
    rate: getattr(termios, f"B{rate}")
    for rate in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400)
    if hasattr(termios, f"B{rate}")
}


def link_matches(fd: int, link: LinkSettings) -> bool:
    """Whether the tty behind ``fd`` (either side of a pty) is configured for ``link``."""
    try:
        attrs = termios.tcgetattr(fd)
    except termios.error:
        return False
    speed = _BAUD_CONSTANTS.get(link.baudrate)
    return speed is not None and attrs[4] == speed


class PtyDevice:
    """One simulator on a pty pair, reachable at ``path`` while plugged in."""

    def __init__(
        self,
        sim: Simulator,
        path: Path,
        *,
        interval: float = 0.005,
        clock: Callable[[], float] = time.monotonic,
        on_write: Callable[[int], None] | None = None,
    ) -> None:
        self.sim = sim
        self.path = path
        self._interval = interval
        self._clock = clock
        self._on_write = on_write
        self._start = clock()
        self._master: int | None = None
        self._slave: int | None = None
        self._noise = random.Random(0)
        self._mismatch_logged = False
        self.bytes_sent = 0

    def restart_clock(self) -> None:
        """Make scenario time start now (the simulator's t = 0)."""
        self._start = self._clock()

    @property
    def plugged(self) -> bool:
        return self._master is not None

    @property
    def tty_name(self) -> str | None:
        return None if self._slave is None else os.ttyname(self._slave)

    def plug(self) -> None:
        """Create the pty pair and publish it at ``path``."""
        if self.plugged:
            return
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(self.path)
        log.debug("%s plugged in at %s -> %s", self.sim.name, self.path, os.ttyname(slave))

    def unplug(self) -> None:
        """Close the pty pair (the reader sees the device vanish) and remove ``path``."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None

    def step(self) -> None:
        """Deliver the bytes due now and answer any host bytes waiting."""
        master = self._master
        if master is None:
            return
        t = self._clock() - self._start
        matched = link_matches(master, self.sim.link)
        host = self._read_host(master)
        out = self.sim.emit(t)
        if host and matched:
            out += self.sim.receive(host, t)
        if not matched and out:
            if not self._mismatch_logged:
                log.debug("%s: reader's link settings differ; sending noise", self.sim.name)
                self._mismatch_logged = True
            out = self._noise.randbytes(len(out))
        if out:
            # nobody reading: the bytes are lost, as on a real UART
            with contextlib.suppress(BlockingIOError):
                written = os.write(master, out)
                self.bytes_sent += written
                if self._on_write is not None:
                    self._on_write(written)

    @staticmethod
    def _read_host(master: int) -> bytes:
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except (BlockingIOError, OSError):
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)

    async def run(self) -> None:
        """Step forever (until cancelled); the device is plugged in first."""
        self.plug()
        try:
            while True:
                self.step()
                await asyncio.sleep(self._interval)
        finally:
            self.unplug()


@contextlib.asynccontextmanager
async def serve(
    sims: Sequence[Simulator], directory: Path, *, interval: float = 0.005
) -> AsyncIterator[dict[str, PtyDevice]]:
    """Run ``sims`` on ptys published under ``directory``; yields them by name."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    devices = {sim.name: PtyDevice(sim, directory / sim.name, interval=interval) for sim in sims}
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(device.run()) for device in devices.values()]
        await asyncio.sleep(0)  # let every device plug in
        try:
            yield devices
        finally:
            for task in tasks:
                task.cancel()
