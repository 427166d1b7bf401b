"""``cabin serve``: run the cabin service — the resident's screen and video consultations.

The cabin signs in to the signaling service with its own short-lived tokens: each connection
gets a fresh one (``jti`` is single-use), signed with the cabin's key. For development the key
is the signaling service's development key (``signaling token`` / ``signaling serve --dev``
share it through ``$SIGNALING_DATA_DIR``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from cabin.service import CabinService, ServiceOptions
from signaling.model import Role
from signaling.tokens import DevKey, mint

logger = logging.getLogger(__name__)

TOKEN_TTL_S = 300


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    signaling_url: str = "ws://127.0.0.1:8765/ws"
    camera: str = "test-pattern"
    microphone: str = "tone"
    cabin_id: str = "demo-cabin"
    hospitals: tuple[str, ...] = ()
    key_dir: Path = Path("var/signaling")
    audience: str = "telehealth-signaling"


def token_source(options: ServeOptions) -> Callable[[], Awaitable[str]]:
    """A fresh cabin token for every sign-in (single-use ``jti``), valid five minutes."""
    key = DevKey.load_or_create(options.key_dir)

    async def token() -> str:
        return mint(
            key,
            role=Role.CABIN,
            subject=options.cabin_id,
            hospitals=list(options.hospitals),
            audience=options.audience,
            ttl_s=TOKEN_TTL_S,
            now=datetime.now(UTC),
        )

    return token


async def serve(options: ServeOptions, *, ready: Callable[[str], None] | None = None) -> None:
    """Run until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)

    def hello() -> dict[str, Any]:
        return {"type": "hello", "v": 1, "resident": {"name": "Khách"}, "language": "vi"}

    async with aiohttp.ClientSession() as http:
        service = CabinService(
            options=ServiceOptions(
                signaling_url=options.signaling_url,
                camera=options.camera,
                microphone=options.microphone,
            ),
            http=http,
            token=token_source(options),
            hello=hello,
            backlog=list,
        )
        async with service.running():
            runner = web.AppRunner(service.app, handle_signals=False, shutdown_timeout=3.0)
            await runner.setup()
            try:
                site = web.TCPSite(runner, options.host, options.port)
                await site.start()
                port = runner.addresses[0][1] if runner.addresses else options.port
                url = f"http://{options.host}:{port}/ui/"
                logger.info("resident screen at %s", url)
                if ready is not None:
                    ready(url)
                await stop.wait()
            finally:
                await runner.cleanup()
