"""Running a procedure against live device sessions: the I/O shell around a procedure.

Sessions publish their readings to a :class:`ReadingHub`; the runner subscribes for the
procedure's lifetime, feeds it, ticks it, carries out its commands on the sessions' drivers
(and pokes the sessions so the bytes go out at once), and reports progress when it changes.
The whole run is bounded by the procedure's own time limit plus a margin.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Sequence

from vitals.clock import Clock
from vitals.devices.driver import Condition
from vitals.measurement import Measurement
from vitals.model import Reading
from vitals.procedures.base import Command, Procedure, Progress
from vitals.procedures.commands import execute
from vitals.session import DeviceSession, Link

Listener = Callable[[Reading], None]


class ReadingHub:
    """Fans readings out from device sessions to whoever currently listens."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def publish(self, reading: Reading) -> None:
        for listener in tuple(self._listeners):
            listener(reading)

    @contextlib.contextmanager
    def subscribe(self, listener: Listener) -> Iterator[None]:
        self._listeners.append(listener)
        try:
            yield
        finally:
            self._listeners.remove(listener)


async def run_procedure(
    procedure: Procedure,
    *,
    hub: ReadingHub,
    sessions: Sequence[DeviceSession],
    clock: Clock,
    on_progress: Callable[[Progress], None] | None = None,
    tick_interval: float = 0.1,
    margin: float = 10.0,
    ready_timeout: float = 5.0,
) -> tuple[Measurement, ...]:
    """Run ``procedure`` to its end and return its measurements.

    The procedure starts once every session's device has answered (or after
    ``ready_timeout`` seconds, when it will fail on its own terms), so a command it gives at
    the start is not lost to a device still connecting.  Raises ``TimeoutError`` only if the
    procedure overruns its own time limit by ``margin`` seconds (a bug: procedures finish
    themselves at their limit).
    """
    drivers = [session.driver for session in sessions]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(ready_timeout):
            # sessions report through callbacks fixed at their creation: poll their status
            while not all(_answering(session) for session in sessions):  # noqa: ASYNC110
                await asyncio.sleep(tick_interval / 4)

    def carry_out(commands: list[Command]) -> None:
        if commands:
            execute(commands, drivers, clock.now())
            for session in sessions:
                session.poke()

    shown: Progress | None = None

    def report() -> None:
        nonlocal shown
        progress = procedure.progress
        if on_progress is not None and progress != shown:
            shown = progress
            on_progress(progress)

    def on_reading(reading: Reading) -> None:
        if not procedure.done:
            carry_out(procedure.feed(reading))

    with hub.subscribe(on_reading):
        carry_out(procedure.start(clock.now()))
        report()
        async with asyncio.timeout(procedure.time_limit + margin):
            while not procedure.done:
                await asyncio.sleep(tick_interval)
                carry_out(procedure.tick(clock.now()))
                report()
    return procedure.results


def _answering(session: DeviceSession) -> bool:
    status = session.status
    return (
        status is not None
        and status.link is Link.CONNECTED
        and session.driver.condition is not Condition.WAITING
    )
