"""Kiosk assertions: the kiosk vouches for the resident with a short-lived signed JWT.

The kiosk reads the card itself and hands the cabin a JWS (compact JWT) signed with its own
P-256 key::

    header  {"alg": "ES256", "typ": "JWT", "kid": "<key id in the kiosk's JWKS>"}
    claims  {"iss": "<kiosk id>",            configured issuer; picks the JWKS
             "aud": "<cabin id>",            exactly this cabin (a string, not a list)
             "iat": 1760000000,              issued at (seconds since the epoch)
             "exp": 1760000120,              exp - iat <= 300 s
             "nbf": 1760000000,              optional
             "jti": "<random, single use>",  refused if seen before
             "cccd": "001085009876",         12 digits
             "name": "Nguyễn Văn Bình",      full name as on the card (NFC)
             "birth_date": "1985-04-12",     ISO 8601 date
             "sex": "male",                  male | female | other | unknown
             "bhyt": "DN4797915107264",      optional: health-insurance number, or null
             "card_expiry": "2045-04-12"}    optional: ISO date, or null for no expiry

Checks, in order, each with its own reason: the token's shape (``assertion_malformed``),
``alg`` = ES256 (``assertion_algorithm_refused``), a configured issuer
(``issuer_unknown``), a known key (``assertion_key_unknown``), the signature
(``assertion_forged``), the registered and identity claims being present
(``assertion_malformed``), the audience (``assertion_wrong_audience``), the lifetime
(``assertion_lifetime_too_long``), the times against ``now`` with a small leeway
(``assertion_not_yet_valid``, ``assertion_expired``), the identity claims
(``assertion_claims_invalid``, ``card_expired``), and last the single use of ``jti``
(``assertion_replayed``), so a refused token never uses up its ``jti``.

Issuer keys come from configuration as a JWKS per issuer (:class:`TrustedKiosks`);
:func:`load_jwks_file` and :func:`fetch_jwks` are the only I/O here.  PyJWT's exceptions
never leave this module.
"""

from __future__ import annotations

import heapq
import json
import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.types import Options

from kiosk_bridge.errors import ConfigurationError, IdentityRefused, RefusalReason
from kiosk_bridge.identity import (
    BHYT_PATTERN,
    CCCD_PATTERN,
    Assurance,
    Identity,
    Sex,
    Source,
    refuse_expired_card,
    vietnam_date,
)

logger = logging.getLogger(__name__)

ALGORITHM: Final = "ES256"
MAX_LIFETIME: Final = timedelta(seconds=300)
DEFAULT_LEEWAY: Final = timedelta(seconds=10)
MAX_TOKEN_LENGTH: Final = 8 * 1024
MAX_NAME_LENGTH: Final = 200
MAX_JTI_LENGTH: Final = 256
MAX_ISSUER_LENGTH: Final = 100
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
REQUIRED_CLAIMS: Final = ("iss", "aud", "iat", "exp", "jti", "cccd", "name", "birth_date", "sex")


class JtiStore(Protocol):
    """Remembers assertion ids so each is accepted once."""

    def claim(self, jti: str, until: datetime) -> bool:
        """Record ``jti`` as used until ``until``; False if it is already recorded."""
        ...


class MemoryJtiStore:
    """A :class:`JtiStore` in memory: enough for one cabin process (ids live ≤ 5 minutes).

    Entries are forgotten once their ``until`` has passed on ``clock``.  Safe to share
    between threads.
    """

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._until: dict[str, datetime] = {}
        self._expiries: list[tuple[datetime, str]] = []
        self._lock = threading.Lock()

    def claim(self, jti: str, until: datetime) -> bool:
        now = self._clock()
        with self._lock:
            self._forget_before(now)
            if jti in self._until:
                return False
            self._until[jti] = until
            heapq.heappush(self._expiries, (until, jti))
            return True

    def remembered(self) -> int:
        """How many ids are held now (no ``__len__``: an empty store must stay truthy)."""
        with self._lock:
            self._forget_before(self._clock())
            return len(self._until)

    def _forget_before(self, now: datetime) -> None:
        while self._expiries and self._expiries[0][0] < now:
            _, jti = heapq.heappop(self._expiries)
            self._until.pop(jti, None)


