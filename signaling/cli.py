"""``signaling``: run a node (``serve``), mint development tokens (``token``), show ``jwks``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from signaling import __version__
from signaling.config import load_config
from signaling.errors import SignalingError
from signaling.logs import configure_logging
from signaling.model import Role
from signaling.service import create_server, serve, tls_context
from signaling.tokens import DevKey, mint

DATA_DIR_ENV = "SIGNALING_DATA_DIR"


def _data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV, "var/signaling"))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``signaling`` command."""
    parser = argparse.ArgumentParser(
        prog="signaling",
        description="Signaling service of the telehealth cabin (queue, presence, call relay).",
    )
    parser.add_argument("--version", action="version", version=f"signaling {__version__}")
    commands = parser.add_subparsers(dest="command")

    run = commands.add_parser("serve", help="run a signaling node")
    run.add_argument("--config", type=Path, help="TOML file with a [signaling] table")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8765)
    run.add_argument("--node", help="this node's name (default: host name)")
    run.add_argument("--redis", help="Redis URL: share state with other nodes")
    run.add_argument("--redis-prefix", help="key prefix in Redis (default sig:)")
    run.add_argument(
        "--dev",
        action="store_true",
        help=f"accept `signaling token` tokens (key in ${DATA_DIR_ENV})",
    )
    run.add_argument("--tls-cert", type=Path)
    run.add_argument("--tls-key", type=Path)
    run.add_argument("--grace", type=float, help="resume grace window, seconds (default 60)")
    run.add_argument("--log-json", action="store_true", help="structured JSON logs")
    run.add_argument("--log-level", default="INFO")

    token = commands.add_parser("token", help="mint a development token (local dev key)")
    token.add_argument("--role", required=True, choices=[r.value for r in Role])
    token.add_argument("--sub", required=True)
    token.add_argument("--hospital", action="append", default=[], help="repeat for several")
    token.add_argument("--name", help="display name claim")
    token.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")
    token.add_argument("--audience", default="telehealth-signaling")

    commands.add_parser("jwks", help="print the development key's public JWKS")

    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "token":
            key = DevKey.load_or_create(_data_dir())
            print(
                mint(
                    key,
                    role=Role(args.role),
                    subject=args.sub,
                    hospitals=args.hospital,
                    audience=args.audience,
                    ttl_s=args.ttl,
                    now=datetime.now(UTC),
                    name=args.name,
                )
            )
            return 0
        if args.command == "jwks":
            print(json.dumps(DevKey.load_or_create(_data_dir()).jwks(), indent=2))
            return 0
    except SignalingError as exc:
        print(f"signaling: {exc}", file=sys.stderr)
        return 2
    parser.print_help()
    return 0


def _serve(args: argparse.Namespace) -> int:
    configure_logging(args.log_level, json=args.log_json)
    config = load_config(args.config)
    changes: dict[str, object] = {}
    if args.redis:
        changes["redis_url"] = args.redis
    if args.redis_prefix:
        changes["redis_prefix"] = args.redis_prefix
    if args.dev:
        changes["dev_key_dir"] = _data_dir()
    if args.grace is not None:
        changes["grace_s"] = args.grace
    if changes:
        config = dataclasses.replace(config, **changes)  # type: ignore[arg-type]
    if (args.tls_cert is None) != (args.tls_key is None):
        print("signaling: give both --tls-cert and --tls-key", file=sys.stderr)
        return 2
    tls = None if args.tls_cert is None else tls_context(args.tls_cert, args.tls_key)
    server = create_server(config, node=args.node)

    def ready(port: int) -> None:
        scheme = "wss" if tls else "ws"
        print(f"signaling node {server.node} ready on {scheme}://{args.host}:{port}/ws", flush=True)

    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(loop_factory=_loop_factory()) as runner,
    ):
        runner.run(serve(server, host=args.host, port=args.port, tls=tls, ready=ready))
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (Linux, macOS): a node relays ~1.4x more per core with it."""
    try:
        import uvloop  # noqa: PLC0415 - optional
    except ImportError:
        return None
    return uvloop.new_event_loop
