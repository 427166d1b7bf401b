"""The verified identity of a resident, and how sure the cabin is of it.

Both ways in (a kiosk-signed assertion, or the chip data of the CCCD) end in one
:class:`Identity`: the 12-digit CCCD number, name, birth date, sex, optional BHYT (health
insurance) number and card expiry, with an :class:`Assurance` level saying how it was
established.  The cabin decides what each level allows (DESIGN.md, "Identity (CCCD)").

Anything beyond that core (religion, ethnicity, parents, residence, the face image, ...) is
dropped at intake unless a configured purpose needs it; what a purpose kept travels in
:class:`CardExtras`.  Nothing about the resident appears in ``repr()`` except a masked CCCD,
so an identity can be logged by accident without leaking personal data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum

from kiosk_bridge.errors import IdentityRefused, RefusalReason

CCCD_PATTERN = re.compile(r"[0-9]{12}")
"""A CCCD number: 12 digits (province, sex/century, birth year, 6 serial digits)."""

BHYT_PATTERN = re.compile(r"[A-Z0-9]{10,15}")
"""A health-insurance number: the 15-character card code or the 10-digit social-insurance code."""

VIETNAM_TIME = timezone(timedelta(hours=7), "ICT")
"""Indochina Time, the zone the card's dates are written in (no daylight saving)."""


class Assurance(StrEnum):
    """How the identity was established, weakest first.

    ``asserted``      the kiosk vouched for it with a signed assertion; the cabin trusts the
                      kiosk's own card check.
    ``mrz_checked``   chip data whose MRZ check digits and cross-field consistency hold, but
                      whose signature was not verified: integrity without authenticity.
    ``passive_auth``  chip data signed by a document signer that chains to a trusted CSCA,
                      every data group's hash matching: the data is what the state issued.
    ``active_auth``   passive authentication plus proof the chip is genuine (not a clone);
                      needs a live challenge to the chip, so forwarded data never reaches it.
    """

    ASSERTED = "asserted"
    MRZ_CHECKED = "mrz_checked"
    PASSIVE_AUTH = "passive_auth"
    ACTIVE_AUTH = "active_auth"

    @property
    def rank(self) -> int:
        """0 for the weakest level; compare ranks to ask "at least this sure"."""
        return list(Assurance).index(self)

    def at_least(self, other: Assurance) -> bool:
        """True when this level is as strong as ``other`` or stronger."""
        return self.rank >= other.rank


class Sex(StrEnum):
    """Sex as FHIR's administrative gender spells it (the card knows male and female)."""

    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


class Source(StrEnum):
    """Which way the identity came in."""

    KIOSK_ASSERTION = "kiosk_assertion"
    CHIP = "chip"


@dataclass(frozen=True, slots=True, kw_only=True)
class CardExtras:
    """Card data beyond the core identity, kept only when a configured purpose needs it.

    Every field is ``None`` unless intake was told to keep it (see
    :class:`kiosk_bridge.intake.IntakePolicy`); none is kept by default.  Religion and
    ethnicity are sensitive personal data under Law 91/2025/QH15.
    """

    ethnicity: str | None = field(default=None, repr=False)
    religion: str | None = field(default=None, repr=False)
    place_of_origin: str | None = field(default=None, repr=False)
    residence: str | None = field(default=None, repr=False)
    identifying_marks: str | None = field(default=None, repr=False)
    issue_date: date | None = field(default=None, repr=False)
    father_name: str | None = field(default=None, repr=False)
    mother_name: str | None = field(default=None, repr=False)
    spouse_name: str | None = field(default=None, repr=False)
    old_id_number: str | None = field(default=None, repr=False)
    face_image: bytes | None = field(default=None, repr=False)

    def kept(self) -> frozenset[str]:
        """The names of the fields that hold a value (for audit lines: names, never values)."""
        return frozenset(item.name for item in fields(self) if getattr(self, item.name) is not None)

    def __repr__(self) -> str:
        return f"CardExtras(kept={sorted(self.kept())!r})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """A resident's identity with its assurance level and where it came from.

    ``issuer`` names who vouched for it: the assertion's ``iss`` for a kiosk assertion, the
    document signer's subject for passive authentication, ``None`` when nobody did
    (``mrz_checked``).  ``card_expiry`` is ``None`` for a card without expiry (residents
    over 60 hold cards valid for life).
    """

    cccd: str
    full_name: str = field(repr=False)
    birth_date: date = field(repr=False)
    sex: Sex = field(repr=False)
    bhyt: str | None = field(default=None, repr=False)
    card_expiry: date | None = field(default=None, repr=False)
    assurance: Assurance
    source: Source
    issuer: str | None = None
    extras: CardExtras = field(default_factory=CardExtras, repr=False)

    def __post_init__(self) -> None:
        # intake validates before building one: these guard against programming errors
        if not CCCD_PATTERN.fullmatch(self.cccd):
            raise ValueError("a CCCD number is 12 digits")
        if not self.full_name.strip():
            raise ValueError("a full name is required")
        if self.bhyt is not None and not BHYT_PATTERN.fullmatch(self.bhyt):
            raise ValueError("a BHYT number is 10 to 15 upper-case letters or digits")

    @property
    def masked_cccd(self) -> str:
        """The CCCD with all but its last three digits hidden, safe for logs and screens."""
        return mask_cccd(self.cccd)

    def __repr__(self) -> str:
        return (
            f"Identity(cccd={self.masked_cccd!r}, assurance={self.assurance.value!r}, "
            f"source={self.source.value!r}, issuer={self.issuer!r})"
        )


def mask_cccd(cccd: str) -> str:
    """``001085009876`` → ``*********876``: enough to tell two residents apart on a log line."""
    return "*" * max(len(cccd) - 3, 0) + cccd[-3:]


def vietnam_date(now: datetime) -> date:
    """The calendar date in Vietnam at the aware instant ``now`` (a card is valid through its
    expiry day, Vietnam time)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(VIETNAM_TIME).date()


def refuse_expired_card(card_expiry: date | None, *, now: datetime) -> None:
    """Raise ``card_expired`` (with the expiry date in ``details``) if the card has expired."""
    if card_expiry is not None and card_expiry < vietnam_date(now):
        raise IdentityRefused(
            RefusalReason.CARD_EXPIRED,
            f"The ID card expired on {card_expiry.isoformat()}.",
            details={"card_expiry": card_expiry.isoformat()},
        )
