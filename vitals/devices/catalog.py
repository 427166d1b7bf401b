"""Every supported device model, by CLI name, and how to build its driver."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from vitals.devices.and_scale import AndScaleDriver
from vitals.devices.berrymed import BerryMedDriver
from vitals.devices.contec_7d import Cms50ewDriver
from vitals.devices.contec_legacy import Cms50LegacyDriver
from vitals.devices.driver import DeviceDriver
from vitals.devices.gy_mcu90615 import GyMcu90615Driver
from vitals.devices.masimo import MasimoDriver
from vitals.devices.maxbotix import MaxBotixDriver
from vitals.devices.nonin import NoninOem3Driver
from vitals.devices.suntech import SunTechDriver

DRIVERS: Mapping[str, type[DeviceDriver]] = MappingProxyType(
    {
        driver.spec.name: driver
        for driver in (
            Cms50LegacyDriver,
            Cms50ewDriver,
            BerryMedDriver,
            NoninOem3Driver,
            MasimoDriver,
            SunTechDriver,
            AndScaleDriver,
            MaxBotixDriver,
            GyMcu90615Driver,
        )
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverOptions:
    """Installation-specific settings some drivers need."""

    mount_height_mm: int = 2200
    """Height sensor: its height above the platform the resident stands on."""
    bp_repeat_every: float | None = None
    """BP module: start a cycle on connect and repeat it this many seconds after each result."""


def create_driver(name: str, *, port: str, options: DriverOptions | None = None) -> DeviceDriver:
    """A new driver for the device called ``name`` (see :data:`DRIVERS`) on ``port``."""
    try:
        driver_class = DRIVERS[name]
    except KeyError:
        known = ", ".join(sorted(DRIVERS))
        raise ValueError(f"unknown device {name!r}; known devices: {known}") from None
    options = options or DriverOptions()
    if driver_class is SunTechDriver:
        return SunTechDriver(port=port, repeat_every=options.bp_repeat_every)
    if driver_class is MaxBotixDriver:
        return MaxBotixDriver(port=port, mount_height_mm=options.mount_height_mm)
    return driver_class(port=port)
