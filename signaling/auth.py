"""Verification of the JWTs that cabins, doctors and admins present to the signaling service.

A token is accepted only when every check below passes, in this order (the first failure
names the :class:`~signaling.errors.AuthFailure` code)::

    compact form   three base64url segments                     token-malformed
    header alg     ES256 or EdDSA only (never none, HS*, RS*)   algorithm-not-allowed
    iss            names a configured issuer (unverified read)  unknown-issuer
    kid → key      a key of that issuer (no kid: its only key)  token-forged
    signature      verified with that key and the header alg    token-forged
    claims         iss sub aud exp iat jti role present         claims-missing
    aud            contains the service's audience              wrong-audience
    exp / nbf/iat  against the injected ``now`` ± leeway        token-expired / -not-yet-valid
    exp − iat      at most ``max_lifetime_s``                   token-lifetime-too-long
    role           one the issuer may issue                     role-not-allowed
    hospitals      ones the issuer may issue for                hospital-not-allowed
    jti            first use (replay guard, checked last)       token-replayed

PyJWT is used for the signature only (``PyJWS``); claims and times are checked here against
the caller's ``now`` so that verification is deterministic. No PyJWT exception escapes:
everything is translated to :class:`~signaling.errors.AuthError` or, when an issuer's keys
cannot be loaded (a server-side problem), :class:`~signaling.errors.ConfigError`.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol

import jwt
from jwt.api_jwk import PyJWK, PyJWKSet

from signaling.errors import AuthError, AuthFailure, ConfigError
from signaling.model import Role

__all__ = [
    "ALLOWED_ALGORITHMS",
    "IssuerPolicy",
    "JwksUrlSource",
    "KeySource",
    "MemoryReplayGuard",
    "Principal",
    "ReplayGuard",
    "Role",
    "StaticKeys",
    "TokenVerifier",
    "load_jwks_file",
]

logger = logging.getLogger(__name__)

ALLOWED_ALGORITHMS: Final = frozenset({"ES256", "EdDSA"})
"""The only JWS algorithms accepted: asymmetric, no RSA, no HMAC, never ``none``."""

_MAX_TOKEN_CHARS: Final = 8192
_COMPACT_JWS: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_REQUIRED_CLAIMS: Final = ("iss", "sub", "aud", "exp", "iat", "jti", "role")
_MAX_CLAIM_CHARS: Final = 256


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for.

    ``hospitals`` is empty for a cabin that may ask any hospital; a doctor always has at
    least one. ``identity`` is unique across issuers and keys per-identity limits.
    """

    role: Role
    subject: str
    hospitals: tuple[str, ...]
    issuer: str
    token_id: str
    expires_at: datetime
    name: str | None = None

    @property
    def identity(self) -> str:
        """``issuer|subject``: the same subject at two issuers is two identities."""
        return f"{self.issuer}|{self.subject}"


class KeySource(Protocol):
    """Where an issuer's public keys come from (a file loaded once, or a JWKS URL)."""

    async def key_for(self, kid: str | None) -> PyJWK | None:
        """The key named ``kid`` (or the only key when ``kid`` is None); None if there is none.

        Raises :class:`~signaling.errors.ConfigError` when the keys cannot be obtained.
        """
        ...


class ReplayGuard(Protocol):
    """Remembers token ids until they expire so that each token is used once."""

    async def claim(self, token_id: str, *, until: datetime) -> bool:
        """Record ``token_id`` until ``until``; True on first use, False if already seen."""
        ...


def _usable(keys: Iterable[PyJWK]) -> tuple[PyJWK, ...]:
    """The keys of an allowed algorithm, meant for signatures (others are skipped)."""
    return tuple(
        key
        for key in keys
        if key.algorithm_name in ALLOWED_ALGORITHMS and key.public_key_use in ("sig", None)
    )


