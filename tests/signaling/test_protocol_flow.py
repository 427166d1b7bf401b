"""The whole consultation flow through a real node: queue, accept, relay, hang up."""

from __future__ import annotations

import asyncio
from pathlib import Path

from signaling.messages import validate_outbound
from tests.signaling.harness import running_node

OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
CANDIDATE = {
    "candidate": "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
}


def test_queue_accept_relay_hang_up(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path) as node:
            doctor = await node.doctor("dr-1", ["bv-a"])
            cabin = await node.cabin("dkc-01")
            queued = await cabin.request(
                {
                    "type": "consult-request",
                    "triage": {"urgency": "urgent", "flags": ["bp-high"], "hospital": "bv-a"},
                },
                reply_type="queued",
            )
            validate_outbound(queued)
            assert queued["position"] == 1
            assert queued["doctors_available"] == 1
            assert queued["estimated_wait_s"] == 300
            queue = await doctor.wait_for("queue", where=lambda m: bool(m["tickets"]))
            validate_outbound(queue)
            [entry] = queue["tickets"]
            assert entry["triage"]["flags"] == ["bp-high"]

            call = await doctor.request(
                {"type": "accept", "ticket": entry["ticket"]}, reply_type="call"
            )
            validate_outbound(call)
            cabin_call = await cabin.wait_for("call")
            assert cabin_call["call"] == call["call"]
            assert cabin_call["offerer"] == "cabin"
            assert cabin_call["peer"] == {"role": "doctor", "subject": "dr-1"}

            await cabin.send({"type": "offer", "call": call["call"], "sdp": OFFER})
            offer = await doctor.wait_for("offer")
            validate_outbound(offer)
            assert offer == {"type": "offer", "call": call["call"], "from": "cabin", "sdp": OFFER}
            await doctor.send({"type": "answer", "call": call["call"], "sdp": OFFER})
            assert (await cabin.wait_for("answer"))["from"] == "doctor"
            await doctor.send({"type": "candidate", "call": call["call"], "candidate": CANDIDATE})
            relayed = await cabin.wait_for("candidate")
            assert relayed["candidate"]["candidate"] == CANDIDATE["candidate"]
            await cabin.send({"type": "candidate", "call": call["call"], "candidate": None})
            assert (await doctor.wait_for("candidate"))["candidate"] is None

            await doctor.send({"type": "hangup", "call": call["call"], "reason": "done"})
            ended = [await cabin.wait_for("call-ended"), await doctor.wait_for("call-ended")]
            for message in ended:
                validate_outbound(message)
                assert message["by"] == "doctor"
                assert message["reason"] == "done"
            stats = await (await node.admin()).request({"type": "stats"}, reply_type="stats")
            assert stats["calls"] == 0
            await cabin.leave()
            await doctor.leave()

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_only_one_of_many_concurrent_accepts_wins(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path) as node:
            doctors = [await node.doctor(f"dr-{i}", ["bv-a"]) for i in range(8)]
            cabin = await node.cabin()
            queued = await cabin.request(
                {"type": "consult-request", "triage": {"urgency": "routine"}}, reply_type="queued"
            )
            results = await asyncio.gather(
                *(
                    d.request({"type": "accept", "ticket": queued["ticket"]}, reply_type="call")
                    for d in doctors
                ),
                return_exceptions=True,
            )
            wins = [r for r in results if isinstance(r, dict)]
            losses = [r for r in results if isinstance(r, Exception)]
            assert len(wins) == 1
            assert {getattr(e, "code", None) for e in losses} == {"already-taken"}
            assert (await cabin.wait_for("call"))["call"] == wins[0]["call"]

    asyncio.run(asyncio.wait_for(scenario(), 20))
