"""``cabin``: the cabin service's command.

    cabin demo [vitals demo options]      every simulated sensor, live (see ``vitals demo -h``)
    cabin visit --simulate [...]          one headless visit end to end, delivered as FHIR
    cabin outbox status|list|retry|purge|export
    cabin keys generate|jwks

Configuration: ``--config FILE`` or ``$CABIN_CONFIG`` (TOML); embedded defaults otherwise
(see :mod:`cabin.config`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from cabin import __version__, operator
from cabin.config import ConfigError, load
from vitals import cli as vitals_cli


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cabin`` command."""
    parser = argparse.ArgumentParser(prog="cabin", description="Telehealth cabin service.")
    parser.add_argument("--version", action="version", version=f"cabin {__version__}")
    parser.add_argument("--config", type=Path, default=None, help="TOML configuration file")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "demo",
        help="simulate every sensor and show live readings (options: see `vitals demo -h`)",
        add_help=False,
    )
    operator.add_commands(commands)
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        return vitals_cli.main(["demo", *rest])
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"cabin: {exc}", file=sys.stderr)
        return 2
    return operator.run(args, config)
