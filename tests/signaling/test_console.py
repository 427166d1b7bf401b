"""The doctor console in real Chromium, against a real signaling node and a fake aiortc cabin.

The node and the cabin live on a :class:`LoopThread`; Playwright's sync API drives the page
from the test thread. The fake cabin is what issue 6 says a cabin is, at its smallest: a
signaling client that queues with a triage summary and, when a doctor accepts, offers an
aiortc peer connection with a moving test pattern, an audio track and the ``vitals`` data
channel (hello, measurements, pleth slices at 10/s). Every message it sends on that channel,
and every one the console sends back, is checked against ``cabin/schemas/vitals-channel/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import jsonschema
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack
from aiortc.sdp import candidate_from_sdp
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

from signaling.client import ClientError, Message, SignalingClient
from signaling.ice import IceSettings
from signaling.model import Presence, Role
from tests.peers.browser import browser, browser_without_media_consent, playwright_driver
from tests.peers.loop_thread import LoopThread
from tests.signaling.harness import Node, running_node

pytestmark = pytest.mark.slow

# the fixtures come from tests.peers.browser; naming them here registers them with pytest
__all__ = ["browser", "browser_without_media_consent", "playwright_driver"]

REPO = Path(__file__).resolve().parents[2]
CHANNEL_SCHEMAS = REPO / "cabin" / "schemas" / "vitals-channel"
ARTIFACTS = REPO / "tests" / "artifacts"
CONSOLE_PATH = "/console/"
RESUME_KEY = "doctor-console.resume"
VIEWPORT: ViewportSize = {"width": 1280, "height": 720}

# every RTCPeerConnection the page makes, so that tests can read getStats()
CAPTURE_PEERS = """
(() => {
  const Native = window.RTCPeerConnection;
  window.__peers = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); window.__peers.push(this); }
  };
})();
"""
FRAMES_DECODED = """
async () => {
  const live = window.__peers.filter((pc) => pc.connectionState !== "closed");
  let frames = 0;
  for (const pc of live.slice(-1)) {
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
    });
  }
  return frames;
}
"""

RESIDENT = {"name": "Nguyễn Văn Bình", "age": 78, "sex": "male", "id_masked": "••••••••9876"}
MEASUREMENTS: tuple[dict[str, Any], ...] = (
    {"kind": "spo2", "value": 97, "unit": "%", "band": "normal", "color": "green"},
    {"kind": "pulse", "value": 72, "unit": "/min", "band": "normal", "color": "green"},
    {
        "kind": "blood-pressure",
        "value": {"systolic": 152, "diastolic": 95},
        "unit": "mm[Hg]",
        "band": "Stage 2 hypertension",
        "color": "orange",
        "text": "High; re-measure after rest",
    },
    {"kind": "temperature", "value": 36.8, "unit": "Cel", "band": "normal", "color": "green"},
)
PLETH_RATE_HZ = 50.0
PLETH_SLICE = 5  # samples per message: 10 messages per second


# -- the fake cabin ------------------------------------------------------------------------------


def _channel_validators() -> dict[str, jsonschema.protocols.Validator]:
    validators: dict[str, jsonschema.protocols.Validator] = {}
    for path in sorted(CHANNEL_SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        validators[path.stem] = jsonschema.Draft202012Validator(schema)
    return validators


CHANNEL = _channel_validators()


def check_channel_message(message: dict[str, Any]) -> dict[str, Any]:
    """Raise unless ``message`` follows its vitals-channel schema."""
    CHANNEL[str(message["type"])].validate(message)
    return message


class PatternTrack(VideoStreamTrack):
    """A bar sweeping across a dark frame; small, so that encoding stays cheap."""

    def __init__(self, *, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self._width = width
        self._height = height
        self._count = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        image = np.full((self._height, self._width, 3), 40, dtype=np.uint8)
        x = (self._count * 6) % self._width
        image[:, x : x + 24] = (60, 200, 250)
        self._count += 1
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = pts
        frame.time_base = time_base
        return frame


def pleth_wave(t: float, *, bpm: float = 72.0) -> float:
    """A pulse-oximeter-like wave: a sharp systolic rise and a dicrotic bump."""
    phase = (t * bpm / 60.0) % 1.0
    return (
        50
        + 40 * math.exp(-(((phase - 0.15) / 0.08) ** 2))
        + 12 * math.exp(-(((phase - 0.45) / 0.1) ** 2))
    )


class FakeCabin:
    """A cabin for console tests: it queues, offers, streams vitals and records what it gets."""

    def __init__(self, node: Node, *, subject: str) -> None:
        self._node = node
        self.subject = subject
        self.client: SignalingClient = node.client()
        self.signals: list[Message] = []
        self.from_doctor: list[dict[str, Any]] = []
        self.faults: list[str] = []
        """Messages from the console that broke their schema (a test waiting on the cabin fails)."""
        self.frames_received = 0
        self.call_id: str | None = None
        self.pc: Any = None
        self.channel: Any = None
        self._group: asyncio.TaskGroup | None = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._peers: list[Any] = []

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FakeCabin]:
        async with asyncio.TaskGroup() as group:
            self._group = group
            try:
                yield self
            finally:
                for task in [*self._tasks, *([self._reader] if self._reader else [])]:
                    task.cancel()
                for pc in self._peers:
                    await pc.close()
                await self.client.leave()

    # -- signaling

    async def queue(self, triage: dict[str, Any]) -> Message:
        await self.client.sign_in(self._node.token(Role.CABIN, self.subject))
        queued = await self.client.request(
            {"type": "consult-request", "triage": triage}, reply_type="queued"
        )
        self._start_reader()
        return queued

    def _start_reader(self) -> None:
        assert self._group is not None
        self._reader = self._group.create_task(self._read_forever())

    async def _read_forever(self) -> None:
        while True:
            try:
                message = await self.client.receive(timeout_s=3600)
            except ClientError:
                return
            await self._on_signal(message)
            self.signals.append(message)

    async def _on_signal(self, message: Message) -> None:
        kind = message["type"]
        if kind == "call":
            self.call_id = str(message["call"])
            await self.offer(restart=False)
        elif kind == "answer" and self.pc is not None:
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=message["sdp"], type="answer")
            )
        elif kind == "candidate" and self.pc is not None:
            raw = message["candidate"]
            if isinstance(raw, dict) and raw.get("candidate"):
                candidate = candidate_from_sdp(str(raw["candidate"]).removeprefix("candidate:"))
                candidate.sdpMid = raw.get("sdpMid")
                candidate.sdpMLineIndex = raw.get("sdpMLineIndex")
                await self.pc.addIceCandidate(candidate)
        elif kind == "call-ended":
            for task in self._tasks:
                task.cancel()

    async def drop_signaling(self) -> None:
        """The network to the service goes: the WebSocket closes without a bye."""
        if self._reader is not None:
            self._reader.cancel()
        await self.client.drop()

    async def resume_signaling(self) -> Message:
        welcome = await self.client.resume()
        self._start_reader()
        return welcome

    async def hang_up(self) -> None:
        await self.client.send({"type": "hangup", "call": self.call_id})

    # -- media and the vitals channel

    async def offer(self, *, restart: bool) -> None:
        """A new peer connection and its offer (aiortc has no ICE restart: the cabin rebuilds)."""
        assert self._group is not None
        for task in self._tasks:
            task.cancel()
        pc = RTCPeerConnection()
        self._peers.append(pc)
        self.pc = pc
        pc.addTrack(PatternTrack())
        pc.addTrack(AudioStreamTrack())
        channel = pc.createDataChannel("vitals", ordered=True)
        group = self._group

        def on_open() -> None:
            self._spawn(group, self._stream_vitals(channel))

        def on_message(data: str | bytes) -> None:
            try:
                message = check_channel_message(json.loads(data))
            except (ValueError, KeyError, jsonschema.ValidationError) as exc:
                self.faults.append(f"{data!r}: {exc}")
                return
            self.from_doctor.append(message)
            if message["type"] == "note":
                channel.send(
                    json.dumps(check_channel_message({"type": "note-ack", "id": message["id"]}))
                )

        def on_track(track: Any) -> None:
            if track.kind == "video":
                self._spawn(group, self._count_frames(track))

        channel.on("open", on_open)
        channel.on("message", on_message)
        pc.on("track", on_track)
        await pc.setLocalDescription(await pc.createOffer())  # gathers every candidate
        message: Message = {"type": "offer", "call": self.call_id, "sdp": pc.localDescription.sdp}
        if restart:
            message["restart"] = True
        await self.client.send(message)
        await self.client.send({"type": "candidate", "call": self.call_id, "candidate": None})

    def _spawn(self, group: asyncio.TaskGroup, coroutine: Any) -> None:
        task = group.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send_vitals(self, message: dict[str, Any]) -> None:
        if self.channel is None or self.channel.readyState != "open":
            raise AssertionError("the vitals channel is not open")
        self.channel.send(json.dumps(check_channel_message(message)))

    async def _stream_vitals(self, channel: Any) -> None:
        self.channel = channel
        now = datetime.now(UTC).isoformat(timespec="seconds")
        channel.send(
            json.dumps(
                check_channel_message(
                    {"type": "hello", "v": 1, "resident": RESIDENT, "language": "vi"}
                )
            )
        )
        for measurement in MEASUREMENTS:
            message = {"type": "measurement", "status": "valid", "time": now, **measurement}
            channel.send(json.dumps(check_channel_message(message)))
        channel.send(json.dumps(check_channel_message({"type": "framing", "state": "too-far"})))
        start = time.monotonic()
        n = 0
        while channel.readyState == "open":  # until the call ends or the peer is replaced
            t0 = n * PLETH_SLICE / PLETH_RATE_HZ
            samples = [round(pleth_wave(t0 + i / PLETH_RATE_HZ), 2) for i in range(PLETH_SLICE)]
            slice_ = {
                "type": "pleth",
                "rate_hz": PLETH_RATE_HZ,
                "t0": t0,
                "samples": samples,
                "spo2": 97,
                "pulse": 72,
            }
            channel.send(json.dumps(check_channel_message(slice_)))
            n += 1
            await asyncio.sleep(
                max(0.0, start + n * PLETH_SLICE / PLETH_RATE_HZ - time.monotonic())
            )

    async def _count_frames(self, track: Any) -> None:
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            self.frames_received += 1

    # -- waiting

    async def wait(self, predicate: Callable[[], bool], *, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                assert not self.faults, self.faults
                await asyncio.sleep(0.02)

    async def signal(self, kind: str, *, timeout_s: float = 10.0) -> Message:
        await self.wait(lambda: any(m["type"] == kind for m in self.signals), timeout_s=timeout_s)
        return [m for m in self.signals if m["type"] == kind][-1]

    async def from_console(self, kind: str, *, timeout_s: float = 10.0) -> dict[str, Any]:
        await self.wait(
            lambda: any(m["type"] == kind for m in self.from_doctor), timeout_s=timeout_s
        )
        return [m for m in self.from_doctor if m["type"] == kind][-1]

    async def connected(self, *, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while self.pc is None or self.pc.connectionState != "connected":
                await asyncio.sleep(0.05)


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as running:
        yield running


@pytest.fixture
def node(loop: LoopThread, tmp_path: Path, request: pytest.FixtureRequest) -> Node:
    """A signaling node serving the console; indirect parameters change its configuration."""
    changes: dict[str, Any] = getattr(request, "param", {})
    return loop.hold(running_node(tmp_path, **changes))


@dataclass
class Pages:
    """The browser contexts a test opened, and the errors their pages threw or logged."""

    contexts: list[BrowserContext] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def new_page(self, browser: Browser) -> Page:
        """A page in a fresh context at 1280×720 that records its peer connections."""
        context = browser.new_context(viewport=VIEWPORT)
        self.contexts.append(context)
        context.add_init_script(CAPTURE_PEERS)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on(
            "console",
            lambda message: (
                self.errors.append(f"console.{message.type}: {message.text}")
                if message.type == "error"
                else None
            ),
        )
        return page


@pytest.fixture
def pages(node: Node) -> Iterator[Pages]:
    """Pages to close after the test (before the node stops); they must not have failed."""
    opened = Pages()
    yield opened
    for context in opened.contexts:
        context.close()
    assert opened.errors == []


def console_url(node: Node, query: str = "") -> str:
    base = node.url.removesuffix("/ws") + CONSOLE_PATH
    return f"{base}?{query}" if query else base


def open_console(browser: Browser, pages: Pages, node: Node, *, token: str | None = None) -> Page:
    """A fresh page with the console open (signed in through ``?token=`` when given)."""
    page = pages.new_page(browser)
    page.goto(console_url(node, f"token={token}" if token else ""))
    return page


def doctor_token(node: Node, subject: str = "dr-1") -> str:
    return node.token(Role.DOCTOR, subject, ["bv-a"])


def signed_in_console(
    browser: Browser, pages: Pages, node: Node, *, available: bool = True
) -> Page:
    page = open_console(browser, pages, node, token=doctor_token(node))
    expect(page.locator("#service-status")).to_have_text("Online")
    if available:
        page.get_by_role("radio", name="Available").check()
        expect(page.get_by_role("radio", name="Available")).to_be_checked()
    return page


def start_cabin(loop: LoopThread, node: Node, subject: str = "dkc-01") -> FakeCabin:
    return loop.hold(FakeCabin(node, subject=subject).running())


def frames_decoded(page: Page) -> int:
    return int(page.evaluate(FRAMES_DECODED))


def wait_for_frames(page: Page, *, above: int = 0, timeout_s: float = 10.0) -> int:
    deadline = time.monotonic() + timeout_s
    while (frames := frames_decoded(page)) <= above:
        assert time.monotonic() < deadline, f"framesDecoded stayed at {frames}"
        page.wait_for_timeout(100)
    return frames


def accept_first(page: Page) -> None:
    page.get_by_role("button", name="Accept").first.click()
    expect(page.get_by_role("button", name="Hang up")).to_be_visible()


def establish_call(page: Page, loop: LoopThread, cabin: FakeCabin) -> None:
    """Accept the cabin's ticket and wait until video frames decode in the console."""
    expect(page.get_by_role("button", name="Accept")).to_have_count(1)
    accept_first(page)
    loop.run(cabin.connected())
    wait_for_frames(page)


