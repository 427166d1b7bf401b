"""Identity intake: the one gate that turns what the kiosk hands over into an Identity.

Two ways in, one way out::

    KioskAssertion (JWT) ──▶ verify_assertion ─────────────────────────────▶ asserted
    ChipData ──▶ DG1: MRZ check digits, CCCD in optional data 1
             ──▶ DG13: fields by number
             ──▶ SOD: signature + hashes ──┬─ chained to a trusted CSCA ─────▶ passive_auth
                                           └─ no trust store (if allowed) ──▶ mrz_checked
                 no SOD (if allowed) ─────────────────────────────────────▶ mrz_checked
             ──▶ consistency gate: ID (DG13 = MRZ optional data; MRZ document number =
                 its last 9 digits), birth date, sex, expiry; an expired card is refused
             ──▶ minimisation: only the core identity, plus what a configured purpose needs

Chip data is parsed first (any malformed group or failed MRZ check digit refuses it), then
authenticated, then checked for consistency: a consistency verdict is only worth having on
data known to be genuine.  Authentication never downgrades: a SOD that is present but fails
is refused even when ``mrz_checked`` would be allowed.  ``active_auth`` is never reached
here: it needs a live challenge to the chip, which forwarded data cannot answer.

Where the card writes a full date, DG13 is authoritative (the MRZ's two-digit year cannot tell
a centenarian from a toddler); the MRZ must agree on the six digits it has.

Pure: values and ``now`` in, an :class:`~kiosk_bridge.identity.Identity` or an
:class:`~kiosk_bridge.errors.IdentityRefused` out; the trust anchors are passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from cryptography import x509

from kiosk_bridge.assertion import AssertionPolicy, JtiStore, TrustedKiosks, verify_assertion
from kiosk_bridge.dg13 import PersonalData, card_date, card_expiry, card_sex, parse_dg13
from kiosk_bridge.errors import IdentityRefused, RefusalReason
from kiosk_bridge.identity import (
    Assurance,
    CardExtras,
    Identity,
    Sex,
    Source,
    refuse_expired_card,
    vietnam_date,
)
from kiosk_bridge.lds import parse_dg1, parse_sod
from kiosk_bridge.mrz import TD1, cccd_number, parse_td1
from kiosk_bridge.passive_auth import verify_passive_auth, verify_sod_integrity

logger = logging.getLogger(__name__)

ISSUING_STATE = "VNM"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChipData:
    """Data groups read from the CCCD chip by the kiosk's reader, as raw bytes.

    DG1 (MRZ) and DG13 (personal data) are required; the SOD is needed for passive
    authentication; DG2 (face), DG14 and DG15 are checked against the SOD when supplied.
    """

    dg1: bytes = field(repr=False)
    dg13: bytes = field(repr=False)
    sod: bytes | None = field(default=None, repr=False)
    dg2: bytes | None = field(default=None, repr=False)
    dg14: bytes | None = field(default=None, repr=False)
    dg15: bytes | None = field(default=None, repr=False)

    def data_groups(self) -> dict[int, bytes]:
        """The supplied data groups by number (the SOD is not a data group)."""
        groups = {1: self.dg1, 2: self.dg2, 13: self.dg13, 14: self.dg14, 15: self.dg15}
        return {number: data for number, data in groups.items() if data is not None}

    def __repr__(self) -> str:
        return f"ChipData(groups={sorted(self.data_groups())!r}, sod={self.sod is not None})"


@dataclass(frozen=True, slots=True)
class KioskAssertion:
    """A kiosk-signed JWT (see :mod:`kiosk_bridge.assertion` for its claims)."""

    token: str = field(repr=False)


Evidence = ChipData | KioskAssertion
"""What the kiosk can hand over to identify a resident."""


class ExtraField(StrEnum):
    """Card data beyond the core identity that a purpose may ask to keep."""

    ETHNICITY = "ethnicity"
    RELIGION = "religion"
    PLACE_OF_ORIGIN = "place_of_origin"
    RESIDENCE = "residence"
    IDENTIFYING_MARKS = "identifying_marks"
    ISSUE_DATE = "issue_date"
    PARENTS = "parents"
    SPOUSE = "spouse"
    OLD_ID_NUMBER = "old_id_number"
    FACE_IMAGE = "face_image"


@dataclass(frozen=True, slots=True, kw_only=True)
class Purpose:
    """A named reason to keep extra card data (recorded so consent and audit can cite it)."""

    name: str
    needs: frozenset[ExtraField]

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a purpose needs a name")


@dataclass(frozen=True, slots=True, kw_only=True)
class IntakePolicy:
    """How intake treats what it is given.

    ``allow_mrz_checked`` accepts chip data at ``mrz_checked`` when passive authentication
    cannot run (no trust store configured, or no SOD supplied); off by default, so such data
    is refused.  ``purposes`` name the extra card data kept; by default nothing beyond the
    core identity survives intake.  ``assertion`` configures kiosk assertions; without it
    they are refused.
    """

    allow_mrz_checked: bool = False
    purposes: tuple[Purpose, ...] = ()
    assertion: AssertionPolicy | None = None

    @property
    def kept(self) -> frozenset[ExtraField]:
        """Every extra field some purpose needs."""
        return frozenset().union(*(purpose.needs for purpose in self.purposes))


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustAnchors:
    """What the cabin trusts: CSCA certificates (``None``: no trust store configured) and
    kiosk keys (``None``: no kiosk configured)."""

    cscas: tuple[x509.Certificate, ...] | None = None
    kiosks: TrustedKiosks | None = None


def identify(
    evidence: Evidence,
    *,
    policy: IntakePolicy,
    anchors: TrustAnchors,
    jti_store: JtiStore,
    now: datetime,
) -> Identity:
    """Turn chip data or a kiosk assertion into one :class:`Identity`, or refuse it."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if isinstance(evidence, KioskAssertion):
        if anchors.kiosks is None or policy.assertion is None:
            raise IdentityRefused(
                RefusalReason.ISSUER_UNKNOWN, "This cabin is configured to trust no kiosk."
            )
        return verify_assertion(
            evidence.token,
            kiosks=anchors.kiosks,
            policy=policy.assertion,
            jti_store=jti_store,
            now=now,
        )
    return identify_chip(evidence, policy=policy, cscas=anchors.cscas, now=now)


