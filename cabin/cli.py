"""``cabin``: the cabin service's command.

At this stage the cabin's main job is acquisition: ``cabin demo`` starts every simulated
sensor and prints live readings from all of them (the same as ``vitals demo``).  The visit,
resident UI and consultation join it as they are built.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from cabin import __version__
from vitals import cli as vitals_cli


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cabin`` command."""
    parser = argparse.ArgumentParser(prog="cabin", description="Telehealth cabin service.")
    parser.add_argument("--version", action="version", version=f"cabin {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "demo",
        help="simulate every sensor and show live readings (options: see `vitals demo -h`)",
        add_help=False,
    )
    args, rest = parser.parse_known_args(argv)
    assert args.command == "demo"
    return vitals_cli.main(["demo", *rest])
