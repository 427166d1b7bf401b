"""The cabin's consultation against a real signaling node and an aiortc doctor.

The doctor here is a second aiortc peer (the Chromium console has its own tests): it answers
every offer with a new peer connection, counts decoded frames, and talks on the vitals channel.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack, VideoStreamTrack

from cabin.call import CabinCall, CallEnd, CallOptions, CallOutcome, DoctorNote
from signaling.client import Message, SignalingClient
from signaling.model import Role
from tests.signaling.harness import Node, running_node

MEASUREMENT = {
    "type": "measurement",
    "kind": "spo2",
    "value": 97,
    "unit": "%",
    "status": "valid",
    "color": "green",
    "time": "2026-11-22T08:00:00+07:00",
}


class Media:
    def video(self) -> MediaStreamTrack:
        return VideoStreamTrack()

    def audio(self) -> MediaStreamTrack:
        return AudioStreamTrack()


@dataclass
class Listener:
    events: list[str] = field(default_factory=list)
    notes: list[DoctorNote] = field(default_factory=list)
    remeasures: list[str] = field(default_factory=list)
    tracks: list[MediaStreamTrack] = field(default_factory=list)
    outcome: CallOutcome | None = None

    def queued(self, message: Message) -> None:
        self.events.append("queued")

    def no_doctor(self, message: Message) -> None:
        self.events.append("no-doctor")

    def call_started(self, message: Message) -> None:
        self.events.append("call")

    def remote_track(self, track: MediaStreamTrack) -> None:
        self.tracks.append(track)

    def note(self, note: DoctorNote) -> None:
        self.notes.append(note)

    def remeasure(self, kind: str, reason: str | None) -> None:
        self.remeasures.append(kind)

    def peer_state(self, state: str) -> None:
        self.events.append(state)

    def ended(self, outcome: CallOutcome) -> None:
        self.outcome = outcome


class Doctor:
    """An aiortc answerer behind a signaling client."""

    def __init__(self, client: SignalingClient) -> None:
        self.client = client
        self.pcs: list[RTCPeerConnection] = []
        self.frames = 0
        self.channel_messages: list[dict[str, Any]] = []
        self.channel: Any = None
        self.call: str | None = None
        self.offers = 0
        self.tasks: set[asyncio.Task[None]] = set()

    async def serve(self) -> None:
        while True:
            message = await self.client.receive(timeout_s=60)
            if message["type"] == "queue" and message["tickets"] and self.call is None:
                call = await self.client.request(
                    {"type": "accept", "ticket": message["tickets"][0]["ticket"]}, reply_type="call"
                )
                self.call = call["call"]
            elif message["type"] == "offer":
                await self._answer(message)
            elif message["type"] == "call-ended":
                return

    async def _answer(self, offer: Message) -> None:
        self.offers += 1
        pc = RTCPeerConnection()
        self.pcs.append(pc)
        pc.addTrack(VideoStreamTrack())
        pc.addTrack(AudioStreamTrack())

        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                task = asyncio.get_running_loop().create_task(self._count(track))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

        def on_message(data: str) -> None:
            self.channel_messages.append(json.loads(data))

        def on_channel(channel: Any) -> None:
            self.channel = channel
            channel.on("message", on_message)

        pc.on("track", on_track)
        pc.on("datachannel", on_channel)

        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await self.client.send(
            {"type": "answer", "call": self.call, "sdp": pc.localDescription.sdp}
        )

    async def _count(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                await track.recv()
            except Exception:
                return
            self.frames += 1

    def say(self, message: dict[str, Any]) -> None:
        self.channel.send(json.dumps(message))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for pc in self.pcs:
            await pc.close()


async def _until(predicate: Any, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def _cabin_call(node: Node, listener: Listener) -> CabinCall:
    async def token() -> str:
        return node.token(Role.CABIN, "dkc-01")

    return CabinCall(
        http=node.http,
        token=token,
        media=Media(),
        listener=listener,
        options=CallOptions(url=node.url, triage={"urgency": "routine", "hospital": "bv-a"}),
        hello=lambda: {"type": "hello", "v": 1, "resident": {"name": "Trần Thị Mai", "age": 67}},
        backlog=lambda: [MEASUREMENT],
    )


def test_a_consultation_carries_video_vitals_and_the_doctors_note(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path) as node:
            doctor = Doctor(await node.doctor("dr-1", ["bv-a"]))
            listener = Listener()
            call = _cabin_call(node, listener)
            async with asyncio.TaskGroup() as group:
                running = group.create_task(call.run())
                serving = group.create_task(doctor.serve())
                await _until(lambda: doctor.frames >= 10 and len(doctor.channel_messages) >= 2)
                assert doctor.channel_messages[0]["resident"]["name"] == "Trần Thị Mai"
                assert doctor.channel_messages[1] == MEASUREMENT
                await _until(lambda: any(t.kind == "video" for t in listener.tracks))
                doctor.say({"type": "remeasure", "kind": "blood-pressure"})
                doctor.say(
                    {
                        "type": "note",
                        "id": "n1",
                        "text": "Đo lại huyết áp.",
                        "disposition": "see-gp",
                    }
                )
                await _until(lambda: bool(listener.notes) and bool(listener.remeasures))
                await _until(lambda: {"type": "note-ack", "id": "n1"} in doctor.channel_messages)
                assert call.send_vitals({**MEASUREMENT, "value": 95})
                await _until(lambda: doctor.channel_messages[-1].get("value") == 95)
                await doctor.client.send({"type": "hangup", "call": doctor.call})
                outcome = await running
                await serving
            assert outcome.end is CallEnd.DOCTOR_HUNG_UP
            assert outcome.doctor == "dr-1"
            assert [n.text for n in outcome.notes] == ["Đo lại huyết áp."]
            assert listener.remeasures == ["blood-pressure"]
            await doctor.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_signaling_drop_mid_call_resumes_and_renegotiates_a_new_peer(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path) as node:
            doctor = Doctor(await node.doctor("dr-1", ["bv-a"]))
            listener = Listener()
            call = _cabin_call(node, listener)
            async with asyncio.TaskGroup() as group:
                running = group.create_task(call.run())
                serving = group.create_task(doctor.serve())
                await _until(lambda: doctor.frames >= 5)
                await call._client.drop()  # the network under the cabin goes away
                await _until(lambda: doctor.offers >= 2)
                before = doctor.frames
                await _until(lambda: doctor.frames >= before + 10)
                assert "reconnecting" in listener.events
                await call.hang_up()
                outcome = await running
                serving.cancel()
            assert outcome.end is CallEnd.HUNG_UP
            assert outcome.renegotiations == 1
            await doctor.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))
