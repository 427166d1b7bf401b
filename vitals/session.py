"""A device session: owns one sensor's port, keeps the conversation going, survives unplugs.

The session opens the port with the driver's link settings, lets the driver send its start
commands, feeds it every byte read, calls its ``tick`` for keep-alives and polls, and hands each
reading to ``on_reading``.  When the port fails (unplugged, pty closed, read error) or the
device goes silent for longer than its ``silence_timeout``, the session closes the port and
reopens it with capped exponential backoff (at most ``Backoff.maximum`` between attempts, so a
device that comes back is read again within about a second).

One connection is one ``asyncio.TaskGroup`` (reader and ticker); ``run()`` itself is owned by
the caller's task group and ends only by cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from vitals.clock import Clock, Instant
from vitals.devices.driver import Condition, DeviceDriver
from vitals.errors import PortError
from vitals.model import Reading
from vitals.transport import Port, PortOpener, open_port

log = logging.getLogger(__name__)


class Link(StrEnum):
    """State of the session's connection to its port."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True, slots=True)
class SessionStatus:
    """What a session reports when its link or its device's condition changes."""

    device: str
    port: str
    link: Link
    condition: Condition
    at: Instant
    detail: str = ""
    reconnects: int = 0
    frames: int = 0
    discarded_bytes: int = 0

    @property
    def label(self) -> str:
        """One word for a human: the link state, or the device condition once connected."""
        return self.condition.value if self.link is Link.CONNECTED else self.link.value


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Capped exponential backoff with jitter for reconnect attempts."""

    initial: float = 0.05
    maximum: float = 1.0
    factor: float = 2.0
    jitter: float = 0.1

    def delays(self, rng: random.Random) -> _Delays:
        return _Delays(self, rng)


@dataclass
class _Delays:
    policy: Backoff
    rng: random.Random
    _next: float = field(default=0.0)

    def __post_init__(self) -> None:
        self._next = self.policy.initial

    def next(self) -> float:
        delay = self._next * (1 + self.rng.uniform(-self.policy.jitter, self.policy.jitter))
        self._next = min(self._next * self.policy.factor, self.policy.maximum)
        return min(delay, self.policy.maximum)

    def reset(self) -> None:
        self._next = self.policy.initial


class _Silent(Exception):
    """The device sent no valid frame for longer than its silence timeout."""


class DeviceSession:
    """Reads one device through ``driver`` from the port at ``url``."""

    def __init__(
        self,
        driver: DeviceDriver,
        url: str,
        *,
        clock: Clock,
        on_reading: Callable[[Reading], None],
        on_status: Callable[[SessionStatus], None] | None = None,
        opener: PortOpener = open_port,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.driver = driver
        self.url = url
        self._clock = clock
        self._on_reading = on_reading
        self._on_status = on_status
        self._opener = opener
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._port: Port | None = None
        self._write_lock = asyncio.Lock()
        self._reconnects = 0
        self._status: SessionStatus | None = None
        self._wake = asyncio.Event()
        self._last_frame = clock.now()

    @property
    def status(self) -> SessionStatus | None:
        return self._status

    async def run(self) -> None:
        """Keep the device connected until cancelled."""
        delays = self._backoff.delays(self._rng)
        detail = ""
        self._report(Link.CONNECTING, detail)
        while True:
            try:
                port = await self._opener(self.url, self.driver.spec.link)
            except PortError as exc:
                detail = str(exc)
                self._report(Link.DISCONNECTED, detail)
                await asyncio.sleep(delays.next())
                continue
            try:
                await self._converse(port, delays.reset)
            except* PortError as group:
                detail = _first_message(group)
            except* _Silent as group:
                detail = _first_message(group)
            finally:
                self._port = None
                await port.close()
            self._reconnects += 1
            self._report(Link.DISCONNECTED, detail)
            log.info("%s on %s: %s; reconnecting", self.driver.spec.name, self.url, detail)
            await asyncio.sleep(delays.next())

    def poke(self) -> None:
        """Ask the session to flush driver output now (after calling a driver command)."""
        self._wake.set()

    async def _converse(self, port: Port, connected: Callable[[], None]) -> None:
        self._port = port
        driver = self.driver
        self._last_frame = self._clock.now()
        driver.connect(self._last_frame)
        await self._flush()
        self._report(Link.CONNECTED, "")
        async with asyncio.TaskGroup() as group:
            group.create_task(self._read_loop(port, connected))
            group.create_task(self._tick_loop())

    async def _read_loop(self, port: Port, connected: Callable[[], None]) -> None:
        driver = self.driver
        frames_before = driver.stats.frames
        while True:
            data = await port.read()
            at = self._clock.now()
            readings = driver.receive(data, at)
            if driver.stats.frames != frames_before:
                frames_before = driver.stats.frames
                self._last_frame = at
                connected()
            for reading in readings:
                self._on_reading(reading)
            await self._flush()
            self._report_if_changed()

    async def _tick_loop(self) -> None:
        driver = self.driver
        interval = driver.spec.tick_interval
        while True:
            with contextlib.suppress(TimeoutError):  # a tick is due, or someone poked us
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            self._wake.clear()
            now = self._clock.now()
            for reading in driver.tick(now):
                self._on_reading(reading)
            await self._flush()
            silent_for = now.seconds_since(self._last_frame)
            if silent_for > driver.spec.silence_timeout:
                raise _Silent(f"no valid frame for {silent_for:.1f} s")
            self._report_if_changed()

    async def _flush(self) -> None:
        data = self.driver.take_output()
        if data and self._port is not None:
            async with self._write_lock:
                await self._port.write(data)

    def _report_if_changed(self) -> None:
        status = self._status
        if (
            status is not None
            and status.link is Link.CONNECTED
            and status.condition is not self.driver.condition
        ):
            self._report(status.link, status.detail)

    def _report(self, link: Link, detail: str) -> None:
        stats = self.driver.stats
        status = SessionStatus(
            device=self.driver.spec.name,
            port=self.url,
            link=link,
            condition=self.driver.condition if link is Link.CONNECTED else Condition.WAITING,
            at=self._clock.now(),
            detail=detail,
            reconnects=self._reconnects,
            frames=stats.frames,
            discarded_bytes=stats.discarded_bytes,
        )
        previous = self._status
        self._status = status
        if self._on_status is not None and (
            previous is None
            or (previous.link, previous.condition, previous.detail)
            != (status.link, status.condition, status.detail)
        ):
            self._on_status(status)


def _first_message(group: BaseExceptionGroup[BaseException]) -> str:
    return str(group.exceptions[0]) if group.exceptions else str(group)
