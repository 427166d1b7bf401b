"""ICAO 9303 LDS structures of the CCCD chip: DG1 (the MRZ) and the SOD (security object).

DG1 wraps the MRZ text (90 characters for a TD1 card)::

    61 len                 [APPLICATION 1], the data group
      5F 1F len "IDVNM…"   [APPLICATION 31] PrintableString, the three lines concatenated

The SOD wraps a CMS SignedData whose signed content is the LDS security object::

    77 len                                 [APPLICATION 23]
      30 …  ContentInfo { id-signedData, SignedData {
              digestAlgorithms, encapContentInfo {
                eContentType 2.23.136.1.1.1 (id-icao-mrtd-security-ldsSecurityObject),
                eContent OCTET STRING ⟨LDSSecurityObject⟩ },
              certificates { document-signer certificate },
              signerInfos { one SignerInfo: sid, digestAlgorithm,
                signedAttrs { contentType, messageDigest = H(eContent), … },
                signatureAlgorithm, signature } } }

    LDSSecurityObject ::= SEQUENCE {
        version              INTEGER (0 | 1),
        hashAlgorithm        AlgorithmIdentifier,
        dataGroupHashValues  SEQUENCE OF SEQUENCE { dataGroupNumber INTEGER,
                                                    dataGroupHashValue OCTET STRING },
        ldsVersionInfo       SEQUENCE { ldsVersion, unicodeVersion } OPTIONAL }  -- version 1

This module decodes (and, for DG1 and the security object, encodes) these structures with
asn1crypto; verifying the signature and hashes is :mod:`kiosk_bridge.passive_auth`'s job.
Decoding failures are :class:`~kiosk_bridge.errors.IdentityRefused` with reason
``dg1_malformed`` or ``sod_malformed``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from asn1crypto import algos, cms, core, x509

from kiosk_bridge.errors import IdentityRefused, RefusalReason

logger = logging.getLogger(__name__)

LDS_SECURITY_OBJECT_OID: Final = "2.23.136.1.1.1"
MAX_DG1_BYTES: Final = 512
MAX_SOD_BYTES: Final = 32 * 1024
"""A real SOD (one document-signer certificate inside) is a few KiB."""

_DG1_EXPLICIT: Final = ("application", 1)
_SOD_EXPLICIT: Final = ("application", 23)
_DATA_GROUPS: Final = range(1, 17)
_DECODING_ERRORS: Final = (ValueError, TypeError, OverflowError, KeyError, IndexError)
_MAX_PSS_SALT: Final = 512


class _MrzInfo(core.PrintableString):  # type: ignore[misc]
    """The MRZ inside DG1: tag 5F1F."""

    class_ = 1
    tag = 31


class DataGroupHash(core.Sequence):  # type: ignore[misc]
    """One data group's number and hash value."""

    _fields = [  # noqa: RUF012 - asn1crypto's class-level schema
        ("data_group_number", core.Integer),
        ("data_group_hash_value", core.OctetString),
    ]


class DataGroupHashValues(core.SequenceOf):  # type: ignore[misc]
    _child_spec = DataGroupHash


class LdsVersionInfo(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("lds_version", core.PrintableString),
        ("unicode_version", core.PrintableString),
    ]