@dataclass(frozen=True, slots=True)
class KioskKey:
    """One public key of a kiosk (P-256), with its ``kid`` if the JWKS gave one."""

    kid: str | None
    public_key: ec.EllipticCurvePublicKey


@dataclass(frozen=True, slots=True)
class TrustedKiosks:
    """The issuers the cabin accepts assertions from, each with its public keys."""

    keys: Mapping[str, tuple[KioskKey, ...]]

    @classmethod
    def from_jwks(cls, issuers: Mapping[str, Mapping[str, Any]]) -> TrustedKiosks:
        """Parse a JWKS per issuer; ES256 keys only (EC P-256, public).

        Raises :class:`~kiosk_bridge.errors.ConfigurationError` for a JWKS without keys, a key
        of another kind, or a private key (a kiosk's JWKS must hold only public halves).
        """
        parsed: dict[str, tuple[KioskKey, ...]] = {}
        for issuer, jwks in issuers.items():
            keys = jwks.get("keys")
            if not isinstance(keys, list) or not keys:
                raise ConfigurationError(f"the JWKS of issuer {issuer!r} has no keys")
            parsed[issuer] = tuple(_kiosk_key(issuer, jwk) for jwk in keys)
        return cls(MappingProxyType(parsed))


@dataclass(frozen=True, slots=True, kw_only=True)
class AssertionPolicy:
    """What an assertion must satisfy besides its signature.

    ``audience`` is this cabin's id; ``leeway`` absorbs clock skew between kiosk and cabin;
    ``max_lifetime`` bounds ``exp - iat`` (the issue says at most five minutes).
    """

    audience: str
    leeway: timedelta = DEFAULT_LEEWAY
    max_lifetime: timedelta = MAX_LIFETIME

    def __post_init__(self) -> None:
        if not self.audience:
            raise ValueError("the audience (this cabin's id) is required")
        if not timedelta(0) <= self.leeway <= timedelta(minutes=2):
            raise ValueError("the leeway must be between 0 and 2 minutes")
        if not timedelta(0) < self.max_lifetime <= MAX_LIFETIME:
            raise ValueError("max_lifetime must be positive and at most 300 seconds")


def verify_assertion(
    token: str,
    *,
    kiosks: TrustedKiosks,
    policy: AssertionPolicy,
    jti_store: JtiStore,
    now: datetime,
) -> Identity:
    """Verify a kiosk assertion and return the identity it vouches for (``asserted``)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise _refused(RefusalReason.ASSERTION_MALFORMED, "The assertion is empty or too long.")
    header, unverified = _peek(token)
    if header.get("alg") != ALGORITHM:
        raise _refused(
            RefusalReason.ASSERTION_ALGORITHM_REFUSED,
            f"The assertion is not signed with {ALGORITHM}.",
        )
    issuer = unverified.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise _refused(RefusalReason.ASSERTION_MALFORMED, "The assertion names no issuer.")
    if issuer not in kiosks.keys:
        raise _refused(
            RefusalReason.ISSUER_UNKNOWN,
            "The assertion's issuer is not a configured kiosk.",
            issuer=issuer[:MAX_ISSUER_LENGTH],
        )
    kid = header.get("kid")
    candidates = [key for key in kiosks.keys[issuer] if kid is None or key.kid == kid]
    if not candidates:
        raise _refused(
            RefusalReason.ASSERTION_KEY_UNKNOWN,
            "The assertion names a key its issuer's JWKS does not hold.",
            issuer=issuer,
        )
    claims = _decode(token, candidates, issuer=issuer, audience=policy.audience)
    issued, expires = _check_times(claims, policy=policy, now=now)
    identity = _identity(claims, issuer=issuer, now=now)
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise _refused(RefusalReason.ASSERTION_MALFORMED, "The assertion's jti is not usable.")
    if not jti_store.claim(jti, expires + policy.leeway):
        raise _refused(
            RefusalReason.ASSERTION_REPLAYED,
            "The assertion was already used (its jti was seen before).",
            issuer=issuer,
        )
    logger.info(
        "kiosk assertion accepted: issuer=%s issued=%s cccd=%s",
        issuer,
        issued.isoformat(),
        identity.masked_cccd,
    )
    return identity


def load_jwks_file(path: Path) -> dict[str, Any]:
    """Read a JWKS (``{"keys": [...]}``) from a JSON file.  Blocking file I/O."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"cannot read the JWKS file {path}: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ConfigurationError(f"{path} is not a JWKS (an object with a 'keys' list)")
    return document


