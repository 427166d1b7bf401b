"""Token verification: the authorization matrix of accepted and refused tokens."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from signaling.auth import (
    IssuerPolicy,
    JwksUrlSource,
    MemoryReplayGuard,
    Principal,
    Role,
    StaticKeys,
    TokenVerifier,
    load_jwks_file,
)
from signaling.errors import AuthError, AuthFailure, ConfigError
from signaling.tokens import DevKey, mint, sign_claims

NOW = datetime(2025, 10, 10, 9, 0, tzinfo=UTC)
AUDIENCE = "signaling"
FLEET = DevKey.generate(algorithm="EdDSA", issuer="fleet")
HOSPITAL_H = DevKey.generate(algorithm="ES256", issuer="https://idp.hospital-h.example")
STRANGER = DevKey.generate(algorithm="EdDSA", issuer="fleet")


def _verifier(guard: MemoryReplayGuard | None = None, **options: Any) -> TokenVerifier:
    return TokenVerifier(
        issuers=[
            IssuerPolicy(
                issuer="fleet",
                keys=FLEET.jwk_set(),
                roles=frozenset({Role.CABIN, Role.ADMIN}),
            ),
            IssuerPolicy(
                issuer=HOSPITAL_H.issuer,
                keys=HOSPITAL_H.jwk_set(),
                roles=frozenset({Role.DOCTOR}),
                hospitals=frozenset({"H"}),
            ),
        ],
        audience=AUDIENCE,
        replay_guard=guard or MemoryReplayGuard(clock=lambda: NOW),
        **options,
    )


def _verify(token: str | bytes, verifier: TokenVerifier | None = None) -> Principal:
    return asyncio.run((verifier or _verifier()).verify(token, now=NOW))


def _refused(token: str | bytes, verifier: TokenVerifier | None = None) -> AuthFailure:
    with pytest.raises(AuthError) as caught:
        _verify(token, verifier)
    return caught.value.code


def _claims(key: DevKey = FLEET, /, **changes: object) -> dict[str, object]:
    issued = int(NOW.timestamp())
    claims: dict[str, object] = {
        "iss": key.issuer,
        "sub": "cabin-7",
        "aud": AUDIENCE,
        "iat": issued,
        "exp": issued + 600,
        "jti": f"jti-{len(changes)}-{sorted(changes)}",
        "role": "cabin",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unsigned(header: Mapping[str, object], claims: Mapping[str, object]) -> str:
    return ".".join([_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), ""])


# accepted


def test_eddsa_cabin_token_gives_its_principal() -> None:
    token = mint(
        FLEET,
        role=Role.CABIN,
        subject="cabin-7",
        hospitals=[],
        audience=AUDIENCE,
        ttl_s=600,
        now=NOW,
        name="Cabin 7",
    )
    principal = _verify(token)
    assert principal.role is Role.CABIN
    assert principal.subject == "cabin-7"
    assert principal.hospitals == ()
    assert principal.issuer == "fleet"
    assert principal.expires_at == NOW + timedelta(seconds=600)
    assert principal.name == "Cabin 7"
    assert principal.identity == "fleet|cabin-7"


def test_es256_doctor_token_from_hospital_idp_is_accepted() -> None:
    token = mint(
        HOSPITAL_H,
        role=Role.DOCTOR,
        subject="dr-1",
        hospitals=["H"],
        audience=AUDIENCE,
        ttl_s=600,
        now=NOW,
    )
    principal = _verify(token)
    assert principal.role is Role.DOCTOR
    assert principal.hospitals == ("H",)
    assert principal.name is None


def test_single_hospital_claim_and_audience_list_are_accepted() -> None:
    claims = _claims(HOSPITAL_H, role="doctor", hospital="H", aud=["other", AUDIENCE])
    assert _verify(sign_claims(HOSPITAL_H, claims)).hospitals == ("H",)


def test_token_without_kid_is_verified_with_the_issuers_only_key() -> None:
    token = jwt.encode(_claims(), FLEET.private_key, algorithm="EdDSA")
    assert _verify(token).subject == "cabin-7"


def test_expiry_within_leeway_is_accepted() -> None:
    issued = int(NOW.timestamp()) - 600
    token = sign_claims(FLEET, _claims(iat=issued, exp=int(NOW.timestamp()) - 10))
    assert _verify(token).subject == "cabin-7"


# refused, one reason each


def test_expired_token_is_refused() -> None:
    issued = int(NOW.timestamp()) - 600
    token = sign_claims(FLEET, _claims(iat=issued, exp=int(NOW.timestamp()) - 31))
    assert _refused(token) is AuthFailure.TOKEN_EXPIRED


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_token_from_the_future_is_refused(claim: str) -> None:
    later = int(NOW.timestamp()) + 120
    claims = _claims(**{claim: later, "exp": later + 600})
    assert _refused(sign_claims(FLEET, claims)) is AuthFailure.TOKEN_NOT_YET_VALID


def test_token_signed_by_another_key_with_the_issuers_kid_is_forged() -> None:
    token = jwt.encode(
        _claims(), STRANGER.private_key, algorithm="EdDSA", headers={"kid": FLEET.kid}
    )
    assert _refused(token) is AuthFailure.TOKEN_FORGED


def test_token_with_an_unknown_kid_is_forged() -> None:
    assert _refused(sign_claims(STRANGER, _claims())) is AuthFailure.TOKEN_FORGED


def test_tampered_payload_is_forged() -> None:
    header, _, signature = sign_claims(FLEET, _claims()).split(".")
    payload = _b64(json.dumps(_claims(role="admin")).encode())
    assert _refused(f"{header}.{payload}.{signature}") is AuthFailure.TOKEN_FORGED


def test_header_alg_that_does_not_match_the_key_is_forged() -> None:
    _, payload, signature = sign_claims(FLEET, _claims()).split(".")
    es256_header = _b64(json.dumps({"alg": "ES256", "kid": FLEET.kid}).encode())
    assert _refused(f"{es256_header}.{payload}.{signature}") is AuthFailure.TOKEN_FORGED


def test_wrong_audience_is_refused() -> None:
    token = sign_claims(FLEET, _claims(aud="another-service"))
    assert _refused(token) is AuthFailure.WRONG_AUDIENCE


def test_unknown_issuer_is_refused() -> None:
    token = sign_claims(STRANGER, _claims(iss="https://evil.example"))
    assert _refused(token) is AuthFailure.UNKNOWN_ISSUER


def test_second_use_of_a_token_is_replayed() -> None:
    verifier = _verifier()
    token = sign_claims(FLEET, _claims())
    _verify(token, verifier)
    assert _refused(token, verifier) is AuthFailure.TOKEN_REPLAYED


def test_refused_token_does_not_use_up_its_jti() -> None:
    guard = MemoryReplayGuard(clock=lambda: NOW)
    _refused(sign_claims(FLEET, _claims(aud="another-service")), _verifier(guard))
    assert len(guard) == 0


def test_alg_none_is_refused() -> None:
    token = _unsigned({"alg": "none", "kid": FLEET.kid}, _claims())
    assert _refused(token) is AuthFailure.ALGORITHM_NOT_ALLOWED


def test_hs256_signed_with_the_public_key_is_refused() -> None:
    """The key-confusion attack: the issuer's public key bytes used as an HMAC secret."""
    public_pem = HOSPITAL_H.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = _claims(HOSPITAL_H, role="doctor", hospital="H")
    header = _b64(json.dumps({"alg": "HS256", "kid": HOSPITAL_H.kid}).encode())
    payload = _b64(json.dumps(claims).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{_b64(mac)}"
    assert _refused(token) is AuthFailure.ALGORITHM_NOT_ALLOWED


@pytest.mark.parametrize("claim", ["iss", "sub", "aud", "exp", "iat", "jti", "role"])
def test_token_without_a_required_claim_is_refused(claim: str) -> None:
    claims = _claims()
    del claims[claim]
    assert _refused(sign_claims(FLEET, claims)) is AuthFailure.CLAIMS_MISSING


def test_doctor_token_without_hospital_is_refused() -> None:
    claims = _claims(HOSPITAL_H, role="doctor")
    assert _refused(sign_claims(HOSPITAL_H, claims)) is AuthFailure.CLAIMS_MISSING


def test_token_living_longer_than_the_maximum_is_refused() -> None:
    token = sign_claims(FLEET, _claims(exp=int(NOW.timestamp()) + 25 * 3600))
    assert _refused(token) is AuthFailure.TOKEN_LIFETIME_TOO_LONG


@pytest.mark.parametrize("role", ["cabin", "admin", "superuser"])
def test_hospital_idp_may_issue_only_doctor_tokens(role: str) -> None:
    claims = _claims(HOSPITAL_H, role=role, hospital="H")
    assert _refused(sign_claims(HOSPITAL_H, claims)) is AuthFailure.ROLE_NOT_ALLOWED


def test_fleet_issuer_may_not_issue_doctor_tokens() -> None:
    claims = _claims(role="doctor", hospital="H")
    assert _refused(sign_claims(FLEET, claims)) is AuthFailure.ROLE_NOT_ALLOWED


@pytest.mark.parametrize("hospitals", [["K"], ["H", "K"]])
def test_hospital_idp_may_issue_only_for_its_hospital(hospitals: list[str]) -> None:
    claims = _claims(HOSPITAL_H, role="doctor", hospitals=hospitals)
    assert _refused(sign_claims(HOSPITAL_H, claims)) is AuthFailure.HOSPITAL_NOT_ALLOWED


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": "tomorrow"},
        {"exp": True},
        {"sub": 7},
        {"aud": {"x": 1}},
        {"hospital": "H", "hospitals": ["H"]},
        {"hospitals": "H"},
        {"name": 3},
        {"sub": "x" * 257},
        {"sub": "cabin\n7"},
        {"hospitals": ["H", ""]},
    ],
)
def test_claims_of_the_wrong_type_or_shape_are_malformed(changes: dict[str, object]) -> None:
    assert _refused(sign_claims(FLEET, _claims(**changes))) is AuthFailure.TOKEN_MALFORMED


