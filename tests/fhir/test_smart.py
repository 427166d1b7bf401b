"""SMART Backend Services: assertions a real verifier accepts, cached tokens, clear refusals."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import jwt
import pytest
from aiohttp import web

from fhir.config import SmartSettings
from fhir.errors import AuthError, SigningKeyError, TokenRequestError, TransportError
from fhir.keys import SigningKey, generate_key_file, public_jwks
from fhir.smart import TokenSource, build_client_assertion
from tests.fhir.http_peers import TokenEndpoint, closed_port, serve

CLIENT_ID = "cabin-dao-kim-cuong-01"
SCOPES = ("system/Patient.write", "system/Observation.write")
JSON = "application/json"
KeyFile = tuple[Path, SigningKey]
"""A private key file and the key it holds."""


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> KeyFile:
    path = tmp_path_factory.mktemp("rsa") / "cabin.pem"
    return path, generate_key_file(path, algorithm="RS384")


@pytest.fixture
def ec_key(tmp_path: Path) -> KeyFile:
    path = tmp_path / "cabin.pem"
    return path, generate_key_file(path, algorithm="ES384")


def _settings(url: str, key: KeyFile) -> SmartSettings:
    path, signing = key
    return SmartSettings(
        token_url=url,
        client_id=CLIENT_ID,
        key_path=path,
        key_id=signing.kid,
        algorithm=signing.algorithm,
        scopes=SCOPES,
    )


def _endpoint(key: KeyFile, **options: object) -> TokenEndpoint:
    return TokenEndpoint(jwks=public_jwks(key[1]), client_id=CLIENT_ID, **options)  # type: ignore[arg-type]


@asynccontextmanager
async def _source(
    endpoint: TokenEndpoint, key: KeyFile, **options: object
) -> AsyncIterator[TokenSource]:
    async with endpoint.running(), aiohttp.ClientSession() as session:
        yield TokenSource(_settings(endpoint.url, key), session=session, **options)  # type: ignore[arg-type]


# The assertion itself (pure).


def test_assertion_carries_the_backend_services_header_and_claims(ec_key: KeyFile) -> None:
    key = ec_key[1]
    url = "https://auth.hospital.example/token"
    assertion = build_client_assertion(
        key, client_id=CLIENT_ID, token_url=url, kid=key.kid, now=1_700_000_000.7
    )
    header = jwt.get_unverified_header(assertion)
    assert header == {"alg": "ES384", "typ": "JWT", "kid": key.kid}
    claims = jwt.decode(
        assertion,
        key.private_key.public_key(),
        algorithms=["ES384"],
        audience=url,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["aud"] == url
    assert claims["iat"] == 1_700_000_000
    assert 0 < claims["exp"] - 1_700_000_000.7 <= 300
    assert len(claims["jti"]) >= 32


def test_every_assertion_has_a_fresh_jti(ec_key: KeyFile) -> None:
    key = ec_key[1]
    jtis = {
        jwt.decode(
            build_client_assertion(key, client_id="c", token_url="u", kid="k", now=time.time()),
            options={"verify_signature": False},
        )["jti"]
        for _ in range(50)
    }
    assert len(jtis) == 50


def test_jku_goes_in_the_header_when_configured(ec_key: KeyFile) -> None:
    jku = "https://cabins.example/jwks.json"
    assertion = build_client_assertion(
        ec_key[1], client_id="c", token_url="u", kid="k", now=time.time(), jku=jku
    )
    assert jwt.get_unverified_header(assertion)["jku"] == jku


@pytest.mark.parametrize("lifetime", [0.0, 301.0])
def test_assertion_lifetime_outside_five_minutes_is_refused(
    lifetime: float, ec_key: KeyFile
) -> None:
    with pytest.raises(ValueError, match="lifetime"):
        build_client_assertion(
            ec_key[1], client_id="c", token_url="u", kid="k", now=0.0, lifetime=lifetime
        )


def test_a_cleartext_jku_is_refused(ec_key: KeyFile) -> None:
    with pytest.raises(ValueError, match="https"):
        TokenSource(_settings("https://a/token", ec_key), jku="http://cabins.example/jwks")


# Against the verifying token endpoint.


@pytest.mark.parametrize("algorithm", ["RS384", "ES384"])
def test_token_endpoint_verifies_the_assertion_and_issues_a_token(
    algorithm: str, rsa_key: KeyFile, ec_key: KeyFile
) -> None:
    key = rsa_key if algorithm == "RS384" else ec_key
    endpoint = _endpoint(key)

    async def scenario() -> str:
        async with _source(endpoint, key) as source:
            return await source.token()

    assert asyncio.run(scenario()) == "token-1"
    assert endpoint.refusals == []
    assert endpoint.scopes == ["system/Patient.write system/Observation.write"]


@pytest.mark.parametrize(
    ("expires_in", "skew", "still_cached_at", "refreshed_at"),
    [
        (300, 60.0, 239.0, 241.0),
        (300, 10.0, 289.0, 291.0),
        (20, 60.0, 9.0, 11.0),
        (None, 60.0, 239.0, 241.0),
    ],
    ids=["default-skew", "small-skew", "short-life-halved", "no-expires_in-means-300"],
)
def test_token_is_cached_until_skew_seconds_before_expiry(
    expires_in: int | None,
    skew: float,
    still_cached_at: float,
    refreshed_at: float,
    ec_key: KeyFile,
) -> None:
    endpoint = _endpoint(ec_key, expires_in=expires_in)
    clock = ManualClock()

    async def scenario() -> list[str]:
        async with _source(endpoint, ec_key, refresh_skew=skew, monotonic_clock=clock) as source:
            seen = [await source.token(), await source.token()]
            clock.now += still_cached_at
            seen.append(await source.token())
            clock.now += refreshed_at - still_cached_at
            seen.append(await source.token())
            return seen

    assert asyncio.run(scenario()) == ["token-1", "token-1", "token-1", "token-2"]


def test_concurrent_callers_share_one_token_request(ec_key: KeyFile) -> None:
    endpoint = _endpoint(ec_key, delay=0.2)

    async def scenario() -> list[str]:
        async with _source(endpoint, ec_key) as source:
            return await asyncio.gather(*(source.token() for _ in range(20)))

    assert asyncio.run(scenario()) == ["token-1"] * 20
    assert len(endpoint.assertions) == 1


def test_refresh_replaces_the_refused_token(ec_key: KeyFile) -> None:
    endpoint = _endpoint(ec_key)

    async def scenario() -> tuple[str, str, str]:
        async with _source(endpoint, ec_key) as source:
            first = await source.token()
            second = await source.refresh(stale=first)
            return first, second, await source.token()

    assert asyncio.run(scenario()) == ("token-1", "token-2", "token-2")


def test_concurrent_refreshes_of_one_stale_token_fetch_once(ec_key: KeyFile) -> None:
    endpoint = _endpoint(ec_key, delay=0.1)

    async def scenario() -> list[str]:
        async with _source(endpoint, ec_key) as source:
            stale = await source.token()
            return await asyncio.gather(*(source.refresh(stale=stale) for _ in range(10)))

    assert asyncio.run(scenario()) == ["token-2"] * 10
    assert endpoint.issued == ["token-1", "token-2"]


def test_each_request_has_a_new_jti_and_a_replayed_one_is_refused(ec_key: KeyFile) -> None:
    endpoint = _endpoint(ec_key)

    async def scenario() -> int:
        async with _source(endpoint, ec_key) as source:
            await source.refresh(stale="")
            await source.refresh(stale="token-1")
            replay = {
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": endpoint.assertions[0],
                "scope": "system/Patient.write",
            }
            async with (
                aiohttp.ClientSession() as session,
                session.post(endpoint.url, data=replay) as answer,
            ):
                return answer.status

    assert asyncio.run(scenario()) == 400
    assert endpoint.issued == ["token-1", "token-2"]
    assert endpoint.refusals == ["jti replayed"]


def test_unregistered_key_gets_the_servers_error_and_description(
    ec_key: KeyFile, tmp_path: Path
) -> None:
    other = generate_key_file(tmp_path / "other.pem", algorithm="ES384")
    endpoint = TokenEndpoint(jwks=public_jwks(other), client_id=CLIENT_ID)

    async def scenario() -> None:
        async with _source(endpoint, ec_key) as source:
            await source.token()

    with pytest.raises(TokenRequestError, match="HTTP 400, invalid_client: unknown kid") as caught:
        asyncio.run(scenario())
    assert caught.value.status == 400
    assert caught.value.error == "invalid_client"
    assert caught.value.description is not None
    assert caught.value.description.startswith("unknown kid")


def test_a_cabin_clock_far_behind_is_told_its_assertion_expired(ec_key: KeyFile) -> None:
    endpoint = _endpoint(ec_key)

    async def scenario() -> None:
        async with _source(endpoint, ec_key, wall_clock=lambda: time.time() - 600) as source:
            await source.token()

    with pytest.raises(TokenRequestError, match="expired"):
        asyncio.run(scenario())


async def _answer_with(status: int, body: bytes, content_type: str, ec_key: KeyFile) -> str:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type=content_type)

    app = web.Application()
    app.router.add_post("/token", handler)
    async with serve(app) as root, aiohttp.ClientSession() as session:
        return await TokenSource(_settings(f"{root}/token", ec_key), session=session).token()


def _token_json(**members: object) -> bytes:
    return json.dumps({"access_token": "abc", "token_type": "bearer", **members}).encode()


NONSENSE_TOKEN_ANSWERS = {
    "html": (b"<html>welcome</html>", "text/html", "without a JSON object"),
    "no-token": (_token_json(access_token=None), JSON, "access_token"),
    "header-injection": (_token_json(access_token="a\r\nX-Evil: 1"), JSON, "access_token"),
    "mac": (_token_json(token_type="mac"), JSON, "not bearer"),
    "negative-life": (_token_json(expires_in=-5), JSON, "expires_in"),
    "text-life": (_token_json(expires_in="300"), JSON, "expires_in"),
    "oversize": (_token_json(padding="x" * 100_000), JSON, "more than"),
    "deep": (b"[" * 50_000, JSON, "without a JSON object"),
}


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    NONSENSE_TOKEN_ANSWERS.values(),
    ids=NONSENSE_TOKEN_ANSWERS.keys(),
)
def test_nonsense_token_answer_is_an_auth_error(
    body: bytes, content_type: str, message: str, ec_key: KeyFile
) -> None:
    with pytest.raises(AuthError, match=message):
        asyncio.run(_answer_with(200, body, content_type, ec_key))


def test_server_error_without_json_keeps_the_status(ec_key: KeyFile) -> None:
    with pytest.raises(TokenRequestError, match="HTTP 502, no error code") as caught:
        asyncio.run(_answer_with(502, b"<h1>Bad gateway</h1>", "text/html", ec_key))
    assert caught.value.error is None


def test_a_huge_error_description_is_shortened(ec_key: KeyFile) -> None:
    body = b'{"error": "invalid_scope", "error_description": "' + b"x" * 10_000 + b'\\n"}'
    with pytest.raises(TokenRequestError) as caught:
        asyncio.run(_answer_with(400, body, "application/json", ec_key))
    assert caught.value.error == "invalid_scope"
    assert caught.value.description == "x" * 200


def test_unreachable_token_endpoint_is_a_transport_error(ec_key: KeyFile) -> None:
    async def scenario() -> None:
        settings = _settings(f"http://127.0.0.1:{closed_port()}/token", ec_key)
        async with TokenSource(settings) as source:
            await source.token()

    with pytest.raises(TransportError, match="token endpoint"):
        asyncio.run(scenario())


def test_slow_token_endpoint_times_out_as_a_transport_error(ec_key: KeyFile) -> None:
    endpoint = _endpoint(ec_key, delay=5.0)

    async def scenario() -> None:
        async with _source(endpoint, ec_key, timeout=0.3) as source:
            await source.token()

    started = time.monotonic()
    with pytest.raises(TransportError, match=r"no answer within 0\.3 s"):
        asyncio.run(scenario())
    assert time.monotonic() - started < 2.0


def test_a_cancelled_fetch_propagates_and_frees_the_lock(ec_key: KeyFile) -> None:
    endpoint = _endpoint(ec_key, delay=0.5)

    async def scenario() -> str:
        async with _source(endpoint, ec_key) as source:
            waiting = asyncio.create_task(source.token())
            await asyncio.sleep(0.1)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            endpoint.delay = 0.0
            async with asyncio.timeout(2):
                return await source.token()

    assert asyncio.run(scenario()) == "token-1"


def test_missing_private_key_is_a_signing_key_error(ec_key: KeyFile) -> None:
    endpoint = _endpoint(ec_key)
    ec_key[0].unlink()

    async def scenario() -> None:
        async with _source(endpoint, ec_key) as source:
            await source.token()

    with pytest.raises(SigningKeyError, match="cannot read"):
        asyncio.run(scenario())
    assert endpoint.assertions == []


def test_owned_session_is_closed_when_the_block_ends(ec_key: KeyFile) -> None:
    endpoint = _endpoint(ec_key)

    async def scenario() -> None:
        async with endpoint.running():
            source = TokenSource(_settings(endpoint.url, ec_key))
            async with source:
                assert await source.token() == "token-1"
            with pytest.raises(RuntimeError, match="needs a session"):
                await source.refresh(stale="token-1")

    asyncio.run(scenario())