ROUTINE = {"urgency": "routine", "hospital": "bv-a", "summary": "Follow-up of blood pressure"}


# -- tests ---------------------------------------------------------------------------------------


def test_query_token_signs_in_once_and_a_reload_resumes_the_session(
    browser: Browser, pages: Pages, node: Node
) -> None:
    page = pages.new_page(browser)
    hellos: list[dict[str, Any]] = []
    welcomes: list[dict[str, Any]] = []

    def watch(ws: Any) -> None:
        ws.on(
            "framesent", lambda p: hellos.extend(m for m in [json.loads(p)] if m["type"] == "hello")
        )
        ws.on(
            "framereceived",
            lambda p: welcomes.extend(m for m in [json.loads(p)] if m["type"] == "welcome"),
        )

    page.on("websocket", watch)
    page.goto(console_url(node, f"token={doctor_token(node)}"))
    expect(page.locator("#service-status")).to_have_text("Online")
    expect(page.locator("#who")).to_have_text("dr-1 · bv-a")
    assert "token=" not in page.url  # the single-use token leaves the address bar
    assert page.evaluate(f"sessionStorage.getItem('{RESUME_KEY}')")

    page.reload()
    expect(page.locator("#service-status")).to_have_text("Online")
    expect(page.get_by_role("heading", name="Waiting")).to_be_visible()
    assert [sorted(h) for h in hellos] == [
        ["client", "token", "type", "v"],
        ["client", "resume", "type", "v"],
    ]
    assert welcomes[-1]["resumed"] is True


