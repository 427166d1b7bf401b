"""The whole consultation path in real Chromium: resident page ↔ cabin service ↔ signaling ↔
doctor console.

The cabin service runs in-process with its test-pattern camera and tone microphone; the
doctor's console and the resident's page are two Chromium pages (Debian's chromium through
Playwright, fake camera and microphone). The doctor's video reaches the resident's page over
the cabin's local leg.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from aioice.ice import StunProtocol
from playwright.sync_api import Browser, Page, expect

from cabin.service import CabinService, ServiceOptions
from signaling.model import Role
from tests.peers.browser import browser, playwright_driver
from tests.peers.loop_thread import LoopThread
from tests.peers.tcp_proxy import CuttableProxy
from tests.signaling.harness import Node
from tests.signaling.test_console import (
    ARTIFACTS,
    Pages,
    accept_first,
    frames_decoded,
    loop,
    node,
    pages,
    signed_in_console,
    wait_for_frames,
)

pytestmark = pytest.mark.slow
__all__ = ["browser", "loop", "node", "pages", "playwright_driver"]

MEASUREMENT = {
    "type": "measurement",
    "kind": "spo2",
    "value": 96,
    "unit": "%",
    "status": "valid",
    "band": "normal",
    "color": "green",
    "time": "2026-11-22T08:00:00+07:00",
}

# how bright the doctor's picture is on the resident page (the filler is black)
DOCTOR_BRIGHTNESS = """
() => {
  const video = document.getElementById("doctor-video");
  if (!video.videoWidth) return 0;
  const canvas = document.createElement("canvas");
  canvas.width = 64; canvas.height = 36;
  const g = canvas.getContext("2d");
  g.drawImage(video, 0, 0, 64, 36);
  const data = g.getImageData(0, 0, 64, 36).data;
  let sum = 0;
  for (let i = 0; i < data.length; i += 4) sum += data[i] + data[i + 1] + data[i + 2];
  return sum / (data.length / 4) / 3;
}
"""


@dataclass
class Cabin:
    service: CabinService
    url: str


@contextlib.asynccontextmanager
async def running_cabin(node: Node, *, signaling_url: str | None = None) -> AsyncIterator[Cabin]:
    async def token() -> str:
        return node.token(Role.CABIN, "dkc-01", ["bv-a"])

    async with aiohttp.ClientSession() as http:
        service = CabinService(
            options=ServiceOptions(
                signaling_url=signaling_url or node.url,
                triage={"urgency": "urgent", "flags": ["bp-high"], "summary": "BP 152/95"},
            ),
            http=http,
            token=token,
            hello=lambda: {
                "type": "hello",
                "v": 1,
                "resident": {"name": "Trần Thị Mai", "age": 67, "sex": "female"},
                "language": "vi",
            },
            backlog=lambda: [MEASUREMENT],
        )
        async with service.running():
            server = TestServer(service.app)
            await server.start_server()
            try:
                yield Cabin(service=service, url=str(server.make_url("/ui/")))
            finally:
                await server.close()


@pytest.fixture
def cabin(loop: LoopThread, node: Node) -> Cabin:
    return loop.hold(running_cabin(node), timeout_s=20)


def resident_page(browser: Browser, pages: Pages, cabin: Cabin) -> Page:
    page = pages.new_page(browser)
    page.goto(cabin.url)
    expect(page.get_by_role("button", name="Gọi bác sĩ")).to_be_visible()
    return page


def wait_for_doctor_picture(page: Page, *, timeout_s: float = 15.0) -> float:
    deadline = time.monotonic() + timeout_s
    while (brightness := float(page.evaluate(DOCTOR_BRIGHTNESS))) < 20:
        assert time.monotonic() < deadline, f"the doctor's video stayed dark ({brightness:.1f})"
        page.wait_for_timeout(200)
    return brightness


def test_a_resident_calls_a_doctor_from_the_cabin_screen(
    browser: Browser, pages: Pages, node: Node, cabin: Cabin, loop: LoopThread
) -> None:
    console = signed_in_console(browser, pages, node)
    resident = resident_page(browser, pages, cabin)
    assert float(resident.evaluate(DOCTOR_BRIGHTNESS)) < 20  # the filler before any call

    resident.get_by_role("button", name="Gọi bác sĩ").click()
    expect(resident.locator("#state-text")).to_contain_text("người thứ 1")
    expect(console.get_by_text("BP 152/95")).to_be_visible()
    accept_first(console)

    wait_for_frames(console)  # the cabin's test pattern decodes in the doctor's browser
    expect(console.get_by_text("Trần Thị Mai")).to_be_visible()  # over the vitals channel
    expect(console.locator("body")).to_contain_text("96")
    expect(resident.locator("#state-text")).to_have_text("Đang nói chuyện với bác sĩ.")
    wait_for_doctor_picture(resident)  # the doctor's camera, through the cabin's local leg
    expect(resident.get_by_role("button", name="Kết thúc cuộc gọi")).to_be_visible()

    console.get_by_role("button", name="Re-measure").first.click()
    expect(resident.locator("#remeasure")).to_contain_text("Bác sĩ đề nghị ông/bà đo lại")
    console.get_by_label("Note to the resident").fill("Huyết áp cao. Khám bác sĩ gia đình.")
    console.get_by_role("button", name="See a GP").click()
    expect(resident.locator("#note-text")).to_have_text("Huyết áp cao. Khám bác sĩ gia đình.")
    expect(resident.locator("#note-advice")).to_contain_text("bác sĩ đa khoa")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    resident.screenshot(path=str(ARTIFACTS / "resident-call.png"))

    resident.get_by_role("button", name="English").click()
    expect(resident.locator("#note-advice")).to_contain_text("general practitioner")

    console.get_by_role("button", name="Hang up").click()
    expect(resident.locator("#state-text")).to_contain_text("ended the call")
    outcome = loop.run(_outcome(cabin))
    assert outcome["end"] == "hung-up" or outcome["end"] == "doctor-hung-up"
    assert outcome["notes"] == ["Huyết áp cao. Khám bác sĩ gia đình."]
    metrics = resident.request.get(cabin.url.removesuffix("/ui/") + "/metrics").text()
    assert "cabin_call_calls_total 1.0" in metrics  # the per-call quality record is exported


async def _outcome(cabin: Cabin) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while not cabin.service.outcomes:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    outcome = cabin.service.outcomes[-1]
    return {"end": outcome.end.value, "notes": [n.text for n in outcome.notes]}


@contextlib.contextmanager
def network_cut(connections: set[Any]) -> Iterator[None]:
    """Drop every ICE/media datagram of these aioice connections, both ways, while inside."""
    receive, send_data, send_stun = (
        StunProtocol.datagram_received,
        StunProtocol.send_data,
        StunProtocol.send_stun,
    )

    def cut_receive(self: StunProtocol, data: Any, addr: Any) -> None:
        if self.receiver not in connections:
            receive(self, data, addr)

    async def cut_send_data(self: StunProtocol, data: bytes, addr: Any) -> None:
        if self.receiver not in connections:
            await send_data(self, data, addr)

    def cut_send_stun(self: StunProtocol, message: Any, addr: Any) -> None:
        if self.receiver not in connections:
            send_stun(self, message, addr)

    StunProtocol.datagram_received = cut_receive  # type: ignore[method-assign]
    StunProtocol.send_data = cut_send_data  # type: ignore[method-assign]
    StunProtocol.send_stun = cut_send_stun  # type: ignore[method-assign]
    try:
        yield
    finally:
        StunProtocol.datagram_received = receive  # type: ignore[method-assign]
        StunProtocol.send_data = send_data  # type: ignore[method-assign]
        StunProtocol.send_stun = send_stun  # type: ignore[method-assign]


def _ice_connections(pc: Any) -> set[Any]:
    found = set()
    for transceiver in pc.getTransceivers():
        dtls = transceiver.sender.transport
        if dtls is not None:
            found.add(dtls.transport._connection)
    if pc.sctp is not None:
        found.add(pc.sctp.transport.transport._connection)
    return found


def test_the_call_survives_a_ten_second_network_cut(
    browser: Browser, pages: Pages, node: Node, loop: LoopThread
) -> None:
    host, port = node.url.split("/")[2].split(":")
    proxy = loop.hold(CuttableProxy(target_host=host, target_port=int(port)).running())
    cabin = loop.hold(
        running_cabin(node, signaling_url=f"ws://127.0.0.1:{proxy.port}/ws"), timeout_s=20
    )
    console = signed_in_console(browser, pages, node)
    resident = resident_page(browser, pages, cabin)
    resident.get_by_role("button", name="Gọi bác sĩ").click()
    accept_first(console)
    before = wait_for_frames(console)
    call = cabin.service.call
    assert call is not None
    assert call.peer_connection is not None

    async def cut_for(seconds: float) -> None:
        pc = call.peer_connection
        with network_cut(_ice_connections(pc)):
            proxy.set_cut(True)  # the signaling connection goes with the network
            try:
                await asyncio.sleep(seconds)
            finally:
                proxy.set_cut(False)

    started = time.monotonic()
    cut = asyncio.run_coroutine_threadsafe(cut_for(10.0), loop.loop)
    # the doctor is told while the network is down; the resident's screen says so too
    expect(console.locator("body")).to_contain_text("connection dropped", timeout=8000)
    expect(resident.locator("#state-text")).to_contain_text("kết nối lại", timeout=8000)
    cut.result(timeout=20)
    after = wait_for_frames(console, above=before + 30, timeout_s=20)
    recovered_in = time.monotonic() - started
    assert after > before
    assert cabin.service.call is not None  # the same consultation, not a new one
    expect(resident.locator("#state-text")).to_have_text(
        "Đang nói chuyện với bác sĩ.", timeout=15000
    )
    wait_for_doctor_picture(resident)
    print(f"recovered {recovered_in:.1f} s after the 10 s cut began")
    assert recovered_in < 30, recovered_in
    console.get_by_role("button", name="Hang up").click()
    expect(resident.locator("#state-text")).to_contain_text("kết thúc")
    _ = frames_decoded  # the helper is part of the console tests' vocabulary
