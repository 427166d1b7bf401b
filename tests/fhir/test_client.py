"""The FHIR client delivering bundles: every answer returned, no answer raised, tokens, TLS."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import json
import ssl
import time
from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fhir.client import (
    FhirClient,
    parse_retry_after,
)
from fhir.config import SmartSettings
from fhir.errors import TransportError
from fhir.keys import generate_key_file, public_jwks
from fhir.smart import TokenSource
from tests.fhir.http_peers import FHIR_JSON, TokenEndpoint, closed_port, fhir_json, fhir_server

BUNDLE = json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": []}).encode()
RESPONSE = json.dumps({"resourceType": "Bundle", "type": "transaction-response"}).encode()


async def _post(base: str, **options: Any) -> Any:
    async with FhirClient(base, **options) as client:
        return await client.post_transaction(BUNDLE)


# post_transaction: every HTTP answer comes back, nothing is raised for a status.


def test_transaction_is_posted_as_fhir_json_and_the_answer_returned() -> None:
    seen: dict[str, Any] = {}

    async def transaction(request: web.Request) -> web.Response:
        seen.update(headers=dict(request.headers), body=await request.read())
        return web.Response(body=RESPONSE, content_type=FHIR_JSON)

    async def scenario() -> Any:
        async with fhir_server({("POST", "/fhir"): transaction}) as base:
            return await _post(base)

    answer = asyncio.run(scenario())
    assert (answer.status, answer.body, answer.retry_after) == (200, RESPONSE, None)
    assert seen["body"] == BUNDLE
    assert seen["headers"]["Content-Type"] == FHIR_JSON
    assert seen["headers"]["Accept"] == FHIR_JSON
    assert "Authorization" not in seen["headers"]


@pytest.mark.parametrize("status", [400, 404, 409, 412, 422, 429, 500, 503])
def test_an_error_status_is_returned_not_raised(status: int) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}

    async def transaction(request: web.Request) -> web.Response:
        return fhir_json(outcome, status=status)

    async def scenario() -> Any:
        async with fhir_server({("POST", "/fhir"): transaction}) as base:
            return await _post(base)

    answer = asyncio.run(scenario())
    assert (answer.status, json.loads(answer.body)) == (status, outcome)


def test_retry_after_in_seconds_is_passed_on() -> None:
    async def busy(request: web.Request) -> web.Response:
        return web.Response(status=503, text="busy", headers={"Retry-After": "120"})

    async def scenario() -> Any:
        async with fhir_server({("POST", "/fhir"): busy}) as base:
            return await _post(base)

    answer = asyncio.run(scenario())
    assert (answer.status, answer.retry_after) == (503, 120.0)


def test_retry_after_as_an_http_date_becomes_seconds_from_now() -> None:
    now = 1_700_000_000.0

    async def busy(request: web.Request) -> web.Response:
        return web.Response(status=429, headers={"Retry-After": formatdate(now + 90, usegmt=True)})

    async def scenario() -> Any:
        async with fhir_server({("POST", "/fhir"): busy}) as base:
            return await _post(base, clock=lambda: now)

    assert asyncio.run(scenario()).retry_after == 90.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("0", 0.0),
        (" 30 ", 30.0),
        ("Tue, 14 Nov 2023 22:14:20 GMT", 60.0),
        ("Tue, 14 Nov 2023 22:14:20 -0000", 60.0),
        ("Tue, 14 Nov 2023 22:00:00 GMT", 0.0),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        ("Tue, 99 Nov 2023 22:14:20 GMT", None),
        ("9" * 5000, None),
        ("٣٠", None),
    ],
    ids=[
        "absent", "zero", "padded", "date", "date-minus-zero", "date-past", "negative",
        "fraction", "word", "empty", "bad-day", "huge", "arabic-digits",
    ],
)  # fmt: skip
def test_retry_after_parsing(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=1_700_000_000.0) == seconds


def test_redirects_are_returned_not_followed() -> None:
    async def moved(request: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": "http://127.0.0.1:9/elsewhere"})

    async def scenario() -> Any:
        async with fhir_server({("POST", "/fhir"): moved}) as base:
            return await _post(base)

    assert asyncio.run(scenario()).status == 307


# No usable answer: TransportError, within the timeout.


def test_refused_connection_is_a_transport_error() -> None:
    with pytest.raises(TransportError, match=r"POST http://127\.0\.0\.1"):
        asyncio.run(_post(f"http://127.0.0.1:{closed_port()}/fhir"))


def test_slow_server_is_a_transport_error_within_the_timeout() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return web.Response()

    async def scenario() -> None:
        async with fhir_server({("POST", "/fhir"): slow}) as base:
            await _post(base, timeout=0.3)

    started = time.monotonic()
    with pytest.raises(TransportError, match=r"no answer within 0\.3 s"):
        asyncio.run(scenario())
    assert time.monotonic() - started < 3.0


def test_connection_dropped_mid_body_is_a_transport_error() -> None:
    async def truncated(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "1000"})
        response.content_type = FHIR_JSON
        await response.prepare(request)
        await response.write(b'{"resourceType": "Bun')
        assert request.transport is not None
        request.transport.close()
        return response

    async def scenario() -> None:
        async with fhir_server({("POST", "/fhir"): truncated}) as base:
            await _post(base)

    with pytest.raises(TransportError):
        asyncio.run(scenario())


def test_oversize_declared_answer_is_a_transport_error() -> None:
    async def huge(request: web.Request) -> web.Response:
        return web.Response(body=b" " * 300_000, content_type=FHIR_JSON)

    async def scenario() -> None:
        async with fhir_server({("POST", "/fhir"): huge}) as base:
            await _post(base, max_response_bytes=100_000)

    with pytest.raises(TransportError, match="over 100000 bytes"):
        asyncio.run(scenario())


def test_endless_chunked_answer_is_cut_off_at_the_limit() -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_type = FHIR_JSON
        await response.prepare(request)
        for _ in range(2000):  # 128 MiB if nobody stopped reading
            await response.write(b" " * 65536)
        return response

    async def scenario() -> None:
        async with fhir_server({("POST", "/fhir"): endless}) as base:
            await _post(base, max_response_bytes=1_000_000)

    started = time.monotonic()
    with pytest.raises(TransportError, match="over 1000000 bytes"):
        asyncio.run(scenario())
    assert time.monotonic() - started < 5.0


def test_compression_bomb_is_counted_after_decompression() -> None:
    bomb = gzip.compress(b" " * 20_000_000)

    async def compressed(request: web.Request) -> web.Response:
        headers = {"Content-Encoding": "gzip", "Content-Type": FHIR_JSON}
        return web.Response(body=bomb, headers=headers)

    async def scenario() -> None:
        async with fhir_server({("POST", "/fhir"): compressed}) as base:
            await _post(base, max_response_bytes=1_000_000)

    assert len(bomb) < 1_000_000
    with pytest.raises(TransportError, match="over 1000000 bytes"):
        asyncio.run(scenario())


def test_cancellation_propagates_and_is_not_a_transport_error() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return web.Response()

    async def scenario() -> None:
        async with fhir_server({("POST", "/fhir"): slow}) as base:
            sending = asyncio.create_task(_post(base))
            await asyncio.sleep(0.1)
            sending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sending

    asyncio.run(scenario())


# TLS.


def _self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 with a self-signed certificate; and that certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fhir.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    return server, cert_path


@pytest.mark.parametrize("trust", ["default", "off", "private-ca"])
def test_tls_is_verified_unless_turned_off(trust: str, tmp_path: Path) -> None:
    server_tls, cert_path = _self_signed(tmp_path)

    async def transaction(request: web.Request) -> web.Response:
        return web.Response(body=RESPONSE, content_type=FHIR_JSON)

    async def scenario() -> int:
        options: dict[str, Any] = {}
        if trust == "off":
            options["verify_tls"] = False
        if trust == "private-ca":
            options["ssl_context"] = ssl.create_default_context(cafile=str(cert_path))
        async with fhir_server({("POST", "/fhir"): transaction}, tls=server_tls) as base:
            assert base.startswith("https://")
            return int((await _post(base, **options)).status)

    if trust == "default":
        with pytest.raises(TransportError, match="ertificate"):
            asyncio.run(scenario())
    else:
        assert asyncio.run(scenario()) == 200


# Bearer tokens and the 401 refresh.


def _token_source_parts(tmp_path: Path) -> tuple[TokenEndpoint, Callable[[str], SmartSettings]]:
    key = generate_key_file(tmp_path / "cabin.pem", algorithm="ES384")
    endpoint = TokenEndpoint(jwks=public_jwks(key), client_id="cabin-1")

    def settings(url: str) -> SmartSettings:
        return SmartSettings(
            token_url=url,
            client_id="cabin-1",
            key_path=tmp_path / "cabin.pem",
            key_id=key.kid,
            algorithm="ES384",
        )

    return endpoint, settings


@pytest.mark.parametrize(("accepted", "expected_status"), [("token-2", 200), ("never", 401)])
def test_a_401_refreshes_the_token_once_and_retries(
    accepted: str, expected_status: int, tmp_path: Path
) -> None:
    endpoint, settings = _token_source_parts(tmp_path)
    authorizations: list[str] = []

    async def transaction(request: web.Request) -> web.Response:
        authorizations.append(request.headers.get("Authorization", ""))
        if authorizations[-1] != f"Bearer {accepted}":
            return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"})
        return web.Response(body=RESPONSE, content_type=FHIR_JSON)

    async def scenario() -> int:
        async with (
            endpoint.running(),
            fhir_server({("POST", "/fhir"): transaction}) as base,
            aiohttp.ClientSession() as session,
        ):
            tokens = TokenSource(settings(endpoint.url), session=session)
            client = FhirClient(base, session=session, token_source=tokens)
            return (await client.post_transaction(BUNDLE)).status

    assert asyncio.run(scenario()) == expected_status
    assert authorizations == ["Bearer token-1", "Bearer token-2"]
    assert endpoint.issued == ["token-1", "token-2"]


def test_a_cached_token_is_reused_across_requests(tmp_path: Path) -> None:
    endpoint, settings = _token_source_parts(tmp_path)
    authorizations: list[str] = []

    async def transaction(request: web.Request) -> web.Response:
        authorizations.append(request.headers["Authorization"])
        return web.Response(body=RESPONSE, content_type=FHIR_JSON)

    async def scenario() -> None:
        async with (
            endpoint.running(),
            fhir_server({("POST", "/fhir"): transaction}) as base,
            aiohttp.ClientSession() as session,
        ):
            tokens = TokenSource(settings(endpoint.url), session=session)
            client = FhirClient(base, session=session, token_source=tokens)
            await asyncio.gather(*(client.post_transaction(BUNDLE) for _ in range(5)))

    asyncio.run(scenario())
    assert authorizations == ["Bearer token-1"] * 5
    assert endpoint.issued == ["token-1"]
