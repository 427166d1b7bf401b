"""Synthetic CCCD cards, their PKI and kiosk assertions: for tests and the kiosk simulator.

Everything here is fake and says so: citizens carry the middle name "Thử Nghiệm" ("test"),
ID numbers start with province code 099 (no such province), certificates are issued by a
"TEST" CSCA generated on the spot.  Never put real people's data in here.

::

    make_csca() ──▶ SyntheticCsca ──make_document_signer()──▶ DocumentSigner
    synthetic_citizen(seed) ──▶ Citizen ──issue_card(citizen, signer=…)──▶ ChipData
                                                          (DG1, DG13, SOD; optional DG2)
    make_kiosk() ──▶ SyntheticKiosk ──.jwks() / .assertion(citizen, audience=…, now=…)──▶ JWT

Knobs break a card the ways the refusal matrix needs (:class:`Tamper`): a bad MRZ check
digit, a DG13 ID that differs from the MRZ, a birth-date mismatch, DG13 altered after
signing, a broken SOD signature, a data group left out of the SOD; an expired card is a
citizen with ``card_expiry`` in the past, an expired document signer one made with
``not_after`` in the past, a wrong CSCA one made by another :func:`make_csca`.

Key generation costs milliseconds for EC and ~0.1 s for RSA: make keys once per test module.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Final, Literal

import jwt
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from kiosk_bridge.dg13 import PersonalData, encode_dg13
from kiosk_bridge.identity import Sex
from kiosk_bridge.intake import ChipData
from kiosk_bridge.lds import (
    LDS_SECURITY_OBJECT_OID,
    encode_dg1,
    encode_lds_security_object,
    wrap_sod,
)
from kiosk_bridge.mrz import TD1, cccd_optional_data, format_td1

TEST_PROVINCE: Final = "099"
"""Not a real province code: every synthetic CCCD starts with it."""

KeyKind = Literal["ec", "rsa"]
SignatureScheme = Literal["ecdsa", "pkcs1v15", "pss"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_SURNAMES: Final = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Võ", "Đặng", "Bùi")
_GIVEN_NAMES: Final = ("An", "Bình", "Cúc", "Dũng", "Hoa", "Lan", "Minh", "Tâm", "Đào")
_TEST_MIDDLE_NAME: Final = "Thử Nghiệm"
_HASHES: Final[Mapping[str, type[hashes.HashAlgorithm]]] = {
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_EXPIRY_AGES: Final = (25, 40, 60)
"""A CCCD is renewed at 25, 40 and 60; from 60 on it has no expiry."""


class Tamper(StrEnum):
    """Ways to break a synthetic card."""

    BAD_MRZ_CHECK_DIGIT = "bad_mrz_check_digit"
    MISMATCHED_ID = "mismatched_id"
    BIRTH_DATE_MISMATCH = "birth_date_mismatch"
    DG13_AFTER_SIGNING = "dg13_after_signing"
    SOD_SIGNATURE = "sod_signature"
    DG13_NOT_IN_SOD = "dg13_not_in_sod"


@dataclass(frozen=True, slots=True, kw_only=True)
class Citizen:
    """A synthetic resident with everything a CCCD holds about them."""

    cccd: str
    surname: str
    given_names: str
    birth_date: date
    sex: Sex
    issue_date: date
    card_expiry: date | None
    ethnicity: str = "Kinh"
    religion: str = "Không"
    place_of_origin: str = "Xã Thử Nghiệm, Tỉnh Mẫu"
    residence: str = "Số 0 Đường Thử Nghiệm, Phường Mẫu, TP. Hồ Chí Minh"
    identifying_marks: str = "Nốt ruồi mẫu cách 1cm trên mép trái"
    father_name: str | None = "Trần Thử Nghiệm Cha"
    mother_name: str | None = "Lê Thử Nghiệm Mẹ"
    spouse_name: str | None = None
    bhyt: str | None = None

    @property
    def full_name(self) -> str:
        return f"{self.surname} {self.given_names}"

    def personal_data(self) -> PersonalData:
        """The citizen's DG13 fields, written as the card writes them."""
        return PersonalData(
            id_number=self.cccd,
            full_name=self.full_name,
            birth_date=self.birth_date.strftime("%d/%m/%Y"),
            sex="Nam" if self.sex is Sex.MALE else "Nữ",
            nationality="Việt Nam",
            ethnicity=self.ethnicity,
            religion=self.religion,
            place_of_origin=self.place_of_origin,
            residence=self.residence,
            identifying_marks=self.identifying_marks,
            issue_date=self.issue_date.strftime("%d/%m/%Y"),
            expiry_date=(
                "Không thời hạn"
                if self.card_expiry is None
                else self.card_expiry.strftime("%d/%m/%Y")
            ),
            father_name=self.father_name,
            mother_name=self.mother_name,
            spouse_name=self.spouse_name,
        )

    def td1(self) -> TD1:
        """The citizen's MRZ as values (names transliterated to A-Z)."""
        return TD1(
            document_code="ID",
            issuing_state="VNM",
            document_number=self.cccd[-9:],
            optional_data_1=cccd_optional_data(self.cccd),
            birth_date=self.birth_date,
            sex=self.sex,
            expiry_date=self.card_expiry,
            nationality="VNM",
            optional_data_2="",
            primary_identifier=transliterate(self.surname),
            secondary_identifier=transliterate(self.given_names),
        )

    def claims(self) -> dict[str, Any]:
        """The identity claims of a kiosk assertion for this citizen."""
        return {
            "cccd": self.cccd,
            "name": self.full_name,
            "birth_date": self.birth_date.isoformat(),
            "sex": self.sex.value,
            "bhyt": self.bhyt,
            "card_expiry": None if self.card_expiry is None else self.card_expiry.isoformat(),
        }


