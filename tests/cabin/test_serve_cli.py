"""``cabin serve`` next to ``signaling serve --dev``, as a user starts them."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from signaling.client import SignalingClient
from signaling.model import Role
from signaling.tokens import DevKey, mint

pytestmark = pytest.mark.slow


def _start(args: list[str], env: dict[str, str], pattern: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(pattern, line)
    assert match, line
    return process, match.group(1)


def test_cabin_serve_queues_a_resident_at_a_dev_signaling_node(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SIGNALING_DATA_DIR": str(tmp_path / "sig"),
        "CABIN_DATA_DIR": str(tmp_path / "var"),
    }
    node, ws_url = _start(
        ["signaling", "serve", "--dev", "--port", "0"], env, r"ready on (ws://\S+)"
    )
    cabin, ui_url = _start(
        ["cabin", "serve", "--port", "0", "--signaling-url", ws_url], env, r"resident screen: (\S+)"
    )
    try:

        async def scenario() -> None:
            async with aiohttp.ClientSession() as http:
                async with http.get(ui_url.removesuffix("/ui/") + "/healthz") as health:
                    assert (await health.json())["camera"] is True
                async with http.get(ui_url) as page:
                    assert "Gọi bác sĩ" in await page.text()
                doctor = SignalingClient(ws_url, http=http)
                key = DevKey.load_or_create(tmp_path / "sig")
                token = mint(
                    key,
                    role=Role.DOCTOR,
                    subject="dr-1",
                    hospitals=["bv-a"],
                    audience="telehealth-signaling",
                    ttl_s=300,
                    now=datetime.now(UTC),
                )
                await doctor.sign_in(token)
                async with http.ws_connect(ui_url.removesuffix("/ui/") + "/ui/ws") as screen:
                    await screen.send_json({"type": "call-doctor"})
                    queue = await doctor.wait_for(
                        "queue", where=lambda m: bool(m["tickets"]), timeout_s=10
                    )
                    assert queue["tickets"][0]["hospital"] == "*"
                    while (message := await screen.receive_json(timeout=10))["state"] != "queued":
                        pass
                    assert "người thứ 1" in message["vi"]
                await doctor.leave()

        asyncio.run(asyncio.wait_for(scenario(), 40))
    finally:
        for process in (cabin, node):
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
