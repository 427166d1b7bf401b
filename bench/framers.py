"""Which protocol framer each device's stream is cut with (device name -> framer factory)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from vitals.protocols import contec_legacy
from vitals.protocols.framing import Framer

FRAMERS: Mapping[str, Callable[[], Framer[object]]] = {
    "cms50d-legacy": contec_legacy.framer,
}