def synthetic_citizen(
    seed: int,
    *,
    today: date,
    birth_date: date | None = None,
    sex: Sex | None = None,
    card_expiry: date | Literal["rules"] | None = "rules",
) -> Citizen:
    """A reproducible fake citizen: the same ``seed`` gives the same person.

    ``card_expiry="rules"`` applies the renewal ages (next 25th/40th/60th birthday; none
    from 60); pass a date (e.g. one in the past for an expired card) or ``None``.
    """
    rng = random.Random(seed)
    born = birth_date or today - timedelta(days=rng.randint(18 * 365, 90 * 365))
    chosen_sex = sex or rng.choice((Sex.MALE, Sex.FEMALE))
    century = 0 if born.year < 2000 else 2
    sex_digit = century + (0 if chosen_sex is Sex.MALE else 1)
    cccd = f"{TEST_PROVINCE}{sex_digit}{born:%y}{rng.randrange(10**6):06d}"
    surname = rng.choice(_SURNAMES)
    given = f"{_TEST_MIDDLE_NAME} {rng.choice(_GIVEN_NAMES)}"
    expiry = _renewal_expiry(born, today) if card_expiry == "rules" else card_expiry
    return Citizen(
        cccd=cccd,
        surname=surname,
        given_names=given,
        birth_date=born,
        sex=chosen_sex,
        issue_date=today - timedelta(days=rng.randint(30, 3 * 365)),
        card_expiry=expiry,
        bhyt=f"DN4{rng.randrange(10**12):012d}",
    )


def transliterate(name: str) -> str:
    """Vietnamese to MRZ letters: diacritics dropped, Đ → D, upper case."""
    decomposed = unicodedata.normalize("NFD", name.replace("Đ", "D").replace("đ", "d"))
    return "".join(char for char in decomposed if not unicodedata.combining(char)).upper()


@dataclass(frozen=True, slots=True)
class SyntheticCsca:
    """A self-signed test country-signing CA."""

    key: PrivateKey
    certificate: x509.Certificate

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True, slots=True)
class DocumentSigner:
    """A test document signer: its key and the certificate its CSCA issued."""

    key: PrivateKey
    certificate: x509.Certificate