def test_expiry_beyond_the_calendar_is_malformed() -> None:
    verifier = _verifier(max_lifetime_s=1e308)
    assert _refused(sign_claims(FLEET, _claims(exp=1e300)), verifier) is AuthFailure.TOKEN_MALFORMED


@pytest.mark.parametrize(
    "token", ["", "abc", "a.b", "a.b.c.d", "é.b.c", b"\xff.\xfe.\xfd", "a" * 9000 + ".b.c"]
)
def test_garbage_is_malformed(token: str | bytes) -> None:
    assert _refused(token) is AuthFailure.TOKEN_MALFORMED


# fuzzing: nothing but AuthError ever comes out

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
_CLAIM_NAMES = st.sampled_from(
    ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "role", "hospital", "hospitals", "name"]
)


@settings(max_examples=200, deadline=None)
@given(st.text() | st.binary())
def test_random_text_and_bytes_are_refused_with_auth_error(token: str | bytes) -> None:
    with pytest.raises(AuthError):
        _verify(token)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), min_size=3, max_size=3))
def test_random_base64url_segments_are_refused_with_auth_error(segments: list[bytes]) -> None:
    with pytest.raises(AuthError):
        _verify(".".join(_b64(segment) or "A" for segment in segments))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _JSON), st.dictionaries(_CLAIM_NAMES, _JSON))
