"""Identifies which supported device is on a serial port.

The probe opens the port once per distinct link setting among the candidates (a device only
makes sense at its own baud rate), lets every candidate driver for that setting send its
harmless start commands and polls (never a measurement command: a probe must not inflate a
cuff), and feeds every byte it reads to all of them.  A candidate is recognised when it has
decoded enough valid frames and those frames account for most of the bytes received
(*coverage*); the best coverage wins.  Streaming devices are recognised in a fraction of a
second; the slowest (one line a second) within about 1.2 s, and the whole probe answers
within its 3 s budget.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from vitals.clock import Clock
from vitals.devices.driver import DeviceDriver
from vitals.errors import PortError, ProbeError
from vitals.link import LinkSettings
from vitals.transport import Port, PortOpener, open_port

_MIN_WINDOW_S = 0.25
_POLLED_WINDOW_S = 0.35
_MIN_COVERAGE = 0.6


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The device recognised on a port."""

    device: str
    model: str
    link: LinkSettings
    frames: int
    coverage: float
    """Fraction of the bytes received that were valid frames of this device."""
    seconds: float


@dataclass
class _Candidate:
    driver: DeviceDriver
    fed: int = 0
    next_tick: float = 0.0

    @property
    def coverage(self) -> float:
        stats = self.driver.stats
        if not self.fed or not stats.frames:
            return 0.0
        return max(0.0, 1.0 - stats.discarded_bytes / self.fed)

    def recognised(self) -> bool:
        rate = self.driver.spec.frame_rate
        needed = 1 if rate is None or rate <= 2 else 3
        return self.driver.stats.frames >= needed and self.coverage >= _MIN_COVERAGE


def _window(drivers: Sequence[type[DeviceDriver]]) -> float:
    """How long to listen at one link setting to give every candidate a fair chance."""
    longest = _MIN_WINDOW_S
    for driver in drivers:
        rate = driver.spec.frame_rate
        if rate is None:
            longest = max(longest, _POLLED_WINDOW_S)
        else:
            longest = max(longest, min(1.25, 4.0 / rate + 0.1))
    return longest


async def probe(
    url: str,
    candidates: Sequence[type[DeviceDriver]],
    *,
    clock: Clock,
    opener: PortOpener = open_port,
    budget: float = 3.0,
) -> ProbeResult:
    """Identify the device on ``url`` among ``candidates``; raises :class:`ProbeError`."""
    groups: dict[LinkSettings, list[type[DeviceDriver]]] = {}
    for candidate in candidates:
        groups.setdefault(candidate.spec.link, []).append(candidate)
    # fast streamers first: they are recognised quickest
    order = sorted(groups.items(), key=lambda item: _window(item[1]))
    started = clock.now()
    tried: list[str] = []
    try:
        async with asyncio.timeout(budget):
            for link, drivers in order:
                tried.append(str(link))
                found = await _listen(url, link, drivers, opener=opener, clock=clock)
                if found is not None:
                    return ProbeResult(
                        device=found.driver.spec.name,
                        model=found.driver.spec.model,
                        link=link,
                        frames=found.driver.stats.frames,
                        coverage=round(found.coverage, 3),
                        seconds=clock.now().seconds_since(started),
                    )
    except TimeoutError:
        raise ProbeError(
            f"no known device recognised on {url} within {budget:.1f} s (tried {', '.join(tried)})"
        ) from None
    raise ProbeError(f"no known device recognised on {url} (tried {', '.join(tried)})")


async def _listen(
    url: str,
    link: LinkSettings,
    drivers: Sequence[type[DeviceDriver]],
    *,
    opener: PortOpener,
    clock: Clock,
) -> _Candidate | None:
    try:
        port = await opener(url, link)
    except PortError as exc:
        raise ProbeError(str(exc)) from exc
    try:
        return await _converse(
            port, [_Candidate(d(port=url)) for d in drivers], _window(drivers), clock
        )
    finally:
        await port.close()


async def _converse(
    port: Port, candidates: list[_Candidate], window: float, clock: Clock
) -> _Candidate | None:
    start = clock.now()
    for candidate in candidates:
        candidate.driver.connect(start)
        candidate.next_tick = 0.0
    await _send_all(port, candidates)
    while (elapsed := clock.now().seconds_since(start)) < window:
        next_tick = min(c.next_tick for c in candidates)
        wait = max(0.0, min(window, next_tick) - elapsed)
        data = b""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                data = await port.read()
        now = clock.now()
        elapsed = now.seconds_since(start)
        for candidate in candidates:
            candidate.fed += len(data)
            candidate.driver.receive(data, now)
            if elapsed >= candidate.next_tick:
                candidate.driver.tick(now)  # readings are of no interest to the probe
                candidate.next_tick = elapsed + candidate.driver.spec.tick_interval
        await _send_all(port, candidates)
        best = _best(candidates)
        if best is not None and elapsed >= _MIN_WINDOW_S:
            return best
    return _best(candidates)


def _best(candidates: list[_Candidate]) -> _Candidate | None:
    recognised = [c for c in candidates if c.recognised()]
    if not recognised:
        return None
    return max(recognised, key=lambda c: (c.coverage, c.driver.stats.frames))


async def _send_all(port: Port, candidates: list[_Candidate]) -> None:
    data = b"".join(c.driver.take_output() for c in candidates)
    if data:
        await port.write(data)
