"""The cabin's signing key for SMART Backend Services: generate, load, publish as a JWKS.

A hospital registers the cabin's *public* key (a JWK Set, ``cabin keys jwks``); the cabin
signs its token-request assertions with the matching *private* key, which never leaves the
cabin PC.  Two kinds are allowed, the two SMART Backend Services names:

=======  ==============================  ============================
alg      key                             JWK members
=======  ==============================  ============================
RS384    RSA, 3072-bit when generated     ``kty=RSA``, ``n``, ``e``
         (2048 is the least accepted)
ES384    EC on P-384 (secp384r1)          ``kty=EC``, ``crv=P-384``, ``x``, ``y``
=======  ==============================  ============================

The ``kid`` is the key's RFC 7638 JWK thumbprint (SHA-256 over the required public members
in lexicographic order, base64url without padding), so it is stable across runs, machines
and re-exports and needs no bookkeeping.

Every function here does blocking file I/O (and generation is CPU-heavy for RSA): call them
through ``asyncio.to_thread`` from async code.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fhir.errors import SigningKeyError

logger = logging.getLogger(__name__)

Algorithm = Literal["RS384", "ES384"]
"""The two assertion signing algorithms SMART Backend Services names."""

ALGORITHMS: tuple[Algorithm, ...] = ("RS384", "ES384")
GENERATED_RSA_BITS = 3072
MIN_RSA_BITS = 2048
_P384_COORDINATE_BYTES = 48

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key with the algorithm it signs with and its stable key id."""

    private_key: PrivateKey
    algorithm: Algorithm
    kid: str

    def public_jwk(self) -> dict[str, str]:
        """The public half as a JWK (``kty``, ``kid``, ``alg``, ``use``, key members)."""
        return {
            **_public_members(self.private_key),
            "kid": self.kid,
            "alg": self.algorithm,
            "use": "sig",
        }


def generate_key_file(path: Path, *, algorithm: Algorithm, overwrite: bool = False) -> SigningKey:
    """Create a new private key, write it to ``path`` as PKCS#8 PEM with mode 0600, return it.

    The file is written to a temporary sibling (created 0600) and moved into place, so a crash
    never leaves a truncated key.  An existing key is kept (``SigningKeyError``) unless
    ``overwrite``: replacing it silently would lock the cabin out of every hospital that
    registered the old public key.
    """
    private_key: PrivateKey
    if algorithm == "RS384":
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=GENERATED_RSA_BITS)
    elif algorithm == "ES384":
        private_key = ec.generate_private_key(ec.SECP384R1())
    else:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, not {algorithm!r}")
    pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    try:
        _write_private(path, pem, overwrite=overwrite)
    except FileExistsError:
        raise SigningKeyError(
            f"{path} already holds a key; refusing to replace it (overwrite=True to rotate)"
        ) from None
    except OSError as error:
        raise SigningKeyError(f"cannot write the signing key to {path}: {error}") from error
    key = SigningKey(private_key=private_key, algorithm=algorithm, kid=thumbprint(private_key))
    logger.info("generated %s signing key %s at %s", algorithm, key.kid, path)
    return key


def load_key_file(path: Path, *, algorithm: str | None = None) -> SigningKey:
    """Read a PEM private key and check it can sign with ``algorithm`` (or the one it implies).

    RSA keys sign RS384 and must have at least 2048 bits; EC keys sign ES384 and must be on
    P-384.  A file readable by group or others is logged as a warning, not refused: the
    operator may manage permissions by other means, but should hear about it.
    """
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as error:
        raise SigningKeyError(f"cannot read the signing key {path}: {error}") from error
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("signing key %s is accessible to group/others (mode %o)", path, mode & 0o777)
    try:
        loaded = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise SigningKeyError(f"{path} is not an unencrypted PEM private key: {error}") from error
    private_key, implied = _check_kind(loaded, path)
    if algorithm is not None and algorithm != implied:
        raise SigningKeyError(f"{path} holds a key for {implied}, but {algorithm} is configured")
    return SigningKey(private_key=private_key, algorithm=implied, kid=thumbprint(private_key))


def public_jwks(*keys: SigningKey) -> dict[str, list[dict[str, str]]]:
    """The JWK Set a hospital registers: ``{"keys": [...]}`` with public members only.

    Several keys may be published at once, so a new key can be registered before the old
    one is retired.
    """
    return {"keys": [key.public_jwk() for key in keys]}


def thumbprint(key: PrivateKey | PublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url, no padding) of the key's public half."""
    members = _public_members(key)
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def _check_kind(loaded: object, path: Path) -> tuple[PrivateKey, Algorithm]:
    if isinstance(loaded, rsa.RSAPrivateKey):
        if loaded.key_size < MIN_RSA_BITS:
            raise SigningKeyError(
                f"{path} is a {loaded.key_size}-bit RSA key; at least {MIN_RSA_BITS} are required"
            )
        return loaded, "RS384"
    if isinstance(loaded, ec.EllipticCurvePrivateKey):
        if not isinstance(loaded.curve, ec.SECP384R1):
            raise SigningKeyError(f"{path} is an EC key on {loaded.curve.name}; ES384 needs P-384")
        return loaded, "ES384"
    raise SigningKeyError(f"{path} holds a {type(loaded).__name__}; RSA or EC P-384 is required")


def _public_members(key: PrivateKey | PublicKey) -> dict[str, str]:
    """The RFC 7638 required members of the public JWK, by name."""
    public = key.public_key() if isinstance(key, PrivateKey) else key
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        return {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
    point = public.public_numbers()
    return {
        "crv": "P-384",
        "kty": "EC",
        "x": _b64url(point.x.to_bytes(_P384_COORDINATE_BYTES, "big")),
        "y": _b64url(point.y.to_bytes(_P384_COORDINATE_BYTES, "big")),
    }


def _b64url_uint(value: int) -> str:
    """RFC 7518 Base64urlUInt: big-endian, the fewest octets (at least one)."""
    return _b64url(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _write_private(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically; FileExistsError if it exists."""
    if not overwrite and path.exists():
        raise FileExistsError(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if overwrite:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)  # fails if another writer won the race
            os.unlink(temporary)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
