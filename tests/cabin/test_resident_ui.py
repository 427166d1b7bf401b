"""The resident's page for a whole visit, in real Chromium, against a scripted service.

A tiny aiohttp app serves ``cabin/ui`` the way the cabin service does (``/ui/``, ``/ui/ws``,
``/ui/voice/<lang>/<id>.wav``) and plays the page protocol's messages over ``/ui/ws`` as the
visit runner would, recording what the page sends back. Each screen is checked at a
1080×1920 portrait and a 1920×1080 landscape viewport: what it shows, what its buttons send,
no text below 24 px and no visible button below 60 px.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import wave
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer
from playwright.sync_api import Browser, Page, ViewportSize, expect

from cabin.visit_machine import Step
from tests.peers.browser import browser, playwright_driver
from tests.peers.loop_thread import LoopThread

pytestmark = pytest.mark.slow
__all__ = ["browser", "playwright_driver"]

REPO = Path(__file__).resolve().parents[2]
UI_DIR = REPO / "cabin" / "ui"
ARTIFACTS = REPO / "tests" / "artifacts"
PORTRAIT: ViewportSize = {"width": 1080, "height": 1920}
LANDSCAPE: ViewportSize = {"width": 1920, "height": 1080}
VIEWPORTS = {"portrait": PORTRAIT, "landscape": LANDSCAPE}

CONSENT_TEXT = {
    "type": "consent-text",
    "version": "2026-11-01",
    "hospital": "Bệnh viện A",
    "vi": "Đồng ý sử dụng dữ liệu sức khỏe (phiên bản 2026-11-01)\n"
    "Buồng khám sức khỏe cần sự đồng ý của bạn cho từng mục dưới đây.\n"
    "1. Đo các chỉ số sức khỏe.\n2. Gửi kết quả đến Bệnh viện A.\n3. Tư vấn qua video.",
    "en": "Consent to the use of your health data (version 2026-11-01)\n"
    "The health cabin needs your consent for each item below.\n"
    "1. Measuring.\n2. Sending the results to Bệnh viện A.\n3. A video consultation.",
}
RESULTS: dict[str, Any] = {
    "type": "results",
    "items": [
        {
            "kind": "blood-pressure",
            "label_vi": "Huyết áp",
            "label_en": "Blood pressure",
            "value": "152/95",
            "unit": "mmHg",
            "status": "valid",
            "color": "orange",
            "vi": "Huyết áp cao. Nên gặp bác sĩ trong tuần này.",
            "en": "High blood pressure. See a doctor this week.",
        },
        {
            "kind": "spo2",
            "label_vi": "SpO2",
            "label_en": "SpO2",
            "value": "97",
            "unit": "%",
            "status": "valid",
            "color": "green",
            "vi": "Nồng độ oxy bình thường.",
            "en": "Normal blood oxygen.",
        },
        {
            "kind": "temperature",
            "label_vi": "Nhiệt độ",
            "label_en": "Temperature",
            "value": "37.6",
            "unit": "°C",
            "status": "questionable",
            "color": "yellow",
            "vi": "Hơi ấm.",
            "en": "Slightly warm.",
        },
        {
            "kind": "weight",
            "label_vi": "Cân nặng",
            "label_en": "Weight",
            "value": None,
            "unit": "kg",
            "status": "failed",
            "color": "grey",
            "vi": "Chưa cân được.",
            "en": "Not weighed.",
        },
        {
            "kind": "pulse",
            "label_vi": "Nhịp tim",
            "label_en": "Pulse",
            "value": "128",
            "unit": "/min",
            "status": "valid",
            "color": "red",
            "vi": "<b>Nhịp tim rất nhanh.</b>",
            "en": "<b>A very fast pulse.</b>",
        },
    ],
    "receipt_url": "/ui/receipt",
}
BAND_RGB = {
    "green": "rgb(10, 125, 52)",
    "yellow": "rgb(242, 194, 0)",
    "orange": "rgb(224, 106, 0)",
    "red": "rgb(176, 0, 32)",
    "grey": "rgb(107, 107, 107)",
}

# every visible text smaller than 24 px, every visible button lower or narrower than 60 px,
# and whether the page is wider than the screen
MEASURE = """
() => {
  const small = [], tiny = [];
  const visible = (el) => {
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && getComputedStyle(el).visibility !== "hidden";
  };
  for (const el of document.body.querySelectorAll("*")) {
    if (!visible(el)) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (own && size < 24) small.push(`${el.tagName}#${el.id}.${el.className} ${size}px`);
    if (el.matches("button, a.button, [role=checkbox]")) {
      const box = el.getBoundingClientRect();
      if (box.height < 60 || box.width < 60) tiny.push(`${el.id} ${box.width}x${box.height}`);
    }
  }
  return { small, tiny, overflow: document.documentElement.scrollWidth > innerWidth };
}
"""

PLETH_INK = """
() => {
  const c = document.getElementById("pleth");
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let ink = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + 2] > 120 && d[i] < 60) ink++;
  return ink;
}
"""


def _silence_wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0\0" * 800)
    return buffer.getvalue()


@dataclass
class Scripted:
    """The scripted service: what it sends to the page, what the page sent back."""

    loop: LoopThread
    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    voices: list[str] = field(default_factory=list)
    sockets: list[web.WebSocketResponse] = field(default_factory=list)

    def push(self, *messages: dict[str, Any]) -> None:
        async def send() -> None:
            for ws in list(self.sockets):
                for message in messages:
                    await ws.send_str(json.dumps(message, ensure_ascii=False))

        self.loop.run(send())

    def actions(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in list(self.received) if m.get("type") == kind]

    def wait_for(self, kind: str, count: int = 1, timeout_s: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while len(found := self.actions(kind)) < count:
            assert time.monotonic() < deadline, f"the page did not send {kind!r} x{count}"
            time.sleep(0.05)
        return found[count - 1]

    def wait_connected(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.sockets:
            assert time.monotonic() < deadline, "the page did not open /ui/ws"
            time.sleep(0.05)


@contextlib.asynccontextmanager
async def scripted_service(scripted: Scripted) -> AsyncIterator[Scripted]:
    wav = _silence_wav()

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(UI_DIR / "index.html")

    async def voice(request: web.Request) -> web.Response:
        scripted.voices.append(f"{request.match_info['lang']}/{request.match_info['prompt']}")
        return web.Response(body=wav, content_type="audio/wav")

    async def rtc(request: web.Request) -> web.Response:
        return web.Response(status=503, text="no media in this test")

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"type": "consult", "state": "idle"}))
        scripted.sockets.append(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    scripted.received.append(json.loads(msg.data))
        finally:
            scripted.sockets.remove(ws)
        return ws

    app = web.Application()
    app.router.add_get("/ui/", index)
    app.router.add_get("/ui/ws", socket)
    app.router.add_post("/ui/rtc", rtc)
    app.router.add_get("/ui/voice/{lang}/{prompt}.wav", voice)
    app.router.add_static("/ui/", UI_DIR)
    server = TestServer(app)
    await server.start_server()
    scripted.url = str(server.make_url("/ui/"))
    try:
        yield scripted
    finally:
        for ws in list(scripted.sockets):
            await ws.close()
        await server.close()


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as running:
        yield running


@pytest.fixture
def service(loop: LoopThread) -> Scripted:
    return loop.hold(scripted_service(Scripted(loop=loop)))


@contextlib.contextmanager
def opened(browser: Browser, service: Scripted, viewport: ViewportSize) -> Iterator[Page]:
    context = browser.new_context(viewport=viewport)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and "Failed to load resource" not in m.text  # /ui/rtc: 503
            else None
        ),
    )
    try:
        page.goto(service.url)
        service.wait_connected()
        yield page
    finally:
        context.close()
    assert errors == []


def assert_readable(page: Page, where: str) -> None:
    measured = page.evaluate(MEASURE)
    assert measured["small"] == [], f"{where}: text below 24 px: {measured['small']}"
    assert measured["tiny"] == [], f"{where}: buttons below 60 px: {measured['tiny']}"
    assert not measured["overflow"], f"{where}: the page is wider than the screen"
    box = page.locator("#sos").bounding_box()
    assert box is not None, f"{where}: no SOS button"
    assert box["height"] >= 60
    assert box["width"] >= 60
    assert page.locator("#sos").evaluate("e => getComputedStyle(e).backgroundColor") == (
        "rgb(176, 0, 32)"
    )


def shot(page: Page, name: str, orientation: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"resident-{name}-{orientation}.png"))


def screen(name: str, **fields: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "screen",
        "screen": name,
        "step": None,
        "reason": None,
        "finding": None,
        "retake": False,
        "consult": False,
        "emergency_number": None,
    }
    message.update(fields)
    return message


@pytest.mark.parametrize("orientation", ["portrait", "landscape"])
def test_a_visit_screen_by_screen(browser: Browser, service: Scripted, orientation: str) -> None:
    started = time.monotonic()
    with opened(browser, service, VIEWPORTS[orientation]) as page:
        # no visit: the welcome, and the standalone call to a doctor as before
        expect(page.get_by_text("Xin mời đặt thẻ CCCD tại ki-ốt")).to_be_visible()
        expect(page.get_by_role("button", name="Gọi bác sĩ")).to_be_visible()
        assert_readable(page, "idle")

        # consent: the text, three separate choices, nothing chosen for the resident
        service.push(CONSENT_TEXT, screen("consent"), {"type": "speak", "prompt": "consent"})
        expect(page.locator("#consent-title")).to_have_text(
            "Đồng ý sử dụng dữ liệu sức khỏe (phiên bản 2026-11-01)"
        )
        expect(page.locator("#consent-body")).to_contain_text("1. Đo các chỉ số sức khỏe.")
        choices = page.get_by_role("checkbox")
        expect(choices).to_have_count(3)
        for index in range(3):
            expect(choices.nth(index)).to_have_attribute("aria-checked", "false")
        expect(page.get_by_role("checkbox", name="Gửi kết quả đến Bệnh viện A")).to_be_visible()
        assert_readable(page, "consent")
        shot(page, "consent", orientation)
        page.get_by_role("button", name="Đồng ý", exact=True).click()
        expect(page.locator("#consent-hint")).to_be_visible()  # nothing chosen: not sent
        assert service.actions("consent") == []
        page.get_by_role("checkbox", name="Đo các chỉ số sức khỏe trong buồng khám").click()
        page.get_by_role("checkbox", name="Tư vấn qua video với bác sĩ").click()
        page.get_by_role("button", name="Đồng ý", exact=True).click()
        assert service.wait_for("consent") == {
            "type": "consent",
            "measuring": True,
            "hospital": False,
            "video_consultation": True,
        }
        deadline = time.monotonic() + 5
        while "vi/consent" not in service.voices:
            assert time.monotonic() < deadline, service.voices
            time.sleep(0.05)
        assert service.actions("touch"), "a tap sends touch"

        # a step: illustration, what to do, progress bar, countdown, "hold still", live value
        service.push(screen("step", step="weight"))
        expect(page.locator("#step-title")).to_have_text("Đo cân nặng")
        expect(page.locator("#step-img")).to_have_attribute("src", "/ui/img/weight.svg")
        service.push(
            {
                "type": "progress",
                "step": "weight",
                "phase": "measuring",
                "vi": "Đang cân. Xin đứng yên.",
                "en": "Weighing. Stand still.",
                "fraction": 0.5,
                "seconds_left": 11.2,
                "live": "63.4",
                "unit": "kg",
            }
        )
        expect(page.locator("#step-instruction")).to_have_text("Đang cân. Xin đứng yên.")
        expect(page.locator("#live")).to_have_text("63.4 kg")
        expect(page.get_by_text("Xin giữ yên", exact=True)).to_be_visible()
        expect(page.locator("#step-countdown")).to_have_text("Còn 12 giây")
        expect(page.locator("#step-bar")).to_have_attribute("aria-valuenow", "50")
        assert (
            page.locator("#live-value").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
            >= 64
        )
        expect(page.locator("#pleth")).to_be_hidden()
        page.wait_for_timeout(400)  # the bar's transition
        assert_readable(page, "step")
        shot(page, "step", orientation)

        # spo2: a moving pleth waveform
        service.push(screen("step", step="spo2"))
        expect(page.locator("#step-title")).to_contain_text("SpO2")
        expect(page.locator("#live")).to_be_hidden()  # the weight's progress is gone
        expect(page.locator("#pleth")).to_be_visible()
        for k in range(6):
            wave_part = [50 + 40 * ((i + k * 25) % 25 < 8) for i in range(25)]
            service.push({"type": "pleth", "samples": wave_part})
        page.wait_for_function(f"({PLETH_INK})() > 200")

        # a failed step: the reason, retake (when offered), skip
        reason = {"code": "weight-unstable", "vi": "Cân chưa ổn định.", "en": "Not steady."}
        service.push(screen("step-failed", step="weight", reason=reason, retake=True))
        expect(page.locator("#failed-reason")).to_have_text("Cân chưa ổn định.")
        expect(page.locator("#failed-title")).to_have_text("Chưa đo được cân nặng")
        assert_readable(page, "step-failed")
        page.get_by_role("button", name="Đo lại").click()
        service.wait_for("retake")
        service.push(screen("step-failed", step="height", reason=reason, retake=False))
        expect(page.get_by_role("button", name="Đo lại")).to_be_hidden()
        page.get_by_role("button", name="Bỏ qua").click()
        service.wait_for("skip")

        # the inactivity warning: a visible countdown, "I'm still here" sends extend
        service.push({"type": "warning", "seconds_left": 20, "extensions_left": 9})
        expect(page.locator("#warning")).to_be_visible()
        first = int(page.locator("#warning-count").inner_text())
        assert 18 <= first <= 20
        page.wait_for_timeout(1300)
        assert int(page.locator("#warning-count").inner_text()) < first
        expect(page.locator("#warning-extensions")).to_contain_text("9")
        assert_readable(page, "warning")
        shot(page, "warning", orientation)
        page.get_by_role("button", name="Tôi vẫn ở đây").click()
        service.wait_for("extend")
        service.push({"type": "warning-hide"})
        expect(page.locator("#warning")).to_be_hidden()

        # results: every value with its colour band and sentence; talk, done, the receipt
        service.push(screen("results", consult=True), RESULTS)
        items = page.locator("#results-list > li")
        expect(items).to_have_count(5)
        for item, expected in zip(items.all(), RESULTS["items"], strict=True):
            color = str(expected["color"])
            assert item.get_attribute("data-color") == color
            band = item.locator(".band").evaluate("e => getComputedStyle(e).backgroundColor")
            assert band == BAND_RGB[color], (color, band)
            expect(item).to_contain_text(str(expected["label_vi"]))
            expect(item).to_contain_text(str(expected["vi"]))
        expect(items.nth(0)).to_contain_text("152/95 mmHg")
        expect(items.nth(3)).to_contain_text("Chưa đo được")
        expect(items.nth(4).locator(".result-sentence")).to_have_text("<b>Nhịp tim rất nhanh.</b>")
        expect(page.get_by_role("link", name="In phiếu kết quả")).to_have_attribute(
            "href", "/ui/receipt"
        )
        assert_readable(page, "results")
        shot(page, "results", orientation)
        page.get_by_role("button", name="Nói chuyện với bác sĩ").click()
        service.wait_for("call-doctor")
        page.get_by_role("button", name="Xong", exact=True).click()
        service.wait_for("results-seen")

        # an urgent finding offers the SOS path; the SOS screen shows 115 big
        finding = {"vi": "Huyết áp rất cao.", "en": "Very high blood pressure.", "color": "red"}
        service.push(screen("urgent-offer", finding=finding, emergency_number="115"))
        expect(page.locator("#finding")).to_have_text("Huyết áp rất cao.")
        expect(page.locator("#urgent-number")).to_have_text("115")
        assert_readable(page, "urgent-offer")
        page.get_by_role("button", name="Cần giúp đỡ ngay").click()
        service.wait_for("sos")
        page.get_by_role("button", name="Tiếp tục").click()
        service.wait_for("overlay-closed")
        service.push(screen("sos", consult=True, emergency_number="115"))
        expect(page.locator("#sos-number")).to_have_text("115")
        assert (
            page.locator("#sos-number").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
            >= 96
        )
        expect(page.get_by_text("Một bác sĩ sẽ nói chuyện với ông/bà ngay.")).to_be_visible()
        assert_readable(page, "sos")
        shot(page, "sos", orientation)
        page.get_by_role("button", name="Quay lại").click()
        service.wait_for("overlay-closed", 2)

        # the call screen in a visit: queued, in the call, ended
        service.push(
            screen("queue"),
            {
                "type": "consult",
                "state": "queued",
                "vi": "Ông/bà là người thứ 1.",
                "en": "You are number 1.",
            },
        )
        expect(page.locator("#state-text")).to_have_text("Ông/bà là người thứ 1.")
        expect(page.locator("#doctor-video")).to_be_attached()
        expect(page.get_by_role("button", name="Kết thúc cuộc gọi")).to_be_visible()
        expect(page.get_by_role("button", name="Gọi bác sĩ")).to_be_hidden()
        assert_readable(page, "queue")
        service.push(
            screen("call-ended", consult=True),
            {
                "type": "consult",
                "state": "ended",
                "vi": "Cuộc gọi đã kết thúc.",
                "en": "The call ended.",
            },
        )
        expect(page.get_by_role("button", name="Gọi lại bác sĩ")).to_be_visible()
        page.get_by_role("button", name="Xong", exact=True).click()
        service.wait_for("results-seen", 2)

        # a calm goodbye
        service.push(screen("completed"))
        expect(page.get_by_text("Cảm ơn ông/bà!")).to_be_visible()
        assert_readable(page, "completed")
        service.push(screen("idle"), {"type": "consult", "state": "idle"})
        expect(page.get_by_text("Xin mời đặt thẻ CCCD tại ki-ốt")).to_be_visible()
    print(f"{orientation}: {time.monotonic() - started:.1f} s")


SOS_FROM = [
    screen("idle"),
    screen("consent"),
    screen("step", step="blood-pressure"),
    screen("step-failed", step="spo2", retake=True),
    screen("results", consult=True),
    screen("queue"),
    screen("completed"),
]


def test_sos_from_every_screen_and_withdrawal(browser: Browser, service: Scripted) -> None:
    with opened(browser, service, PORTRAIT) as page:
        service.push(CONSENT_TEXT, RESULTS)
        for count, message in enumerate(SOS_FROM, start=1):
            service.push(message)
            expect(page.locator("body")).to_have_attribute("data-screen", message["screen"])
            sos = page.get_by_role("button", name="SOS – Cấp cứu")
            expect(sos).to_be_visible()
            sos.click()
            service.wait_for("sos", count)

        # withdrawal: a question first, then the message
        service.push(screen("step", step="temperature"))
        page.get_by_role("button", name="Dừng lượt khám").click()
        expect(page.locator("#withdraw-confirm")).to_be_visible()
        page.get_by_role("button", name="Không, tiếp tục").click()
        expect(page.locator("#withdraw-confirm")).to_be_hidden()
        assert service.actions("withdraw") == []
        page.get_by_role("button", name="Dừng lượt khám").click()
        page.get_by_role("button", name="Có, dừng lại").click()
        service.wait_for("withdraw")
        service.push(screen("withdrawn"))
        expect(page.get_by_text("Đã dừng lượt khám.")).to_be_visible()
        expect(page.get_by_role("button", name="Dừng lượt khám")).to_be_hidden()

        # declining consent
        service.push(screen("consent"))
        page.get_by_role("button", name="Không đồng ý").click()
        service.wait_for("refuse-consent")


@pytest.mark.parametrize("orientation", ["portrait", "landscape"])
def test_the_language_toggle(browser: Browser, service: Scripted, orientation: str) -> None:
    with opened(browser, service, VIEWPORTS[orientation]) as page:
        service.push(CONSENT_TEXT, screen("consent"))
        expect(page.locator("#consent-title")).to_contain_text("Đồng ý sử dụng dữ liệu")
        page.get_by_role("button", name="English").click()
        expect(page.locator("#consent-title")).to_contain_text("Consent to the use")
        expect(page.get_by_role("button", name="Agree", exact=True)).to_be_visible()
        expect(page.get_by_role("button", name="Decline")).to_be_visible()
        expect(page.get_by_role("checkbox", name="Send my results to Bệnh viện A")).to_be_visible()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        assert_readable(page, "consent (en)")

        service.push(
            screen("results", consult=True), RESULTS, {"type": "speak", "prompt": "result-ready"}
        )
        expect(page.locator("#results-list > li").first).to_contain_text("Blood pressure")
        expect(page.locator("#results-list > li").first).to_contain_text("See a doctor this week.")
        expect(page.get_by_role("button", name="Talk to a doctor")).to_be_visible()
        expect(page.get_by_role("button", name="SOS – Emergency")).to_be_visible()
        deadline = time.monotonic() + 5
        while "en/result-ready" not in service.voices:  # the voice follows the language
            assert time.monotonic() < deadline, service.voices
            time.sleep(0.05)
        assert_readable(page, "results (en)")

        service.push({"type": "warning", "seconds_left": 30, "extensions_left": 3})
        expect(page.get_by_role("button", name="I'm still here")).to_be_visible()
        page.get_by_role("button", name="SOS – Emergency").click()  # above the overlay
        service.wait_for("sos")
        page.get_by_role("button", name="Tiếng Việt").click()
        expect(page.get_by_role("button", name="Tôi vẫn ở đây")).to_be_visible()
        expect(page.locator("#warning-extensions")).to_have_text("Còn 3 lần gia hạn.")
        expect(page.locator("#results-list > li").first).to_contain_text("Huyết áp")


def test_every_step_has_its_illustration() -> None:
    for step in Step:
        drawing = UI_DIR / "img" / f"{step.value}.svg"
        assert drawing.is_file(), drawing
        assert drawing.read_text(encoding="utf-8").lstrip().startswith("<svg")
