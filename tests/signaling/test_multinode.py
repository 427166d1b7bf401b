"""Two real ``signaling serve`` processes sharing the machine's Redis.

A cabin on node A and a doctor on node B complete a call; node A is killed and the cabin
resumes through node B within the grace window; 100 doctors spread over both nodes accept one
resident at once and exactly one wins.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from signaling.client import ClientError, SignalingClient
from signaling.model import Role
from signaling.tokens import DevKey, mint
from tests.peers import require
from tests.peers.redis import redis_available, redis_url

pytestmark = pytest.mark.slow


@dataclass
class Cluster:
    key: DevKey
    urls: dict[str, str]
    processes: dict[str, subprocess.Popen[str]]

    def token(self, role: Role, subject: str, hospitals: list[str] | None = None) -> str:
        return mint(
            self.key,
            role=role,
            subject=subject,
            hospitals=hospitals or [],
            audience="telehealth-signaling",
            ttl_s=600,
            now=datetime.now(UTC),
        )

    def kill(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait(timeout=10)


def _start(
    name: str, *, env: dict[str, str], prefix: str, grace: float
) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "signaling",
            "serve",
            "--dev",
            "--port",
            "0",
            "--node",
            name,
            "--redis",
            redis_url(),
            "--redis-prefix",
            prefix,
            "--grace",
            str(grace),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"ready on (ws://\S+)", line)
    assert match, f"node {name} did not start: {line!r}"
    return process, match.group(1)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    require(redis_available(), f"Redis is not reachable at {redis_url()}")
    env = {**os.environ, "SIGNALING_DATA_DIR": str(tmp_path / "signaling")}
    prefix = f"sigtest:{uuid.uuid4().hex[:8]}:"
    processes: dict[str, subprocess.Popen[str]] = {}
    urls: dict[str, str] = {}
    try:
        for name in ("a", "b"):
            processes[name], urls[name] = _start(name, env=env, prefix=prefix, grace=20)
        yield Cluster(DevKey.load_or_create(tmp_path / "signaling"), urls, processes)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=10)
        _delete_prefix(prefix)


def _delete_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url())
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.unlink(*keys)
    finally:
        client.close()


def test_a_call_across_nodes_survives_the_death_of_the_cabins_node(cluster: Cluster) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            doctor = SignalingClient(cluster.urls["b"], http=http)
            cabin = SignalingClient(cluster.urls["a"], http=http)
            await doctor.sign_in(cluster.token(Role.DOCTOR, "dr-1", ["bv-a"]))
            await doctor.request({"type": "presence", "status": "available"}, reply_type="presence")
            await cabin.sign_in(cluster.token(Role.CABIN, "dkc-01"))
            queued = await cabin.request(
                {"type": "consult-request", "triage": {"urgency": "urgent", "hospital": "bv-a"}},
                reply_type="queued",
            )
            assert queued["doctors_available"] == 1  # node A sees node B's doctor
            pushed = await doctor.wait_for("queue", where=lambda m: bool(m["tickets"]))
            assert pushed["tickets"][0]["ticket"] == queued["ticket"]
            call = await doctor.request(
                {"type": "accept", "ticket": queued["ticket"]}, reply_type="call"
            )
            assert (await cabin.wait_for("call"))["call"] == call["call"]
            await cabin.send({"type": "offer", "call": call["call"], "sdp": "v=0\r\n"})
            assert (await doctor.wait_for("offer"))["from"] == "cabin"
            await doctor.send({"type": "answer", "call": call["call"], "sdp": "v=0\r\n"})
            assert (await cabin.wait_for("answer"))["from"] == "doctor"

            cluster.kill("a")
            with pytest.raises(ClientError):
                await cabin.wait_for("never", timeout_s=5)
            welcome = await cabin.resume(url=cluster.urls["b"])
            assert welcome["resumed"] is True
            assert welcome["call"]["call"] == call["call"]
            assert (await doctor.wait_for("peer-back"))["call"] == call["call"]
            await cabin.send(
                {"type": "offer", "call": call["call"], "sdp": "v=0\r\n", "restart": True}
            )
            assert (await doctor.wait_for("offer"))["restart"] is True
            await doctor.send({"type": "hangup", "call": call["call"]})
            assert (await cabin.wait_for("call-ended"))["by"] == "doctor"

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_hundred_concurrent_accepts_on_two_nodes_have_one_winner(cluster: Cluster) -> None:
    async def scenario() -> None:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            doctors = [
                SignalingClient(cluster.urls["ab"[i % 2]], http=http, timeout_s=20)
                for i in range(100)
            ]
            await asyncio.gather(
                *(
                    d.sign_in(cluster.token(Role.DOCTOR, f"dr-{i}", ["bv-a"]))
                    for i, d in enumerate(doctors)
                )
            )
            cabin = SignalingClient(cluster.urls["a"], http=http)
            await cabin.sign_in(cluster.token(Role.CABIN, "dkc-02"))
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
            winners = [r for r in results if isinstance(r, dict)]
            codes = {getattr(r, "code", repr(r)) for r in results if not isinstance(r, dict)}
            assert len(winners) == 1
            assert codes == {"already-taken"}
            assert (await cabin.wait_for("call"))["call"] == winners[0]["call"]

    asyncio.run(asyncio.wait_for(scenario(), 90))
