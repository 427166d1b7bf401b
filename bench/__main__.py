"""``python -m bench``: every benchmark of the acquisition layer, as Markdown for BENCHMARKS.md."""

from __future__ import annotations

import argparse
import logging

from bench import latency, machine, throughput
from bench.framers import FRAMERS
from vitals.devices.catalog import DRIVERS


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--device", action="append", help="only these devices")
    parser.add_argument("--runs", type=int, default=5, help="runs per throughput median")
    parser.add_argument("--latency-seconds", type=float, default=8.0)
    args = parser.parse_args()
    # a corrupted stream makes drivers warn about every garbled reply; the tables say enough
    logging.basicConfig(level=logging.ERROR)
    names = args.device or sorted(DRIVERS)
    print(f"## Acquisition benchmarks\n\n{machine.describe()}\n")
    print("### Framer throughput, 1 % of bytes corrupted (median of", args.runs, "runs)\n")
    results = [throughput.measure(n, FRAMERS[n], runs=args.runs) for n in names]
    print(throughput.table(results), "\n", flush=True)
    print("### Latency, last byte of a frame on the pty to the reading object\n")
    timings = [latency.measure(n, seconds=args.latency_seconds) for n in names]
    print(latency.table(timings))


main()
