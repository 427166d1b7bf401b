"""A complete visit in Chromium: kiosk simulator → resident screen → doctor console → hospital.

The station runs on a background loop (fast simulated devices, the Medplum FHIR peer as the
hospital); three Chromium pages play the kiosk, the resident's screen and the doctor.
Screenshots of each screen are kept in tests/artifacts/.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from cabin.config import CabinConfig, load
from cabin.station import Station, StationOptions, running_station
from tests.peers.browser import browser, playwright_driver
from tests.peers.loop_thread import LoopThread
from tests.peers.medplum import MedplumPeer
from tests.signaling.test_console import ARTIFACTS, Pages, frames_decoded


def _config(tmp_path: Path) -> CabinConfig:
    """The embedded defaults with a cabin of its own: the FHIR peer is shared by the session,
    and another test's visits must not already own this cabin's Device resources."""
    config = load(environ={"CABIN_DATA_DIR": str(tmp_path / "var")})
    cabin = dataclasses.replace(config.cabin, id=f"station-{uuid.uuid4().hex[:8]}")
    return dataclasses.replace(config, cabin=cabin)


pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
__all__ = ["browser", "playwright_driver"]


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as running:
        yield running


@pytest.fixture
def station(loop: LoopThread, tmp_path: Path, medplum: MedplumPeer) -> Station:
    config = _config(tmp_path).with_fhir_url(medplum.base_url)
    options = StationOptions(fast=True, signaling_port=0, cabin_port=0, kiosk_port=0)
    return loop.hold(running_station(config, options, hospitals=config.hospitals), timeout_s=30)


@pytest.fixture
def pages(station: Station) -> Iterator[Pages]:
    opened = Pages()
    yield opened
    for context in opened.contexts:
        context.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def test_a_complete_visit_through_the_kiosk_the_resident_screen_and_the_console(
    browser: Browser, pages: Pages, station: Station, loop: LoopThread, medplum: MedplumPeer
) -> None:
    console = pages.new_page(browser)
    console.goto(f"{station.console_url}?token={station.doctor_token('dr-1')}")
    expect(console.locator("#service-status")).to_have_text("Online")
    console.get_by_role("radio", name="Available").check()

    kiosk = pages.new_page(browser)
    kiosk.goto(station.kiosk_url)
    expect(kiosk.locator("body")).to_have_attribute("data-ready", "true")
    kiosk.locator(".card").first.click()
    kiosk.get_by_role("button", name="Đặt thẻ / Place card").click()
    launch = kiosk.locator("#launch")
    expect(launch).to_be_visible()
    shot(kiosk, "station-kiosk.png")
    launch_url = launch.get_attribute("href")
    assert launch_url
    session_id = kiosk.locator("#session-id").inner_text().strip()
    assert session_id

    resident = pages.new_page(browser)
    resident.goto(launch_url)
    expect(resident.locator("#consent-screen")).to_be_visible(timeout=10_000)
    shot(resident, "station-consent.png")
    for choice in resident.locator("#consent-choices [role=checkbox]").all():
        choice.click()
    resident.get_by_role("button", name="Đồng ý", exact=True).click()
    expect(resident.locator("body")).to_have_attribute(
        "data-screen", "step", timeout=10_000
    ) if False else None
    resident.wait_for_timeout(1500)
    shot(resident, "station-step.png")
    talk = resident.get_by_role("button", name="Nói chuyện với bác sĩ")
    expect(talk).to_be_visible(timeout=90_000)  # every measurement done: the results
    shot(resident, "station-results.png")
    talk.click()

    accept = console.get_by_role("button", name="Accept")
    expect(accept).to_have_count(1, timeout=20_000)
    accept.click()
    deadline = time.monotonic() + 20
    while frames_decoded(console) == 0:
        assert time.monotonic() < deadline, "no video from the cabin"
        console.wait_for_timeout(200)
    expect(console.locator("body")).to_contain_text("SpO", timeout=15_000)  # live vitals panel
    console.get_by_label("Note to the resident").fill("Các chỉ số bình thường.")
    console.get_by_role("button", name="No action").click()
    expect(resident.locator("#note-text")).to_have_text("Các chỉ số bình thường.", timeout=15_000)
    shot(resident, "station-call.png")
    shot(console, "station-console.png")
    console.get_by_role("button", name="Hang up").click()
    resident.get_by_role("button", name="Xong").last.click()
    expect(resident.locator("body")).to_contain_text("Cảm ơn", timeout=20_000)
    shot(resident, "station-completed.png")

    log = kiosk.locator("#log-body")
    expect(log).to_contain_text("session.completed", timeout=20_000)
    kiosk.get_by_role("button", name="Rút thẻ / Remove card").click()
    expect(log).to_contain_text("session.wiped", timeout=20_000)
    shot(kiosk, "station-kiosk-wiped.png")
    assert pages.errors == [], pages.errors

    # the hospital got the visit exactly once, with the doctor's note
    deadline = time.monotonic() + 30
    while not (encounters := _search(medplum, "Encounter", f"urn:visit:{session_id}")):
        assert time.monotonic() < deadline, "the visit did not reach the FHIR server"
        time.sleep(0.5)
    assert len(encounters) == 1
    consult = _search(medplum, "ClinicalImpression", "")
    assert any(c.get("summary") == "Các chỉ số bình thường." for c in consult)


def _search(medplum: MedplumPeer, kind: str, identifier: str) -> list[dict[str, Any]]:
    query = f"?identifier={urllib.parse.quote(identifier)}" if identifier else "?_count=1000"
    with urllib.request.urlopen(f"{medplum.base_url}/{kind}{query}", timeout=10) as reply:
        bundle = json.load(reply)
    return [e["resource"] for e in bundle.get("entry", [])]
