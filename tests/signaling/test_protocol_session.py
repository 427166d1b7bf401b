"""Sessions outlive connections: resume within the grace window, replacement, expiry, waits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from signaling.client import ClientError, SignalingClient
from signaling.messages import validate_outbound
from tests.signaling.harness import Node, running_node

SDP = "v=0\r\n"


async def _in_call(node: Node) -> tuple[SignalingClient, SignalingClient, str]:
    doctor = await node.doctor("dr-1", ["bv-a"])
    cabin = await node.cabin("dkc-01")
    queued = await cabin.request(
        {"type": "consult-request", "triage": {"urgency": "routine", "hospital": "bv-a"}},
        reply_type="queued",
    )
    call = await doctor.request({"type": "accept", "ticket": queued["ticket"]}, reply_type="call")
    await cabin.wait_for("call")
    return cabin, doctor, str(call["call"])


def test_a_dropped_cabin_resumes_its_call_and_the_doctor_is_told(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path) as node:
            cabin, doctor, call = await _in_call(node)
            old_token = cabin.resume_token
            await cabin.drop()
            waiting = await doctor.wait_for("peer-reconnecting")
            validate_outbound(waiting)
            assert waiting == {"type": "peer-reconnecting", "call": call, "grace_s": 60.0}
            # relaying to a parked peer is refused, not silently lost
            await doctor.send({"type": "offer", "call": call, "sdp": SDP})
            assert (await doctor.wait_for("error"))["code"] == "peer-unavailable"

            welcome = await cabin.resume()
            assert welcome["resumed"] is True
            assert welcome["call"]["call"] == call
            assert welcome["resume"] != old_token
            assert (await doctor.wait_for("peer-back"))["call"] == call
            await cabin.send({"type": "offer", "call": call, "sdp": SDP, "restart": True})
            offer = await doctor.wait_for("offer")
            assert offer["restart"] is True

            stranger = node.client()
            with pytest.raises(ClientError) as refused:
                await stranger._hello({"type": "hello", "v": 1, "resume": old_token})
            assert refused.value.code == "resume-failed"

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_the_call_ends_for_both_when_the_grace_window_runs_out(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path, grace_s=0.3) as node:
            cabin, doctor, call = await _in_call(node)
            await cabin.drop()
            await doctor.wait_for("peer-reconnecting")
            ended = await doctor.wait_for("call-ended", timeout_s=3)
            assert ended["call"] == call
            assert ended["by"] == "server"
            assert ended["reason"] == "peer-lost"
            with pytest.raises(ClientError) as late:
                await cabin.resume()
            assert late.value.code == "resume-failed"
            # the doctor is free again
            presence = await doctor.request({"type": "queue-get"}, reply_type="queue")
            assert presence["doctors"]["available"] == 1

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_a_waiting_cabin_keeps_its_place_across_a_drop(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path) as node:
            first = await node.cabin("cabin-1")
            second = await node.cabin("cabin-2")
            q1 = await first.request(
                {"type": "consult-request", "triage": {"urgency": "routine"}}, reply_type="queued"
            )
            await second.request(
                {"type": "consult-request", "triage": {"urgency": "routine"}}, reply_type="queued"
            )
            await first.drop()
            welcome = await first.resume()
            assert welcome["ticket"]["ticket"] == q1["ticket"]
            queued = await first.wait_for("queued")
            assert queued["position"] == 1

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_resuming_a_live_session_replaces_the_old_connection(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path) as node:
            cabin, doctor, call = await _in_call(node)
            twin = node.client()
            twin.resume_token = cabin.resume_token
            welcome = await twin._hello({"type": "hello", "v": 1, "resume": cabin.resume_token})
            assert welcome["call"]["call"] == call
            replaced = await cabin.wait_for("error")
            assert replaced["code"] == "replaced"
            assert replaced["fatal"] is True
            with pytest.raises(ClientError):
                await cabin.receive(timeout_s=2)
            await doctor.send({"type": "answer", "call": call, "sdp": SDP})
            assert (await twin.wait_for("answer"))["from"] == "doctor"

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_bye_ends_the_call_at_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path) as node:
            cabin, doctor, call = await _in_call(node)
            await cabin.leave()
            ended = await doctor.wait_for("call-ended")
            assert (ended["call"], ended["by"], ended["reason"]) == (call, "cabin", "bye")

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_no_doctor_notice_then_stay_or_cancel(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path, no_doctor_s=0.2) as node:
            watcher = await node.doctor("dr-9", ["bv-a"], available=False)
            cabin = await node.cabin()
            queued = await cabin.request(
                {"type": "consult-request", "triage": {"urgency": "routine", "hospital": "bv-a"}},
                reply_type="queued",
            )
            assert queued["estimated_wait_s"] is None  # no doctor available: no invented number
            notice = await cabin.wait_for("no-doctor", timeout_s=3)
            validate_outbound(notice)
            assert notice["ticket"] == queued["ticket"]
            stayed = await cabin.request({"type": "consult-stay"}, reply_type="queued")
            assert stayed["ticket"] == queued["ticket"]
            assert stayed["waiting_since"] == queued["waiting_since"]
            assert (await cabin.wait_for("no-doctor", timeout_s=3))["ticket"] == queued["ticket"]
            cancelled = await cabin.request({"type": "consult-cancel"}, reply_type="cancelled")
            assert cancelled["ticket"] == queued["ticket"]
            empty = await watcher.wait_for("queue", where=lambda m: not m["tickets"])
            assert empty["tickets"] == []

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_queue_is_pushed_live_sorted_by_urgency_then_wait(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path) as node:
            doctor = await node.doctor("dr-1", ["bv-a"])
            cabins = [await node.cabin(f"cabin-{i}") for i in range(3)]
            for cabin, urgency in zip(cabins, ["routine", "routine", "emergency"], strict=True):
                await cabin.request(
                    {"type": "consult-request", "triage": {"urgency": urgency}}, reply_type="queued"
                )
                await asyncio.sleep(0.01)
            queue = await doctor.wait_for("queue", where=lambda m: len(m["tickets"]) == 3)
            urgencies = [t["triage"]["urgency"] for t in queue["tickets"]]
            assert urgencies == ["emergency", "routine", "routine"]
            since = [t["waiting_since"] for t in queue["tickets"][1:]]
            assert since == sorted(since)
            # the first routine cabin is now second and is told so
            moved = await cabins[0].wait_for("queued", where=lambda m: m["position"] == 2)
            assert moved["estimated_wait_s"] == 900

    asyncio.run(asyncio.wait_for(scenario(), 20))
