"""Long device streams recorded from the simulators (the device-to-host bytes only).

The simulator and its driver run against each other in scenario time, as in a session, so
polled devices (the BP module, the thermometer) are recorded answering real polls.
"""

from __future__ import annotations

import random

from vitals.clock import Clock
from vitals.devices.catalog import DriverOptions, create_driver
from vitals.sim.catalog import SIMULATORS
from vitals.sim.truth import Truth


def record(name: str, *, seconds: float, seed: int = 1) -> bytes:
    """``seconds`` of what device ``name`` sends, driven by its own driver's commands."""
    ns = [0]
    clock = Clock(monotonic_ns=lambda: ns[0], wall_ns=lambda: 1_763_700_000 * 10**9)
    sim = SIMULATORS[name](Truth(), seed=seed, fast=True)
    driver = create_driver(name, port="bench", options=DriverOptions(bp_repeat_every=1.0))
    step = 0.005
    out = bytearray()
    driver.connect(clock.now())
    t = 0.0
    next_tick = 0.0
    while t < seconds:
        ns[0] = int(t * 1e9)
        if t >= next_tick:
            driver.tick(clock.now())  # readings are not recorded, only bytes
            next_tick += driver.spec.tick_interval
        device_bytes = sim.emit(t) + sim.receive(driver.take_output(), t)
        out += device_bytes
        driver.receive(device_bytes, clock.now())
        t += step
    return bytes(out)


def corrupt(data: bytes, *, fraction: float, seed: int = 7) -> bytes:
    """``data`` with ``fraction`` of its bytes replaced by random values (seeded)."""
    rng = random.Random(seed)
    out = bytearray(data)
    for index in rng.sample(range(len(out)), int(len(out) * fraction)):
        out[index] = rng.randrange(256)
    return bytes(out)
