"""The cabin service: the local web app behind the resident's screen, and the consultation.

Routes: ``/ui/`` (the resident's page, shown full-screen by the kiosk browser), ``/ui/ws``
(the page's live events and its actions), ``/ui/rtc`` (the local WebRTC leg: the page's
offer in, the cabin's answer out), ``/healthz`` and ``/metrics``; the kiosk bridge's API is
mounted at ``/kiosk/v1`` by whoever builds the service with one.

:meth:`CabinService.running` owns the camera, the framing assist and the background tasks in
one ``TaskGroup``; a consultation (:class:`cabin.call.CabinCall`) runs as one more task in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web
from aiortc.mediastreams import MediaStreamTrack
from prometheus_client import CollectorRegistry, generate_latest

from cabin.call import CabinCall, CallEnd, CallOptions, CallOutcome, DoctorNote
from cabin.callquality import CallQuality
from cabin.consult_ui import EMERGENCY_NUMBER, advice, waiting_sentence
from cabin.localleg import LocalLeg
from cabin.media.camera import CameraSource, VideoProfile
from cabin.media.framing import FramingAssist, FramingUnavailable, Guidance, haar_face_detector
from cabin.media.microphone import microphone
from cabin.media.quality import QualityMetrics
from kiosk_bridge.api import PREFIX as KIOSK_PREFIX

logger = logging.getLogger(__name__)

UI_DIR = Path(__file__).with_name("ui")
CALL_PROFILE = VideoProfile(width=1280, height=720, fps=30)
SELF_VIEW_PROFILE = VideoProfile(width=320, height=180, fps=10)
MAX_UI_MESSAGE = 4096
_STICKY = ("consent-text", "results", "screen", "progress", "note", "warning", "warning-hide")
"""Replayed, in this order, to a page that connects mid-visit."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceOptions:
    signaling_url: str
    camera: str = "test-pattern"
    microphone: str = "tone"
    framing: bool = True
    triage: dict[str, Any] = field(default_factory=lambda: {"urgency": "routine"})


class _Media:
    """Fresh tracks for each peer connection of a call."""

    def __init__(self, camera: CameraSource, microphone_spec: str) -> None:
        self._camera = camera
        self._microphone = microphone_spec
        self.video_tracks: list[Any] = []

    def video(self) -> MediaStreamTrack:
        track = self._camera.track(profile=CALL_PROFILE)
        self.video_tracks.append(track)
        return track

    def audio(self) -> MediaStreamTrack:
        return microphone(self._microphone)


