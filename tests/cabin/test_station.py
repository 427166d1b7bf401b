"""The whole station on one machine, driven the way the kiosk, the resident's screen and a
doctor drive it: kiosk simulator → cabin (simulated devices on ptys) → signaling → a doctor
(an aiortc peer) → the hospital (the Medplum peer), and a crash in the middle of a visit.

The resident's page is played by a WebSocket client speaking the page protocol; the Chromium
tests of the pages themselves are in test_resident_ui.py and test_consult_e2e.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cabin.config import CabinConfig, load
from cabin.selftest import PartResult
from cabin.station import Station, StationOptions, running_station
from signaling.client import SignalingClient
from tests.cabin.test_call import Doctor
from tests.peers.medplum import MedplumPeer
from vitals.sim.truth import Period, Truth


def _config(tmp_path: Path) -> CabinConfig:
    """The embedded defaults with a cabin of its own: the FHIR peer is shared by the session,
    and another test's visits must not already own this cabin's Device resources."""
    config = load(environ={"CABIN_DATA_DIR": str(tmp_path / "var")})
    cabin = dataclasses.replace(config.cabin, id=f"station-{uuid.uuid4().hex[:8]}")
    return dataclasses.replace(config, cabin=cabin)


pytestmark = pytest.mark.slow


class Screen:
    """The resident's page, as a WebSocket client of /ui/ws."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []

    async def until(
        self, predicate: Callable[[dict[str, Any]], bool], *, timeout_s: float = 60
    ) -> dict[str, Any]:
        async with asyncio.timeout(timeout_s):
            while True:
                message: dict[str, Any] = await self.ws.receive_json()
                self.messages.append(message)
                if predicate(message):
                    return message

    async def screen(self, name: str, *, timeout_s: float = 60) -> dict[str, Any]:
        return await self.until(
            lambda m: m.get("type") == "screen" and m["screen"] == name, timeout_s=timeout_s
        )

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_json(message)

    async def consent(self, *, video: bool) -> None:
        """Wait for the consent screen and agree to measuring and sending (video as given)."""
        await self.screen("consent")
        await self.send(
            {"type": "consent", "measuring": True, "hospital": True, "video_consultation": video}
        )


async def _place_card(http: aiohttp.ClientSession, station: Station, citizen: int = 0) -> str:
    async with http.post(
        station.kiosk_url + "api/card", json={"citizen": citizen, "service": "both", "locale": "vi"}
    ) as reply:
        body = await reply.json()
    assert body["cabin_status"] == 201, body
    launch = str(body["cabin_reply"]["launch_url"])
    async with http.get(launch, allow_redirects=False) as opened:
        assert opened.status == 302
    return str(body["cabin_reply"]["session_id"])


async def _kiosk_events(http: aiohttp.ClientSession, station: Station) -> list[str]:
    async with http.get(station.kiosk_url + "api/state?after=0") as reply:
        state = await reply.json()
    return [str(e.get("type")) for e in state["events"]]


