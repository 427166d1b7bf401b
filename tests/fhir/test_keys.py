"""The cabin's signing key: generated 0600, loaded strictly, published as a public JWK Set."""

from __future__ import annotations

import base64
import logging
import stat
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from fhir.errors import AuthError, SigningKeyError
from fhir.keys import (
    SigningKey,
    generate_key_file,
    load_key_file,
    public_jwks,
    thumbprint,
)

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SigningKey]:
    """One RSA-3072 key per module: generating it takes a noticeable fraction of a second."""
    path = tmp_path_factory.mktemp("rsa") / "cabin.pem"
    return path, generate_key_file(path, algorithm="RS384")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _write_pem(path: Path, key: object, *, password: bytes | None = None) -> Path:
    assert isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    )
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    path.chmod(0o600)
    return path


def test_generated_key_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "cabin.pem"
    generate_key_file(path, algorithm="ES384")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_generation_leaves_no_temporary_file_behind(tmp_path: Path) -> None:
    generate_key_file(tmp_path / "cabin.pem", algorithm="ES384")
    assert [entry.name for entry in tmp_path.iterdir()] == ["cabin.pem"]


def test_generation_creates_a_missing_key_directory_private(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "cabin.pem"
    generate_key_file(path, algorithm="ES384")
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0


def test_rs384_key_is_rsa_3072(rsa_key: tuple[Path, SigningKey]) -> None:
    _, key = rsa_key
    assert isinstance(key.private_key, rsa.RSAPrivateKey)
    assert key.private_key.key_size == 3072
    assert key.algorithm == "RS384"


def test_es384_key_is_on_p384(tmp_path: Path) -> None:
    key = generate_key_file(tmp_path / "cabin.pem", algorithm="ES384")
    assert isinstance(key.private_key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.private_key.curve, ec.SECP384R1)


def test_an_existing_key_is_never_silently_replaced(tmp_path: Path) -> None:
    path = tmp_path / "cabin.pem"
    generate_key_file(path, algorithm="ES384")
    before = path.read_bytes()
    with pytest.raises(SigningKeyError, match="already holds a key"):
        generate_key_file(path, algorithm="ES384")
    assert path.read_bytes() == before


def test_overwrite_rotates_to_a_new_key_with_a_new_kid(tmp_path: Path) -> None:
    path = tmp_path / "cabin.pem"
    old = generate_key_file(path, algorithm="ES384")
    new = generate_key_file(path, algorithm="ES384", overwrite=True)
    assert new.kid != old.kid
    assert load_key_file(path).kid == new.kid
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_unknown_algorithm_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="algorithm"):
        generate_key_file(tmp_path / "cabin.pem", algorithm="HS256")  # type: ignore[arg-type]


def test_loading_gives_back_the_same_key_and_kid(rsa_key: tuple[Path, SigningKey]) -> None:
    path, generated = rsa_key
    loaded = load_key_file(path, algorithm="RS384")
    assert loaded.kid == generated.kid
    assert loaded.public_jwk() == generated.public_jwk()


def test_kid_is_the_rfc7638_thumbprint() -> None:
    # RFC 7638 section 3.1: this RSA public key has the thumbprint below.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPeb"
        "WKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368"
        "QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lF"
        "d2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    public = rsa.RSAPublicNumbers(
        int.from_bytes(_b64decode("AQAB"), "big"), int.from_bytes(_b64decode(n), "big")
    ).public_key()
    assert thumbprint(public) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_rsa_jwk_has_public_members_only(rsa_key: tuple[Path, SigningKey]) -> None:
    _, key = rsa_key
    jwk = key.public_jwk()
    assert {"kty": "RSA", "alg": "RS384", "use": "sig", "kid": key.kid}.items() <= jwk.items()
    assert not PRIVATE_MEMBERS & jwk.keys()
    assert len(_b64decode(jwk["n"])) == 384
    assert _b64decode(jwk["e"]) == b"\x01\x00\x01"


