"""The local WebRTC leg from the cabin service to the resident's screen.

The resident page runs in the kiosk's browser on the same machine. It needs no camera or
microphone permission: the cabin service owns the devices and sends the page, over a local
peer connection, the doctor's video and audio (relayed from the call with aiortc's
``MediaRelay``, unbuffered) and the resident's own camera as a small self-view. The page
offers (receive-only); the cabin answers. Each page load gets a fresh connection; when a
page goes away its connection is closed.

The tracks are switchable (``cabin.media.switch``): the leg is set up once and shows the
doctor when a call starts and a quiet filler before and after.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from cabin.media.switch import SwitchableAudioTrack, SwitchableVideoTrack

logger = logging.getLogger(__name__)

MAX_PAGES = 4
"""Resident pages open at once (a reload briefly has two); older ones are closed."""


class LocalLeg:
    """Every resident page's peer connection, and what they show."""

    def __init__(self, *, self_view: MediaStreamTrack | None) -> None:
        self._relay = MediaRelay()
        self._self_view = self_view
        self._pcs: list[
            tuple[RTCPeerConnection, list[SwitchableVideoTrack | SwitchableAudioTrack]]
        ] = []
        self._doctor_video: MediaStreamTrack | None = None
        self._doctor_audio: MediaStreamTrack | None = None

    @property
    def pages(self) -> int:
        return len(self._pcs)

    async def answer(self, offer_sdp: str) -> str:
        """Answer a page's offer: doctor video, doctor audio, self-view, in that order."""
        pc = RTCPeerConnection()
        video = SwitchableVideoTrack()
        audio = SwitchableAudioTrack()
        switches: list[SwitchableVideoTrack | SwitchableAudioTrack] = [video, audio]
        if self._doctor_video is not None:
            video.use(self._relay.subscribe(self._doctor_video, buffered=False))
        if self._doctor_audio is not None:
            audio.use(self._relay.subscribe(self._doctor_audio, buffered=False))
        pc.addTrack(video)
        pc.addTrack(audio)
        if self._self_view is not None:
            pc.addTrack(self._relay.subscribe(self._self_view, buffered=False))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self._drop(pc)

        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        self._pcs.append((pc, switches))
        while len(self._pcs) > MAX_PAGES:
            await self._drop(self._pcs[0][0])
        return str(pc.localDescription.sdp)

    def show_doctor(self, track: MediaStreamTrack) -> None:
        """A track of the doctor arrived on the call: every page shows it from now on."""
        if track.kind == "video":
            self._doctor_video = track
        elif track.kind == "audio":
            self._doctor_audio = track
        for _, switches in self._pcs:
            for switch in switches:
                if switch.kind == track.kind:
                    switch.use(self._relay.subscribe(track, buffered=False))

    def call_over(self) -> None:
        """Back to the filler on every page."""
        self._doctor_video = self._doctor_audio = None
        for _, switches in self._pcs:
            for switch in switches:
                switch.use(None)

    async def _drop(self, pc: RTCPeerConnection) -> None:
        self._pcs = [(p, s) for p, s in self._pcs if p is not pc]
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await pc.close()

    async def close(self) -> None:
        for pc, _ in list(self._pcs):
            await self._drop(pc)
