"""A compact one-line view of a device's latest readings, for terminals (pure formatting)."""

from __future__ import annotations

from collections import deque

from vitals.model import Flag, Kind, Reading, Status

_SPARK = "▁▂▃▄▅▆▇█"
_LABELS: dict[Kind, str] = {
    Kind.SPO2: "SpO2",
    Kind.PULSE_RATE: "PR",
    Kind.PERFUSION_INDEX: "PI",
    Kind.CUFF_PRESSURE: "cuff",
    Kind.BODY_WEIGHT: "weight",
    Kind.DISTANCE: "distance",
    Kind.BODY_HEIGHT: "height",
    Kind.OBJECT_TEMPERATURE: "temp",
    Kind.AMBIENT_TEMPERATURE: "ambient",
    Kind.BODY_TEMPERATURE: "body temp",
}
_UNITS = {"%": "%", "/min": "/min", "mm[Hg]": "mmHg", "Cel": "°C", "kg": "kg", "cm": "cm"}
_BP = (Kind.SYSTOLIC_BP, Kind.DIASTOLIC_BP, Kind.MEAN_BP)


class LiveLine:
    """Keeps the latest reading of each kind (and a short pleth trace) for one device."""

    def __init__(self, *, trace_length: int = 24, decimate: int = 5) -> None:
        self._latest: dict[Kind, Reading] = {}
        self._trace: deque[float] = deque(maxlen=trace_length)
        self._decimate = decimate
        self._pleth_count = 0

    def add(self, reading: Reading) -> None:
        if reading.kind is Kind.PLETH and reading.value is not None:
            if self._pleth_count % self._decimate == 0:
                self._trace.append(float(reading.value))
            self._pleth_count += 1
        self._latest[reading.kind] = reading

    def render(self) -> str:
        """E.g. ``SpO2 97 % · PR 72 /min · ▂▄▇▅▃`` or ``BP 128/82 mmHg (MAP 97)``."""
        parts: list[str] = []
        latest = self._latest
        if all(kind in latest for kind in _BP[:2]):
            sys_r, dia_r = latest[Kind.SYSTOLIC_BP], latest[Kind.DIASTOLIC_BP]
            if sys_r.value is not None and dia_r.value is not None:
                bp = f"BP {sys_r.value}/{dia_r.value} mmHg"
                mean = latest.get(Kind.MEAN_BP)
                if mean is not None and mean.value is not None:
                    bp += f" (MAP {mean.value})"
                parts.append(bp)
            else:
                parts.append(f"BP -- ({sys_r.note or dia_r.note or sys_r.status.value})")
        for kind, label in _LABELS.items():
            reading = latest.get(kind)
            if reading is not None:
                parts.append(f"{label} {_value(reading)}")
        if self._trace:
            parts.append(self._sparkline())
        flags = sorted({flag.value for r in latest.values() for flag in r.flags} - {_BEEP})
        if flags:
            parts.append("[" + ", ".join(flags) + "]")
        return " · ".join(parts) if parts else "…"

    def _sparkline(self) -> str:
        low, high = min(self._trace), max(self._trace)
        span = (high - low) or 1.0
        return "".join(_SPARK[int((v - low) / span * (len(_SPARK) - 1))] for v in self._trace)


_BEEP = Flag.PULSE_BEEP.value


def _value(reading: Reading) -> str:
    unit = _UNITS.get(reading.unit, reading.unit)
    if reading.value is None:
        return "--" if reading.status is Status.NOT_AVAILABLE else f"-- ({reading.status.value})"
    mark = "?" if reading.status is Status.QUESTIONABLE else ""
    return f"{reading.value}{mark} {unit}"
