"""``signaling serve`` and ``signaling token`` as a user runs them, in subprocesses."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from signaling.client import SignalingClient

pytestmark = pytest.mark.slow


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "SIGNALING_DATA_DIR": str(tmp_path / "signaling")}


@pytest.fixture
def node(tmp_path: Path) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "signaling", "serve", "--dev", "--port", "0", "--log-json"],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"ready on (ws://\S+)", line)
    assert match, (line, process.stderr.read() if process.stderr else "")
    yield match.group(1)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    logs = process.stderr.read() if process.stderr else ""
    assert "eyJ" not in logs  # no token in the logs


def _token(tmp_path: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "signaling", "token", *args],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_serve_and_two_clients_complete_a_consultation(node: str, tmp_path: Path) -> None:
    cabin_token = _token(tmp_path, "--role", "cabin", "--sub", "dkc-01")
    doctor_token = _token(tmp_path, "--role", "doctor", "--sub", "dr-1", "--hospital", "bv-a")

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            doctor = SignalingClient(node, http=http)
            cabin = SignalingClient(node, http=http)
            welcome = await doctor.sign_in(doctor_token)
            assert welcome["hospitals"] == ["bv-a"]
            await doctor.request({"type": "presence", "status": "available"}, reply_type="presence")
            await cabin.sign_in(cabin_token)
            queued = await cabin.request(
                {"type": "consult-request", "triage": {"urgency": "routine", "hospital": "bv-a"}},
                reply_type="queued",
            )
            call = await doctor.request(
                {"type": "accept", "ticket": queued["ticket"]}, reply_type="call"
            )
            await cabin.wait_for("call")
            await cabin.send({"type": "offer", "call": call["call"], "sdp": "v=0\r\n"})
            assert (await doctor.wait_for("offer"))["from"] == "cabin"
            await cabin.send({"type": "hangup", "call": call["call"]})
            assert (await doctor.wait_for("call-ended"))["by"] == "cabin"
            await cabin.leave()
            await doctor.leave()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def _self_signed(directory: Path) -> tuple[Path, Path]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_serve_speaks_tls_directly(tmp_path: Path) -> None:
    import ssl

    cert, key = _self_signed(tmp_path)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "signaling",
            "serve",
            "--dev",
            "--port",
            "0",
            "--host",
            "localhost",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
        ],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        match = re.search(r"ready on (wss://\S+)", process.stdout.readline())
        assert match
        context = ssl.create_default_context(cafile=str(cert))
        token = _token(tmp_path, "--role", "cabin", "--sub", "dkc-01")

        async def scenario() -> None:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
                client = SignalingClient(match.group(1), http=http)
                welcome = await client.sign_in(token)
                assert welcome["role"] == "cabin"
                await client.leave()

        asyncio.run(asyncio.wait_for(scenario(), 20))
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
