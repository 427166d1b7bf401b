"""One video sender of the media benchmark in a process of its own (so its CPU is its own).

``python -m bench.media_sender plain --width 1280 --height 720 --fps 30``
    The anchor, in the shape of aiortc's examples: one ``RTCPeerConnection`` with one synthetic
    track drawing the same stamped test pattern (``cabin.media.pattern.TestPattern``, capture
    time in ms at generation) as the cabin's camera; no signaling service, no local leg, no
    vitals. It prints its offer and reads the receiver page's answer.

``python -m bench.media_sender cabin --signaling ws://... --key-dir DIR``
    The product: ``CabinService`` (test-pattern camera 1280x720@30, tone microphone, framing
    assist) serving the resident page on a free port, streaming pleth slices at 10 messages/s
    through ``service.send_vitals``, calling the doctor on command. Bench-side hooks only:
    the first frame the cabin decodes from the doctor's video track is reported, and with
    ``--ladder-cpu off`` the degradation ladder is not fed the machine's CPU (on this 2-core
    machine the doctor's Chromium shares the cabin's cores; see bench/media.py).

Protocol: JSON lines. Events on stdout (``{"event": ...}``); commands on stdin
(``{"cmd": ...}``): plain takes ``answer``; cabin takes ``call``, ``profile``, ``status`` and
``hangup``; both end on ``quit`` or end of input.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import logging
import math
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import av
import cv2
import numpy as np
from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from cabin import callquality
from cabin.media.pattern import TestPattern
from cabin.service import CabinService, ServiceOptions
from signaling.model import Role
from signaling.tokens import DevKey, mint

AUDIENCE = "telehealth-signaling"
VIDEO_CLOCK = 90_000
PLETH_RATE_HZ = 50.0
PLETH_SLICE = 5  # samples per message: 10 messages per second
HOSPITAL = "bv-a"
TRIAGE = {"urgency": "urgent", "flags": ["bp-high"], "summary": "BP 152/95"}


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def commands() -> Any:
    """Lines from stdin as dicts, until end of input."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        yield json.loads(line)


# -- the plain sender ---------------------------------------------------------------------------


class StampedPatternTrack(MediaStreamTrack):
    """The test pattern at ``fps``, stamped with the wall clock when each frame is drawn."""

    kind = "video"

    def __init__(self, *, width: int, height: int, fps: float) -> None:
        super().__init__()
        self._pattern = TestPattern(width=width, height=height)
        self._period = 1.0 / fps
        self._start: float | None = None
        self._count = 0

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        else:
            await asyncio.sleep(
                max(0.0, self._start + self._count * self._period - time.monotonic())
            )
        image = self._pattern.frame(self._count, timestamp_ms=int(time.time() * 1000))
        frame = av.VideoFrame.from_ndarray(
            np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), dtype=np.uint8),
            format="yuv420p",
        )
        frame.pts = round(self._count * self._period * VIDEO_CLOCK)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


async def run_plain(args: argparse.Namespace) -> None:
    pc = RTCPeerConnection()
    pc.addTrack(StampedPatternTrack(width=args.width, height=args.height, fps=args.fps))
    await pc.setLocalDescription(await pc.createOffer())  # gathers every candidate
    emit("offer", sdp=pc.localDescription.sdp)
    try:
        async for command in commands():
            if command["cmd"] == "answer":
                await pc.setRemoteDescription(
                    RTCSessionDescription(sdp=command["sdp"], type="answer")
                )
                emit("answered")
            elif command["cmd"] == "quit":
                break
    finally:
        await pc.close()


# -- the cabin ----------------------------------------------------------------------------------


def _pleth(t: float) -> float:
    phase = (t * 72.0 / 60.0) % 1.0
    return (
        50
        + 40 * math.exp(-(((phase - 0.15) / 0.08) ** 2))
        + 12 * math.exp(-(((phase - 0.45) / 0.1) ** 2))
    )


