"""Development key and token minting."""

from __future__ import annotations

import asyncio
import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest

from signaling.auth import IssuerPolicy, MemoryReplayGuard, Role, TokenVerifier
from signaling.errors import ConfigError
from signaling.tokens import (
    DEV_ISSUER,
    JWKS_FILE,
    PRIVATE_KEY_FILE,
    DevKey,
    jwk_thumbprint,
    mint,
)

NOW = datetime(2025, 10, 10, 9, 0, tzinfo=UTC)


def test_thumbprint_matches_rfc_8037_example() -> None:
    """RFC 8037 appendix A.3: the thumbprint of its Ed25519 example key."""
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert jwk_thumbprint(jwk) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_dev_key_is_created_private_with_its_public_jwks(tmp_path: Path) -> None:
    key = DevKey.load_or_create(tmp_path / "keys")
    key_file = tmp_path / "keys" / PRIVATE_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    jwks = json.loads((tmp_path / "keys" / JWKS_FILE).read_text())
    assert jwks == key.jwks()
    assert jwks["keys"][0]["kid"] == key.kid
    assert "d" not in jwks["keys"][0]
    assert key.issuer == DEV_ISSUER
    assert key.algorithm == "EdDSA"


def test_dev_key_is_reloaded_not_replaced(tmp_path: Path) -> None:
    first = DevKey.load_or_create(tmp_path)
    assert DevKey.load_or_create(tmp_path).kid == first.kid


def test_unreadable_dev_key_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / PRIVATE_KEY_FILE).write_text("not a key")
    with pytest.raises(ConfigError):
        DevKey.load_or_create(tmp_path)


@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256"])
def test_minted_token_verifies_with_the_published_jwks(algorithm: str) -> None:
    key = DevKey.generate(algorithm=algorithm)
    token = mint(
        key,
        role=Role.DOCTOR,
        subject="dr-1",
        hospitals=["H"],
        audience="signaling",
        ttl_s=300,
        now=NOW,
        name="Dr. One",
    )
    assert jwt.get_unverified_header(token) == {"alg": algorithm, "kid": key.kid, "typ": "JWT"}
    verifier = TokenVerifier(
        issuers=[IssuerPolicy(issuer=DEV_ISSUER, keys=key.jwk_set(), roles=frozenset(Role))],
        audience="signaling",
        replay_guard=MemoryReplayGuard(clock=lambda: NOW),
    )
    principal = asyncio.run(verifier.verify(token, now=NOW))
    assert (principal.subject, principal.hospitals, principal.name) == ("dr-1", ("H",), "Dr. One")


def test_each_minted_token_has_a_fresh_jti() -> None:
    key = DevKey.generate()
    tokens = [
        mint(key, role=Role.CABIN, subject="c", hospitals=[], audience="a", ttl_s=60, now=NOW)
        for _ in range(2)
    ]
    claims = [jwt.decode(token, options={"verify_signature": False}) for token in tokens]
    assert claims[0]["jti"] != claims[1]["jti"]
    assert "hospitals" not in claims[0]
    assert claims[0]["exp"] - claims[0]["iat"] == 60


def test_signing_with_an_algorithm_the_key_cannot_do_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        mint(
            DevKey.generate(algorithm="ES256"),
            role=Role.CABIN,
            subject="c",
            hospitals=[],
            audience="a",
            ttl_s=60,
            now=NOW,
            algorithm="EdDSA",
        )