def make_csca(
    *,
    name: str = "CSCA TEST VNM",
    key_kind: KeyKind = "ec",
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> SyntheticCsca:
    """A self-signed CSCA certificate (CA, keyCertSign) valid ±10 years by default."""
    key = _new_key(key_kind)
    subject = _name(name)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=3650))
        .not_valid_after(not_after or now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return SyntheticCsca(key, builder.sign(key, hashes.SHA256()))


def make_document_signer(
    csca: SyntheticCsca,
    *,
    name: str = "DS TEST VNM 01",
    key_kind: KeyKind = "ec",
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    pss: bool = False,
) -> DocumentSigner:
    """A document-signer certificate issued by ``csca`` (valid ±5 years by default).

    ``pss`` makes an RSA CSCA sign the certificate with RSA-PSS instead of PKCS#1 v1.5.
    """
    key = _new_key(key_kind)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(csca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1825))
        .not_valid_after(not_after or now + timedelta(days=1825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
    )
    if pss and isinstance(csca.key, rsa.RSAPrivateKey):
        pss_padding = padding.PSS(
            mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH
        )
        certificate = builder.sign(csca.key, hashes.SHA256(), rsa_padding=pss_padding)
    else:
        certificate = builder.sign(csca.key, hashes.SHA256())
    return DocumentSigner(key, certificate)


def make_sod(
    data_groups: Mapping[int, bytes],
    *,
    signer: DocumentSigner,
    hash_algorithm: str = "sha256",
    scheme: SignatureScheme | None = None,
) -> bytes:
    """A SOD over ``data_groups`` signed by ``signer`` (ICAO 9303 part 10 layout).

    ``scheme`` defaults to ECDSA for an EC key and PKCS#1 v1.5 for RSA; ``pss`` picks
    RSA-PSS (salt = digest length, MGF1 with the same hash).
    """
    digest = _HASHES[hash_algorithm]
    hashed = {number: _digest(digest(), data) for number, data in data_groups.items()}
    content = encode_lds_security_object(
        hash_algorithm=hash_algorithm, data_group_hashes=hashed, lds_version="0108"
    )
    attributes = cms.CMSAttributes(
        [
            {"type": "content_type", "values": [LDS_SECURITY_OBJECT_OID]},
            {"type": "message_digest", "values": [_digest(digest(), content)]},
        ]
    )
    chosen = scheme or (
        "ecdsa" if isinstance(signer.key, ec.EllipticCurvePrivateKey) else "pkcs1v15"
    )
    signature, algorithm = _sign(signer.key, attributes.dump(), chosen, hash_algorithm)
    certificate = asn1_x509.Certificate.load(
        signer.certificate.public_bytes(serialization.Encoding.DER)
    )
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": {
                        "issuer": certificate.issuer,
                        "serial_number": certificate.serial_number,
                    }
                }
            ),
            "digest_algorithm": {"algorithm": hash_algorithm},
            "signed_attrs": attributes,
            "signature_algorithm": algorithm,
            "signature": signature,
        }
    )
    signed_data = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [{"algorithm": hash_algorithm}],
            "encap_content_info": {"content_type": LDS_SECURITY_OBJECT_OID, "content": content},
            "certificates": [certificate],
            "signer_infos": [signer_info],
        }
    )
    content_info = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
    return wrap_sod(bytes(content_info.dump()))


def issue_card(
    citizen: Citizen,
    *,
    signer: DocumentSigner | None,
    tamper: frozenset[Tamper] = frozenset(),
    face_image: bytes | None = None,
    hash_algorithm: str = "sha256",
    scheme: SignatureScheme | None = None,
) -> ChipData:
    """The chip data of ``citizen``'s card, broken as ``tamper`` asks.

    ``signer=None`` issues a card without a SOD.  ``face_image`` adds a stand-in DG2.
    """
    mrz = format_td1(citizen.td1())
    if Tamper.BAD_MRZ_CHECK_DIGIT in tamper:
        lines = mrz.split("\n")
        wrong = str((int(lines[1][6]) + 1) % 10)  # the birth date's check digit
        lines[1] = lines[1][:6] + wrong + lines[1][7:]
        mrz = "\n".join(lines)
    personal = citizen.personal_data()
    if Tamper.MISMATCHED_ID in tamper:
        last = str((int(citizen.cccd[-1]) + 1) % 10)
        personal = replace(personal, id_number=citizen.cccd[:-1] + last)
    if Tamper.BIRTH_DATE_MISMATCH in tamper:
        shifted = citizen.birth_date - timedelta(days=1)
        personal = replace(personal, birth_date=shifted.strftime("%d/%m/%Y"))
    dg1 = encode_dg1(mrz)
    dg13 = encode_dg13(personal)
    groups = {1: dg1, 13: dg13}
    if face_image is not None:
        groups[2] = face_image
    sod = None
    if signer is not None:
        signed = {
            n: d for n, d in groups.items() if not (n == 13 and Tamper.DG13_NOT_IN_SOD in tamper)
        }
        sod = make_sod(signed, signer=signer, hash_algorithm=hash_algorithm, scheme=scheme)
        if Tamper.SOD_SIGNATURE in tamper:
            sod = _flip_last_signature_byte(sod)
    if Tamper.DG13_AFTER_SIGNING in tamper:
        dg13 = encode_dg13(replace(personal, full_name=f"{citizen.surname} Thử Nghiệm Giả"))
    return ChipData(dg1=dg1, dg13=dg13, sod=sod, dg2=face_image)


