"""Carrying out a procedure's commands on the drivers that can (pure: it only queues bytes)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from vitals.clock import Instant
from vitals.devices.driver import DeviceDriver
from vitals.procedures.base import Command

log = logging.getLogger(__name__)


@runtime_checkable
class CuffDevice(Protocol):
    """A driver that runs blood-pressure cycles on request."""

    def start_measurement(self, at: Instant) -> None: ...

    def abort(self, at: Instant) -> None: ...


def execute(commands: Iterable[Command], drivers: Iterable[DeviceDriver], at: Instant) -> None:
    """Queue each command on every driver able to carry it out."""
    cuffs = [driver for driver in drivers if isinstance(driver, CuffDevice)]
    for command in commands:
        if not cuffs:
            log.warning("no device can %s", command.value)
        for cuff in cuffs:
            if command is Command.START_BP:
                cuff.start_measurement(at)
            elif command is Command.ABORT_BP:
                cuff.abort(at)
