"""``vitals``: simulate devices, read them, identify them, or watch them all (``demo``).

vitals sim [--device NAME ...] [--dir DIR] [--hr 72 --spo2 97 ...] [--fast]
vitals read --device NAME --port PORT [--seconds N] [--json]
vitals probe --port PORT
vitals demo [--seconds N] [--fast]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import tempfile
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TextIO

from vitals.clock import Clock
from vitals.devices.catalog import DRIVERS, DriverOptions, create_driver
from vitals.errors import ProbeError
from vitals.live import LiveLine
from vitals.model import Reading
from vitals.probe import probe
from vitals.session import DeviceSession, SessionStatus
from vitals.sim.catalog import SIMULATORS
from vitals.sim.runtime import serve
from vitals.sim.simulator import Simulator
from vitals.sim.truth import Period, Truth

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vitals`` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in ("sim", "demo"):
        try:
            args.truth = _truth(args)
        except ValueError as exc:
            parser.error(str(exc))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    command = {"sim": _sim, "read": _read, "probe": _probe, "demo": _demo}[args.command]
    try:
        return asyncio.run(_until_signalled(command(args)))
    except KeyboardInterrupt:
        return 130


async def _until_signalled(job: object) -> int:
    """Run ``job``; SIGTERM cancels it like Ctrl-C does."""
    assert asyncio.iscoroutine(job)
    task: asyncio.Task[int] = asyncio.ensure_future(job)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        if task.cancelled():
            return 0
        raise


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vitals", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", required=True)
    names = sorted(DRIVERS)

    sim = commands.add_parser("sim", help="run simulated devices on pseudo-terminals")
    sim.add_argument("--device", action="append", choices=[*names, "all"], default=None)
    sim.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "vitals-sim")
    sim.add_argument("--seconds", type=float, default=None, help="stop after N seconds")
    _truth_arguments(sim)

    read = commands.add_parser("read", help="read one device and print its readings live")
    read.add_argument("--device", required=True, choices=names)
    read.add_argument("--port", required=True, help="pyserial URL or device path")
    read.add_argument("--seconds", type=float, default=None, help="stop after N seconds")
    read.add_argument("--json", action="store_true", help="one JSON object per reading")
    _driver_arguments(read)

    probe_cmd = commands.add_parser("probe", help="identify the device on a port")
    probe_cmd.add_argument("--port", required=True)
    probe_cmd.add_argument("--budget", type=float, default=3.0, help="seconds to try (3)")

    demo = commands.add_parser("demo", help="simulate every device and read them all")
    demo.add_argument("--seconds", type=float, default=None, help="stop after N seconds")
    demo.add_argument("--dir", type=Path, default=None, help="where to put the pty links")
    _truth_arguments(demo)
    _driver_arguments(demo)
    return parser


def _truth_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("physiological truth")
    defaults = Truth()
    group.add_argument("--hr", type=float, default=defaults.hr, help="heart rate, bpm")
    group.add_argument("--spo2", type=float, default=defaults.spo2, help="SpO2, %%")
    group.add_argument("--pi", type=float, default=defaults.perfusion_index, help="PI, %%")
    group.add_argument("--sys", type=int, default=defaults.sys, help="systolic BP, mmHg")
    group.add_argument("--dia", type=int, default=defaults.dia, help="diastolic BP, mmHg")
    group.add_argument("--weight", type=_decimal, default=defaults.weight, help="kg")
    group.add_argument("--height", type=float, default=defaults.height, help="cm")
    group.add_argument("--temp", type=float, default=defaults.temp, help="°C")
    group.add_argument("--ambient", type=float, default=defaults.ambient, help="°C")
    group.add_argument("--noise", type=float, default=defaults.noise, help="0..1")
    group.add_argument("--motion", type=_periods, default=(), help="e.g. 10-15,30-32")
    group.add_argument("--finger-out", type=_periods, default=(), help="e.g. 5-8")
    group.add_argument("--scale-settle", type=float, default=defaults.scale_settle, help="s")
    group.add_argument("--unstable-scale", action="store_true")
    group.add_argument("--cuff-error", type=int, default=None, help="BP module error code")
    group.add_argument("--mount-height", type=int, default=defaults.mount_height_mm, help="mm")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--fast", action="store_true", help="shorten BP cycles and settling")


def _driver_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("installation")
    group.add_argument(
        "--sensor-height", type=int, default=2200, help="height sensor above platform, mm"
    )
    group.add_argument(
        "--bp-every", type=float, default=None, help="repeat a BP cycle every N seconds"
    )


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _periods(text: str) -> tuple[Period, ...]:
    try:
        return Period.parse_list(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _truth(args: argparse.Namespace) -> Truth:
    return Truth(
        hr=args.hr,
        spo2=args.spo2,
        perfusion_index=args.pi,
        sys=args.sys,
        dia=args.dia,
        weight=args.weight,
        height=args.height,
        temp=args.temp,
        ambient=args.ambient,
        noise=args.noise,
        motion=args.motion,
        finger_out=args.finger_out,
        scale_settle=args.scale_settle,
        unstable_scale=args.unstable_scale,
        cuff_error=args.cuff_error,
        mount_height_mm=args.mount_height,
    )


def _simulators(args: argparse.Namespace, names: Sequence[str]) -> list[Simulator]:
    return [
        SIMULATORS[name](args.truth, seed=args.seed + index, fast=args.fast)
        for index, name in enumerate(names)
    ]


async def _sleep_or_forever(seconds: float | None) -> None:
    if seconds is None:
        await asyncio.Event().wait()
    else:
        await asyncio.sleep(seconds)


async def _sim(args: argparse.Namespace) -> int:
    chosen = args.device or ["all"]
    names = sorted(SIMULATORS) if "all" in chosen else list(dict.fromkeys(chosen))
    async with serve(_simulators(args, names), args.dir) as devices:
        for name, device in devices.items():
            print(f"{name:<20} {device.path} -> {device.tty_name}", flush=True)
        await _sleep_or_forever(args.seconds)
    return 0


async def _read(args: argparse.Namespace) -> int:
    options = DriverOptions(mount_height_mm=args.sensor_height, bp_repeat_every=args.bp_every)
    driver = create_driver(args.device, port=args.port, options=options)
    line = LiveLine()
    out = sys.stdout

    def on_reading(reading: Reading) -> None:
        if args.json:
            out.write(json.dumps(reading.as_dict(), ensure_ascii=False) + "\n")
        else:
            line.add(reading)

    def on_status(status: SessionStatus) -> None:
        detail = f" ({status.detail})" if status.detail else ""
        print(f"{status.device}: {status.label}{detail}", file=sys.stderr, flush=True)

    session = DeviceSession(
        driver, args.port, clock=Clock(), on_reading=on_reading, on_status=on_status
    )
    async with asyncio.TaskGroup() as group:
        task = group.create_task(session.run())
        try:
            if args.json:
                await _sleep_or_forever(args.seconds)
            else:
                await _print_lines(out, {args.device: line}, args.seconds)
        finally:
            task.cancel()
    out.flush()
    return 0


async def _print_lines(out: TextIO, lines: dict[str, LiveLine], seconds: float | None) -> None:
    """Print one live line per device every second (redrawn in place on a terminal)."""
    loop = asyncio.get_running_loop()
    end = None if seconds is None else loop.time() + seconds
    redraw = out.isatty()
    width = max(len(name) for name in lines)
    first = True
    while end is None or loop.time() < end:
        await asyncio.sleep(1.0 if end is None else max(0.0, min(1.0, end - loop.time())))
        if redraw and not first:
            out.write(f"\x1b[{len(lines)}F")
        for name, line in lines.items():
            text = f"{name:<{width}}  {line.render()}"
            out.write(("\x1b[2K" + text if redraw else text) + "\n")
        if not redraw and len(lines) > 1:
            out.write("\n")
        out.flush()
        first = False


async def _probe(args: argparse.Namespace) -> int:
    try:
        result = await probe(args.port, list(DRIVERS.values()), clock=Clock(), budget=args.budget)
    except ProbeError as exc:
        print(f"vitals probe: {exc}", file=sys.stderr)
        return 1
    print(
        f"{result.device} ({result.model}) at {result.link}: {result.frames} frames, "
        f"coverage {result.coverage:.2f}, {result.seconds:.2f} s"
    )
    return 0


async def _demo(args: argparse.Namespace) -> int:
    if args.dir is not None:
        return await _demo_in(args, args.dir)
    with tempfile.TemporaryDirectory(prefix="vitals-demo-") as directory:
        return await _demo_in(args, Path(directory))


async def _demo_in(args: argparse.Namespace, directory: Path) -> int:
    names = sorted(SIMULATORS)
    options = DriverOptions(
        mount_height_mm=args.sensor_height,
        bp_repeat_every=args.bp_every if args.bp_every is not None else 20.0,
    )
    clock = Clock()
    lines = {name: LiveLine() for name in names}
    statuses: dict[str, str] = {}

    def on_status(status: SessionStatus) -> None:
        statuses[status.device] = status.label

    print(f"Simulated devices on pseudo-terminals in {directory}; Ctrl-C to stop.", flush=True)
    async with serve(_simulators(args, names), directory) as devices, asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(
                DeviceSession(
                    create_driver(name, port=str(device.path), options=options),
                    str(device.path),
                    clock=clock,
                    on_reading=lines[name].add,
                    on_status=on_status,
                ).run()
            )
            for name, device in devices.items()
        ]
        try:
            await _print_lines(sys.stdout, lines, args.seconds)
        finally:
            for task in tasks:
                task.cancel()
    return 0