def fetch_jwks(url: str, *, timeout: float = 10.0) -> dict[str, Any]:
    """Fetch a JWKS from ``url`` (PyJWT's client).  Blocking network I/O: run it off the
    event loop, at start-up or on a refresh schedule, never per assertion."""
    client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=timeout)
    try:
        document = client.fetch_data()
    except jwt.PyJWKClientError as exc:
        raise ConfigurationError(f"cannot fetch the JWKS at {url}: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ConfigurationError(f"{url} did not answer with a JWKS")
    return document


def _kiosk_key(issuer: str, jwk: object) -> KioskKey:
    if not isinstance(jwk, dict):
        raise ConfigurationError(f"a key in the JWKS of issuer {issuer!r} is not an object")
    if "d" in jwk:
        raise ConfigurationError(f"the JWKS of issuer {issuer!r} holds a private key")
    if jwk.get("alg", ALGORITHM) != ALGORITHM:
        raise ConfigurationError(f"the JWKS of issuer {issuer!r} holds a key not for ES256")
    try:
        key = jwt.PyJWK(jwk, algorithm=ALGORITHM).key
    except jwt.PyJWTError as exc:
        raise ConfigurationError(f"a key of issuer {issuer!r} is unusable: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigurationError(f"a key of issuer {issuer!r} is not a public P-256 key")
    kid = jwk.get("kid")
    return KioskKey(kid if isinstance(kid, str) else None, key)


def _peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims before verification: only to choose the key."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise _refused(RefusalReason.ASSERTION_MALFORMED, "The assertion is not a JWT.") from None
    if not isinstance(claims, dict):
        raise _refused(
            RefusalReason.ASSERTION_MALFORMED, "The assertion's claims are not an object."
        )
    return header, claims


def _decode(
    token: str, candidates: list[KioskKey], *, issuer: str, audience: str
) -> dict[str, Any]:
    options: Options = {
        "require": list(REQUIRED_CLAIMS),
        "strict_aud": True,
        # times are checked against the caller's `now` in _check_times
        "verify_exp": False,
        "verify_iat": False,
        "verify_nbf": False,
    }
    for key in candidates:
        try:
            return jwt.decode(
                token,
                key=key.public_key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=issuer,
                options=options,
            )
        except jwt.InvalidSignatureError:
            continue  # another of the issuer's keys may verify it
        except jwt.InvalidAudienceError:
            raise _refused(
                RefusalReason.ASSERTION_WRONG_AUDIENCE,
                "The assertion is addressed to another cabin.",
                issuer=issuer,
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise _refused(
                RefusalReason.ASSERTION_MALFORMED,
                f"The assertion lacks the {exc.claim!r} claim.",
                issuer=issuer,
            ) from None
        except jwt.InvalidAlgorithmError:
            raise _refused(
                RefusalReason.ASSERTION_ALGORITHM_REFUSED,
                f"The assertion is not signed with {ALGORITHM}.",
            ) from None
        except jwt.PyJWTError as exc:
            raise _refused(
                RefusalReason.ASSERTION_MALFORMED,
                f"The assertion is not valid ({type(exc).__name__}).",
                issuer=issuer,
            ) from None
    raise _refused(
        RefusalReason.ASSERTION_FORGED,
        "The assertion's signature does not verify with its issuer's keys.",
        issuer=issuer,
    )


def _check_times(
    claims: Mapping[str, Any], *, policy: AssertionPolicy, now: datetime
) -> tuple[datetime, datetime]:
    issued = _instant(claims, "iat")
    expires = _instant(claims, "exp")
    if expires <= issued:
        raise _refused(
            RefusalReason.ASSERTION_MALFORMED, "The assertion expires before it was issued."
        )
    if expires - issued > policy.max_lifetime:
        raise _refused(
            RefusalReason.ASSERTION_LIFETIME_TOO_LONG,
            f"The assertion lives {int((expires - issued).total_seconds())} s, more than the "
            f"{int(policy.max_lifetime.total_seconds())} s allowed.",
        )
    not_before = _instant(claims, "nbf") if "nbf" in claims else issued
    if max(issued, not_before) > now + policy.leeway:
        raise _refused(
            RefusalReason.ASSERTION_NOT_YET_VALID, "The assertion is issued in the future."
        )
    if now >= expires + policy.leeway:
        raise _refused(
            RefusalReason.ASSERTION_EXPIRED,
            f"The assertion expired at {expires.isoformat()}.",
            details={"expired_at": expires.isoformat()},
        )
    return issued, expires


def _instant(claims: Mapping[str, Any], name: str) -> datetime:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _refused(RefusalReason.ASSERTION_MALFORMED, f"The assertion's {name} is not a time.")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise _refused(
            RefusalReason.ASSERTION_MALFORMED, f"The assertion's {name} is out of range."
        ) from None


def _identity(claims: Mapping[str, Any], *, issuer: str, now: datetime) -> Identity:
    cccd = claims.get("cccd")
    if not isinstance(cccd, str) or not CCCD_PATTERN.fullmatch(cccd):
        raise _claims_invalid("cccd", "is not 12 digits")
    name = claims.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise _claims_invalid("name", "is empty or too long")
    birth_date = _claim_date(claims, "birth_date")
    if birth_date is None or birth_date > vietnam_date(now):
        raise _claims_invalid("birth_date", "is missing or in the future")
    sex = claims.get("sex")
    if not isinstance(sex, str) or sex not in {member.value for member in Sex}:
        raise _claims_invalid("sex", "is not male, female, other or unknown")
    bhyt = claims.get("bhyt")
    if bhyt is not None and (not isinstance(bhyt, str) or not BHYT_PATTERN.fullmatch(bhyt)):
        raise _claims_invalid("bhyt", "is not a health-insurance number")
    card_expiry = _claim_date(claims, "card_expiry")
    refuse_expired_card(card_expiry, now=now)
    return Identity(
        cccd=cccd,
        full_name=unicodedata.normalize("NFC", " ".join(name.split())),
        birth_date=birth_date,
        sex=Sex(sex),
        bhyt=bhyt,
        card_expiry=card_expiry,
        assurance=Assurance.ASSERTED,
        source=Source.KIOSK_ASSERTION,
        issuer=issuer,
    )


def _claim_date(claims: Mapping[str, Any], name: str) -> date | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise _claims_invalid(name, "is not an ISO date")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _claims_invalid(name, "is not an ISO date") from None


def _claims_invalid(name: str, problem: str) -> IdentityRefused:
    return IdentityRefused(
        RefusalReason.ASSERTION_CLAIMS_INVALID,
        f"The assertion's {name} claim {problem}.",
        details={"claim": name},
    )


def _refused(
    reason: RefusalReason,
    sentence: str,
    *,
    issuer: str | None = None,
    details: Mapping[str, str] | None = None,
) -> IdentityRefused:
    extra = dict(details or {})
    if issuer is not None:
        extra["issuer"] = issuer
    return IdentityRefused(reason, sentence, details=extra)