def test_ec_jwk_has_fixed_length_coordinates_and_no_private_part(tmp_path: Path) -> None:
    key = generate_key_file(tmp_path / "cabin.pem", algorithm="ES384")
    jwk = key.public_jwk()
    assert {"kty": "EC", "crv": "P-384", "alg": "ES384", "use": "sig"}.items() <= jwk.items()
    assert not PRIVATE_MEMBERS & jwk.keys()
    assert len(_b64decode(jwk["x"])) == len(_b64decode(jwk["y"])) == 48


def test_jwks_lists_every_key_for_rotation(
    tmp_path: Path, rsa_key: tuple[Path, SigningKey]
) -> None:
    ec_key = generate_key_file(tmp_path / "new.pem", algorithm="ES384")
    jwks = public_jwks(rsa_key[1], ec_key)
    assert [jwk["kid"] for jwk in jwks["keys"]] == [rsa_key[1].kid, ec_key.kid]


@pytest.mark.parametrize("algorithm", ["RS384", "ES384"])
def test_a_signature_verifies_with_the_exported_jwk(
    algorithm: str, tmp_path: Path, rsa_key: tuple[Path, SigningKey]
) -> None:
    key = (
        rsa_key[1]
        if algorithm == "RS384"
        else generate_key_file(tmp_path / "k.pem", algorithm="ES384")
    )
    token = jwt.encode({"sub": "cabin"}, key.private_key, algorithm=algorithm)
    published = jwt.PyJWKSet.from_dict(public_jwks(key))[key.kid]
    assert jwt.decode(token, published.key, algorithms=[algorithm]) == {"sub": "cabin"}


def test_missing_key_file_is_a_signing_key_error(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="cannot read"):
        load_key_file(tmp_path / "absent.pem")


def test_signing_key_errors_are_auth_errors() -> None:
    assert issubclass(SigningKeyError, AuthError)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a key at all",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        b"\xff" * 64,
    ],
    ids=["empty", "text", "bad-base64-body", "binary"],
)
def test_garbage_key_file_is_refused(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "cabin.pem"
    path.write_bytes(content)
    with pytest.raises(SigningKeyError, match="not an unencrypted PEM private key"):
        load_key_file(path)


def test_truncated_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cabin.pem"
    generate_key_file(path, algorithm="ES384")
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(SigningKeyError):
        load_key_file(path)


def test_encrypted_key_file_is_refused(tmp_path: Path) -> None:
    path = _write_pem(
        tmp_path / "cabin.pem", ec.generate_private_key(ec.SECP384R1()), password=b"pw"
    )
    with pytest.raises(SigningKeyError, match="not an unencrypted PEM"):
        load_key_file(path)


def test_short_rsa_key_is_refused(tmp_path: Path) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    path = _write_pem(tmp_path / "cabin.pem", weak)
    with pytest.raises(SigningKeyError, match="1024-bit"):
        load_key_file(path)


def test_ec_key_on_another_curve_is_refused(tmp_path: Path) -> None:
    path = _write_pem(tmp_path / "cabin.pem", ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(SigningKeyError, match="P-384"):
        load_key_file(path)


def test_ed25519_key_is_refused(tmp_path: Path) -> None:
    path = _write_pem(tmp_path / "cabin.pem", ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(SigningKeyError, match="RSA or EC P-384"):
        load_key_file(path)


def test_key_of_the_other_algorithm_than_configured_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cabin.pem"
    generate_key_file(path, algorithm="ES384")
    with pytest.raises(SigningKeyError, match="ES384, but RS384 is configured"):
        load_key_file(path, algorithm="RS384")


def test_a_key_readable_by_others_loads_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cabin.pem"
    generate_key_file(path, algorithm="ES384")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="fhir.keys"):
        load_key_file(path)
    assert "accessible to group/others" in caplog.text
