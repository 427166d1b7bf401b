"""``signaling``: the signaling service's command (its subcommands arrive with the service)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from signaling import __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``signaling`` command."""
    parser = argparse.ArgumentParser(
        prog="signaling",
        description="Signaling service of the telehealth cabin (queue, presence, call relay).",
    )
    parser.add_argument("--version", action="version", version=f"signaling {__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0
