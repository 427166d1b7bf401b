"""The cabin's self-test: at start and every few minutes, is each part able to do its job?

Parts: every measuring device (its serial link is up), the camera (it delivered frames since
the last check), the signaling service (``/healthz`` answers) and the hospital's FHIR endpoint
(its ``metadata`` answers, or the sink directory is writable). A failing part disables only
what needs it: a device its measuring step (the visit skips it with a reason), the camera or
the signaling service the consultation. Results are on the cabin's ``/healthz`` and
``/metrics`` (``cabin_selftest_ok{part}``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from prometheus_client import CollectorRegistry, Gauge

from cabin.devices import DEVICES_BY_STEP, DeviceSessions
from cabin.media.camera import CameraSource
from cabin.visit_machine import Step
from fhir.config import HospitalConfig
from vitals.measurement import Reason
from vitals.session import Link

logger = logging.getLogger(__name__)

DEVICE_UNAVAILABLE = Reason(
    "device-unavailable",
    "This device is out of order today; the measurement is skipped.",
    "Thiết bị này đang tạm ngưng hoạt động; phép đo được bỏ qua.",
)


@dataclass(frozen=True, slots=True)
class PartResult:
    ok: bool
    detail: str = ""


class SelfTest:
    """Runs the checks and remembers the last result of each part."""

    def __init__(
        self,
        *,
        devices: DeviceSessions,
        camera: CameraSource,
        signaling_url: str,
        hospital: HospitalConfig,
        http: aiohttp.ClientSession,
        registry: CollectorRegistry,
        period_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._devices = devices
        self._camera = camera
        self._signaling = signaling_url
        self._hospital = hospital
        self._http = http
        self._period_s = period_s
        self._clock = clock
        self._frames_seen = -1
        self.results: dict[str, PartResult] = {}
        self.checked_at: float | None = None
        self._gauge = Gauge(
            "cabin_selftest_ok",
            "1 when the part passed its last self-test",
            ["part"],
            registry=registry,
        )

    def step_available(self, step: Step) -> bool:
        """False when the device of ``step`` failed its last check (unknown counts as fine)."""
        result = self.results.get(f"device:{DEVICES_BY_STEP[step]}")
        return result is None or result.ok

    def report(self) -> dict[str, object]:
        return {
            "ok": all(r.ok for r in self.results.values()),
            "checked_at_monotonic": self.checked_at,
            "parts": {name: {"ok": r.ok, "detail": r.detail} for name, r in self.results.items()},
        }

    async def warm_up(self, *, timeout_s: float = 5.0) -> Mapping[str, PartResult]:
        """The first check, once the devices had a moment to connect and the camera to start."""
        deadline = self._clock() + timeout_s
        while self._clock() < deadline:
            linked = all(
                s.status is not None and s.status.link is Link.CONNECTED
                for s in self._devices.sessions
            )
            if linked and self._camera.frames_captured > 0:
                break
            await asyncio.sleep(0.1)
        return await self.check()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._period_s)
            await self.check()

    async def check(self) -> Mapping[str, PartResult]:
        results: dict[str, PartResult] = {}
        for session in self._devices.sessions:
            status = session.status
            name = session.driver.spec.name
            linked = status is not None and status.link is Link.CONNECTED
            results[f"device:{name}"] = PartResult(
                linked, "" if linked else (status.label if status else "not started")
            )
        frames = self._camera.frames_captured
        results["camera"] = PartResult(
            self._camera.running and frames > self._frames_seen, f"{frames} frames"
        )
        self._frames_seen = frames
        results["signaling"] = await self._reachable(_health_url(self._signaling))
        results["fhir"] = await self._fhir()
        for name, result in results.items():
            self._gauge.labels(part=name).set(1 if result.ok else 0)
            previous = self.results.get(name)
            if not result.ok and (previous is None or previous.ok):
                logger.warning("self-test: %s failed (%s)", name, result.detail)
        self.results = results
        self.checked_at = self._clock()
        return results

    async def _reachable(self, url: str) -> PartResult:
        try:
            async with asyncio.timeout(5), self._http.get(url) as reply:
                return PartResult(reply.status < 500, f"HTTP {reply.status}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return PartResult(False, type(exc).__name__)

    async def _fhir(self) -> PartResult:
        base = self._hospital.base_url
        if base.startswith("file://"):
            directory = Path(urlsplit(base).path)

            def writable() -> bool:
                directory.mkdir(parents=True, exist_ok=True)
                return os.access(directory, os.W_OK)

            try:
                ok = await asyncio.to_thread(writable)
            except OSError as exc:
                return PartResult(False, f"{directory}: {exc.strerror}")
            return PartResult(ok, str(directory))
        return await self._reachable(base.rstrip("/") + "/metadata")


def _health_url(signaling_ws_url: str) -> str:
    parts = urlsplit(signaling_ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return f"{scheme}://{parts.netloc}/healthz"