def test_random_headers_and_claims_are_refused_with_auth_error(
    header: dict[str, Any], claims: dict[str, Any]
) -> None:
    with pytest.raises(AuthError):
        _verify(_unsigned({"alg": "EdDSA", **header}, {"iss": "fleet", **claims}))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_CLAIM_NAMES, _JSON))
def test_validly_signed_random_claims_give_a_principal_or_auth_error(
    changes: dict[str, Any],
) -> None:
    claims = {**_claims(), **changes, "iss": "fleet"}
    try:
        principal = _verify(sign_claims(FLEET, claims))
    except AuthError:
        return
    assert isinstance(principal, Principal)


# replay guard


def test_replay_guard_forgets_ids_after_their_until() -> None:
    clock = [NOW]
    guard = MemoryReplayGuard(clock=lambda: clock[0])
    assert asyncio.run(guard.claim("a", until=NOW + timedelta(seconds=10)))
    assert not asyncio.run(guard.claim("a", until=NOW + timedelta(seconds=10)))
    clock[0] = NOW + timedelta(seconds=10)
    assert asyncio.run(guard.claim("a", until=NOW + timedelta(seconds=20)))
    assert len(guard) == 1


def test_full_replay_guard_forgets_the_id_closest_to_expiry() -> None:
    guard = MemoryReplayGuard(capacity=2, clock=lambda: NOW)
    for token_id, seconds in [("late", 30), ("soon", 10), ("new", 20)]:
        assert asyncio.run(guard.claim(token_id, until=NOW + timedelta(seconds=seconds)))
    assert len(guard) == 2
    assert not asyncio.run(guard.claim("late", until=NOW + timedelta(seconds=30)))
    assert asyncio.run(guard.claim("soon", until=NOW + timedelta(seconds=10)))