@dataclass(frozen=True, slots=True)
class SyntheticKiosk:
    """A test kiosk: its issuer name, key id and P-256 signing key."""

    issuer: str
    kid: str
    key: ec.EllipticCurvePrivateKey

    def jwks(self) -> dict[str, Any]:
        """The kiosk's public JWKS, as the cabin would be configured with it."""
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "alg": "ES256", "use": "sig"}]}

    def assertion(
        self,
        citizen: Citizen,
        *,
        audience: str,
        now: datetime,
        lifetime: timedelta = timedelta(seconds=120),
        jti: str | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed assertion for ``citizen``; ``claims`` overrides or adds claims (a value
        of ``None`` for a registered claim such as ``jti`` removes it)."""
        issued = int(now.timestamp())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "iat": issued,
            "exp": issued + int(lifetime.total_seconds()),
            "jti": jti or secrets.token_urlsafe(16),
            **citizen.claims(),
        }
        for name, value in (claims or {}).items():
            if value is None and name in {"iss", "aud", "iat", "exp", "jti"}:
                payload.pop(name, None)
            else:
                payload[name] = value
        return jwt.encode(payload, self.key, algorithm="ES256", headers={"kid": self.kid})


def make_kiosk(*, issuer: str = "kiosk-test-01", kid: str = "kiosk-test-key-1") -> SyntheticKiosk:
    """A test kiosk with a fresh P-256 key (same issuer and kid with another key = a forger)."""
    return SyntheticKiosk(issuer, kid, ec.generate_private_key(ec.SECP256R1()))


def _renewal_expiry(born: date, today: date) -> date | None:
    for age in _EXPIRY_AGES:
        birthday = _birthday(born, age)
        if birthday >= today:
            return birthday
    return None


def _birthday(born: date, age: int) -> date:
    try:
        return born.replace(year=born.year + age)
    except ValueError:  # 29 February in a common year
        return born.replace(year=born.year + age, day=28)


def _new_key(kind: KeyKind) -> PrivateKey:
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TEST ONLY - not a real authority"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    return hashlib.new(algorithm.name, data).digest()


def _sign(
    key: PrivateKey, data: bytes, scheme: SignatureScheme, hash_algorithm: str
) -> tuple[bytes, dict[str, Any]]:
    digest = _HASHES[hash_algorithm]()
    if scheme == "ecdsa":
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("ECDSA needs an EC key")
        return key.sign(data, ec.ECDSA(digest)), {"algorithm": f"{hash_algorithm}_ecdsa"}
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("RSA signatures need an RSA key")
    if scheme == "pkcs1v15":
        return key.sign(data, padding.PKCS1v15(), digest), {"algorithm": f"{hash_algorithm}_rsa"}
    pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
    parameters = {
        "hash_algorithm": {"algorithm": hash_algorithm},
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": hash_algorithm}},
        "salt_length": digest.digest_size,
        "trailer_field": "trailer_field_bc",
    }
    return key.sign(data, pss, digest), {"algorithm": "rsassa_pss", "parameters": parameters}


def _flip_last_signature_byte(sod: bytes) -> bytes:
    # the SignerInfo's signature is the last element of the SOD: flipping the final byte
    # keeps the structure intact and breaks the signature
    return sod[:-1] + bytes([sod[-1] ^ 0x01])
