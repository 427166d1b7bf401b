"""The kiosk simulator against a real kiosk API (loopback ports, real HTTP both ways): a test
card placed opens a session, the cabin's signed events arrive and verify, removing the card
wipes the visit; then the same through the page in Chromium."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from cabin.kiosksim import KioskSimulator, demo_citizens, serving
from kiosk_bridge.api import IdentityGate, create_kiosk_app
from kiosk_bridge.assertion import AssertionPolicy, MemoryJtiStore, TrustedKiosks
from kiosk_bridge.events import (
    EventSender,
    EventType,
    SigningKey,
    build_event,
    encode_event,
    signature_headers,
)
from kiosk_bridge.intake import IntakePolicy, TrustAnchors
from kiosk_bridge.kiosk_auth import BearerToken, KioskAuth
from kiosk_bridge.sessions import MemoryVisits
from kiosk_bridge.testcards import SyntheticKiosk, make_kiosk
from tests.kiosk_bridge.test_events import FAST, KEY, wall_clock
from tests.peers.browser import browser, playwright_driver
from tests.peers.loop_thread import LoopThread

if TYPE_CHECKING:
    from playwright.sync_api import Browser

__all__ = ["browser", "playwright_driver"]  # fixtures from tests.peers.browser

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
CABIN = "cabin-test-01"
TOKEN = "kiosk-bearer-token-for-tests-0123456789"
LAUNCH = "https://cabin.test/launch"
TODAY = date(2026, 11, 22)


@dataclass
class Station:
    simulator: KioskSimulator
    url: str
    cabin_url: str
    visits: MemoryVisits


def _sender(path: Path, key: SigningKey) -> EventSender:
    return EventSender(
        store_path=path,
        key=key,
        source=CABIN,
        clock=wall_clock,
        policy=FAST,
        attempt_timeout=2.0,
        idle_poll=0.05,
    )


@asynccontextmanager
async def station(
    tmp_path: Path,
    *,
    cabin_signs_with: SigningKey = KEY,
    cabin_trusts: SyntheticKiosk | None = None,
    cabin_url: str | None = None,
) -> AsyncIterator[Station]:
    """A kiosk API (MemoryVisits) and the simulator, each on its own loopback port."""
    kiosk = make_kiosk()
    trusted = cabin_trusts or kiosk
    visits = MemoryVisits()
    async with _sender(tmp_path / "events.db", cabin_signs_with).running() as events:
        app = create_kiosk_app(
            intake=IdentityGate(
                policy=IntakePolicy(assertion=AssertionPolicy(audience=CABIN)),
                anchors=TrustAnchors(
                    kiosks=TrustedKiosks.from_jwks({trusted.issuer: trusted.jwks()})
                ),
                jti_store=MemoryJtiStore(),
            ),
            visits=visits,
            events=events,
            auth=KioskAuth(bearer=BearerToken(TOKEN)),
            clock=lambda: datetime.now(UTC),
            launch_base_url=LAUNCH,
        )
        async with TestServer(app) as cabin:
            base = cabin_url or str(cabin.make_url("")).rstrip("/")
            simulator = KioskSimulator(
                cabin_url=base,
                bearer_token=TOKEN,
                event_key=KEY,
                kiosk=kiosk,
                citizens=demo_citizens(4),
                audience=CABIN,
            )
            async with serving(simulator) as url:
                yield Station(simulator=simulator, url=url, cabin_url=base, visits=visits)


async def wait_for_event(station: Station, kind: str, *, timeout: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            for event in station.simulator.events():
                if event.type == kind:
                    return event.as_json()
            await asyncio.sleep(0.02)


def run(scenario: Any) -> None:
    asyncio.run(asyncio.wait_for(scenario, 30))


# --- through the simulator's API (what the page calls) --------------------------------------


def test_place_card_opens_a_session_and_remove_card_wipes_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with station(tmp_path) as s, aiohttp.ClientSession(s.url) as http:
            placed = await http.post(
                "/api/card", json={"citizen": 1, "service": "health-check", "locale": "en"}
            )
            assert placed.status == 200
            reply = await placed.json()
            assert reply["cabin_status"] == 201, reply
            session_id = reply["cabin_reply"]["session_id"]
            assert reply["card"]["session_id"] == session_id
            assert reply["card"]["launch_url"].startswith(f"{LAUNCH}/{session_id}?launch=")
            assert reply["card"]["assurance"] == "asserted"

            started = await wait_for_event(s, "session.started")
            assert started["verified"] is True
            assert started["subject"] == session_id
            assert started["data"]["service"] == "health-check"

            status = await (await http.get("/api/card/status")).json()
            assert status["cabin_status"] == 200
            assert status["cabin_reply"]["state"] == "opened"

            removed = await (await http.delete("/api/card")).json()
            assert removed["cabin_status"] == 204
            assert removed["card"] is None
            assert session_id in s.visits.wiped
            wiped = await wait_for_event(s, "session.wiped")
            assert wiped["verified"] is True
            assert wiped["data"] == {"reason": "kiosk_request"}

            state = await (await http.get("/api/state")).json()
            assert state["card"] is None
            assert [e["type"] for e in state["events"]] == ["session.started", "session.wiped"]
            later = await (await http.get(f"/api/state?after={state['events'][0]['seq']}")).json()
            assert [e["type"] for e in later["events"]] == ["session.wiped"]

    run(scenario())


def test_events_signed_with_another_secret_are_shown_as_invalid(tmp_path: Path) -> None:
    forged_key = SigningKey(KEY.key_id, b"x" * 32)

    async def scenario() -> None:
        async with (
            station(tmp_path, cabin_signs_with=forged_key) as s,
            aiohttp.ClientSession(s.url) as http,
        ):
            placed = await (await http.post("/api/card", json={"citizen": 0})).json()
            assert placed["cabin_status"] == 201
            event = await wait_for_event(s, "session.started")
            assert event["verified"] is False
            assert "HMAC" in event["problem"]

    run(scenario())


def test_a_retried_event_is_logged_once_and_a_garbled_one_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with station(tmp_path) as s, aiohttp.ClientSession(s.url) as http:
            event = build_event(
                EventType.SOS_RAISED, source=CABIN, session_id="s-1", now=datetime.now(UTC)
            )
            body = encode_event(event)
            headers = signature_headers(body, key=KEY, now=datetime.now(UTC))
            for _ in range(2):
                response = await http.post("/events", data=body, headers=headers)
                assert response.status == 204
            garbled = await http.post("/events", data=body + b" ", headers=headers)
            assert garbled.status == 401
            other_key = signature_headers(body, key=SigningKey("k2", b"k" * 32), now=wall_clock())
            assert (await http.post("/events", data=body, headers=other_key)).status == 401
            state = await (await http.get("/api/state")).json()
            assert [(e["type"], e["verified"]) for e in state["events"]] == [
                ("sos.raised", True),
                ("sos.raised", False),
                ("sos.raised", False),
            ]
            assert state["events"][2]["problem"] == "unknown key id 'k2'"
            assert state["duplicates"] == 1

    run(scenario())


def test_the_cabins_refusals_are_relayed_and_no_card_stays_in(tmp_path: Path) -> None:
    async def scenario() -> None:
        stranger = make_kiosk()  # same issuer and kid, another key: the cabin sees a forgery
        async with (
            station(tmp_path, cabin_trusts=stranger) as s,
            aiohttp.ClientSession(s.url) as http,
        ):
            reply = await (await http.post("/api/card", json={"citizen": 2})).json()
            assert reply["cabin_status"] == 422
            assert reply["cabin_reply"]["error"] == "assertion_forged"
            assert reply["card"] is None
            assert (await http.delete("/api/card")).status == 404
            assert (await http.get("/api/card/status")).status == 404

    run(scenario())


def test_one_card_at_a_time_and_bad_choices_are_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with station(tmp_path) as s, aiohttp.ClientSession(s.url) as http:
            for bad in ({"citizen": 9}, {"citizen": True}, {"citizen": 0, "service": "x"}, [1]):
                assert (await http.post("/api/card", json=bad)).status == 400
            assert (await http.post("/api/card", data=b"{", headers=_json())).status == 400
            assert (await http.post("/api/card", json={"citizen": 0})).status == 200
            second = await http.post("/api/card", json={"citizen": 1})
            assert second.status == 409
            assert (await second.json())["error"] == "card_present"

    run(scenario())


def test_an_unreachable_cabin_is_a_502(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            station(tmp_path, cabin_url="http://127.0.0.1:9") as s,
            aiohttp.ClientSession(s.url) as http,
        ):
            response = await http.post("/api/card", json={"citizen": 0})
            assert response.status == 502
            assert (await response.json())["error"] == "cabin_unreachable"
            assert s.simulator.card is None

    run(scenario())


def test_the_page_its_cards_and_the_kiosk_key_are_served(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with station(tmp_path) as s, aiohttp.ClientSession(s.url) as http:
            page = await (await http.get("/")).text()
            assert "Đặt thẻ / Place card" in page
            assert "Rút thẻ / Remove card" in page
            for asset in ("/static/kiosk.js", "/static/kiosk.css"):
                assert (await http.get(asset)).status == 200
            cards = await (await http.get("/api/citizens")).json()
            assert len(cards["citizens"]) == 4
            for card in cards["citizens"]:
                assert "Thử Nghiệm" in card["name"]
                assert card["cccd"].startswith("099")
            assert cards["issuer"] == s.simulator.issuer
            assert await (await http.get("/jwks.json")).json() == s.simulator.jwks()

    run(scenario())
    assert demo_citizens(3, today=TODAY) == demo_citizens(3, today=TODAY)  # seeded


def _json() -> dict[str, str]:
    return {"Content-Type": "application/json"}


# --- the page in Chromium -------------------------------------------------------------------


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread(name="kiosksim") as running:
        yield running


@pytest.mark.slow
def test_the_page_places_and_removes_a_card(
    browser: Browser, loop: LoopThread, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    s = loop.hold(station(tmp_path), timeout_s=20)
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    try:
        page = context.new_page()
        page.goto(s.url)
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        expect(page.locator(".card")).to_have_count(4)
        page.locator(".card").nth(2).click()
        page.locator('input[name="service"][value="consult"]').check()
        page.get_by_role("button", name="Đặt thẻ / Place card").click()

        launch = page.locator("#launch")
        expect(launch).to_be_visible()
        expect(launch).to_have_attribute("target", "_blank")
        href = launch.get_attribute("href")
        assert href is not None
        assert href.startswith(f"{LAUNCH}/")
        card = s.simulator.card
        assert card is not None
        assert card.citizen == 2
        assert card.service == "consult"
        expect(page.locator('#log-body tr[data-type="session.started"] .sig')).to_have_text("✓")
        expect(page.locator("#visit-status")).to_contain_text("opened")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "kiosk-simulator.png"), full_page=True)

        page.get_by_role("button", name="Rút thẻ / Remove card").click()
        wiped = page.locator('#log-body tr[data-type="session.wiped"]')
        expect(wiped.locator(".sig")).to_have_text("✓")
        expect(wiped).to_have_attribute("data-verified", "true")
        expect(page.locator("#session")).to_be_hidden()
        expect(page.get_by_role("button", name="Đặt thẻ / Place card")).to_be_enabled()
        assert card.session_id in s.visits.wiped
        assert json.loads(wiped.locator("code").inner_text()) == {"reason": "kiosk_request"}
    finally:
        context.close()