# key loading


def test_jwks_file_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(HOSPITAL_H.jwks()))
    jwk_set = load_jwks_file(path)
    assert [key.key_id for key in jwk_set.keys] == [HOSPITAL_H.kid]


@pytest.mark.parametrize("content", [None, "not json", '{"keys": []}', '{"keys": [{"kty": "X"}]}'])
def test_bad_jwks_file_is_a_config_error(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "jwks.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError):
        load_jwks_file(path)


def test_key_set_without_allowed_keys_is_a_config_error() -> None:
    hs_key = jwt.PyJWK({"kty": "oct", "k": _b64(b"0" * 32), "kid": "h"})
    with pytest.raises(ConfigError):
        StaticKeys([hs_key])


class _JwksServer:
    """A loopback HTTP server handing out a JWKS document and counting fetches."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps(outer.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"


@pytest.fixture
def jwks_server() -> Iterator[_JwksServer]:
    server = _JwksServer(HOSPITAL_H.jwks())
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
    thread.join(timeout=5)


def test_keys_from_a_jwks_url_verify_tokens(jwks_server: _JwksServer) -> None:
    verifier = TokenVerifier(
        issuers=[
            IssuerPolicy(
                issuer=HOSPITAL_H.issuer,
                keys=JwksUrlSource(jwks_server.url),
                roles=frozenset({Role.DOCTOR}),
            )
        ],
        audience=AUDIENCE,
        replay_guard=MemoryReplayGuard(clock=lambda: NOW),
    )
    claims = _claims(HOSPITAL_H, role="doctor", hospital="H")
    assert _verify(sign_claims(HOSPITAL_H, claims), verifier).subject == "cabin-7"


def test_unknown_kids_refetch_the_jwks_at_most_once_per_cooldown(
    jwks_server: _JwksServer,
) -> None:
    source = JwksUrlSource(jwks_server.url, refresh_cooldown_s=30, clock=lambda: 100.0)

    async def lookups() -> list[object]:
        return [await source.key_for(f"random-{n}") for n in range(5)]

    assert asyncio.run(lookups()) == [None] * 5
    assert jwks_server.fetches == 2  # the first fetch, then one forced refresh


def test_unreachable_jwks_url_is_a_config_error(jwks_server: _JwksServer) -> None:
    url = jwks_server.url
    jwks_server.server.shutdown()
    jwks_server.server.server_close()
    source = JwksUrlSource(url, timeout_s=2)
    with pytest.raises(ConfigError):
        asyncio.run(source.key_for(HOSPITAL_H.kid))


def test_non_http_jwks_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        JwksUrlSource("file:///etc/passwd")
