"""Every simulator, by the name of the device it simulates."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vitals.sim.and_scale import AndScaleSimulator
from vitals.sim.berrymed import BerryMedSimulator
from vitals.sim.contec_7d import Cms50ewSimulator
from vitals.sim.contec_legacy import Cms50LegacySimulator
from vitals.sim.gy_mcu90615 import GyMcu90615Simulator
from vitals.sim.masimo import MasimoSimulator
from vitals.sim.maxbotix import MaxBotixSimulator
from vitals.sim.nonin import NoninOem3Simulator
from vitals.sim.simulator import Simulator
from vitals.sim.suntech import SunTechSimulator

SIMULATORS: Mapping[str, type[Simulator]] = MappingProxyType(
    {
        sim.name: sim
        for sim in (
            Cms50LegacySimulator,
            Cms50ewSimulator,
            BerryMedSimulator,
            NoninOem3Simulator,
            MasimoSimulator,
            SunTechSimulator,
            AndScaleSimulator,
            MaxBotixSimulator,
            GyMcu90615Simulator,
        )
    }
)
