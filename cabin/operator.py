"""Operator commands: look into and act on the outbox, manage the cabin's signing key.

cabin outbox status
cabin outbox list [--hospital H] [--state pending|delivered|dead] [--limit N]
cabin outbox retry BUNDLE_ID
cabin outbox purge --delivered --older-than DAYS
cabin outbox export [--hospital H] [--state S]        (decrypted NDJSON on stdout: PHI!)
cabin keys generate [--algorithm ES384|RS384] [--force]
cabin keys jwks                                       (the public JWK Set to register)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO

from cabin.config import OUTBOX_KEYS_ENV, CabinConfig
from cabin.transports import open_transports
from fhir.config import HospitalConfig
from fhir.crypto import KeyRing, key_ring_from_env, load_key_file
from fhir.delivery import DeliveryWorker
from fhir.errors import FhirError
from fhir.keys import Algorithm, generate_key_file, public_jwks
from fhir.keys import load_key_file as load_signing_key
from fhir.outbox import BundleState, Outbox


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    outbox = commands.add_parser("outbox", help="inspect and act on the FHIR outbox")
    actions = outbox.add_subparsers(dest="action", required=True)
    actions.add_parser("status", help="bundles per hospital and state")
    listing = actions.add_parser("list", help="delivery records, oldest first")
    listing.add_argument("--hospital")
    listing.add_argument("--state", choices=[s.value for s in BundleState])
    listing.add_argument("--limit", type=int, default=50)
    retry = actions.add_parser("retry", help="send a bundle again (harmless if delivered)")
    retry.add_argument("bundle_id")
    purge = actions.add_parser("purge", help="delete delivered bundles")
    purge.add_argument("--delivered", action="store_true", required=True)
    purge.add_argument("--older-than", type=float, required=True, metavar="DAYS")
    export = actions.add_parser("export", help="decrypted bundles as NDJSON on stdout")
    export.add_argument("--hospital")
    export.add_argument("--state", choices=[s.value for s in BundleState])

    deliver = actions.add_parser("deliver", help="send every pending bundle, then stop")
    deliver.add_argument("--wait", type=float, default=60.0, metavar="SECONDS")
    deliver.add_argument("--fhir-url", help="deliver to this FHIR base URL (first hospital)")

    keys = commands.add_parser("keys", help="the cabin's SMART signing key")
    key_actions = keys.add_subparsers(dest="action", required=True)
    generate = key_actions.add_parser("generate", help="create the signing key")
    generate.add_argument("--algorithm", choices=["ES384", "RS384"], default=None)

    generate.add_argument("--force", action="store_true", help="replace an existing key")
    key_actions.add_parser("jwks", help="print the public JWK Set")


def open_outbox(config: CabinConfig) -> Outbox:
    """The outbox with its keys: from ``$CABIN_OUTBOX_KEYS`` if set, else the key file."""
    keys: KeyRing
    if config.environ.get(OUTBOX_KEYS_ENV):
        keys = key_ring_from_env(OUTBOX_KEYS_ENV, environ=config.environ)
    else:
        keys = load_key_file(config.outbox_key_file)
    return Outbox(config.outbox_path, keys=keys)


def run(args: argparse.Namespace, config: CabinConfig, out: TextIO | None = None) -> int:
    """Carry out an ``outbox`` or ``keys`` command; 0 on success, 1 with a message if not."""
    out = out or sys.stdout
    try:
        if args.command == "keys":
            return _keys(args, config, out)
        if getattr(args, "fhir_url", None):
            config = config.with_fhir_url(args.fhir_url)
        outbox = open_outbox(config)
        try:
            return _outbox(args, outbox, out, config.hospitals)
        finally:
            outbox.close()
    except (FhirError, ValueError) as exc:
        print(f"cabin {args.command}: {exc}", file=sys.stderr)
        return 1


def _outbox(
    args: argparse.Namespace, outbox: Outbox, out: TextIO, hospitals: Sequence[HospitalConfig]
) -> int:
    action = args.action
    if action == "status":
        rows = outbox.status()
        out.write(
            f"{'hospital':<20} {'pending':>8} {'delivered':>10} {'dead':>6}  oldest pending\n"
        )
        for row in rows:
            age = "-" if row.oldest_pending_age is None else _age(row.oldest_pending_age)
            out.write(
                f"{row.hospital:<20} {row.pending:>8} {row.delivered:>10} {row.dead:>6}  {age}\n"
            )
        if not rows:
            out.write("(empty)\n")
    elif action == "list":
        state = None if args.state is None else BundleState(args.state)
        for entry in outbox.entries(hospital=args.hospital, state=state, limit=args.limit):
            answer = "-" if entry.answer_status is None else str(entry.answer_status)
            error = f"  {entry.last_error}" if entry.last_error else ""
            out.write(
                f"{entry.id}  {entry.hospital:<12} {entry.state.value:<9} "
                f"{_when(entry.created_at)}  attempts {entry.attempts}  answer {answer}{error}\n"
            )
    elif action == "retry":
        entry = outbox.retry(args.bundle_id)
        out.write(f"{entry.id} is pending again for {entry.hospital}\n")
    elif action == "purge":
        count = outbox.purge_delivered(older_than_days=args.older_than)
        out.write(f"purged {count} delivered bundle(s)\n")
    elif action == "export":
        state = None if args.state is None else BundleState(args.state)
        outbox.export(out, hospital=args.hospital, state=state)
    elif action == "deliver":
        pending = asyncio.run(deliver_pending(outbox, hospitals, wait=args.wait))
        out.write(f"{pending} bundle(s) still pending\n" if pending else "nothing pending\n")
        return 1 if pending else 0
    return 0


async def deliver_pending(
    outbox: Outbox, hospitals: Sequence[HospitalConfig], *, wait: float
) -> int:
    """Run the delivery worker until nothing is pending or ``wait`` seconds passed; how many
    bundles are still pending (retries are paced by the worker's backoff)."""

    def pending() -> int:
        return sum(row.pending for row in outbox.status())

    await deliver_until(outbox, hospitals, done=lambda: pending() == 0, wait=wait)
    return await asyncio.to_thread(pending)


async def deliver_until(
    outbox: Outbox,
    hospitals: Sequence[HospitalConfig],
    *,
    done: Callable[[], bool],
    wait: float,
    poll: float = 0.1,
) -> None:
    """Run the delivery worker until ``done()`` (a blocking outbox query) or ``wait`` seconds."""
    async with open_transports(hospitals) as transports, asyncio.TaskGroup() as group:
        task = group.create_task(DeliveryWorker(outbox, transports).run())
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    # the worker signals nothing when a bundle settles: poll the outbox
                    while not await asyncio.to_thread(done):  # noqa: ASYNC110
                        await asyncio.sleep(poll)
        finally:
            task.cancel()


def _keys(args: argparse.Namespace, config: CabinConfig, out: TextIO) -> int:
    if args.action == "generate":
        algorithm: Algorithm = "RS384" if args.algorithm == "RS384" else config.signing_algorithm
        if args.algorithm == "ES384":
            algorithm = "ES384"
        key = generate_key_file(config.signing_key, algorithm=algorithm, overwrite=args.force)
        out.write(f"{algorithm} key {key.kid} written to {config.signing_key}\n")
    else:
        key = load_signing_key(config.signing_key)
        out.write(json.dumps(public_jwks(key), indent=2) + "\n")
    return 0


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
