"""Where and when a benchmark ran, for BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path


def describe() -> str:
    """``2026-11-21 22:00 UTC · x86_64 · 2 cores · <cpu model> · Python 3.11.7 · Linux 6.x``."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return " · ".join(
        (
            datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            platform.machine(),
            f"{os.cpu_count()} cores",
            cpu,
            f"Python {platform.python_version()}",
            f"{platform.system()} {platform.release()}",
        )
    )
