"""The cabin's side of a video consultation: queue, call, WebRTC peer, vitals channel, resume.

:class:`CabinCall` runs one consultation in one ``asyncio.TaskGroup``: it signs in to the
signaling service, puts the resident in the queue with the triage summary, and when a doctor
accepts it offers a WebRTC session (the cabin is the offerer) with the camera, the microphone
and a ``vitals`` data channel (``docs/vitals-channel.md``). The doctor's video and audio are
handed to the visit (which shows them on the resident's screen through the local leg).

Recovery. aiortc has no ICE restart, so whenever the signaling connection comes back after a
drop, or the peer connection fails, the cabin builds a *new* peer connection and sends its
offer with ``restart: true``; the old one is closed only once the new one is connected
(make-before-break) or has failed. The signaling session itself is resumed with the resume
token within the service's grace window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import aiohttp
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from signaling.client import ClientError, Message, SignalingClient

logger = logging.getLogger(__name__)

VITALS_LABEL = "vitals"


class CallEnd(StrEnum):
    """How a consultation ended, from the cabin's point of view."""

    HUNG_UP = "hung-up"
    """The cabin hung up (the resident pressed the button)."""
    DOCTOR_HUNG_UP = "doctor-hung-up"
    PEER_LOST = "peer-lost"
    CANCELLED = "cancelled"
    NO_DOCTOR = "no-doctor"
    SIGNALING_LOST = "signaling-lost"


@dataclass(frozen=True, slots=True)
class DoctorNote:
    """The doctor's note and disposition as received over the vitals channel."""

    id: str
    text: str
    disposition: str
    doctor: str | None
    received_at: float


@dataclass(frozen=True, slots=True)
class CallOutcome:
    end: CallEnd
    call_id: str | None
    doctor: str | None
    hospital: str | None
    started_at: float | None
    ended_at: float
    notes: tuple[DoctorNote, ...] = ()
    renegotiations: int = 0


class CallListener(Protocol):
    """What the visit (and its resident UI) hears about the consultation."""

    def queued(self, message: Message) -> None: ...
    def no_doctor(self, message: Message) -> None: ...
    def call_started(self, message: Message) -> None: ...
    def remote_track(self, track: MediaStreamTrack) -> None: ...
    def note(self, note: DoctorNote) -> None: ...
    def remeasure(self, kind: str, reason: str | None) -> None: ...
    def peer_state(self, state: str) -> None: ...
    def ended(self, outcome: CallOutcome) -> None: ...


class MediaSources(Protocol):
    """Fresh outgoing tracks for each peer connection (the camera has one owner upstream)."""

    def video(self) -> MediaStreamTrack | None: ...
    def audio(self) -> MediaStreamTrack | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOptions:
    url: str
    """The signaling service's WebSocket URL."""
    triage: dict[str, Any]
    resume_for_s: float = 55.0
    """How long to keep trying to resume after a drop (the service's grace is 60 s)."""
    resume_every_s: float = 1.0
    stay_when_no_doctor: bool = True
    connect_timeout_s: float = 20.0


@dataclass
class _Peer:
    pc: RTCPeerConnection
    channel: RTCDataChannel
    connected: asyncio.Event = field(default_factory=asyncio.Event)