def identify_chip(
    chip: ChipData,
    *,
    policy: IntakePolicy,
    cscas: Sequence[x509.Certificate] | None,
    now: datetime,
) -> Identity:
    """The chip-data path of :func:`identify`; ``cscas`` is ``None`` without a trust store."""
    mrz = parse_td1(parse_dg1(chip.dg1), today=vietnam_date(now))
    if not mrz.document_code.startswith("I") or mrz.issuing_state != ISSUING_STATE:
        raise IdentityRefused(
            RefusalReason.DOCUMENT_UNSUPPORTED,
            "The document is not a Vietnamese citizen ID card.",
            details={"document_code": mrz.document_code, "issuing_state": mrz.issuing_state},
        )
    cccd = cccd_number(mrz)
    personal = parse_dg13(chip.dg13)
    assurance, issuer = _authenticate(chip, policy=policy, cscas=cscas, now=now)
    full_name, birth_date, sex, expiry = _consistent(mrz, cccd, personal, today=vietnam_date(now))
    refuse_expired_card(expiry, now=now)
    identity = Identity(
        cccd=cccd,
        full_name=full_name,
        birth_date=birth_date,
        sex=sex,
        bhyt=None,  # the chip does not carry the health-insurance number
        card_expiry=expiry,
        assurance=assurance,
        source=Source.CHIP,
        issuer=issuer,
        extras=_extras(personal, chip, policy.kept),
    )
    logger.info(
        "chip identity accepted: assurance=%s cccd=%s kept=%s",
        assurance.value,
        identity.masked_cccd,
        sorted(identity.extras.kept()),
    )
    return identity


def _authenticate(
    chip: ChipData,
    *,
    policy: IntakePolicy,
    cscas: Sequence[x509.Certificate] | None,
    now: datetime,
) -> tuple[Assurance, str | None]:
    groups = chip.data_groups()
    if chip.sod is None:
        if not policy.allow_mrz_checked:
            raise IdentityRefused(
                RefusalReason.SOD_MISSING,
                "The chip data came without its SOD, so it cannot be authenticated.",
            )
        return Assurance.MRZ_CHECKED, None
    if cscas is None:
        if not policy.allow_mrz_checked:
            raise IdentityRefused(
                RefusalReason.PASSIVE_AUTH_UNAVAILABLE,
                "No CSCA trust store is configured, so the card cannot be authenticated.",
            )
        # no trust, but still proof the data was not altered after signing
        verify_sod_integrity(parse_sod(chip.sod), groups)
        return Assurance.MRZ_CHECKED, None
    result = verify_passive_auth(chip.sod, groups, cscas=cscas, now=now)
    return Assurance.PASSIVE_AUTH, result.document_signer


