"""Passive authentication of CCCD chip data (ICAO 9303 part 11, section 5.1).

The chain of trust, checked in this order::

    CSCA certificate (trust store, configured)       ── validity period
       │ signs
       ▼
    document-signer certificate (carried in the SOD)  ── validity period
       │ signs (ECDSA, RSA PKCS#1 v1.5 or RSA-PSS)
       ▼
    signed attributes { contentType, messageDigest }
       │ messageDigest = H(eContent)
       ▼
    LDS security object { H(DG1), H(DG2), …, H(DG13), … }
       │ each supplied data group hashes to its entry
       ▼
    DG1, DG13, … as read from the chip

Pure: the SOD, the data groups, the CSCA certificates and ``now`` go in; a
:class:`PassiveAuthResult` or an :class:`~kiosk_bridge.errors.IdentityRefused` comes out.
Only :func:`load_trust_store` touches files (call it once at start-up, off the event loop).
SHA-1 is refused throughout: the CCCD has been issued with SHA-2 since its start (2021).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from kiosk_bridge.errors import ConfigurationError, IdentityRefused, RefusalReason
from kiosk_bridge.lds import LDS_SECURITY_OBJECT_OID, SecurityObject, parse_sod

logger = logging.getLogger(__name__)

_HASHES: Final[Mapping[str, type[hashes.HashAlgorithm]]] = {
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_TRUST_STORE_SUFFIXES: Final = (".pem", ".crt", ".cer")


@dataclass(frozen=True, slots=True, kw_only=True)
class PassiveAuthResult:
    """What passive authentication established: who signed, under which CSCA, which groups."""

    document_signer: str
    csca: str
    hash_algorithm: str
    verified_data_groups: frozenset[int]


def verify_passive_auth(
    sod: SecurityObject | bytes,
    data_groups: Mapping[int, bytes],
    *,
    cscas: Sequence[x509.Certificate],
    now: datetime,
) -> PassiveAuthResult:
    """Verify the whole chain above for ``data_groups`` (data-group number → bytes).

    ``now`` must be timezone-aware.  Every supplied data group must be listed in the SOD and
    hash to its entry; groups the SOD lists but that were not supplied are not checked.
    """
    security = parse_sod(sod) if isinstance(sod, bytes) else sod
    signer = verify_sod_integrity(security, data_groups)
    _check_validity(
        signer,
        now=now,
        expired=RefusalReason.DS_CERTIFICATE_EXPIRED,
        not_yet=RefusalReason.DS_CERTIFICATE_NOT_YET_VALID,
        what="document-signer certificate",
    )
    csca = _issuing_csca(signer, cscas)
    _check_validity(
        csca,
        now=now,
        expired=RefusalReason.CSCA_EXPIRED,
        not_yet=RefusalReason.CSCA_NOT_YET_VALID,
        what="CSCA certificate",
    )
    return PassiveAuthResult(
        document_signer=signer.subject.rfc4514_string(),
        csca=csca.subject.rfc4514_string(),
        hash_algorithm=security.hash_algorithm,
        verified_data_groups=frozenset(data_groups),
    )


def verify_sod_integrity(
    security: SecurityObject, data_groups: Mapping[int, bytes]
) -> x509.Certificate:
    """Check the SOD's signature with the certificate it carries, and the data-group hashes.

    This proves the data is unchanged since the document signer signed it, not that the
    signer is trusted (that is :func:`verify_passive_auth`).  Returns the signer certificate.
    """
    signer = _verify_signature(security)
    verify_data_group_hashes(security, data_groups)
    return signer


def verify_data_group_hashes(security: SecurityObject, data_groups: Mapping[int, bytes]) -> None:
    """Every supplied data group is listed in the SOD and hashes to its entry."""
    algorithm = _hash(security.hash_algorithm)
    for number, content in sorted(data_groups.items()):
        expected = security.data_group_hashes.get(number)
        if expected is None:
            raise IdentityRefused(
                RefusalReason.DG_NOT_IN_SOD,
                f"DG{number} was supplied but the SOD lists no hash for it.",
                details={"data_group": str(number)},
            )
        actual = hashlib.new(algorithm.name, content).digest()
        if not hmac.compare_digest(actual, expected):
            raise IdentityRefused(
                RefusalReason.DG_HASH_MISMATCH,
                f"DG{number} does not match the hash the SOD signs: it was altered.",
                details={"data_group": str(number)},
            )


def load_trust_store(directory: Path) -> tuple[x509.Certificate, ...]:
    """Load the CSCA certificates from the PEM files (``*.pem``, ``*.crt``, ``*.cer``) in
    ``directory``; a file may hold several.  Blocking file I/O.

    Raises :class:`~kiosk_bridge.errors.ConfigurationError` when the directory cannot be read,
    a file is not PEM certificates, a certificate is not a CA, or none is found: a cabin that
    silently trusted nothing would refuse every card.
    """
    try:
        paths = sorted(
            path
            for path in directory.iterdir()
            if path.is_file() and path.suffix.lower() in _TRUST_STORE_SUFFIXES
        )
        certificates: list[x509.Certificate] = []
        for path in paths:
            try:
                loaded = x509.load_pem_x509_certificates(path.read_bytes())
            except ValueError as exc:
                raise ConfigurationError(f"{path} is not PEM certificates: {exc}") from None
            for certificate in loaded:
                if not _is_ca(certificate):
                    raise ConfigurationError(f"{path} holds a certificate that is not a CA")
            certificates += loaded
    except OSError as exc:
        raise ConfigurationError(f"cannot read the CSCA trust store {directory}: {exc}") from None
    if not certificates:
        raise ConfigurationError(f"the CSCA trust store {directory} holds no certificates")
    logger.info("loaded %d CSCA certificate(s) from %s", len(certificates), directory)
    return tuple(certificates)


def _verify_signature(security: SecurityObject) -> x509.Certificate:
    if security.content_type_attribute != LDS_SECURITY_OBJECT_OID:
        raise IdentityRefused(
            RefusalReason.SOD_MALFORMED,
            "The SOD's signed content-type attribute is not the LDS security object.",
        )
    digest = hashlib.new(_hash(security.digest_algorithm).name, security.signed_content).digest()
    if not hmac.compare_digest(digest, security.message_digest):
        raise _invalid_signature("the signed message digest does not match the SOD's content")
    try:
        signer = x509.load_der_x509_certificate(security.document_signer)
        public_key = signer.public_key()
        may_sign = _may_sign_documents(signer)
    except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion) as exc:
        raise IdentityRefused(
            RefusalReason.SOD_MALFORMED, f"The document-signer certificate is unreadable ({exc})."
        ) from None
    if not may_sign:
        raise _invalid_signature("the document-signer certificate may not sign")
    algorithm = security.signature_algorithm
    chosen = _hash(algorithm.hash)
    try:
        if algorithm.scheme == "ecdsa" and isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(security.signature, security.signed_attributes, ec.ECDSA(chosen))
        elif algorithm.scheme == "rsassa_pkcs1v15" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(
                security.signature, security.signed_attributes, padding.PKCS1v15(), chosen
            )
        elif algorithm.scheme == "rsassa_pss" and isinstance(public_key, rsa.RSAPublicKey):
            salt = algorithm.salt_length
            pss = padding.PSS(
                mgf=padding.MGF1(_hash(algorithm.mgf_hash or algorithm.hash)),
                salt_length=chosen.digest_size if salt is None else salt,
            )
            public_key.verify(security.signature, security.signed_attributes, pss, chosen)
        elif algorithm.scheme in {"ecdsa", "rsassa_pkcs1v15", "rsassa_pss"}:
            raise _invalid_signature("the signature algorithm does not fit the signer's key")
        else:
            raise IdentityRefused(
                RefusalReason.SOD_ALGORITHM_UNSUPPORTED,
                f"The SOD is signed with {algorithm.scheme}, which is not accepted.",
            )
    except (InvalidSignature, ValueError, UnsupportedAlgorithm):
        # ValueError: parameters the key cannot honour (e.g. a PSS salt longer than it allows)
        raise _invalid_signature("the SOD's signature does not verify") from None
    return signer


def _issuing_csca(signer: x509.Certificate, cscas: Sequence[x509.Certificate]) -> x509.Certificate:
    for csca in cscas:
        if csca.subject != signer.issuer or not _is_ca(csca):
            continue
        try:
            signer.verify_directly_issued_by(csca)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue  # same name, other key (a CSCA rollover): try the next one
        return csca
    raise IdentityRefused(
        RefusalReason.CSCA_UNKNOWN,
        "The document signer was not issued by any trusted CSCA.",
        details={"issuer": signer.issuer.rfc4514_string()},
    )


def _check_validity(
    certificate: x509.Certificate,
    *,
    now: datetime,
    expired: RefusalReason,
    not_yet: RefusalReason,
    what: str,
) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if now < certificate.not_valid_before_utc:
        raise IdentityRefused(
            not_yet,
            f"The {what} is not valid before {certificate.not_valid_before_utc:%Y-%m-%d}.",
            details={"not_before": certificate.not_valid_before_utc.isoformat()},
        )
    if now > certificate.not_valid_after_utc:
        raise IdentityRefused(
            expired,
            f"The {what} expired on {certificate.not_valid_after_utc:%Y-%m-%d}.",
            details={"not_after": certificate.not_valid_after_utc.isoformat()},
        )


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return constraints.value.ca


def _may_sign_documents(certificate: x509.Certificate) -> bool:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    except x509.ExtensionNotFound:
        return True  # ICAO requires the extension, but its absence restricts nothing
    return usage.value.digital_signature


def _hash(name: str) -> hashes.HashAlgorithm:
    factory = _HASHES.get(name)
    if factory is None:
        raise IdentityRefused(
            RefusalReason.SOD_ALGORITHM_UNSUPPORTED,
            f"The SOD uses the hash algorithm {name}, which is not accepted.",
        )
    return factory()


def _invalid_signature(sentence: str) -> IdentityRefused:
    return IdentityRefused(
        RefusalReason.SOD_SIGNATURE_INVALID, sentence[0].upper() + sentence[1:] + "."
    )