def _select(keys: Sequence[PyJWK], kid: str | None) -> PyJWK | None:
    """The key with ``kid``; without a kid, the key only when there is exactly one."""
    if kid is None:
        return keys[0] if len(keys) == 1 else None
    return next((key for key in keys if key.key_id == kid), None)


class StaticKeys:
    """A fixed set of public keys (a JWKS file, or keys built in code for tests)."""

    def __init__(self, keys: PyJWKSet | Iterable[PyJWK]) -> None:
        """Keep the ES256/EdDSA signing keys; refuse a set that has none (ConfigError)."""
        usable = _usable(keys.keys if isinstance(keys, PyJWKSet) else keys)
        if not usable:
            raise ConfigError("no ES256 or EdDSA signing key in the key set")
        self._keys = usable

    @property
    def keys(self) -> tuple[PyJWK, ...]:
        """The usable keys."""
        return self._keys

    async def key_for(self, kid: str | None) -> PyJWK | None:
        """See :meth:`KeySource.key_for`."""
        return _select(self._keys, kid)


def load_jwks_file(path: Path) -> PyJWKSet:
    """Read a JWKS (``{"keys": [...]}``) from ``path``; any problem is a ConfigError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        return PyJWKSet.from_json(text)
    except (OSError, UnicodeDecodeError, ValueError, jwt.PyJWTError) as error:
        raise ConfigError(f"cannot load JWKS from {path}: {error}") from error


class JwksUrlSource:
    """An issuer's keys fetched from its JWKS URL, cached, refreshed on an unknown kid.

    Fetching is blocking (urllib inside PyJWT's ``PyJWKClient``) and so runs in a worker
    thread. An unknown kid forces a refetch at most once per ``refresh_cooldown_s``, so
    random kids in forged tokens cannot make the service hammer the IdP.
    """

    def __init__(
        self,
        url: str,
        *,
        cache_s: float = 300.0,
        timeout_s: float = 5.0,
        refresh_cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Prepare (not fetch) the client; a non-http(s) URL is a ConfigError."""
        try:
            self._client = jwt.PyJWKClient(
                url, cache_jwk_set=True, lifespan=cache_s, timeout=timeout_s, cooldown_duration=0
            )
        except jwt.PyJWTError as error:
            raise ConfigError(f"bad JWKS URL {url!r}: {error}") from error
        self._url = url
        self._timeout_s = timeout_s
        self._refresh_cooldown_s = refresh_cooldown_s
        self._clock = clock
        self._last_forced: float | None = None
        self._lock = asyncio.Lock()

    async def _fetch(self, *, refresh: bool) -> tuple[PyJWK, ...]:
        try:
            async with asyncio.timeout(self._timeout_s + 1.0):
                jwk_set = await asyncio.to_thread(self._client.get_jwk_set, refresh)
        except TimeoutError as error:
            raise ConfigError(f"JWKS fetch from {self._url} timed out") from error
        except (jwt.PyJWTError, OSError, ValueError) as error:
            raise ConfigError(f"cannot fetch JWKS from {self._url}: {error}") from error
        return _usable(jwk_set.keys)

    async def key_for(self, kid: str | None) -> PyJWK | None:
        """See :meth:`KeySource.key_for`."""
        async with self._lock:
            key = _select(await self._fetch(refresh=False), kid)
            if key is not None:
                return key
            now = self._clock()
            if self._last_forced is not None and now - self._last_forced < (
                self._refresh_cooldown_s
            ):
                return None
            self._last_forced = now
            return _select(await self._fetch(refresh=True), kid)


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuerPolicy:
    """One trusted issuer: its keys and what it may vouch for.

    ``hospitals=None`` lets the issuer issue for any hospital (the fleet's own issuer);
    a hospital's IdP is typically limited to ``roles={DOCTOR}`` and ``hospitals={"H"}``.
    With a hospital limit, every token must name hospitals and all must be in the limit.
    ``keys`` is a :class:`KeySource`, or a ``PyJWKSet`` / list of ``PyJWK`` (wrapped
    in :class:`StaticKeys`).
    """

    issuer: str
    keys: KeySource | PyJWKSet | Sequence[PyJWK]
    roles: frozenset[Role]
    hospitals: frozenset[str] | None = None
    key_source: KeySource = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.issuer:
            raise ConfigError("an issuer policy needs a non-empty issuer")
        if not self.roles:
            raise ConfigError(f"issuer {self.issuer!r} may issue no role")
        keys = self.keys
        source = StaticKeys(keys) if isinstance(keys, PyJWKSet | Sequence) else keys
        object.__setattr__(self, "key_source", source)


class TokenVerifier:
    """Checks a token against the configured issuers; see the module docstring for the order."""

    def __init__(
        self,
        *,
        issuers: Sequence[IssuerPolicy],
        audience: str,
        replay_guard: ReplayGuard,
        leeway_s: float = 30.0,
        max_lifetime_s: float = 24 * 3600.0,
    ) -> None:
        """Index the issuers; two policies for the same issuer is a ConfigError."""
        by_issuer: dict[str, IssuerPolicy] = {}
        for policy in issuers:
            if policy.issuer in by_issuer:
                raise ConfigError(f"issuer {policy.issuer!r} configured twice")
            by_issuer[policy.issuer] = policy
        if not audience:
            raise ConfigError("the audience must not be empty")
        if leeway_s < 0 or max_lifetime_s <= 0:
            raise ConfigError("leeway must be >= 0 and max lifetime > 0")
        self._issuers: Mapping[str, IssuerPolicy] = by_issuer
        self._audience = audience
        self._replay_guard = replay_guard
        self._leeway_s = leeway_s
        self._max_lifetime_s = max_lifetime_s
        self._jws = jwt.PyJWS()

    async def verify(self, token: str | bytes, *, now: datetime) -> Principal:
        """The principal the token speaks for, or AuthError with the first failed check.

        ``now`` must be timezone-aware. A key source that cannot load its keys raises
        ConfigError; a replay guard's BackplaneError propagates.
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        text = _compact_text(token)
        header = self._header(text)
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in ALLOWED_ALGORITHMS:
            raise AuthError(AuthFailure.ALGORITHM_NOT_ALLOWED, f"alg {algorithm!r} not allowed")
        policy = self._issuers.get(_unverified_issuer(text))
        if policy is None:
            raise AuthError(AuthFailure.UNKNOWN_ISSUER, "token from an unknown issuer")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthError(AuthFailure.TOKEN_MALFORMED, "kid is not a string")
        key = await policy.key_source.key_for(kid)
        if key is None:
            raise AuthError(AuthFailure.TOKEN_FORGED, "no key of the issuer matches the kid")
        if key.algorithm_name != algorithm:
            raise AuthError(AuthFailure.TOKEN_FORGED, "the key does not match the alg")
        claims = self._verified_claims(text, key, algorithm)
        principal = self._principal(claims, policy, now)
        until = principal.expires_at + timedelta(seconds=self._leeway_s)
        if not await self._replay_guard.claim(principal.token_id, until=until):
            raise AuthError(AuthFailure.TOKEN_REPLAYED, "token already used")
        return principal

    def _header(self, text: str) -> dict[str, Any]:
        try:
            header = self._jws.get_unverified_header(text)
        except jwt.PyJWTError as error:
            raise AuthError(AuthFailure.TOKEN_MALFORMED, "unreadable header") from error
        if not isinstance(header, dict):  # pragma: no cover - PyJWT guarantees a dict
            raise AuthError(AuthFailure.TOKEN_MALFORMED, "header is not an object")
        return header

    def _verified_claims(self, text: str, key: PyJWK, algorithm: str) -> dict[str, Any]:
        try:
            decoded = self._jws.decode_complete(text, key=key, algorithms=[algorithm])
        except jwt.InvalidAlgorithmError as error:
            raise AuthError(AuthFailure.ALGORITHM_NOT_ALLOWED, str(error)) from error
        except (jwt.InvalidSignatureError, jwt.InvalidKeyError) as error:
            raise AuthError(AuthFailure.TOKEN_FORGED, "signature does not verify") from error
        except jwt.PyJWTError as error:
            raise AuthError(AuthFailure.TOKEN_MALFORMED, "undecodable token") from error
        return _claims_object(decoded["payload"])

    def _principal(
        self, claims: Mapping[str, Any], policy: IssuerPolicy, now: datetime
    ) -> Principal:
        missing = [name for name in _REQUIRED_CLAIMS if claims.get(name) in (None, "", [])]
        if missing:
            raise AuthError(AuthFailure.CLAIMS_MISSING, f"missing claims: {', '.join(missing)}")
        subject = _string(claims, "sub")
        token_id = _string(claims, "jti")
        name = claims.get("name")
        if name is not None and not _is_short_text(name):
            raise AuthError(AuthFailure.TOKEN_MALFORMED, "name is not a short printable string")
        self._check_audience(claims["aud"])
        expires = self._check_times(claims, now)
        try:
            role = Role(_string(claims, "role"))
        except ValueError as error:
            raise AuthError(AuthFailure.ROLE_NOT_ALLOWED, "unknown role") from error
        if role not in policy.roles:
            raise AuthError(AuthFailure.ROLE_NOT_ALLOWED, f"issuer may not issue {role}")
        hospitals = _hospitals(claims)
        if role is Role.DOCTOR and not hospitals:
            raise AuthError(AuthFailure.CLAIMS_MISSING, "a doctor token needs a hospital")
        if policy.hospitals is not None and (
            not hospitals or not policy.hospitals.issuperset(hospitals)
        ):
            raise AuthError(
                AuthFailure.HOSPITAL_NOT_ALLOWED, "issuer may not issue for these hospitals"
            )
        return Principal(
            role=role,
            subject=subject,
            hospitals=hospitals,
            issuer=policy.issuer,
            token_id=token_id,
            expires_at=expires,
            name=name,
        )

    def _check_audience(self, audience: object) -> None:
        if isinstance(audience, str):
            audiences = [audience]
        elif isinstance(audience, list) and all(isinstance(item, str) for item in audience):
            audiences = audience
        else:
            raise AuthError(AuthFailure.TOKEN_MALFORMED, "aud is not a string or list")
        if self._audience not in audiences:
            raise AuthError(AuthFailure.WRONG_AUDIENCE, "token is for another audience")

    def _check_times(self, claims: Mapping[str, Any], now: datetime) -> datetime:
        """Expiry, not-before, issued-at and lifetime against ``now``; returns exp as UTC."""
        current = now.timestamp()
        exp = _number(claims, "exp")
        iat = _number(claims, "iat")
        nbf = _number(claims, "nbf") if "nbf" in claims else None
        if exp <= current - self._leeway_s:
            raise AuthError(AuthFailure.TOKEN_EXPIRED, "token expired")
        if iat > current + self._leeway_s or (nbf is not None and nbf > current + self._leeway_s):
            raise AuthError(AuthFailure.TOKEN_NOT_YET_VALID, "token not valid yet")
        if exp - iat > self._max_lifetime_s:
            raise AuthError(AuthFailure.TOKEN_LIFETIME_TOO_LONG, "token lives too long")
        try:
            return datetime.fromtimestamp(exp, UTC)
        except (OverflowError, OSError, ValueError) as error:
            raise AuthError(AuthFailure.TOKEN_MALFORMED, "exp out of range") from error


def _compact_text(token: str | bytes) -> str:
    """The token as text if it has the compact JWS shape, else token-malformed."""
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError as error:
            raise AuthError(AuthFailure.TOKEN_MALFORMED, "token is not ASCII") from error
    if len(token) > _MAX_TOKEN_CHARS or _COMPACT_JWS.fullmatch(token) is None:
        raise AuthError(AuthFailure.TOKEN_MALFORMED, "not a compact JWS")
    return token


def _unverified_issuer(text: str) -> str:
    """``iss`` read before the signature is checked, only to pick the issuer's keys."""
    try:
        payload = jwt.PyJWS().decode_complete(text, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        raise AuthError(AuthFailure.TOKEN_MALFORMED, "undecodable payload") from error
    issuer = _claims_object(payload["payload"]).get("iss")
    if issuer is None or issuer == "":
        raise AuthError(AuthFailure.CLAIMS_MISSING, "missing claims: iss")
    if not isinstance(issuer, str):
        raise AuthError(AuthFailure.TOKEN_MALFORMED, "iss is not a string")
    return issuer


def _claims_object(payload: bytes) -> dict[str, Any]:
    try:
        claims = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise AuthError(AuthFailure.TOKEN_MALFORMED, "payload is not JSON") from error
    if not isinstance(claims, dict):
        raise AuthError(AuthFailure.TOKEN_MALFORMED, "payload is not a JSON object")
    return claims


def _string(claims: Mapping[str, Any], name: str) -> str:
    """A short printable string claim (it ends up in ids, logs and TURN usernames)."""
    value = claims[name]
    if not _is_short_text(value):
        raise AuthError(AuthFailure.TOKEN_MALFORMED, f"{name} is not a short printable string")
    return str(value)


def _is_short_text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_CLAIM_CHARS and value.isprintable()


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthError(AuthFailure.TOKEN_MALFORMED, f"{name} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise AuthError(AuthFailure.TOKEN_MALFORMED, f"{name} is not finite")
    return number


def _hospitals(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """From ``hospital`` (one string) or ``hospitals`` (a list); both at once is malformed."""
    single, several = claims.get("hospital"), claims.get("hospitals")
    if single is not None and several is not None:
        raise AuthError(AuthFailure.TOKEN_MALFORMED, "both hospital and hospitals")
    if single is not None:
        if not _is_short_text(single):
            raise AuthError(AuthFailure.TOKEN_MALFORMED, "hospital is not a short string")
        return (single,)
    if several is None:
        return ()
    if not isinstance(several, list) or not all(_is_short_text(item) for item in several):
        raise AuthError(AuthFailure.TOKEN_MALFORMED, "hospitals is not a list of strings")
    return tuple(dict.fromkeys(several))


class MemoryReplayGuard:
    """A one-node replay guard: token ids kept in memory until their ``until`` passes.

    Expired ids are purged on every claim (a heap keeps that cheap). At ``capacity`` live
    ids, the id closest to expiry is forgotten to make room (logged): replaying it needs a
    flood of valid tokens first, and refusing every new token instead would lock everyone
    out. Several nodes need a shared guard (the Redis backplane's).
    """

    def __init__(
        self,
        *,
        capacity: int = 1_000_000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``clock`` gives the current aware time (injected in tests)."""
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._clock = clock
        self._until: dict[str, datetime] = {}
        self._expiries: list[tuple[datetime, str]] = []

    def __len__(self) -> int:
        """How many token ids are remembered."""
        return len(self._until)

    async def claim(self, token_id: str, *, until: datetime) -> bool:
        """See :meth:`ReplayGuard.claim`."""
        self._purge(self._clock())
        if token_id in self._until:
            return False
        if len(self._until) >= self._capacity:
            _, evicted = heapq.heappop(self._expiries)
            del self._until[evicted]
            logger.warning("replay guard full: forgot the id closest to expiry")
        self._until[token_id] = until
        heapq.heappush(self._expiries, (until, token_id))
        return True

    def _purge(self, now: datetime) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            until, token_id = heapq.heappop(self._expiries)
            if self._until.get(token_id) == until:
                del self._until[token_id]