def _step_screen(step: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m.get("type") == "screen" and m.get("step") == step


def _options(**changes: Any) -> StationOptions:
    return StationOptions(fast=True, signaling_port=0, cabin_port=0, kiosk_port=0, **changes)


@pytest.mark.timeout(240)
def test_a_whole_visit_with_a_doctor_reaches_the_hospital_once(
    tmp_path: Path, medplum: MedplumPeer
) -> None:
    config = _config(tmp_path).with_fhir_url(medplum.base_url)

    async def scenario() -> None:
        async with (
            running_station(config, _options(), hospitals=config.hospitals) as station,
            aiohttp.ClientSession() as http,
        ):
            doctor_client = SignalingClient(station.signaling_url, http=http)
            await doctor_client.sign_in(station.doctor_token("dr-1"))
            await doctor_client.request(
                {"type": "presence", "status": "available"}, reply_type="presence"
            )
            doctor = Doctor(doctor_client)
            session_id = await _place_card(http, station)
            async with http.ws_connect(station.cabin_url + "ws") as ws:
                page = Screen(ws)
                await page.consent(video=True)
                for step in ("temperature", "weight", "height", "spo2", "blood-pressure"):
                    shown = await page.until(_step_screen(step))
                    assert shown["screen"] == "step"
                results = await page.until(lambda m: m.get("type") == "results")
                assert {i["kind"] for i in results["items"]} >= {
                    "body-temperature",
                    "body-weight",
                    "body-height",
                    "spo2",
                    "pulse-rate",
                    "blood-pressure",
                    "bmi",
                }
                offered = await page.screen("results")
                assert offered["consult"] is True
                await page.send({"type": "call-doctor"})
                serving = asyncio.get_running_loop().create_task(doctor.serve())
                await page.until(lambda m: m.get("type") == "consult" and m["state"] == "in-call")
                async with asyncio.timeout(30):
                    while len(doctor.channel_messages) < 3 or doctor.channel is None:
                        await asyncio.sleep(0.1)
                assert doctor.channel_messages[0]["type"] == "hello"
                kinds = {m.get("kind") for m in doctor.channel_messages}
                assert "spo2" in kinds  # the visit's measurements, on the vitals channel
                doctor.say(
                    {"type": "note", "id": "n1", "text": "Huyết áp ổn.", "disposition": "no-action"}
                )
                note = await page.until(lambda m: m.get("type") == "note")
                assert note["text"] == "Huyết áp ổn."
                await doctor_client.send({"type": "hangup", "call": doctor.call})
                await page.screen("call-ended")
                await page.send({"type": "results-seen"})
                await page.screen("completed")
                await serving
                await doctor.close()
            async with asyncio.timeout(20):
                while "session.completed" not in await _kiosk_events(http, station):
                    await asyncio.sleep(0.2)
            async with http.delete(station.kiosk_url + "api/card") as removed:
                assert removed.status == 200
            async with asyncio.timeout(20):
                while "session.wiped" not in await _kiosk_events(http, station):
                    await asyncio.sleep(0.2)
            assert not await station.store.holds(session_id)
            async with asyncio.timeout(30):
                while not await _search(http, medplum, session_id):
                    await asyncio.sleep(0.5)  # the delivery worker sends it to the hospital
            events = await _kiosk_events(http, station)
            assert events[:2] == ["session.started", "consent.recorded"]
            assert events.count("measurement.completed") == 5
            for kind in ("consult.queued", "consult.started", "consult.ended"):
                assert kind in events
            await doctor_client.leave()

    asyncio.run(asyncio.wait_for(scenario(), 240))
    before = medplum.stats()
    assert before.resources.get("ClinicalImpression", 0) >= 1


async def _search(
    http: aiohttp.ClientSession, medplum: MedplumPeer, session_id: str
) -> list[dict[str, Any]]:
    url = f"{medplum.base_url}/Encounter?identifier=urn:visit:{session_id}"
    async with http.get(url) as reply:
        bundle = await reply.json()
    return [e["resource"] for e in bundle.get("entry", [])]


@pytest.mark.timeout(240)
def test_a_visit_with_faulty_devices_shows_each_reason_and_completes(tmp_path: Path) -> None:
    config = _config(tmp_path)
    truth = Truth(finger_out=(Period(0.0, 3600.0),), unstable_scale=True, cuff_error=1)

    async def scenario() -> None:
        async with (
            running_station(config, _options(truth=truth), hospitals=config.hospitals) as station,
            aiohttp.ClientSession() as http,
        ):
            await _place_card(http, station)
            async with http.ws_connect(station.cabin_url + "ws") as ws:
                page = Screen(ws)
                await page.consent(video=False)
                failed: dict[str, str] = {}
                while True:
                    message = await page.until(
                        lambda m: (
                            m.get("type") == "screen" and m["screen"] in ("step-failed", "results")
                        ),
                        timeout_s=120,
                    )
                    if message["screen"] == "results":
                        break
                    failed[message["step"]] = message["reason"]["code"]
                    assert message["reason"]["vi"]
                    await page.send({"type": "skip"})
                assert set(failed) == {"weight", "spo2", "blood-pressure"}, failed
                results = [m for m in page.messages if m.get("type") == "results"][-1]
                by_kind = {i["kind"]: i for i in results["items"]}
                assert by_kind["body-temperature"]["status"] == "valid"
                assert by_kind["body-height"]["status"] == "valid"
                await page.send({"type": "results-seen"})
                await page.screen("completed")

    asyncio.run(asyncio.wait_for(scenario(), 300))


def test_a_crash_mid_visit_closes_it_cleanly_and_keeps_what_was_committed(tmp_path: Path) -> None:
    env = {**os.environ, "CABIN_DATA_DIR": str(tmp_path / "var")}
    command = [sys.executable, "-m", "cabin", "station", "--fast"]

    def start() -> tuple[subprocess.Popen[str], dict[str, str]]:
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert process.stdout is not None
        urls: dict[str, str] = {}
        while len(urls) < 3:
            line = process.stdout.readline()
            assert line, "the station stopped"
            if match := re.search(
                r"(kiosk simulator|resident screen|doctor console):\s+(\S+)", line
            ):
                urls[match.group(1)] = match.group(2)
        return process, urls

    async def measure_two_steps(urls: dict[str, str]) -> str:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                urls["kiosk simulator"] + "api/card",
                json={"citizen": 1, "service": "both", "locale": "vi"},
            ) as reply:
                body = await reply.json()
            async with http.get(body["cabin_reply"]["launch_url"], allow_redirects=False):
                pass
            async with http.ws_connect(urls["resident screen"] + "ws") as ws:
                page = Screen(ws)
                await page.consent(video=True)
                await page.until(lambda m: m.get("type") == "screen" and m.get("step") == "height")
            return str(body["cabin_reply"]["session_id"])

    first, urls = start()
    try:
        session_id = asyncio.run(asyncio.wait_for(measure_two_steps(urls), 60))
    finally:
        first.send_signal(signal.SIGKILL)  # a power cut mid-visit
        first.wait(timeout=10)
    second, _ = start()
    try:
        sink = tmp_path / "var" / "fhir-sink" / "demo.ndjson"
        deadline = time.monotonic() + 30
        while not (sink.exists() and session_id in sink.read_text()):
            assert time.monotonic() < deadline, "the interrupted visit was not delivered"
            time.sleep(0.3)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=20) == 0
    bundle = json.loads(next(line for line in sink.read_text().splitlines() if session_id in line))
    kinds = {
        e["resource"]["code"]["coding"][0]["code"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
    }
    assert {"8310-5", "29463-7"} <= kinds  # temperature and weight, committed before the cut


@pytest.mark.timeout(120)
def test_the_self_test_reports_every_part_and_a_broken_device_skips_only_its_step(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)

    async def scenario() -> None:
        async with (
            running_station(config, _options(), hospitals=config.hospitals) as station,
            aiohttp.ClientSession() as http,
        ):
            health_url = station.cabin_url.removesuffix("/ui/") + "/healthz"
            async with http.get(health_url) as reply:
                health = await reply.json()
            assert reply.status == 200, health
            parts = health["selftest"]["parts"]
            assert {"camera", "signaling", "fhir", "device:and-scale"} <= set(parts)
            assert all(part["ok"] for part in parts.values()), parts
            station.selftest.results["device:and-scale"] = PartResult(False, "unplugged")
            async with http.get(health_url) as reply:
                assert reply.status == 503
                assert (await reply.json())["status"] == "degraded"
            await _place_card(http, station)
            async with http.ws_connect(station.cabin_url + "ws") as ws:
                page = Screen(ws)
                await page.consent(video=False)
                results = await page.until(lambda m: m.get("type") == "results", timeout_s=90)
            by_kind = {item["kind"]: item for item in results["items"]}
            assert "body-weight" not in by_kind  # skipped: its scale failed the self-test
            assert by_kind["body-height"]["status"] == "valid"
            assert by_kind["blood-pressure"]["status"] == "valid"

    asyncio.run(asyncio.wait_for(scenario(), 110))


@pytest.mark.timeout(120)
def test_sos_during_a_measurement_calls_a_doctor_urgently_and_tells_the_kiosk(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)

    async def scenario() -> None:
        async with (
            running_station(config, _options(), hospitals=config.hospitals) as station,
            aiohttp.ClientSession() as http,
        ):
            doctor = SignalingClient(station.signaling_url, http=http)
            await doctor.sign_in(station.doctor_token("dr-1"))
            await _place_card(http, station)
            async with http.ws_connect(station.cabin_url + "ws") as ws:
                page = Screen(ws)
                await page.consent(video=True)
                await page.until(_step_screen("weight"))
                await page.send({"type": "sos"})
                sos = await page.screen("sos")
                assert sos["emergency_number"] == "115"
                queue = await doctor.wait_for(
                    "queue", where=lambda m: bool(m["tickets"]), timeout_s=20
                )
                [ticket] = queue["tickets"]
                assert ticket["triage"]["urgency"] == "emergency"
                assert "sos" in ticket["triage"]["flags"]
            async with asyncio.timeout(20):
                while "sos.raised" not in await _kiosk_events(http, station):
                    await asyncio.sleep(0.2)
            await doctor.leave()

    asyncio.run(asyncio.wait_for(scenario(), 110))
