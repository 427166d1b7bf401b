"""Which protocol framer each device's stream is cut with (device name -> framer factory)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from vitals.protocols import (
    and_scale,
    berrymed,
    contec_7d,
    contec_legacy,
    gy_mcu90615,
    masimo,
    maxbotix,
    nonin,
    suntech,
)
from vitals.protocols.framing import Framer

FRAMERS: Mapping[str, Callable[[], Framer[Any]]] = {
    "and-scale": and_scale.framer,
    "berrymed-bci": berrymed.framer,
    "cms50d-legacy": contec_legacy.framer,
    "cms50ew": contec_7d.framer,
    "gy-mcu90615": gy_mcu90615.framer,
    "masimo-ascii1": masimo.framer,
    "maxbotix": maxbotix.framer,
    "nonin-oem3": nonin.framer,
    "suntech-advantage": suntech.framer,
}
