"""Development tokens: a local signing key and ``mint`` for the demo, tests and ``signaling token``.

Production tokens come from the fleet's issuer and each hospital's IdP; this module exists
so that one machine can run the whole flow. The key lives in a directory as::

    dev-signing-key.pem   Ed25519 private key, PKCS#8 PEM, mode 0600
    dev-jwks.json         {"keys": [public JWK with kid, alg, use]} for the verifier

The kid is the RFC 7638 JWK thumbprint (SHA-256 over the required members, sorted, no
whitespace), so it is stable for a key and changes when the key does.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, TypeAlias

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.api_jwk import PyJWKSet

from signaling.errors import ConfigError
from signaling.model import Role

__all__ = [
    "DEV_ISSUER",
    "JWKS_FILE",
    "PRIVATE_KEY_FILE",
    "DevKey",
    "jwk_thumbprint",
    "mint",
    "sign_claims",
]

logger = logging.getLogger(__name__)

DEV_ISSUER: Final = "signaling-dev"
PRIVATE_KEY_FILE: Final = "dev-signing-key.pem"
JWKS_FILE: Final = "dev-jwks.json"

SigningKey: TypeAlias = Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(jwk: Mapping[str, str]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of an OKP or EC public JWK."""
    members = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y")}.get(jwk["kty"])
    if members is None:
        raise ValueError(f"no thumbprint for kty {jwk['kty']!r}")
    canonical = json.dumps({name: jwk[name] for name in members}, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def _public_jwk(private_key: SigningKey) -> dict[str, str]:
    """The public JWK members (without kid) of an Ed25519 or P-256 key."""
    if isinstance(private_key, Ed25519PrivateKey):
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}
    if not isinstance(private_key.curve, ec.SECP256R1):
        raise ConfigError(f"unsupported curve {private_key.curve.name}; use P-256")
    numbers = private_key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class DevKey:
    """A private signing key with the issuer name and kid its tokens carry."""

    private_key: SigningKey
    issuer: str = DEV_ISSUER

    @property
    def algorithm(self) -> str:
        """``EdDSA`` for an Ed25519 key, ``ES256`` for a P-256 key."""
        return "EdDSA" if isinstance(self.private_key, Ed25519PrivateKey) else "ES256"

    @property
    def kid(self) -> str:
        """The RFC 7638 thumbprint of the public key."""
        return jwk_thumbprint(_public_jwk(self.private_key))

    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK with ``kid``, ``alg`` and ``use``."""
        jwk = _public_jwk(self.private_key)
        return {**jwk, "kid": jwk_thumbprint(jwk), "alg": self.algorithm, "use": "sig"}

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public JWKS document (``{"keys": [...]}``)."""
        return {"keys": [self.public_jwk()]}

    def jwk_set(self) -> PyJWKSet:
        """The public keys as PyJWT's ``PyJWKSet``, ready for an ``IssuerPolicy``."""
        return PyJWKSet.from_dict(self.jwks())

    @classmethod
    def generate(cls, *, algorithm: str = "EdDSA", issuer: str = DEV_ISSUER) -> DevKey:
        """A fresh in-memory key: Ed25519 for ``EdDSA``, P-256 for ``ES256``."""
        if algorithm == "EdDSA":
            return cls(private_key=Ed25519PrivateKey.generate(), issuer=issuer)
        if algorithm == "ES256":
            return cls(private_key=ec.generate_private_key(ec.SECP256R1()), issuer=issuer)
        raise ValueError(f"unsupported algorithm {algorithm!r}; use EdDSA or ES256")

    @classmethod
    def load_or_create(cls, directory: Path) -> DevKey:
        """The dev key in ``directory``, created (Ed25519, file mode 0600) if missing.

        The public JWKS file is (re)written each time so it always matches the key.
        Two processes starting together end up with the same key (no-clobber link).
        """
        directory = Path(directory)
        key_path = directory / PRIVATE_KEY_FILE
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not key_path.exists():
                _create_private_key(key_path)
            key = _load_private_key(key_path)
            dev_key = cls(private_key=key)
            _write_text_atomically(directory / JWKS_FILE, json.dumps(dev_key.jwks(), indent=2))
        except OSError as error:
            raise ConfigError(f"cannot prepare the dev key in {directory}: {error}") from error
        if key_path.stat().st_mode & 0o077:
            logger.warning("dev signing key is readable by others", extra={"event": "key-mode"})
        return dev_key


def _create_private_key(path: Path) -> None:
    """Write a new Ed25519 key to ``path`` unless another process got there first."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(pem)
        with contextlib.suppress(FileExistsError):  # another process's key wins
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _load_private_key(path: Path) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{path} is not an unencrypted PEM private key: {error}") from error
    if isinstance(key, Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        return key
    raise ConfigError(f"{path} holds a {type(key).__name__}; need Ed25519 or P-256")


def _write_text_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    temporary.write_text(text + "\n", encoding="utf-8")
    os.replace(temporary, path)


def sign_claims(key: DevKey, claims: Mapping[str, object], *, algorithm: str | None = None) -> str:
    """Sign arbitrary ``claims`` with ``key`` (kid in the header): for tests of bad tokens.

    ``algorithm`` defaults to the key's own; any other value must be one PyJWT accepts
    for that key type.
    """
    try:
        return jwt.encode(
            dict(claims),
            key.private_key,
            algorithm=algorithm or key.algorithm,
            headers={"kid": key.kid},
        )
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise ConfigError(f"cannot sign with this key: {error}") from error


def mint(
    key: DevKey,
    *,
    role: Role,
    subject: str,
    hospitals: Sequence[str],
    audience: str,
    ttl_s: int,
    now: datetime,
    name: str | None = None,
    algorithm: str | None = None,
) -> str:
    """A signed token for ``subject`` with a fresh random jti, valid from ``now`` for ``ttl_s``.

    ``hospitals`` goes in the ``hospitals`` claim (omitted when empty: a cabin that may ask
    any hospital). ``algorithm`` defaults to the key's (EdDSA for the dev key).
    """
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    issued = int(now.timestamp())
    claims: dict[str, object] = {
        "iss": key.issuer,
        "sub": subject,
        "aud": audience,
        "iat": issued,
        "exp": issued + ttl_s,
        "jti": secrets.token_urlsafe(16),
        "role": str(role),
    }
    if hospitals:
        claims["hospitals"] = list(hospitals)
    if name is not None:
        claims["name"] = name
    return sign_claims(key, claims, algorithm=algorithm)