class LdsSecurityObject(core.Sequence):  # type: ignore[misc]
    """ICAO 9303 part 10, the content the document signer signs."""

    _fields = [  # noqa: RUF012
        ("version", core.Integer),
        ("hash_algorithm", algos.DigestAlgorithm),
        ("data_group_hash_values", DataGroupHashValues),
        ("lds_version_info", LdsVersionInfo, {"optional": True}),
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class SignatureAlgorithm:
    """How the SOD's signed attributes were signed.

    ``scheme`` is asn1crypto's name (``ecdsa``, ``rsassa_pkcs1v15``, ``rsassa_pss``, or
    whatever else the SOD names, which passive authentication then refuses); ``hash`` the
    digest the signature covers; for PSS, the MGF1 hash and the salt length.
    """

    scheme: str
    hash: str
    mgf_hash: str | None = None
    salt_length: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityObject:
    """A decoded SOD: the signed data-group hashes and everything needed to verify them.

    ``signed_content`` is the eContent exactly as signed (the DER of the LDS security
    object); ``signed_attributes`` is the DER of the signed attributes re-tagged as a SET OF,
    which is what the signature covers (RFC 5652 section 5.4); ``document_signer`` is the DER
    of the certificate the SignerInfo names.
    """

    version: int
    hash_algorithm: str
    data_group_hashes: Mapping[int, bytes]
    lds_version: str | None
    signed_content: bytes
    content_type: str
    signed_attributes: bytes
    message_digest: bytes
    content_type_attribute: str
    digest_algorithm: str
    signature_algorithm: SignatureAlgorithm
    signature: bytes
    document_signer: bytes

    def __repr__(self) -> str:
        groups = sorted(self.data_group_hashes)
        return f"SecurityObject(hash_algorithm={self.hash_algorithm!r}, data_groups={groups!r})"


def parse_dg1(data: bytes) -> str:
    """The MRZ text held by DG1 bytes (no line breaks; 90 characters for TD1)."""
    if len(data) > MAX_DG1_BYTES:
        raise _dg1_malformed(f"DG1 is {len(data)} bytes, more than the {MAX_DG1_BYTES} allowed")
    try:
        mrz = _MrzInfo.load(data, strict=True, explicit=_DG1_EXPLICIT).native
    except _DECODING_ERRORS as exc:
        raise _dg1_malformed(f"DG1 is not a 61 {{ 5F1F MRZ }} structure ({exc})") from None
    if not isinstance(mrz, str):
        raise _dg1_malformed("DG1 does not hold MRZ text")
    return mrz


def encode_dg1(mrz: str) -> bytes:
    """DG1 bytes for ``mrz`` (line breaks removed, as the chip stores it)."""
    text = "".join(mrz.split())
    return bytes(_MrzInfo(text, explicit=_DG1_EXPLICIT).dump())


def encode_lds_security_object(
    *, hash_algorithm: str, data_group_hashes: Mapping[int, bytes], lds_version: str | None = None
) -> bytes:
    """The DER of an LDS security object (version 1 with ``lds_version``, else version 0)."""
    hashes = DataGroupHashValues(
        [
            {"data_group_number": number, "data_group_hash_value": value}
            for number, value in sorted(data_group_hashes.items())
        ]
    )
    fields: dict[str, object] = {
        "version": 0 if lds_version is None else 1,
        "hash_algorithm": {"algorithm": hash_algorithm},
        "data_group_hash_values": hashes,
    }
    if lds_version is not None:
        fields["lds_version_info"] = {"lds_version": lds_version, "unicode_version": "040000"}
    return bytes(LdsSecurityObject(fields).dump())


def wrap_sod(content_info: bytes) -> bytes:
    """Wrap the DER of a CMS ContentInfo in the SOD's [APPLICATION 23] tag."""
    inner = cms.ContentInfo.load(content_info, strict=True)
    return bytes(cms.ContentInfo(explicit=_SOD_EXPLICIT, contents=inner.contents).dump())


def parse_sod(data: bytes) -> SecurityObject:
    """Decode SOD bytes into a :class:`SecurityObject` (no verification happens here).

    Refused (``sod_malformed``): not the layout above, not exactly one SignerInfo, no signed
    attributes or no single ``messageDigest``/``contentType`` among them, the signer's
    certificate missing, a data group number outside 1-16 or listed twice.
    """
    if len(data) > MAX_SOD_BYTES:
        raise _sod_malformed(f"the SOD is {len(data)} bytes, more than the {MAX_SOD_BYTES} allowed")
    try:
        return _decode_sod(data)
    except _DECODING_ERRORS as exc:
        raise _sod_malformed(f"the SOD is not a valid CMS SignedData ({exc})") from None


def _decode_sod(data: bytes) -> SecurityObject:
    info = cms.ContentInfo.load(data, strict=True, explicit=_SOD_EXPLICIT)
    if info["content_type"].native != "signed_data":
        raise _sod_malformed("the SOD does not hold a CMS SignedData")
    signed = info["content"]
    encap = signed["encap_content_info"]
    content_type = encap["content_type"].dotted
    if content_type != LDS_SECURITY_OBJECT_OID:
        raise _sod_malformed("the SOD's content is not an LDS security object")
    if encap["content"].native is None:
        raise _sod_malformed("the SOD has no encapsulated content")
    signed_content = bytes(encap["content"].contents)
    lds = LdsSecurityObject.load(signed_content, strict=True)
    hashes: dict[int, bytes] = {}
    for entry in lds["data_group_hash_values"]:
        number = entry["data_group_number"].native
        if number not in _DATA_GROUPS or number in hashes:
            raise _sod_malformed("the SOD lists a data group outside 1-16, or one twice")
        hashes[number] = bytes(entry["data_group_hash_value"].native)
    version_info = lds["lds_version_info"]
    lds_version = None if version_info.native is None else str(version_info["lds_version"].native)
    signer_infos = list(signed["signer_infos"])
    if len(signer_infos) != 1:
        raise _sod_malformed(f"the SOD has {len(signer_infos)} signer infos, not one")
    signer = signer_infos[0]
    attributes = signer["signed_attrs"]
    if attributes.native is None or len(attributes) == 0:
        raise _sod_malformed("the SOD's signer has no signed attributes")
    message_digest = _single_attribute(attributes, "message_digest")
    content_type_attribute = _single_attribute(attributes, "content_type")
    return SecurityObject(
        version=int(lds["version"].native),
        hash_algorithm=str(lds["hash_algorithm"]["algorithm"].native),
        data_group_hashes=MappingProxyType(hashes),
        lds_version=lds_version,
        signed_content=signed_content,
        content_type=content_type,
        # the signature covers the attributes as a SET OF, not as the [0] IMPLICIT they travel in
        signed_attributes=bytes(attributes.untag().dump()),
        message_digest=bytes(message_digest.native),
        content_type_attribute=str(content_type_attribute.dotted),
        digest_algorithm=str(signer["digest_algorithm"]["algorithm"].native),
        signature_algorithm=_signature_algorithm(signer),
        signature=bytes(signer["signature"].native),
        document_signer=_signer_certificate(signed, signer["sid"]),
    )


def _single_attribute(attributes: cms.CMSAttributes, name: str) -> core.Asn1Value:
    found = [attribute for attribute in attributes if attribute["type"].native == name]
    if len(found) != 1 or len(found[0]["values"]) != 1:
        raise _sod_malformed(f"the SOD's signed attributes lack a single {name}")
    return found[0]["values"][0]


def _signature_algorithm(signer: cms.SignerInfo) -> SignatureAlgorithm:
    algorithm = signer["signature_algorithm"]
    scheme = str(algorithm.signature_algo)
    if scheme == "rsassa_pss":
        params = algorithm["parameters"]
        mgf = params["mask_gen_algorithm"]
        salt_length = int(params["salt_length"].native)
        if not 0 <= salt_length <= _MAX_PSS_SALT:
            raise _sod_malformed("the SOD's RSA-PSS salt length is out of range")
        return SignatureAlgorithm(
            scheme=scheme,
            hash=str(params["hash_algorithm"]["algorithm"].native),
            mgf_hash=str(mgf["parameters"]["algorithm"].native),
            salt_length=salt_length,
        )
    try:
        hash_name = str(algorithm.hash_algo)
    except ValueError:
        # a bare key algorithm (rsaEncryption): the hash is the SignerInfo's digest algorithm
        hash_name = str(signer["digest_algorithm"]["algorithm"].native)
    return SignatureAlgorithm(scheme=scheme, hash=hash_name)


def _signer_certificate(signed: cms.SignedData, sid: cms.SignerIdentifier) -> bytes:
    for choice in signed["certificates"] or []:
        if choice.name != "certificate":
            continue
        certificate: x509.Certificate = choice.chosen
        if _identifies(sid, certificate):
            return bytes(certificate.dump())
    raise _sod_malformed("the SOD does not carry the certificate of its signer")


def _identifies(sid: cms.SignerIdentifier, certificate: x509.Certificate) -> bool:
    if sid.name == "issuer_and_serial_number":
        chosen = sid.chosen
        return bool(
            chosen["issuer"] == certificate.issuer
            and chosen["serial_number"].native == certificate.serial_number
        )
    return bool(sid.chosen.native == certificate.key_identifier)


def _dg1_malformed(sentence: str) -> IdentityRefused:
    return IdentityRefused(RefusalReason.DG1_MALFORMED, sentence[0].upper() + sentence[1:] + ".")


def _sod_malformed(sentence: str) -> IdentityRefused:
    return IdentityRefused(RefusalReason.SOD_MALFORMED, sentence[0].upper() + sentence[1:] + ".")
