"""Passive authentication: the SOD signature, the chain to a CSCA, validity, DG hashes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kiosk_bridge.errors import ConfigurationError, IdentityRefused, RefusalReason
from kiosk_bridge.lds import SignatureAlgorithm, parse_sod
from kiosk_bridge.passive_auth import (
    load_trust_store,
    verify_data_group_hashes,
    verify_passive_auth,
    verify_sod_integrity,
)
from kiosk_bridge.testcards import (
    DocumentSigner,
    SyntheticCsca,
    make_csca,
    make_document_signer,
    make_sod,
)

NOW = datetime(2025, 11, 1, 3, 0, tzinfo=UTC)
YEAR = timedelta(days=365)
GROUPS = {1: b"dg1 bytes", 13: b"dg13 bytes", 14: b"dg14 bytes"}


@dataclass(frozen=True)
class Pki:
    """Everything a test needs, generated once for the module."""

    csca: SyntheticCsca
    signer: DocumentSigner
    rsa_csca: SyntheticCsca
    rsa_signer: DocumentSigner
    rsa_pss_signer: DocumentSigner
    rogue_csca: SyntheticCsca
    same_name_csca: SyntheticCsca
    expired_signer: DocumentSigner
    future_signer: DocumentSigner
    expired_csca: SyntheticCsca
    signer_of_expired_csca: DocumentSigner


@pytest.fixture(scope="module")
def pki() -> Pki:
    start, end = NOW - YEAR, NOW + 10 * YEAR
    csca = make_csca(not_before=start, not_after=end)
    rsa_csca = make_csca(name="CSCA TEST VNM RSA", key_kind="rsa", not_before=start, not_after=end)
    expired_csca = make_csca(name="CSCA TEST OLD", not_before=NOW - 10 * YEAR, not_after=NOW - YEAR)
    return Pki(
        csca=csca,
        signer=make_document_signer(csca, not_before=NOW - YEAR, not_after=NOW + 5 * YEAR),
        rsa_csca=rsa_csca,
        rsa_signer=make_document_signer(rsa_csca, key_kind="rsa"),
        rsa_pss_signer=make_document_signer(rsa_csca, key_kind="rsa", pss=True),
        rogue_csca=make_csca(name="CSCA ROGUE"),
        same_name_csca=make_csca(),  # same subject as `csca`, another key
        expired_signer=make_document_signer(
            csca, not_before=NOW - 6 * YEAR, not_after=NOW - timedelta(days=1)
        ),
        future_signer=make_document_signer(
            csca, not_before=NOW + timedelta(days=1), not_after=NOW + 5 * YEAR
        ),
        expired_csca=expired_csca,
        signer_of_expired_csca=make_document_signer(
            expired_csca, not_before=NOW - YEAR, not_after=NOW + YEAR
        ),
    )


def _refusal(
    pki: Pki, sod: bytes, groups: dict[int, bytes], cscas: list[SyntheticCsca]
) -> RefusalReason:
    with pytest.raises(IdentityRefused) as caught:
        verify_passive_auth(sod, groups, cscas=[c.certificate for c in cscas], now=NOW)
    return caught.value.reason


def test_an_ecdsa_signed_sod_chained_to_the_csca_passes(pki: Pki) -> None:
    sod = make_sod(GROUPS, signer=pki.signer)
    result = verify_passive_auth(sod, GROUPS, cscas=[pki.csca.certificate], now=NOW)
    assert result.verified_data_groups == {1, 13, 14}
    assert result.hash_algorithm == "sha256"
    assert "DS TEST VNM 01" in result.document_signer
    assert "CSCA TEST VNM" in result.csca


@pytest.mark.parametrize("scheme", ["pkcs1v15", "pss"])
@pytest.mark.parametrize("hash_algorithm", ["sha256", "sha384", "sha512"])
def test_rsa_signed_sods_pass(pki: Pki, scheme: str, hash_algorithm: str) -> None:
    sod = make_sod(GROUPS, signer=pki.rsa_signer, scheme=scheme, hash_algorithm=hash_algorithm)  # type: ignore[arg-type]
    verify_passive_auth(sod, GROUPS, cscas=[pki.rsa_csca.certificate], now=NOW)


def test_a_document_signer_certified_with_rsa_pss_passes(pki: Pki) -> None:
    sod = make_sod(GROUPS, signer=pki.rsa_pss_signer, scheme="pss")
    verify_passive_auth(sod, GROUPS, cscas=[pki.rsa_csca.certificate], now=NOW)


@pytest.mark.parametrize("hash_algorithm", ["sha224", "sha384", "sha512"])
def test_other_sha2_hashes_pass(pki: Pki, hash_algorithm: str) -> None:
    sod = make_sod(GROUPS, signer=pki.signer, hash_algorithm=hash_algorithm)
    verify_passive_auth(sod, GROUPS, cscas=[pki.csca.certificate], now=NOW)


def test_only_the_supplied_groups_are_checked(pki: Pki) -> None:
    sod = make_sod(GROUPS, signer=pki.signer)
    result = verify_passive_auth(sod, {13: GROUPS[13]}, cscas=[pki.csca.certificate], now=NOW)
    assert result.verified_data_groups == {13}


def test_a_changed_data_group_is_a_hash_mismatch(pki: Pki) -> None:
    sod = make_sod(GROUPS, signer=pki.signer)
    changed = {**GROUPS, 13: b"dg13 bytes, altered"}
    with pytest.raises(IdentityRefused) as caught:
        verify_passive_auth(sod, changed, cscas=[pki.csca.certificate], now=NOW)
    assert caught.value.reason is RefusalReason.DG_HASH_MISMATCH
    assert caught.value.details["data_group"] == "13"


def test_a_data_group_the_sod_does_not_list_is_refused(pki: Pki) -> None:
    sod = make_sod({1: GROUPS[1]}, signer=pki.signer)
    reason = _refusal(pki, sod, GROUPS, [pki.csca])
    assert reason is RefusalReason.DG_NOT_IN_SOD


@pytest.mark.parametrize("which", ["rogue", "same-name-other-key", "none"])
def test_a_signer_not_issued_by_a_trusted_csca_is_refused(pki: Pki, which: str) -> None:
    sod = make_sod(GROUPS, signer=pki.signer)
    trusted = {"rogue": [pki.rogue_csca], "same-name-other-key": [pki.same_name_csca], "none": []}
    assert _refusal(pki, sod, GROUPS, trusted[which]) is RefusalReason.CSCA_UNKNOWN


def test_the_right_csca_is_found_among_several(pki: Pki) -> None:
    sod = make_sod(GROUPS, signer=pki.signer)
    cscas = [pki.rogue_csca, pki.same_name_csca, pki.rsa_csca, pki.csca]
    result = verify_passive_auth(sod, GROUPS, cscas=[c.certificate for c in cscas], now=NOW)
    assert "CSCA TEST VNM" in result.csca


def test_an_expired_document_signer_is_refused(pki: Pki) -> None:
    sod = make_sod(GROUPS, signer=pki.expired_signer)
    with pytest.raises(IdentityRefused) as caught:
        verify_passive_auth(sod, GROUPS, cscas=[pki.csca.certificate], now=NOW)
    assert caught.value.reason is RefusalReason.DS_CERTIFICATE_EXPIRED
    assert caught.value.details["not_after"].startswith("2025-10-31")


def test_a_document_signer_not_yet_valid_is_refused(pki: Pki) -> None:
    sod = make_sod(GROUPS, signer=pki.future_signer)
    reason = _refusal(pki, sod, GROUPS, [pki.csca])
    assert reason is RefusalReason.DS_CERTIFICATE_NOT_YET_VALID


def test_an_expired_csca_is_refused(pki: Pki) -> None:
    sod = make_sod(GROUPS, signer=pki.signer_of_expired_csca)
    assert _refusal(pki, sod, GROUPS, [pki.expired_csca]) is RefusalReason.CSCA_EXPIRED


def test_a_csca_not_yet_valid_is_refused(pki: Pki) -> None:
    sod = make_sod(GROUPS, signer=pki.signer)
    with pytest.raises(IdentityRefused) as caught:
        verify_passive_auth(
            sod, GROUPS, cscas=[pki.csca.certificate], now=NOW - YEAR - timedelta(days=1)
        )
    # the signer's own validity starts at the same instant: whichever is checked first refuses
    assert caught.value.reason in {
        RefusalReason.CSCA_NOT_YET_VALID,
        RefusalReason.DS_CERTIFICATE_NOT_YET_VALID,
    }


def test_a_broken_signature_is_refused(pki: Pki) -> None:
    sod = make_sod(GROUPS, signer=pki.signer)
    decoded = parse_sod(sod)
    forged = replace(decoded, signature=decoded.signature[:-1] + bytes([decoded.signature[-1] ^ 1]))
    with pytest.raises(IdentityRefused) as caught:
        verify_passive_auth(forged, GROUPS, cscas=[pki.csca.certificate], now=NOW)
    assert caught.value.reason is RefusalReason.SOD_SIGNATURE_INVALID


def test_content_that_does_not_match_the_signed_digest_is_refused(pki: Pki) -> None:
    decoded = parse_sod(make_sod(GROUPS, signer=pki.signer))
    other = parse_sod(make_sod({1: b"other"}, signer=pki.signer))
    swapped = replace(
        decoded, signed_content=other.signed_content, data_group_hashes=other.data_group_hashes
    )
    with pytest.raises(IdentityRefused) as caught:
        verify_passive_auth(swapped, {1: b"other"}, cscas=[pki.csca.certificate], now=NOW)
    assert caught.value.reason is RefusalReason.SOD_SIGNATURE_INVALID


def test_a_sod_signed_by_another_key_than_its_certificate_is_refused(pki: Pki) -> None:
    decoded = parse_sod(make_sod(GROUPS, signer=pki.signer))
    impostor = parse_sod(make_sod(GROUPS, signer=pki.expired_signer))
    mixed = replace(decoded, signature=impostor.signature)
    with pytest.raises(IdentityRefused) as caught:
        verify_passive_auth(mixed, GROUPS, cscas=[pki.csca.certificate], now=NOW)
    assert caught.value.reason is RefusalReason.SOD_SIGNATURE_INVALID


def test_a_scheme_that_does_not_fit_the_key_is_refused(pki: Pki) -> None:
    decoded = parse_sod(make_sod(GROUPS, signer=pki.signer))
    wrong = replace(
        decoded, signature_algorithm=SignatureAlgorithm(scheme="rsassa_pss", hash="sha256")
    )
    with pytest.raises(IdentityRefused) as caught:
        verify_passive_auth(wrong, GROUPS, cscas=[pki.csca.certificate], now=NOW)
    assert caught.value.reason is RefusalReason.SOD_SIGNATURE_INVALID


@pytest.mark.parametrize(
    "change",
    [
        {"signature_algorithm": SignatureAlgorithm(scheme="dsa", hash="sha256")},
        {"signature_algorithm": SignatureAlgorithm(scheme="ecdsa", hash="sha1")},
        {"hash_algorithm": "sha1"},
        {"digest_algorithm": "md5"},
    ],
    ids=["dsa", "ecdsa-sha1", "sha1-group-hashes", "md5-digest"],
)
def test_weak_or_unknown_algorithms_are_refused(pki: Pki, change: dict[str, object]) -> None:
    decoded = parse_sod(make_sod(GROUPS, signer=pki.signer))
    with pytest.raises(IdentityRefused) as caught:
        verify_passive_auth(
            replace(decoded, **change),  # type: ignore[arg-type]
            GROUPS,
            cscas=[pki.csca.certificate],
            now=NOW,
        )
    assert caught.value.reason is RefusalReason.SOD_ALGORITHM_UNSUPPORTED


def test_a_content_type_attribute_that_is_not_the_lds_object_is_refused(pki: Pki) -> None:
    decoded = parse_sod(make_sod(GROUPS, signer=pki.signer))
    wrong = replace(decoded, content_type_attribute="1.2.840.113549.1.7.1")
    with pytest.raises(IdentityRefused) as caught:
        verify_passive_auth(wrong, GROUPS, cscas=[pki.csca.certificate], now=NOW)
    assert caught.value.reason is RefusalReason.SOD_MALFORMED


@pytest.mark.parametrize("problem", ["empty-sequence", "x509-version-114"])
def test_an_unreadable_signer_certificate_is_refused(pki: Pki, problem: str) -> None:
    decoded = parse_sod(make_sod(GROUPS, signer=pki.signer))
    der = decoded.document_signer
    version_3 = bytes.fromhex("a003020102")  # [0] { INTEGER 2 }: X.509 v3
    assert version_3 in der
    broken = (
        b"\x30\x00"
        if problem == "empty-sequence"
        else der.replace(version_3, b"\xa0\x03\x02\x01\x71", 1)
    )
    with pytest.raises(IdentityRefused) as caught:
        verify_passive_auth(
            replace(decoded, document_signer=broken),
            GROUPS,
            cscas=[pki.csca.certificate],
            now=NOW,
        )
    assert caught.value.reason is RefusalReason.SOD_MALFORMED


@pytest.mark.parametrize("salt_length", [0, 20, 32, 1000])
def test_pss_salt_lengths_are_honoured(pki: Pki, salt_length: int) -> None:
    decoded = parse_sod(make_sod(GROUPS, signer=pki.rsa_signer, scheme="pss"))
    assert decoded.signature_algorithm.salt_length == 32
    other = replace(
        decoded,
        signature_algorithm=replace(decoded.signature_algorithm, salt_length=salt_length),
    )
    if salt_length == 32:
        verify_passive_auth(other, GROUPS, cscas=[pki.rsa_csca.certificate], now=NOW)
        return
    with pytest.raises(IdentityRefused) as caught:
        verify_passive_auth(other, GROUPS, cscas=[pki.rsa_csca.certificate], now=NOW)
    assert caught.value.reason is RefusalReason.SOD_SIGNATURE_INVALID


def test_integrity_without_trust_needs_no_csca_but_still_catches_changes(pki: Pki) -> None:
    decoded = parse_sod(make_sod(GROUPS, signer=pki.signer))
    signer = verify_sod_integrity(decoded, GROUPS)
    assert signer == pki.signer.certificate
    with pytest.raises(IdentityRefused) as caught:
        verify_data_group_hashes(decoded, {**GROUPS, 1: b"changed"})
    assert caught.value.reason is RefusalReason.DG_HASH_MISMATCH


def test_now_must_be_timezone_aware(pki: Pki) -> None:
    sod = make_sod(GROUPS, signer=pki.signer)
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_passive_auth(sod, GROUPS, cscas=[pki.csca.certificate], now=NOW.replace(tzinfo=None))


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def test_the_trust_store_loads_every_pem_certificate(pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "vnm.pem").write_bytes(pki.csca.pem())
    (tmp_path / "bundle.crt").write_bytes(pki.rsa_csca.pem() + pki.rogue_csca.pem())
    (tmp_path / "README.txt").write_text("not a certificate")
    loaded = load_trust_store(tmp_path)
    assert set(loaded) == {
        pki.csca.certificate,
        pki.rsa_csca.certificate,
        pki.rogue_csca.certificate,
    }
    sod = make_sod(GROUPS, signer=pki.signer)
    verify_passive_auth(sod, GROUPS, cscas=loaded, now=NOW)


@pytest.mark.parametrize("problem", ["missing", "empty", "garbage", "not-a-ca"])
def test_an_unusable_trust_store_is_a_configuration_error(
    pki: Pki, tmp_path: Path, problem: str
) -> None:
    directory = tmp_path / "store"
    if problem != "missing":
        directory.mkdir()
    if problem == "garbage":
        (directory / "csca.pem").write_text("-----BEGIN CERTIFICATE-----\nnope\n")
    if problem == "not-a-ca":
        (directory / "ds.pem").write_bytes(_pem(pki.signer.certificate))
    with pytest.raises(ConfigurationError):
        load_trust_store(directory)
