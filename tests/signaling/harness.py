"""A real signaling node on a loopback port, with development tokens, for protocol tests."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from signaling.backplane import Backplane
from signaling.client import SignalingClient
from signaling.config import Limits, SignalingConfig
from signaling.model import Role
from signaling.server import SignalingServer
from signaling.service import create_server
from signaling.tokens import DevKey, mint

AUDIENCE = "telehealth-signaling"


@dataclass
class Node:
    server: SignalingServer
    url: str
    http: aiohttp.ClientSession
    key: DevKey

    def token(
        self,
        role: Role | str,
        subject: str,
        hospitals: Sequence[str] = (),
        *,
        ttl_s: int = 600,
        audience: str = AUDIENCE,
        now: datetime | None = None,
    ) -> str:
        return mint(
            self.key,
            role=Role(role),
            subject=subject,
            hospitals=list(hospitals),
            audience=audience,
            ttl_s=ttl_s,
            now=now or datetime.now(UTC),
        )

    def client(self, **options: Any) -> SignalingClient:
        return SignalingClient(self.url, http=self.http, timeout_s=5.0, **options)

    async def cabin(
        self, subject: str = "cabin-1", hospitals: Sequence[str] = ()
    ) -> SignalingClient:
        client = self.client()
        await client.sign_in(self.token(Role.CABIN, subject, hospitals))
        return client

    async def doctor(
        self, subject: str = "dr-1", hospitals: Sequence[str] = ("bv-a",), *, available: bool = True
    ) -> SignalingClient:
        client = self.client()
        await client.sign_in(self.token(Role.DOCTOR, subject, hospitals))
        await client.wait_for("queue")
        if available:
            await client.request({"type": "presence", "status": "available"}, reply_type="presence")
        return client

    async def admin(self, subject: str = "ops-1") -> SignalingClient:
        client = self.client()
        await client.sign_in(self.token(Role.ADMIN, subject))
        return client


def test_config(key_dir: Path, **changes: Any) -> SignalingConfig:
    """Fast timings for tests; ``limits`` may be a dict of Limits fields."""
    limits = changes.pop("limits", {})
    base = SignalingConfig(dev_key_dir=key_dir, sweep_s=0.05, limits=Limits(**limits))
    return dataclasses.replace(base, **changes)


@contextlib.asynccontextmanager
async def running_node(
    tmp_path: Path,
    *,
    backplane: Backplane | None = None,
    clock: Callable[[], float] | None = None,
    node: str = "node-a",
    **changes: Any,
) -> AsyncIterator[Node]:
    """A node with a memory backplane (or the given one), served on a free port."""
    key_dir = tmp_path / "dev-keys"
    config = test_config(key_dir, **changes)
    kwargs: dict[str, Any] = {}
    if clock is not None:
        kwargs["clock"] = clock
    server = create_server(config, node=node, backplane=backplane, **kwargs)
    async with server.running():
        web_server = TestServer(server.app)
        await web_server.start_server()
        try:
            async with aiohttp.ClientSession() as http:
                yield Node(
                    server=server,
                    url=str(web_server.make_url("/ws")),
                    http=http,
                    key=DevKey.load_or_create(key_dir),
                )
        finally:
            await server.close_connections()  # clients told before the listener goes
            await web_server.close()