class CabinCall:
    """One consultation from queue to hang-up (see the module docstring)."""

    def __init__(
        self,
        *,
        http: aiohttp.ClientSession,
        token: Callable[[], Awaitable[str]],
        media: MediaSources,
        listener: CallListener,
        options: CallOptions,
        hello: Callable[[], dict[str, Any]],
        backlog: Callable[[], list[dict[str, Any]]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._token = token
        self._media = media
        self._listener = listener
        self._options = options
        self._hello = hello
        self._backlog = backlog
        self._clock = clock
        self._client = SignalingClient(options.url, http=http, client_name="cabin")
        self._call: Message | None = None
        self._peer: _Peer | None = None
        self._old_peers: list[_Peer] = []
        self._notes: list[DoctorNote] = []
        self._renegotiations = 0
        self._stop: asyncio.Future[CallEnd] | None = None
        self._failed = asyncio.Event()
        self._group: asyncio.TaskGroup | None = None

    @property
    def call_id(self) -> str | None:
        return None if self._call is None else str(self._call["call"])

    @property
    def peer_connection(self) -> RTCPeerConnection | None:
        """The current peer connection (a new one after each renegotiation)."""
        return None if self._peer is None else self._peer.pc

    @property
    def channel_open(self) -> bool:
        return self._peer is not None and self._peer.channel.readyState == "open"

    # -- the resident's actions ----------------------------------------------------------------

    async def hang_up(self) -> None:
        if self._call is not None:
            with contextlib.suppress(ClientError):
                await self._client.send({"type": "hangup", "call": self.call_id, "reason": "done"})
            self._finish(CallEnd.HUNG_UP)
        else:
            with contextlib.suppress(ClientError):
                await self._client.send({"type": "consult-cancel"})
            self._finish(CallEnd.CANCELLED)

    def send_vitals(self, message: dict[str, Any]) -> bool:
        """Send a vitals-channel message if the channel is open (else the backlog carries it)."""
        if not self.channel_open:
            return False
        assert self._peer is not None
        self._peer.channel.send(json.dumps(message, separators=(",", ":")))
        return True

    # -- running -------------------------------------------------------------------------------

    async def run(self) -> CallOutcome:
        """Queue, call, and return how it ended; every task ends with it."""
        loop = asyncio.get_running_loop()
        self._stop = loop.create_future()
        try:
            await self._client.sign_in(await self._token())
            async with asyncio.TaskGroup() as group:
                self._group = group
                reader = group.create_task(self._read_forever())
                watcher = group.create_task(self._watch_peer())
                await self._client.send(
                    {"type": "consult-request", "triage": self._options.triage, "id": "consult"}
                )
                end = await self._stop
                reader.cancel()
                watcher.cancel()
        except ClientError:
            logger.warning("signaling unavailable; the consultation could not start")
            end = CallEnd.SIGNALING_LOST
        finally:
            await self._close_peers()
            await self._client.leave()
        call = self._call or {}
        outcome = CallOutcome(
            end=end,
            call_id=call.get("call"),
            doctor=(call.get("peer") or {}).get("subject"),
            hospital=call.get("hospital"),
            started_at=call.get("started_at"),
            ended_at=self._clock(),
            notes=tuple(self._notes),
            renegotiations=self._renegotiations,
        )
        self._listener.ended(outcome)
        return outcome

    def _finish(self, end: CallEnd) -> None:
        if self._stop is not None and not self._stop.done():
            self._stop.set_result(end)

    async def _read_forever(self) -> None:
        while True:
            try:
                message = await self._client.receive(timeout_s=3600)
            except ClientError:
                if not await self._resume():
                    self._finish(CallEnd.SIGNALING_LOST)
                    return
                if self._call is not None:
                    await self._renegotiate()
                continue
            await self._on_message(message)

    async def _resume(self) -> bool:
        """Take the signaling session back within the grace window."""
        self._listener.peer_state("reconnecting")
        deadline = time.monotonic() + self._options.resume_for_s
        while time.monotonic() < deadline:
            try:
                welcome = await self._client.resume()
            except ClientError as exc:
                if exc.code == "resume-failed":
                    return False
                await asyncio.sleep(self._options.resume_every_s)
                continue
            if self._call is not None and welcome.get("call") is None:
                self._finish(CallEnd.PEER_LOST)
            self._listener.peer_state("connected")
            return True
        return False

    async def _on_message(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "queued":
            self._listener.queued(message)
        elif kind == "no-doctor":
            self._listener.no_doctor(message)
            if self._options.stay_when_no_doctor:
                await self._client.send({"type": "consult-stay"})
            else:
                await self._client.send({"type": "consult-cancel"})
                self._finish(CallEnd.NO_DOCTOR)
        elif kind == "call":
            self._call = message
            self._listener.call_started(message)
            await self._offer(restart=False)
        elif kind == "answer" and self._peer is not None:
            await self._peer.pc.setRemoteDescription(
                RTCSessionDescription(sdp=message["sdp"], type="answer")
            )
        elif kind == "candidate" and self._peer is not None:
            await self._add_candidate(self._peer.pc, message.get("candidate"))
        elif kind == "peer-reconnecting":
            self._listener.peer_state("peer-reconnecting")
        elif kind == "peer-back":
            self._listener.peer_state("peer-back")
            await self._renegotiate()
        elif kind == "call-ended":
            by = message.get("by")
            self._finish(CallEnd.DOCTOR_HUNG_UP if by == "doctor" else CallEnd.PEER_LOST)
        elif kind == "error":
            logger.info("signaling error %s: %s", message.get("code"), message.get("detail"))
            if message.get("fatal"):
                self._finish(CallEnd.SIGNALING_LOST)

    # -- WebRTC --------------------------------------------------------------------------------

    async def _offer(self, *, restart: bool) -> None:
        assert self._call is not None
        welcome = self._client.welcome or {}
        servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in welcome.get("ice_servers", [])
        ]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers or None))
        for track in (self._media.video(), self._media.audio()):
            if track is not None:
                pc.addTrack(track)
        channel = pc.createDataChannel(VITALS_LABEL, ordered=True)
        peer = _Peer(pc=pc, channel=channel)
        self._wire(peer)
        if self._peer is not None:
            self._old_peers.append(self._peer)
        self._peer = peer
        offer = await pc.createOffer()
        await pc.setLocalDescription(offer)  # aiortc gathers every candidate here
        message: dict[str, Any] = {
            "type": "offer",
            "call": self.call_id,
            "sdp": pc.localDescription.sdp,
        }
        if restart:
            message["restart"] = True
        await self._client.send(message)
        await self._client.send({"type": "candidate", "call": self.call_id, "candidate": None})

    def _wire(self, peer: _Peer) -> None:
        pc, channel = peer.pc, peer.channel

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._listener.remote_track(track)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            state = pc.connectionState
            if peer is self._peer:
                self._listener.peer_state(f"media-{state}")
            if state == "connected":
                peer.connected.set()
                await self._retire_old_peers()
            elif state == "failed" and peer is self._peer:
                self._failed.set()

        @channel.on("open")
        def on_open() -> None:
            channel.send(json.dumps(self._hello(), separators=(",", ":")))
            for item in self._backlog():
                channel.send(json.dumps(item, separators=(",", ":")))

        @channel.on("message")
        def on_message(data: str | bytes) -> None:
            self._on_channel(data)

    def _on_channel(self, data: str | bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            logger.warning("the doctor's console sent a message that is not JSON")
            return
        if not isinstance(message, dict):
            return
        if message.get("type") == "note" and isinstance(message.get("text"), str):
            note = DoctorNote(
                id=str(message.get("id", ""))[:64],
                text=message["text"][:4000],
                disposition=str(message.get("disposition", "no-action")),
                doctor=message.get("doctor"),
                received_at=self._clock(),
            )
            self._notes.append(note)
            self._listener.note(note)
            self.send_vitals({"type": "note-ack", "id": note.id})
        elif message.get("type") == "remeasure" and isinstance(message.get("kind"), str):
            self._listener.remeasure(message["kind"], message.get("reason"))

    async def _add_candidate(self, pc: RTCPeerConnection, raw: Any) -> None:
        if not isinstance(raw, dict) or not raw.get("candidate"):
            return  # end of candidates
        text = str(raw["candidate"])
        try:
            candidate = candidate_from_sdp(text.removeprefix("candidate:"))
        except (ValueError, IndexError):
            logger.warning("ignored an unparseable remote ICE candidate")
            return
        candidate.sdpMid = raw.get("sdpMid")
        candidate.sdpMLineIndex = raw.get("sdpMLineIndex")
        await pc.addIceCandidate(candidate)

    async def _renegotiate(self) -> None:
        """A new peer connection (aiortc has no ICE restart); the old one goes once it is up."""
        if self._call is None:
            return
        self._renegotiations += 1
        self._failed.clear()
        await self._offer(restart=True)

    async def _watch_peer(self) -> None:
        while True:
            await self._failed.wait()
            self._failed.clear()
            logger.info("media connection failed; renegotiating", extra={"call": self.call_id})
            await self._renegotiate()

    async def _retire_old_peers(self) -> None:
        old, self._old_peers = self._old_peers, []
        for peer in old:
            await peer.pc.close()

    async def _close_peers(self) -> None:
        peers = [*self._old_peers, *([self._peer] if self._peer else [])]
        self._old_peers, self._peer = [], None
        for peer in peers:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await peer.pc.close()
