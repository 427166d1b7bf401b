"""What a connection may cost: errors, sizes, rates, identities, slow readers, origins, tokens."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from signaling.client import ClientError, SignalingClient
from signaling.model import Role
from signaling.tokens import DevKey, mint
from tests.signaling.harness import running_node


async def _raw(
    url: str, http: aiohttp.ClientSession, *, headers: dict[str, str] | None = None
) -> aiohttp.ClientWebSocketResponse:
    return await http.ws_connect(url, headers=headers)


def test_client_faults_get_errors_and_the_connection_survives_until_they_repeat(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path, limits={"strikes": 5}) as node:
            cabin = await node.cabin()
            bad = [
                ("{not json", "bad-json"),
                ("[1, 2]", "invalid-message"),
                ('{"type": "teleport"}', "unknown-type"),
                ('{"type": "consult-request", "triage": {"urgency": "now!"}}', "invalid-message"),
            ]
            for text, code in bad:
                await cabin.send_text(text)
                error = await cabin.wait_for("error")
                assert (error["code"], error["fatal"]) == (code, False)
            # still usable
            pong = await cabin.request({"type": "ping"}, reply_type="pong")
            assert pong["type"] == "pong"
            await cabin.send_text('{"type": 7}')
            last = await cabin.wait_for("error", where=lambda m: m["code"] == "too-many-errors")
            assert last["fatal"] is True
            with pytest.raises(ClientError):
                await cabin.receive(timeout_s=2)

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_oversize_and_binary_messages_are_refused_with_a_reason(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path) as node:
            cabin = await node.cabin()
            big = json.dumps({"type": "ping", "id": "x", "pad": "é" * 40_000})  # 80 kB of UTF-8
            await cabin.send_text(big)
            assert (await cabin.wait_for("error"))["code"] == "too-large"
            ws = cabin._require()
            await ws.send_bytes(b"\x00\x01")
            assert (await cabin.wait_for("error"))["code"] == "invalid-message"
            await ws.send_str("x" * (64 * 1024 * 4 + 10))  # past the hard frame limit: closed
            with pytest.raises(ClientError):
                await cabin.wait_for("pong", timeout_s=3)

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_message_rate_is_limited_per_connection(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(
            tmp_path, limits={"rate_per_s": 5, "burst": 10, "strikes": 1000}
        ) as node:
            cabin = await node.cabin()
            for i in range(40):
                await cabin.send({"type": "ping", "id": f"p{i}"})
            codes: list[str] = []
            for _ in range(40):
                message = await cabin.receive()
                codes.append(str(message.get("code", message["type"])))
            assert codes.count("pong") <= 12
            assert codes.count("rate-limited") >= 28

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_refused_tokens_name_the_reason_and_close(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path) as node:
            now = datetime.now(UTC)
            stranger = DevKey.generate()
            cases = {
                "token-expired": node.token(
                    Role.CABIN, "c", now=now - timedelta(hours=2), ttl_s=60
                ),
                "wrong-audience": node.token(Role.CABIN, "c", audience="someone-else"),
                "token-forged": mint(
                    stranger,
                    role=Role.CABIN,
                    subject="c",
                    hospitals=[],
                    audience="telehealth-signaling",
                    ttl_s=60,
                    now=now,
                ).replace(stranger.kid, node.key.kid),
                "token-malformed": "not.a.jwt",
            }
            for reason, token in cases.items():
                client = node.client()
                with pytest.raises(ClientError) as refused:
                    await client.sign_in(token)
                assert refused.value.code == "auth-failed", reason
                assert reason in str(refused.value)
            token = node.token(Role.CABIN, "c")
            await node.client().sign_in(token)
            with pytest.raises(ClientError, match="token-replayed"):
                await node.client().sign_in(token)

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_messages_before_hello_are_refused_and_silence_times_out(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path, limits={"auth_timeout_s": 0.4}) as node:
            ws = await _raw(node.url, node.http)
            await ws.send_str('{"type": "ping"}')
            first = json.loads((await ws.receive(timeout=2)).data)
            assert first["code"] == "not-authenticated"
            second = json.loads((await ws.receive(timeout=2)).data)
            assert (second["code"], second["fatal"]) == ("auth-timeout", True)
            assert (await ws.receive(timeout=2)).type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
            )

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_connections_per_identity_are_limited(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path, limits={"connections_per_identity": 2}) as node:
            await node.cabin("same")
            await node.cabin("same")
            with pytest.raises(ClientError) as refused:
                await node.cabin("same")
            assert refused.value.code == "too-many-connections"
            await node.cabin("other")

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_a_client_that_stops_reading_is_disconnected_not_buffered(tmp_path: Path) -> None:
    async def scenario() -> None:
        limits = {"send_queue_bytes": 64 * 1024, "rate_per_s": 100_000, "burst": 100_000}
        async with running_node(tmp_path, limits=limits) as node:
            doctor = await node.doctor("dr-1", ["bv-a"])
            cabin = node.client()
            ws = await _raw(node.url, node.http)
            await ws.send_str(
                json.dumps({"type": "hello", "v": 1, "token": node.token(Role.CABIN, "slow")})
            )
            welcome = json.loads((await ws.receive(timeout=2)).data)
            cabin.welcome = welcome
            await ws.send_str(
                json.dumps({"type": "consult-request", "triage": {"urgency": "routine"}})
            )
            queue = await doctor.wait_for("queue", where=lambda m: bool(m["tickets"]))
            call = await doctor.request(
                {"type": "accept", "ticket": queue["tickets"][0]["ticket"]}, reply_type="call"
            )
            sdp = "a=" + "x" * 30_000
            # the cabin reads nothing; the doctor floods it with offers
            for _ in range(600):
                await doctor.send({"type": "offer", "call": call["call"], "sdp": sdp})
                if not doctor.connected:
                    break
            reconnecting = await doctor.wait_for("peer-reconnecting", timeout_s=10)
            assert reconnecting["call"] == call["call"]
            assert node.server.metrics.errors.labels(code="slow-consumer")._value.get() == 1

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_browser_origins_are_checked(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path, allowed_origins=("https://console.bv-a.vn",)) as node:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await _raw(node.url, node.http, headers={"Origin": "https://evil.example"})
            assert refused.value.status == 403
            ok = await _raw(node.url, node.http, headers={"Origin": "https://console.bv-a.vn"})
            await ok.close()
            host = node.url.split("/")[2]
            same = await _raw(node.url, node.http, headers={"Origin": f"http://{host}"})
            await same.close()

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_health_readiness_and_metrics(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_node(tmp_path) as node:
            base = node.url.removesuffix("/ws")
            cabin: SignalingClient = await node.cabin()
            await cabin.send_text("{oops")
            await cabin.wait_for("error")
            async with node.http.get(f"{base}/healthz") as health:
                assert health.status == 200
            async with node.http.get(f"{base}/readyz") as ready:
                assert ready.status == 200
            async with node.http.get(f"{base}/metrics") as metrics:
                text = await metrics.text()
            assert 'signaling_connections{role="cabin"} 1.0' in text
            assert 'signaling_errors_total{code="bad-json"} 1.0' in text
            assert cabin.resume_token is not None
            assert cabin.resume_token not in text

    asyncio.run(asyncio.wait_for(scenario(), 20))