def _consistent(
    mrz: TD1, cccd: str, personal: PersonalData, *, today: date
) -> tuple[str, date, Sex, date | None]:
    """The consistency gate; returns the full name, birth date, sex and expiry to use."""
    id_number = _required(personal.id_number, "ID number")
    if id_number != cccd:
        raise IdentityRefused(
            RefusalReason.ID_MISMATCH,
            "The ID number in DG13 differs from the one in the MRZ.",
            details={"sources": "dg13,mrz_optional_data"},
        )
    full_name = " ".join(_required(personal.full_name, "full name").split())
    if not full_name:
        raise IdentityRefused(RefusalReason.DG13_FIELD_MISSING, "DG13 has an empty full name.")
    birth_date = card_date(_required(personal.birth_date, "date of birth"), field_name="birth date")
    if birth_date > today:
        raise IdentityRefused(RefusalReason.DG13_MALFORMED, "DG13 has a birth date in the future.")
    if birth_date.strftime("%y%m%d") != mrz.birth_date_yymmdd:
        raise IdentityRefused(
            RefusalReason.BIRTH_DATE_MISMATCH, "The birth dates in DG13 and the MRZ differ."
        )
    sex = card_sex(personal.sex) if personal.sex is not None else Sex.UNKNOWN
    if Sex.UNKNOWN in {sex, mrz.sex}:
        sex = mrz.sex if sex is Sex.UNKNOWN else sex
    elif sex is not mrz.sex:
        raise IdentityRefused(RefusalReason.SEX_MISMATCH, "The sex in DG13 and the MRZ differ.")
    return full_name, birth_date, sex, _expiry(mrz, personal)


def _expiry(mrz: TD1, personal: PersonalData) -> date | None:
    dg13_expiry = card_expiry(personal.expiry_date) if personal.expiry_date is not None else None
    if dg13_expiry is not None and mrz.expiry_date is not None:
        if dg13_expiry != mrz.expiry_date:
            raise IdentityRefused(
                RefusalReason.EXPIRY_MISMATCH, "The expiry dates in DG13 and the MRZ differ."
            )
        return dg13_expiry
    # one source says "no expiry" (or is silent): trust the one that names a date, if any
    return dg13_expiry or mrz.expiry_date


def _required(value: str | None, name: str) -> str:
    if value is None:
        raise IdentityRefused(
            RefusalReason.DG13_FIELD_MISSING,
            f"DG13 has no {name}.",
            details={"field": name.replace(" ", "_")},
        )
    return value


def _extras(personal: PersonalData, chip: ChipData, kept: frozenset[ExtraField]) -> CardExtras:
    """Only the extra fields some purpose needs; everything else is dropped here."""

    def keep(extra: ExtraField, value: str | None) -> str | None:
        return value if extra in kept else None

    issue_date = None
    if ExtraField.ISSUE_DATE in kept and personal.issue_date is not None:
        issue_date = card_date(personal.issue_date, field_name="issue date")
    return CardExtras(
        ethnicity=keep(ExtraField.ETHNICITY, personal.ethnicity),
        religion=keep(ExtraField.RELIGION, personal.religion),
        place_of_origin=keep(ExtraField.PLACE_OF_ORIGIN, personal.place_of_origin),
        residence=keep(ExtraField.RESIDENCE, personal.residence),
        identifying_marks=keep(ExtraField.IDENTIFYING_MARKS, personal.identifying_marks),
        issue_date=issue_date,
        father_name=keep(ExtraField.PARENTS, personal.father_name),
        mother_name=keep(ExtraField.PARENTS, personal.mother_name),
        spouse_name=keep(ExtraField.SPOUSE, personal.spouse_name),
        old_id_number=keep(ExtraField.OLD_ID_NUMBER, personal.old_id_number),
        face_image=chip.dg2 if ExtraField.FACE_IMAGE in kept else None,
    )