def test_a_pasted_token_signs_in_and_presence_toggles(
    browser: Browser, pages: Pages, node: Node, loop: LoopThread
) -> None:
    page = open_console(browser, pages, node)
    page.get_by_label("Access token").fill(doctor_token(node))
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#service-status")).to_have_text("Online")
    expect(page.get_by_role("radio", name="Away")).to_be_checked()

    def one_doctor(status: str) -> Callable[[], bool]:
        def holds() -> bool:
            view = loop.run(node.server.backplane.queue(("bv-a",)))
            counts = {"available": view.available, "busy": view.busy, "away": view.away}
            return counts[status] == 1

        return holds

    for status in (Presence.AVAILABLE, Presence.BUSY, Presence.AWAY):
        radio = page.get_by_role("radio", name=status.value.capitalize())
        radio.check()
        expect(radio).to_be_checked()
        wait_until(page, one_doctor(status.value), what=f"the node sees {status}")


def test_a_refused_token_shows_why_and_keeps_the_sign_in_form(
    browser: Browser, pages: Pages, node: Node
) -> None:
    page = open_console(browser, pages, node, token="not-a-jwt")
    expect(page.get_by_role("alert").filter(has_text="Signed out")).to_be_visible()
    expect(page.get_by_label("Access token")).to_be_visible()