class CabinService:
    """One cabin's local service (see the module docstring)."""

    def __init__(
        self,
        *,
        options: ServiceOptions,
        http: aiohttp.ClientSession,
        token: Callable[[], Awaitable[str]],
        hello: Callable[[], dict[str, Any]],
        backlog: Callable[[], list[dict[str, Any]]],
        clock: Callable[[], float] = time.time,
        kiosk: web.Application | None = None,
    ) -> None:
        self.options = options
        self._http = http
        self._token = token
        self._hello = hello
        self._backlog = backlog
        self._clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        self.quality_metrics = QualityMetrics(self.registry)
        self.camera = CameraSource(options.camera, width=1280, height=720, fps=30)
        self.leg = LocalLeg(self_view=None)
        self._pages: dict[web.WebSocketResponse, asyncio.Queue[str]] = {}
        self._state: dict[str, Any] = {"type": "consult", "state": "idle"}
        self._group: asyncio.TaskGroup | None = None
        self.call: CabinCall | None = None
        self._call_task: asyncio.Task[CallOutcome] | None = None
        self.outcomes: list[CallOutcome] = []
        """Consultations since the last visit ended (each with the doctor's notes)."""
        self.framing: Guidance | None = None
        self._sticky: dict[str, dict[str, Any]] = {}
        self.health_report: Callable[[], dict[str, Any]] | None = None
        """Adds the self-test's parts to ``/healthz`` (503 when one failed)."""
        self.call_observer: Callable[[str, dict[str, Any]], None] | None = None
        """Told of ``queued``, ``call`` and ``ended`` (the visit runner)."""
        self.action_handler: Callable[[dict[str, Any]], bool] | None = None
        """Page actions the service does not handle itself (the visit runner's)."""
        self.app = web.Application(client_max_size=256 * 1024)
        self.app.router.add_get("/", self._root)
        self.app.router.add_get("/ui/ws", self._ui_socket)
        self.app.router.add_post("/ui/rtc", self._ui_rtc)
        self.app.router.add_get("/ui/", self._ui_index)
        self.app.router.add_static("/ui/", UI_DIR, append_version=False)
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/metrics", self._metrics)
        if kiosk is not None:  # the kiosk bridge's service-flow API (kiosk_bridge.api)
            self.app.add_subapp(KIOSK_PREFIX, kiosk)

    # -- lifecycle -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[CabinService]:
        async with self.camera, asyncio.TaskGroup() as group:
            self._group = group
            self.leg = LocalLeg(self_view=self.camera.track(profile=SELF_VIEW_PROFILE))
            framing = self._framing_assist()
            framing_task = group.create_task(framing.run()) if framing else None
            try:
                yield self
            finally:
                if self.call is not None:
                    await self.call.hang_up()
                if self._call_task is not None:
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(10):
                            await self._call_task
                if framing_task is not None:
                    framing_task.cancel()
                for page in list(self._pages):
                    await page.close()  # its handler's TaskGroup ends with it
                await self.leg.close()

    def _framing_assist(self) -> FramingAssist | None:
        if not self.options.framing:
            return None
        try:
            detector = haar_face_detector()
        except FramingUnavailable as exc:
            logger.warning("framing assist off: %s", exc)
            return None
        return FramingAssist(self.camera, detector=detector, on_guidance=self._on_framing)

    # -- the consultation ----------------------------------------------------------------------

    def set_visit_context(
        self,
        *,
        hello: Callable[[], dict[str, Any]],
        backlog: Callable[[], list[dict[str, Any]]],
    ) -> None:
        """Who the resident is and what was measured, for the next call's vitals channel."""
        self._hello = hello
        self._backlog = backlog

    def call_doctor(self, triage: dict[str, Any] | None = None) -> bool:
        """Start a consultation unless one is running; False when one already is."""
        if self._call_task is not None and not self._call_task.done():
            return False
        assert self._group is not None, "call_doctor() needs running()"
        media = _Media(self.camera, self.options.microphone)
        call = CabinCall(
            http=self._http,
            token=self._token,
            media=media,
            listener=_Listener(self),
            options=CallOptions(
                url=self.options.signaling_url, triage=triage or self.options.triage
            ),
            hello=self._hello,
            backlog=self._backlog,
            clock=self._clock,
        )
        self.call = call
        quality = CallQuality(
            call=call, media=media, metrics=self.quality_metrics, send=self._send_quality
        )
        self._call_task = self._group.create_task(self._run_call(call, quality))
        self._publish({"type": "consult", "state": "connecting", **_sentence(None, None)})
        return True

    async def _run_call(self, call: CabinCall, quality: CallQuality) -> CallOutcome:
        assert self._group is not None
        sampler = self._group.create_task(quality.run())
        try:
            return await call.run()
        finally:
            sampler.cancel()
            summary = quality.finish()
            logger.info("call quality: %s", summary.log_line(), extra={"call": call.call_id})

    def _send_quality(self, message: dict[str, Any]) -> None:
        if self.call is not None:
            self.call.send_vitals(message)
        self._publish(message)

    def send_vitals(self, message: dict[str, Any]) -> None:
        """A new measurement or pleth slice for the doctor (dropped when no call is open)."""
        if self.call is not None:
            self.call.send_vitals(message)

    def _on_framing(self, guidance: Guidance) -> None:
        self.framing = guidance
        message = {"type": "framing", "state": guidance.state.value}
        if self.call is not None:
            self.call.send_vitals(message)
        self._publish({**message, "vi": guidance.vi, "en": guidance.en})

    # -- the resident's page -------------------------------------------------------------------

    def _remember(self, message: dict[str, Any]) -> None:
        kind = str(message["type"])
        if kind == "screen":
            self._sticky.pop("progress", None)
            self._sticky.pop("warning", None)
            if message.get("screen") == "idle":  # the visit is over: nothing about it stays
                self._sticky.clear()
        if kind == "warning-hide":
            self._sticky.pop("warning", None)
            return
        self._sticky[kind] = message

    def forget_visit(self) -> None:
        """Drop what the service holds about a resident (a visit starts, or it ended/wiped)."""
        self.outcomes.clear()
        self._sticky.clear()

    def publish(self, message: dict[str, Any]) -> None:
        """Send a message to every resident page that is open."""
        self._publish(message)

    def _publish(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "consult":
            self._state = message
        elif kind in _STICKY:
            self._remember(message)
        text = json.dumps(message, ensure_ascii=False)
        for queue in self._pages.values():
            if queue.full():  # a page that does not read loses old news, not memory
                queue.get_nowait()
            queue.put_nowait(text)

    async def _ui_socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=MAX_UI_MESSAGE)
        await ws.prepare(request)
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=256)
        queue.put_nowait(json.dumps(self._state, ensure_ascii=False))
        for kind in _STICKY:  # a page that (re)loads mid-visit sees where the visit is
            if (remembered := self._sticky.get(kind)) is not None:
                queue.put_nowait(json.dumps(remembered, ensure_ascii=False))
        if self.framing is not None:
            g = self.framing
            queue.put_nowait(
                json.dumps({"type": "framing", "state": g.state.value, "vi": g.vi, "en": g.en})
            )
        self._pages[ws] = queue
        try:
            async with asyncio.TaskGroup() as group:
                writer = group.create_task(_write_forever(ws, queue))
                async for msg in ws:
                    if msg.type != WSMsgType.TEXT:
                        break
                    await self._ui_action(queue, msg.data)
                writer.cancel()
        finally:
            self._pages.pop(ws, None)
        return ws

    async def _ui_action(self, queue: asyncio.Queue[str], text: str) -> None:
        try:
            action = json.loads(text)
            kind = action["type"] if isinstance(action, dict) else None
        except (ValueError, KeyError):
            kind = None
        if kind is not None and self.action_handler is not None and self.action_handler(action):
            return
        if kind == "call-doctor":
            self.call_doctor()
        elif kind == "hang-up" and self.call is not None:
            await self.call.hang_up()
        elif not queue.full():
            queue.put_nowait(json.dumps({"type": "error", "message": "unknown action"}))

    async def _ui_rtc(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            offer = str(body["sdp"])
        except (ValueError, KeyError, TypeError):
            raise web.HTTPBadRequest(text='expected {"sdp": "..."}') from None
        if len(offer) > 100_000 or not offer.startswith("v=0"):
            raise web.HTTPBadRequest(text="not an SDP offer")
        try:
            answer = await self.leg.answer(offer)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"offer refused: {exc}") from None
        return web.json_response({"type": "answer", "sdp": answer})

    async def _ui_index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(UI_DIR / "index.html")

    async def _root(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/ui/")

    async def _healthz(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = {
            "status": "ok",
            "camera": self.camera.running,
            "pages": self.leg.pages,
        }
        if self.health_report is not None:
            body["selftest"] = report = self.health_report()
            if not report.get("ok", True):
                body["status"] = "degraded"
        return web.json_response(body, status=200 if body["status"] == "ok" else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), content_type="text/plain")


async def _write_forever(page: web.WebSocketResponse, queue: asyncio.Queue[str]) -> None:
    while True:
        text = await queue.get()
        try:
            await page.send_str(text)
        except (ConnectionError, RuntimeError):
            return


def _sentence(position: int | None, wait: float | None) -> dict[str, str]:
    vi, en = waiting_sentence(position, wait)
    return {"vi": vi, "en": en}


class _Listener:
    """Turns the consultation's events into the resident page's messages."""

    def __init__(self, service: CabinService) -> None:
        self._service = service

    def _observe(self, kind: str, message: dict[str, Any]) -> None:
        if self._service.call_observer is not None:
            self._service.call_observer(kind, message)

    def queued(self, message: dict[str, Any]) -> None:
        self._observe("queued", message)
        position, wait = message.get("position"), message.get("estimated_wait_s")
        self._service._publish(
            {
                "type": "consult",
                "state": "queued",
                "position": position,
                "estimated_wait_s": wait,
                **_sentence(position, wait),
            }
        )

    def no_doctor(self, message: dict[str, Any]) -> None:
        self._service._publish(
            {
                "type": "consult",
                "state": "no-doctor",
                "vi": "Chưa có bác sĩ nhận cuộc gọi. Ông/bà có thể tiếp tục chờ hoặc về.",
                "en": "No doctor has answered yet. You can keep waiting or leave.",
            }
        )

    def call_started(self, message: dict[str, Any]) -> None:
        if message:
            self._observe("call", message)
        self._service._publish(
            {
                "type": "consult",
                "state": "in-call",
                "vi": "Đang nói chuyện với bác sĩ.",
                "en": "You are talking to a doctor.",
            }
        )

    def remote_track(self, track: MediaStreamTrack) -> None:
        self._service.leg.show_doctor(track)

    def note(self, note: DoctorNote) -> None:
        vi, en = advice(note.disposition)
        self._service._publish(
            {
                "type": "note",
                "id": note.id,
                "text": note.text,
                "disposition": note.disposition,
                "advice_vi": vi,
                "advice_en": en,
                "emergency_number": EMERGENCY_NUMBER
                if note.disposition == "emergency-now"
                else None,
            }
        )

    def remeasure(self, kind: str, reason: str | None) -> None:
        self._service._publish({"type": "remeasure", "kind": kind, "reason": reason})

    def peer_state(self, state: str) -> None:
        if state in ("reconnecting", "peer-reconnecting"):
            self._service._publish(
                {
                    "type": "consult",
                    "state": "reconnecting",
                    "vi": "Đang kết nối lại… xin đợi một chút.",
                    "en": "Reconnecting… please wait.",
                }
            )
        elif (
            state in ("peer-back", "media-connected", "connected")
            and self._service._state.get("state") == "reconnecting"
        ):
            self.call_started({})

    def ended(self, outcome: CallOutcome) -> None:
        self._service.outcomes.append(outcome)
        self._observe("ended", {"end": outcome.end.value})
        self._service.leg.call_over()
        self._service.call = None
        reason = {
            CallEnd.DOCTOR_HUNG_UP: ("Bác sĩ đã kết thúc cuộc gọi.", "The doctor ended the call."),
            CallEnd.HUNG_UP: ("Cuộc gọi đã kết thúc.", "The call has ended."),
        }.get(outcome.end, ("Cuộc gọi đã kết thúc.", "The call has ended."))
        self._service._publish(
            {
                "type": "consult",
                "state": "ended",
                "end": outcome.end.value,
                "vi": reason[0],
                "en": reason[1],
            }
        )