async def _stream_pleth(service: Any) -> None:
    """Pleth slices through the product's own entry point, 10 per second, call or no call."""
    start = time.monotonic()
    n = 0
    while True:
        t0 = n * PLETH_SLICE / PLETH_RATE_HZ
        samples = [round(_pleth(t0 + i / PLETH_RATE_HZ), 2) for i in range(PLETH_SLICE)]
        service.send_vitals(
            {
                "type": "pleth",
                "rate_hz": PLETH_RATE_HZ,
                "t0": t0,
                "samples": samples,
                "spo2": 97,
                "pulse": 72,
            }
        )
        n += 1
        await asyncio.sleep(max(0.0, start + n * PLETH_SLICE / PLETH_RATE_HZ - time.monotonic()))


def _report_first_doctor_frame(service: Any) -> None:
    """Wrap the local leg's ``show_doctor``: the doctor's video track says when it first decodes."""
    leg = service.leg
    show_doctor = leg.show_doctor

    def show(track: MediaStreamTrack) -> None:
        if track.kind == "video":
            recv = track.recv

            async def first_recv() -> Any:
                frame = await recv()
                emit("doctor-frame", at_ms=time.time() * 1000)
                track.recv = recv  # type: ignore[method-assign]
                return frame

            track.recv = first_recv  # type: ignore[method-assign]
        show_doctor(track)

    leg.show_doctor = show


def _call_track(service: Any) -> Any:
    call = service.call
    pc = None if call is None else call.peer_connection
    if pc is None:
        return None
    return next(
        (s.track for s in pc.getSenders() if s.track is not None and s.track.kind == "video"), None
    )


async def run_cabin(args: argparse.Namespace) -> None:
    if args.ladder_cpu == "off":
        callquality.CallQuality._machine_cpu = lambda self: None  # type: ignore[method-assign]
    key = DevKey.load_or_create(Path(args.key_dir))

    async def token() -> str:
        return mint(
            key,
            role=Role.CABIN,
            subject="dkc-bench",
            hospitals=[HOSPITAL],
            audience=AUDIENCE,
            ttl_s=3600,
            now=datetime.now(UTC),
        )

    async with aiohttp.ClientSession() as http:
        service = CabinService(
            options=ServiceOptions(signaling_url=args.signaling, triage=TRIAGE),
            http=http,
            token=token,
            hello=lambda: {
                "type": "hello",
                "v": 1,
                "resident": {"name": "Trần Thị Mai", "age": 67, "sex": "female"},
                "language": "vi",
            },
            backlog=list,
        )
        async with service.running():
            _report_first_doctor_frame(service)
            runner = web.AppRunner(service.app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            pleth = asyncio.create_task(_stream_pleth(service))
            emit("ready", ui=f"http://127.0.0.1:{port}/ui/")
            try:
                await _cabin_commands(service)
            finally:
                pleth.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pleth
                await runner.cleanup()


async def _cabin_commands(service: Any) -> None:
    async for command in commands():
        kind = command["cmd"]
        if kind == "call":
            emit("calling", started=service.call_doctor())
        elif kind == "profile":
            track = _call_track(service)
            if track is not None:
                track.set_profile(command["width"], command["height"], command["fps"])
            emit("profile", applied=track is not None)
        elif kind == "status":
            track = _call_track(service)
            profile = None if track is None else track.profile
            emit(
                "status",
                in_call=service.call is not None,
                channel_open=service.call is not None and service.call.channel_open,
                profile=None if profile is None else [profile.width, profile.height, profile.fps],
                delivered=None if track is None else track.frames_delivered,
                dropped=None if track is None else track.frames_dropped,
                pages=service.leg.pages,
            )
        elif kind == "hangup":
            if service.call is not None:
                await service.call.hang_up()
            for _ in range(200):  # the listener clears service.call when the call has ended
                if service.call is None:
                    break
                await asyncio.sleep(0.05)
            emit("ended")
        elif kind == "quit":
            return


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.media_sender")
    modes = parser.add_subparsers(dest="mode", required=True)
    plain = modes.add_parser("plain")
    plain.add_argument("--width", type=int, default=1280)
    plain.add_argument("--height", type=int, default=720)
    plain.add_argument("--fps", type=float, default=30.0)
    cabin = modes.add_parser("cabin")
    cabin.add_argument("--signaling", required=True)
    cabin.add_argument("--key-dir", required=True)
    cabin.add_argument("--ladder-cpu", choices=("on", "off"), default="off")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(run_plain(args) if args.mode == "plain" else run_cabin(args))


if __name__ == "__main__":
    main()
