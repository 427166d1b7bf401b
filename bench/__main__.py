"""``python -m bench``: every benchmark, as Markdown for BENCHMARKS.md.

python -m bench                       all sections
python -m bench --only acquisition    framers and pty latency (issue 2)
python -m bench --only dsp            pulse rate vs HeartPy/NeuroKit2, BP envelope,
                                      body vitals, screening time (issue 3)
python -m bench --only fhir           queuing a visit, drain rates (issue 4)
python -m bench --only signaling      relay vs PeerJS, idle memory, accept time (issue 5)
python -m bench --only media          glass-to-glass latency, cabin CPU, accept to first
                                      frame, in Chromium (issue 6)
"""

from __future__ import annotations

import argparse
import logging

from bench import (
    body_vitals,
    bp_envelope,
    fhir_delivery,
    latency,
    machine,
    media,
    ppg,
    screening,
    signaling_relay,
    throughput,
)
from bench.framers import FRAMERS
from vitals.devices.catalog import DRIVERS

SECTIONS = ("acquisition", "dsp", "fhir", "signaling", "media")


def acquisition(runs: int, latency_seconds: float, devices: list[str]) -> None:
    print(f"## Acquisition\n\n{machine.describe()}\n")
    print(f"### Framer throughput, 1 % of bytes corrupted (median of {runs} runs)\n")
    results = [throughput.measure(n, FRAMERS[n], runs=runs) for n in devices]
    print(throughput.table(results), "\n", flush=True)
    print("### Latency, last byte of a frame on the pty to the reading object\n")
    timings = [latency.measure(n, seconds=latency_seconds) for n in devices]
    print(latency.table(timings), "\n", flush=True)


def dsp() -> None:
    print("## Measurement (DSP and procedures)\n")
    print(ppg.main(), "\n", flush=True)
    print(bp_envelope.main(), "\n", flush=True)
    print(body_vitals.main(50), "\n", flush=True)
    print(screening.main(), "\n", flush=True)


def fhir() -> None:
    print("## FHIR delivery\n")
    print(fhir_delivery.main(), "\n", flush=True)


def signaling() -> None:
    print("## Signaling\n")
    print(signaling_relay.main(), "\n", flush=True)


def media_section() -> None:
    print("## Media (video consultation)\n")
    print(media.main(), "\n", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="only these sections")
    parser.add_argument("--device", action="append", help="acquisition: only these devices")
    parser.add_argument("--runs", type=int, default=5, help="runs per throughput median")
    parser.add_argument("--latency-seconds", type=float, default=8.0)
    args = parser.parse_args()
    # corrupted streams make drivers warn about every garbled reply; the tables say enough
    logging.basicConfig(level=logging.ERROR)
    chosen = args.only or list(SECTIONS)
    if "acquisition" in chosen:
        acquisition(args.runs, args.latency_seconds, args.device or sorted(DRIVERS))
    if "dsp" in chosen:
        dsp()
    if "fhir" in chosen:
        fhir()
    if "signaling" in chosen:
        signaling()
    if "media" in chosen:
        media_section()


main()