def test_queue_is_live_most_urgent_first_with_triage_and_a_ticking_wait(
    browser: Browser, pages: Pages, node: Node, loop: LoopThread
) -> None:
    page = signed_in_console(browser, pages, node)

    async def queue_two() -> None:
        routine = await node.cabin("dkc-01")
        await routine.request(
            {
                "type": "consult-request",
                "triage": {
                    "urgency": "routine",
                    "hospital": "bv-a",
                    "summary": "<img src=x onerror=alert(1)> BP follow-up",
                    "age": 70,
                    "sex": "female",
                },
            },
            reply_type="queued",
        )
        emergency = await node.cabin("dkc-02")
        await emergency.request(
            {
                "type": "consult-request",
                "triage": {
                    "urgency": "emergency",
                    "flags": ["spo2-low", "sos"],
                    "hospital": None,
                    "summary": "SpO2 84 %, short of breath",
                    "age": 81,
                    "language": "vi",
                },
            },
            reply_type="queued",
        )

    loop.run(queue_two())
    rows = page.locator("#queue > li")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Emergency")
    expect(rows.nth(0)).to_contain_text("SpO2 84 %, short of breath")
    expect(rows.nth(0)).to_contain_text("81 y · vi · any hospital")
    expect(rows.nth(0).get_by_role("list", name="Flags")).to_have_text("spo2-lowsos")
    expect(rows.nth(1)).to_contain_text("Routine")
    # network text is shown as text, never parsed as HTML
    expect(rows.nth(1)).to_contain_text("<img src=x onerror=alert(1)> BP follow-up")
    assert page.locator("#queue img").count() == 0
    expect(page.locator("#queue-count")).to_have_text("2")

    wait = rows.nth(0).locator("time")
    expect(wait).to_have_text("0:01", timeout=3000)
    expect(wait).to_have_text("0:02", timeout=3000)


