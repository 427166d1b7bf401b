"""``cabin``: the cabin service's command.

    cabin demo [--live] [--real-time]     one simulated visit, delivered to the local sink
    cabin visit --simulate [...]          one headless visit end to end, delivered as FHIR
    cabin serve [--camera 0] [...]        the resident's screen and video consultations
    cabin outbox status|list|retry|purge|export
    cabin keys generate|jwks

Configuration: ``--config FILE`` or ``$CABIN_CONFIG`` (TOML); embedded defaults otherwise
(see :mod:`cabin.config`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from cabin import __version__, operator
from cabin.config import CabinConfig, ConfigError, load
from cabin.headless import TEST_RESIDENT, VisitOptions, load_identity, simulate_visit
from vitals import cli as vitals_cli


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cabin`` command."""
    parser = argparse.ArgumentParser(prog="cabin", description="Telehealth cabin service.")
    parser.add_argument("--version", action="version", version=f"cabin {__version__}")
    parser.add_argument("--config", type=Path, default=None, help="TOML configuration file")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="one simulated visit on embedded defaults, delivered to the local sink"
    )
    demo.add_argument("--live", action="store_true", help="then show every sensor live")
    demo.add_argument("--real-time", action="store_true", help="real device timing")
    demo.add_argument("--seed", type=int, default=0)
    visit = commands.add_parser("visit", help="one headless visit end to end")
    visit.add_argument(
        "--simulate",
        action="store_true",
        required=True,
        help="use simulated devices (the only mode without a kiosk yet)",
    )
    visit.add_argument("--fhir-url", help="deliver to this FHIR base URL instead")
    visit.add_argument("--seed", type=int, default=0)
    visit.add_argument("--identity", type=Path, help="JSON file with the resident's identity")
    visit.add_argument(
        "--oximeter",
        default="cms50d-legacy",
        choices=["cms50d-legacy", "cms50ew", "berrymed-bci", "nonin-oem3"],
    )
    visit.add_argument("--bp-protocol", choices=["screening", "aha2019"], default="screening")
    visit.add_argument("--real-time", action="store_true", help="real device timing")
    serve = commands.add_parser("serve", help="the resident's screen and video consultations")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--signaling-url", default="ws://127.0.0.1:8765/ws")
    serve.add_argument("--camera", default="test-pattern", help="0, a video file, test-pattern")
    serve.add_argument("--microphone", default="tone", help="alsa:default, pulse:default, tone")
    serve.add_argument("--hospital", action="append", default=[], help="hospitals it may call")
    serve.add_argument(
        "--key-dir", type=Path, default=None, help="signing key (default $SIGNALING_DATA_DIR)"
    )
    station = commands.add_parser(
        "station", help="the whole station on one machine: kiosk, cabin, signaling, console"
    )
    station.add_argument("--fast", action="store_true", help="simulated devices at test speed")
    station.add_argument("--fhir-url", help="deliver to this FHIR base URL instead of the sink")
    station.add_argument("--host", default="127.0.0.1")
    voice = commands.add_parser("voice", help="voice prompts: generate | list (espeak-ng)")
    voice.add_argument("voice_args", nargs=argparse.REMAINDER)
    operator.add_commands(commands)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"cabin: {exc}", file=sys.stderr)
        return 2
    if args.command == "visit":
        return _visit(args, config)
    if args.command == "demo":
        return _demo(args, config)
    if args.command == "serve":
        return _serve(args, config)
    if args.command == "station":
        return _station(args, config)
    if args.command == "voice":
        from cabin import voice as voice_prompts  # noqa: PLC0415

        return voice_prompts.main(args.voice_args)
    return operator.run(args, config)


def _station(args: argparse.Namespace, config: CabinConfig) -> int:
    from cabin.station import StationOptions  # noqa: PLC0415 - the whole stack only here
    from cabin.station import run as run_station  # noqa: PLC0415

    logging.getLogger("cabin").setLevel(logging.INFO)
    if args.fhir_url:
        config = config.with_fhir_url(args.fhir_url)
    hospitals = config.hospitals
    options = StationOptions(host=args.host, fast=args.fast, voice_dir=config.data_dir / "voice")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_station(config, options, hospitals=hospitals))
    return 0


def _serve(args: argparse.Namespace, config: CabinConfig) -> int:
    import os  # noqa: PLC0415

    from cabin.serve import ServeOptions, serve  # noqa: PLC0415 - media stack only when serving

    logging.getLogger("cabin").setLevel(logging.INFO)
    key_dir = args.key_dir or Path(os.environ.get("SIGNALING_DATA_DIR", "var/signaling"))
    options = ServeOptions(
        host=args.host,
        port=args.port,
        signaling_url=args.signaling_url,
        camera=args.camera,
        microphone=args.microphone,
        cabin_id=config.cabin.id,
        hospitals=tuple(args.hospital),
        key_dir=key_dir,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(options, ready=lambda url: print(f"resident screen: {url}", flush=True)))
    return 0


def _demo(args: argparse.Namespace, config: CabinConfig) -> int:
    options = VisitOptions(seed=args.seed, real_time=args.real_time)
    try:
        status = asyncio.run(simulate_visit(config, options, sys.stdout))
    except KeyboardInterrupt:
        return 130
    print(f"The hospital's copy (NDJSON, one bundle per line): {config.hospital().base_url}")
    if args.live:
        print("Every simulated sensor, live (Ctrl-C to stop):")
        return vitals_cli.main(["demo"])
    return status


def _visit(args: argparse.Namespace, config: CabinConfig) -> int:
    if args.fhir_url:
        config = config.with_fhir_url(args.fhir_url)
    try:
        identity = TEST_RESIDENT if args.identity is None else load_identity(args.identity)
    except (OSError, ValueError, KeyError) as exc:
        print(f"cabin visit: cannot use {args.identity}: {exc}", file=sys.stderr)
        return 2
    options = VisitOptions(
        seed=args.seed,
        real_time=args.real_time,
        oximeter=args.oximeter,
        bp_protocol=args.bp_protocol,
        identity=identity,
    )
    try:
        return asyncio.run(simulate_visit(config, options, sys.stdout))
    except KeyboardInterrupt:
        return 130
