"""Wiring: configuration → backplane, token verifier and server; and running a node.

The CLI (``signaling serve``) and the tests build nodes through :func:`create_server`, so
both run the same assembly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import ssl
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from aiohttp import web
from jwt import PyJWKSet

from signaling.auth import IssuerPolicy, JwksUrlSource, KeySource, TokenVerifier, load_jwks_file
from signaling.backplane import Backplane
from signaling.backplane.memory import MemoryBackplane
from signaling.config import SignalingConfig
from signaling.errors import ConfigError
from signaling.model import Role
from signaling.server import SignalingServer
from signaling.tokens import DEV_ISSUER, DevKey

logger = logging.getLogger(__name__)

CONSOLE_DIR = Path(__file__).with_name("console")


class BackplaneReplayGuard:
    """Token ids claimed in the backplane, so a token replayed at another node is refused too."""

    def __init__(self, backplane: Backplane, *, clock: Callable[[], float]) -> None:
        self._backplane = backplane
        self._clock = clock

    async def claim(self, token_id: str, *, until: datetime) -> bool:
        return await self._backplane.claim_token(
            token_id, until=until.timestamp(), now=self._clock()
        )


def build_backplane(config: SignalingConfig, *, node: str) -> Backplane:
    if config.redis_url is None:
        return MemoryBackplane(node=node)
    from signaling.backplane.redis import RedisBackplane  # noqa: PLC0415 - only when used

    return RedisBackplane(
        url=config.redis_url, node=node, prefix=config.redis_prefix, node_ttl_s=config.node_ttl_s
    )


def build_verifier(
    config: SignalingConfig, *, backplane: Backplane, clock: Callable[[], float]
) -> TokenVerifier:
    policies: list[IssuerPolicy] = []
    for issuer in config.issuers:
        keys: KeySource | PyJWKSet
        if issuer.jwks_file is not None:
            keys = load_jwks_file(issuer.jwks_file)
        else:
            assert issuer.jwks_url is not None
            keys = JwksUrlSource(issuer.jwks_url)
        policies.append(
            IssuerPolicy(
                issuer=issuer.issuer,
                keys=keys,
                roles=issuer.roles,
                hospitals=issuer.hospitals,
            )
        )
    if config.dev_key_dir is not None:
        dev = DevKey.load_or_create(config.dev_key_dir)
        policies.append(IssuerPolicy(issuer=DEV_ISSUER, keys=dev.jwk_set(), roles=frozenset(Role)))
        logger.warning(
            "development tokens are accepted (dev_key_dir set); never do this in production"
        )
    if not policies:
        raise ConfigError("no token issuer configured: add [[signaling.issuers]] or dev_key_dir")
    return TokenVerifier(
        issuers=policies,
        audience=config.audience,
        replay_guard=BackplaneReplayGuard(backplane, clock=clock),
    )


def create_server(
    config: SignalingConfig,
    *,
    node: str | None = None,
    backplane: Backplane | None = None,
    clock: Callable[[], float] = time.time,
) -> SignalingServer:
    """A node assembled from configuration (the backplane may be injected by tests)."""
    # unique per process: a restarted node must not inherit its predecessor's sessions
    name = node or config.node or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"
    plane = backplane if backplane is not None else build_backplane(config, node=name)
    return SignalingServer(
        config=config,
        backplane=plane,
        verifier=build_verifier(config, backplane=plane, clock=clock),
        clock=clock,
        console_dir=CONSOLE_DIR if CONSOLE_DIR.is_dir() else None,
    )


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load TLS certificate {cert} / key {key}: {exc}") from None
    return context


async def serve(
    server: SignalingServer,
    *,
    host: str,
    port: int,
    tls: ssl.SSLContext | None = None,
    ready: Callable[[int], None] | None = None,
) -> None:
    """Run a node until SIGINT/SIGTERM (or cancellation), then stop cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with server.running():
        runner = web.AppRunner(server.app, handle_signals=False, shutdown_timeout=3.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, ssl_context=tls)
            await site.start()
            bound = runner.addresses[0][1] if runner.addresses else port
            logger.info("signaling node %s listening on %s:%s", server.node, host, bound)
            if ready is not None:
                ready(int(bound))
            await stop.wait()
            await server.close_connections()  # clients told to resume elsewhere first
        finally:
            await runner.cleanup()