def test_call_with_a_cabin_media_vitals_remeasure_note_and_hang_up(
    browser: Browser, pages: Pages, node: Node, loop: LoopThread
) -> None:
    page = signed_in_console(browser, pages, node)
    cabin = start_cabin(loop, node)
    loop.run(cabin.queue(ROUTINE))
    accept = page.get_by_role("button", name="Accept")
    expect(accept).to_be_enabled()

    # the keyboard reaches Accept and takes the call
    tab_until(page, lambda name: name.startswith("Accept"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Hang up")).to_be_visible()
    loop.run(cabin.connected())

    # media both ways: the console decodes the cabin's video, the cabin gets the doctor's
    first = wait_for_frames(page)
    wait_for_frames(page, above=first + 10)
    loop.run(cabin.wait(lambda: cabin.frames_received > 5))

    # the resident from the channel hello, the vitals with their colours, the framing pill
    expect(page.locator("#resident-name")).to_contain_text("Nguyễn Văn Bình")
    expect(page.locator("#resident-facts")).to_contain_text("78 years")
    bp = page.locator('.vital[data-kind="blood-pressure"]')
    expect(bp.locator(".vital-value")).to_have_text("152/95")
    expect(bp).to_have_attribute("data-color", "orange")
    expect(bp).to_contain_text("Stage 2 hypertension")
    expect(page.locator('.vital[data-kind="spo2"] .vital-value')).to_have_text("97")
    expect(page.locator('.vital[data-kind="temperature"] .vital-unit')).to_have_text("°C")
    expect(page.locator("#framing")).to_have_text("Framing: Too far")
    expect(page.locator("#q-fps")).to_have_text(re.compile(r"\d+ fps"))
    expect(page.locator("#q-rtt")).to_have_text(re.compile(r"\d+ ms"))
    expect(page.locator("#q-res")).to_have_text("320×240")

    # the pleth waveform moves
    canvas = page.locator("#pleth")
    before = canvas.evaluate("(c) => c.toDataURL()")
    page.wait_for_timeout(300)
    assert canvas.evaluate("(c) => c.toDataURL()") != before

    # ask to re-measure: the cabin gets the request, the console shows its progress
    page.get_by_role("button", name="Ask to re-measure blood pressure").click()
    remeasure = loop.run(cabin.from_console("remeasure"))
    assert remeasure == {"type": "remeasure", "kind": "blood-pressure"}
    loop.run(
        cabin.send_vitals(
            {"type": "remeasure-status", "kind": "blood-pressure", "state": "started"}
        )
    )
    expect(bp.locator(".remeasure-status")).to_have_text("Re-measuring…")

    # the note and a disposition reach the cabin, whose acknowledgement is shown
    page.get_by_label("Note to the resident").fill("Huyết áp cao. Khám bác sĩ gia đình trong tuần.")
    page.get_by_role("button", name="See a GP").click()
    note = loop.run(cabin.from_console("note"))
    assert note["disposition"] == "see-gp"
    assert note["text"] == "Huyết áp cao. Khám bác sĩ gia đình trong tuần."
    assert note["doctor"] == "dr-1"
    expect(page.locator("#note-status")).to_have_text(re.compile("Shown to the resident"))

    # the keyboard reaches the call controls, the note and the dispositions, in that order
    page.locator("#call-title").focus()
    focus_order = tab_until(page, lambda name: name.startswith("Emergency now"))
    names = [n.split(" ")[0] for n in focus_order]
    assert names.index("Mute") < names.index("Hang") < names.index("Note") < names.index("No")

    # the artefact: the console mid-call, with readings, a request and a note in flight
    page.locator("#call-title").focus()
    save_screenshot(page, "console-mid-call.png")

    # hanging up ends the call at both ends
    page.get_by_role("button", name="Hang up").focus()
    page.keyboard.press("Enter")
    ended = loop.run(cabin.signal("call-ended"))
    assert ended["by"] == "doctor"
    expect(page.get_by_role("alert").filter(has_text="You ended the call")).to_be_visible()
    expect(page.get_by_role("button", name="Hang up")).to_be_hidden()


def test_resident_reconnecting_then_back_and_the_new_offer_restores_media(
    browser: Browser, pages: Pages, node: Node, loop: LoopThread
) -> None:
    page = signed_in_console(browser, pages, node)
    cabin = start_cabin(loop, node)
    loop.run(cabin.queue(ROUTINE))
    establish_call(page, loop, cabin)
    first_pc = cabin.pc

    loop.run(cabin.drop_signaling())
    banner = page.locator("#call-banner")
    expect(banner).to_contain_text("reconnecting")
    expect(banner).to_have_attribute("data-kind", "reconnecting")

    loop.run(cabin.resume_signaling())
    expect(banner).to_contain_text("The resident is back")
    loop.run(cabin.offer(restart=True))  # a new aiortc peer connection, as the cabin does
    loop.run(cabin.connected())
    assert cabin.pc is not first_pc
    wait_for_frames(page, above=0)
    assert page.evaluate("window.__peers.length") == 2
    expect(page.get_by_role("button", name="Ask to re-measure blood pressure")).to_be_enabled()


def test_call_ended_by_the_resident_is_shown(
    browser: Browser, pages: Pages, node: Node, loop: LoopThread
) -> None:
    page = signed_in_console(browser, pages, node)
    cabin = start_cabin(loop, node)
    loop.run(cabin.queue(ROUTINE))
    accept_first(page)
    loop.run(cabin.connected())

    loop.run(cabin.hang_up())
    expect(page.locator("#call-banner")).to_contain_text("The resident ended the call")
    expect(page.get_by_role("button", name="Hang up")).to_be_hidden()
    expect(page.get_by_role("button", name="See a GP")).to_be_disabled()
    assert page.evaluate("window.__peers.every((pc) => pc.connectionState === 'closed')")


def test_without_camera_permission_the_console_says_so_and_takes_calls_receive_only(
    browser_without_media_consent: Browser,
    pages: Pages,
    node: Node,
    loop: LoopThread,
) -> None:
    page = signed_in_console(browser_without_media_consent, pages, node)
    expect(page.locator("#camera-state")).to_contain_text("permission denied")
    expect(page.get_by_role("button", name="Try camera again")).to_be_visible()

    cabin = start_cabin(loop, node)
    loop.run(cabin.queue(ROUTINE))
    establish_call(page, loop, cabin)
    expect(page.get_by_role("button", name="Mute microphone")).to_be_disabled()
    answer = cabin.pc.remoteDescription.sdp
    assert "a=recvonly" in answer
    assert "a=sendrecv" not in answer.split("m=application")[0]


SHORT_LIVED_TURN = IceSettings(
    turn_urls=("turn:127.0.0.1:9?transport=udp",), turn_secret="test-secret", ttl_s=4
)


@pytest.mark.parametrize("node", [{"ice": SHORT_LIVED_TURN}], indirect=True)
def test_ice_servers_are_refreshed_before_the_turn_credentials_expire(
    browser: Browser, pages: Pages, node: Node
) -> None:
    sent: list[dict[str, Any]] = []
    page = pages.new_page(browser)
    page.on("websocket", lambda ws: ws.on("framesent", lambda p: sent.append(json.loads(p))))
    page.goto(console_url(node, f"token={doctor_token(node)}"))
    expect(page.locator("#service-status")).to_have_text("Online")
    wait_until(
        page, lambda: any(m["type"] == "ice-refresh" for m in sent), what="an ice-refresh is sent"
    )
    expect(page.locator("#service-status")).to_have_text("Online")


# -- helpers -------------------------------------------------------------------------------------


def save_screenshot(page: Page, name: str) -> None:
    """Keep a screenshot in tests/artifacts/ (docs/img/ holds the reviewed copies)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


FOCUSED_NAME = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return "";
  const label = el.labels && el.labels.length ? el.labels[0].textContent : "";
  return (el.getAttribute("aria-label") || label || el.textContent || el.id).trim();
}
"""


def wait_until(
    page: Page, condition: Callable[[], bool], *, what: str, timeout_s: float = 5.0
) -> None:
    """Poll ``condition`` (letting Playwright deliver its events) until it holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        page.wait_for_timeout(50)


def tab_until(page: Page, reached: Callable[[str], bool], *, limit: int = 60) -> list[str]:
    """Press Tab until the focused element's name satisfies ``reached``; the names on the way."""
    names: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        name = str(page.evaluate(FOCUSED_NAME))
        names.append(name)
        if reached(name):
            return names
    raise AssertionError(f"Tab never reached the element; focus went through {names}")
