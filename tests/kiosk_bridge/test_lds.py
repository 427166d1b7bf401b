"""DG1 and the SOD: byte fixtures, decoding what the test-card factory signs, hostile bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import algos, cms
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk_bridge.errors import IdentityRefused, RefusalReason
from kiosk_bridge.lds import (
    LDS_SECURITY_OBJECT_OID,
    MAX_DG1_BYTES,
    MAX_SOD_BYTES,
    LdsSecurityObject,
    encode_dg1,
    encode_lds_security_object,
    parse_dg1,
    parse_sod,
    wrap_sod,
)
from kiosk_bridge.testcards import DocumentSigner, make_csca, make_document_signer, make_sod

NOW = datetime(2025, 11, 1, 3, 0, tzinfo=UTC)
MRZ = "IDVNM0850098761001085009876<<28504124M4504126VNM<<<<<<<<<<<8NGUYEN<<VAN<BINH<<<<<<<<<<<<<<"
DG1 = bytes.fromhex("615d5f1f5a") + MRZ.encode("ascii")
GROUPS = {1: DG1, 13: b"\x6d\x03\x30\x01\x00", 2: b"face"}


def _refusal_of(parse: Callable[[], object]) -> RefusalReason | None:
    """The reason ``parse`` was refused with, or ``None`` if it succeeded."""
    try:
        parse()
    except IdentityRefused as refused:
        return refused.reason
    return None


@pytest.fixture(scope="module")
def ec_signer() -> DocumentSigner:
    csca = make_csca(not_before=NOW - timedelta(days=365), not_after=NOW + timedelta(days=3650))
    return make_document_signer(csca)


@pytest.fixture(scope="module")
def rsa_signer() -> DocumentSigner:
    csca = make_csca(key_kind="rsa")
    return make_document_signer(csca, key_kind="rsa")


@pytest.fixture(scope="module")
def sod(ec_signer: DocumentSigner) -> bytes:
    return make_sod(GROUPS, signer=ec_signer)


def test_dg1_byte_fixture_holds_the_mrz() -> None:
    assert parse_dg1(DG1) == MRZ


def test_dg1_encoding_drops_line_breaks() -> None:
    lines = "\n".join(MRZ[i : i + 30] for i in (0, 30, 60))
    assert encode_dg1(lines) == DG1


@pytest.mark.parametrize(
    "data",
    [
        b"",
        DG1[:-1],
        DG1 + b"\x00",
        b"\x62" + DG1[1:],  # another data group's tag
        bytes.fromhex("6103") + bytes.fromhex("040141"),  # an OCTET STRING, not 5F1F
        b"\x61\x82" + MAX_DG1_BYTES.to_bytes(2, "big") + b"\x00" * MAX_DG1_BYTES,
    ],
    ids=["empty", "truncated", "trailing", "wrong-tag", "wrong-inner-tag", "oversized"],
)
def test_malformed_dg1_is_refused(data: bytes) -> None:
    with pytest.raises(IdentityRefused) as caught:
        parse_dg1(data)
    assert caught.value.reason is RefusalReason.DG1_MALFORMED


def test_a_sod_decodes_to_its_hashes_and_signer(sod: bytes, ec_signer: DocumentSigner) -> None:
    decoded = parse_sod(sod)
    assert decoded.hash_algorithm == "sha256"
    assert decoded.version == 1
    assert decoded.lds_version == "0108"
    assert decoded.content_type == LDS_SECURITY_OBJECT_OID
    assert decoded.content_type_attribute == LDS_SECURITY_OBJECT_OID
    assert dict(decoded.data_group_hashes) == {
        number: hashlib.sha256(data).digest() for number, data in GROUPS.items()
    }
    assert decoded.message_digest == hashlib.sha256(decoded.signed_content).digest()
    assert decoded.signature_algorithm.scheme == "ecdsa"
    assert decoded.signature_algorithm.hash == "sha256"
    assert decoded.signed_attributes[0] == 0x31  # re-tagged as SET OF for verification
    assert decoded.document_signer == ec_signer.certificate.public_bytes(Encoding.DER)


def test_the_sod_starts_with_application_23(sod: bytes) -> None:
    assert sod[0] == 0x77


@pytest.mark.parametrize(
    ("scheme", "expected"), [("pkcs1v15", "rsassa_pkcs1v15"), ("pss", "rsassa_pss")]
)
def test_rsa_signature_algorithms_are_decoded(
    rsa_signer: DocumentSigner, scheme: str, expected: str
) -> None:
    decoded = parse_sod(make_sod(GROUPS, signer=rsa_signer, scheme=scheme, hash_algorithm="sha384"))  # type: ignore[arg-type]
    assert decoded.signature_algorithm.scheme == expected
    assert decoded.signature_algorithm.hash == "sha384"
    if scheme == "pss":
        assert decoded.signature_algorithm.mgf_hash == "sha384"
        assert decoded.signature_algorithm.salt_length == 48


def test_a_version_0_security_object_has_no_lds_version() -> None:
    content = encode_lds_security_object(hash_algorithm="sha256", data_group_hashes={1: b"h" * 32})
    decoded = LdsSecurityObject.load(content)
    assert decoded["version"].native == 0
    assert decoded["lds_version_info"].native is None


def _resigned(sod: bytes, mutate: object) -> bytes:
    """A SOD re-encoded after ``mutate(signed_data)`` changed it (structure tests only)."""
    info = cms.ContentInfo.load(sod, explicit=("application", 23))
    signed = info["content"]
    mutate(signed)  # type: ignore[operator]
    content_info = cms.ContentInfo({"content_type": "signed_data", "content": signed.copy()})
    return wrap_sod(bytes(content_info.dump(force=True)))


def _two_signers(signed: cms.SignedData) -> None:
    signer = signed["signer_infos"][0]
    signed["signer_infos"] = [signer, signer]


def _no_certificates(signed: cms.SignedData) -> None:
    signed["certificates"] = []


def _no_signed_attributes(signed: cms.SignedData) -> None:
    signed["signer_infos"][0]["signed_attrs"] = None


def _other_content_type(signed: cms.SignedData) -> None:
    signed["encap_content_info"] = {"content_type": "data", "content": b"x"}


def _duplicate_data_group(signed: cms.SignedData) -> None:
    content = encode_lds_security_object(hash_algorithm="sha256", data_group_hashes={1: b"a" * 32})
    lds = LdsSecurityObject.load(content)
    hashes = lds["data_group_hash_values"]
    lds["data_group_hash_values"] = [hashes[0], hashes[0]]
    signed["encap_content_info"] = {
        "content_type": LDS_SECURITY_OBJECT_OID,
        "content": lds.dump(force=True),
    }


def _negative_pss_salt(signed: cms.SignedData) -> None:
    parameters = algos.RSASSAPSSParams(
        {
            "hash_algorithm": {"algorithm": "sha256"},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
            "salt_length": -1,
        }
    )
    signed["signer_infos"][0]["signature_algorithm"] = algos.SignedDigestAlgorithm(
        {"algorithm": "rsassa_pss", "parameters": parameters}
    )


@pytest.mark.parametrize(
    "mutate",
    [
        _negative_pss_salt,
        _two_signers,
        _no_certificates,
        _no_signed_attributes,
        _other_content_type,
        _duplicate_data_group,
    ],
)
def test_a_sod_of_the_wrong_shape_is_refused(sod: bytes, mutate: object) -> None:
    with pytest.raises(IdentityRefused) as caught:
        parse_sod(_resigned(sod, mutate))
    assert caught.value.reason is RefusalReason.SOD_MALFORMED


def test_a_bare_content_info_without_the_sod_tag_is_refused(sod: bytes) -> None:
    wrapped = cms.ContentInfo.load(sod, explicit=("application", 23))
    bare = bytes(cms.ContentInfo(contents=wrapped.contents).dump())
    assert bare[0] == 0x30
    with pytest.raises(IdentityRefused) as caught:
        parse_sod(bare)
    assert caught.value.reason is RefusalReason.SOD_MALFORMED


def test_an_oversized_sod_is_refused_before_decoding() -> None:
    with pytest.raises(IdentityRefused) as caught:
        parse_sod(b"\x77" + b"\x00" * MAX_SOD_BYTES)
    assert caught.value.reason is RefusalReason.SOD_MALFORMED


def test_every_truncation_is_refused(sod: bytes) -> None:
    for cut in range(0, len(sod), 7):
        with pytest.raises(IdentityRefused) as caught:
            parse_sod(sod[:cut])
        assert caught.value.reason is RefusalReason.SOD_MALFORMED


@given(st.binary(max_size=4096))
def test_any_bytes_are_decoded_or_refused_with_a_reason(data: bytes) -> None:
    assert _refusal_of(lambda: parse_sod(data)) in {None, RefusalReason.SOD_MALFORMED}
    assert _refusal_of(lambda: parse_dg1(data)) in {None, RefusalReason.DG1_MALFORMED}


@settings(max_examples=300)
@given(position=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255))
def test_any_changed_sod_byte_is_decoded_or_refused_with_a_reason(
    sod: bytes, position: int, value: int
) -> None:
    data = bytearray(sod)
    data[position % len(data)] = value
    assert _refusal_of(lambda: parse_sod(bytes(data))) in {None, RefusalReason.SOD_MALFORMED}


def test_repr_shows_only_the_structure(sod: bytes) -> None:
    assert repr(parse_sod(sod)) == "SecurityObject(hash_algorithm='sha256', data_groups=[1, 2, 13])"
