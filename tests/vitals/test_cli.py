"""The ``vitals`` command, run as a user runs it: separate processes talking over real ptys."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from vitals.sim.catalog import SIMULATORS

VITALS = [sys.executable, "-m", "vitals"]

# What each device must report within 5 s of `vitals read` starting, against the default
# truth (HR 72, SpO2 97, BP 128/82, 63.4 kg, 158 cm, 36.8 °C): kind, value, tolerance.
OXIMETER = (("spo2", Decimal(97), Decimal(3)), ("pulse-rate", Decimal(72), Decimal(8)))
EXPECTED: dict[str, tuple[tuple[str, Decimal, Decimal], ...]] = {
    "berrymed-bci": OXIMETER,
    "cms50d-legacy": OXIMETER,
    "cms50ew": OXIMETER,
    "masimo-ascii1": OXIMETER,
    "nonin-oem3": OXIMETER,
    "and-scale": (("body-weight", Decimal("63.4"), Decimal("0.1")),),
    "maxbotix": (("body-height", Decimal(158), Decimal("1.5")),),
    "gy-mcu90615": (("object-temperature", Decimal("36.8"), Decimal("0.3")),),
    "suntech-advantage": (
        ("systolic-bp", Decimal(128), Decimal(5)),
        ("diastolic-bp", Decimal(82), Decimal(5)),
    ),
}


def test_every_simulated_device_has_an_expectation() -> None:
    assert set(EXPECTED) == set(SIMULATORS)


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[Path]:
    """`vitals sim` for every device at real timing, and the BP module in fast mode."""
    real, fast = tmp_path / "real", tmp_path / "fast"
    procs = [
        subprocess.Popen([*VITALS, "sim", "--dir", str(real)], stdout=subprocess.PIPE, text=True),
        subprocess.Popen(
            [*VITALS, "sim", "--fast", "--device", "suntech-advantage", "--dir", str(fast)],
            stdout=subprocess.PIPE,
            text=True,
        ),
    ]
    try:
        for proc, count in zip(procs, (len(SIMULATORS), 1), strict=True):
            assert proc.stdout is not None
            listed = [proc.stdout.readline() for _ in range(count)]
            assert all(" -> /dev/pts/" in line for line in listed), listed
        yield tmp_path
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.wait(timeout=10) == 0, "vitals sim must exit cleanly on SIGTERM"


def _within(readings: list[dict[str, object]], kind: str, value: Decimal, tol: Decimal) -> bool:
    return any(
        r["kind"] == kind
        and r["status"] == "valid"
        and abs(Decimal(str(r["value"])) - value) <= tol
        for r in readings
    )


@pytest.mark.slow
def test_sim_and_read_show_plausible_readings_from_every_device(simulators: Path) -> None:
    """Acceptance: each device within 5 s (the BP module within one fast cycle)."""
    reads = {}
    for name in SIMULATORS:
        fast = name == "suntech-advantage"
        port = simulators / ("fast" if fast else "real") / name
        extra = ["--bp-every", "60", "--seconds", "12"] if fast else ["--seconds", "5"]
        reads[name] = subprocess.Popen(
            [*VITALS, "read", "--device", name, "--port", str(port), "--json", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    failures = []
    for name, proc in reads.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        readings = [json.loads(line) for line in out.splitlines()]
        assert all(r["device"] == name for r in readings)
        for kind, value, tol in EXPECTED[name]:
            if not _within(readings, kind, value, tol):
                seen = [(r["kind"], r["value"], r["status"]) for r in readings if r["kind"] == kind]
                failures.append(f"{name}: no valid {kind} of {value}±{tol}; saw {seen[-5:]}")
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_read_prints_a_live_line_and_probe_names_the_device(simulators: Path) -> None:
    port = str(simulators / "real" / "cms50d-legacy")
    done = subprocess.run(
        [*VITALS, "read", "--device", "cms50d-legacy", "--port", port, "--seconds", "4.5"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("cms50d-legacy  SpO2 9"), last
    assert "cms50d-legacy: measuring" in done.stderr
    probed = subprocess.run(
        [*VITALS, "probe", "--port", port], capture_output=True, text=True, timeout=30, check=True
    )
    assert probed.stdout.startswith("cms50d-legacy (Contec CMS50D+"), probed.stdout


def test_probe_of_a_missing_port_fails_with_a_reason(tmp_path: Path) -> None:
    done = subprocess.run(
        [*VITALS, "probe", "--port", str(tmp_path / "ttyUSB7")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert "No such file or directory" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["read", "--device", "no-such-device", "--port", "x"], "invalid choice"),
        (["sim", "--hr", "500"], "implausible truth: hr=500.0"),
        (["sim", "--motion", "abc"], "period 'abc' is not START-END"),
        (["sim", "--weight", "heavy"], "not a number: 'heavy'"),
    ],
)
def test_bad_arguments_get_a_clear_error(args: list[str], message: str) -> None:
    done = subprocess.run([*VITALS, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert message in done.stderr


@pytest.mark.slow
def test_demo_shows_every_device(tmp_path: Path) -> None:
    start = time.monotonic()
    done = subprocess.run(
        [*VITALS, "demo", "--seconds", "4", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert time.monotonic() - start < 30
    shown = {line.split()[0] for line in done.stdout.splitlines()[1:] if line.strip()}
    assert shown == set(SIMULATORS)
    assert "SpO2 9" in done.stdout
    assert "weight 63.4" in done.stdout


@pytest.mark.parametrize("command", ["cabin", "signaling", "vitals"])
def test_each_command_runs_as_a_script_and_as_a_module(command: str) -> None:
    script = Path(sys.executable).parent / command
    for argv in ([str(script)], [sys.executable, "-m", command]):
        done = subprocess.run([*argv, "--help"], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        assert f"usage: {command}" in done.stdout
