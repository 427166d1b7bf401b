"""SMART Backend Services: access tokens for the cabin from the hospital's token endpoint.

The flow (HL7 SMART App Launch, "Backend Services"; RFC 7523 client authentication)::

    cabin                                              token endpoint
      │  POST token_url  (application/x-www-form-urlencoded)   │
      │   grant_type=client_credentials                        │
      │   client_assertion_type=urn:ietf:params:oauth:         │
      │       client-assertion-type:jwt-bearer                 │
      │   client_assertion=<JWT signed RS384 | ES384>          │
      │   scope=system/Patient.write system/Observation.write  │
      │ ─────────────────────────────────────────────────────▶ │
      │  200 {"access_token", "token_type": "bearer",          │
      │       "expires_in": 300, "scope"}                      │
      │  400 {"error": "invalid_client", "error_description"}  │
      │ ◀───────────────────────────────────────────────────── │

The assertion's header carries ``alg``, ``typ=JWT``, ``kid`` (and ``jku`` when configured);
its claims are ``iss = sub = client_id``, ``aud = token_url``, ``exp`` at most five minutes
ahead, ``iat`` and a fresh random ``jti`` (servers refuse a replayed one).

:class:`TokenSource` caches the token until ``refresh_skew`` seconds before it expires
(measured on the monotonic clock, so a wall-clock jump cannot stretch a token's life) and
lets one coroutine at a time fetch a new one.  A refused request raises
:class:`TokenRequestError` with the server's ``error`` and ``error_description``; no answer
raises :class:`~fhir.errors.TransportError`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import aiohttp
import jwt
from yarl import URL

from fhir.client import parse_json_object, read_limited, transport_failure, warn_if_cleartext
from fhir.config import SmartSettings
from fhir.errors import AuthError, TokenRequestError, TransportError
from fhir.keys import SigningKey, load_key_file

logger = logging.getLogger(__name__)

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = 300.0
"""SMART: the assertion's ``exp`` SHALL be no more than five minutes in the future."""
DEFAULT_ASSERTION_LIFETIME = 240.0
"""A minute under the maximum, so a server whose clock runs a little behind still accepts."""
DEFAULT_TOKEN_LIFETIME = 300.0
"""Assumed when a token answer omits ``expires_in`` (SMART recommends 300 s)."""
MAX_TOKEN_ANSWER_BYTES = 64 * 1024
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 b64token


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A bearer token and when to stop using it (``time.monotonic`` seconds)."""

    value: str = field(repr=False)
    refresh_at: float
    scope: str | None


def build_client_assertion(
    key: SigningKey,
    *,
    client_id: str,
    token_url: str,
    kid: str,
    now: float,
    lifetime: float = DEFAULT_ASSERTION_LIFETIME,
    jku: str | None = None,
) -> str:
    """The signed JWT that authenticates the cabin at ``token_url`` (pure: no I/O).

    ``now`` is wall-clock seconds since the epoch; ``exp`` is rounded down so it is never
    more than ``lifetime`` (≤ 300 s) ahead of ``now``.
    """
    if not 0 < lifetime <= MAX_ASSERTION_LIFETIME:
        raise ValueError(f"assertion lifetime must be in (0, 300] s, not {lifetime}")
    issued = int(now)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "iat": issued,
        "exp": int(now + lifetime),
        "jti": secrets.token_urlsafe(32),
    }
    headers = {"typ": "JWT", "kid": kid}
    if jku is not None:
        headers["jku"] = jku
    try:
        return jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers=headers)
    except jwt.PyJWTError as error:
        raise AuthError(f"cannot sign the client assertion: {error}") from error


class TokenSource:
    """Access tokens for one hospital's SMART settings, cached and refreshed one at a time.

    Pass a ``session`` to share one, or use ``async with TokenSource(...)`` to own one.
    The private key is read on first use (off the event loop) and kept.
    """

    def __init__(
        self,
        settings: SmartSettings,
        *,
        session: aiohttp.ClientSession | None = None,
        verify_tls: bool | ssl.SSLContext = True,
        timeout: float = 30.0,
        refresh_skew: float = 60.0,
        assertion_lifetime: float = DEFAULT_ASSERTION_LIFETIME,
        jku: str | None = None,
        wall_clock: Callable[[], float] = time.time,
        monotonic_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < assertion_lifetime <= MAX_ASSERTION_LIFETIME:
            raise ValueError(f"assertion lifetime must be in (0, 300] s, not {assertion_lifetime}")
        if timeout <= 0 or refresh_skew < 0:
            raise ValueError("timeout must be positive and refresh_skew not negative")
        if jku is not None and URL(jku).scheme != "https":
            raise ValueError(f"jku must be an https URL, not {jku!r}")
        warn_if_cleartext(URL(settings.token_url), what="token endpoint")
        self.settings = settings
        self._session = session
        self._owns_session = False
        self._ssl = verify_tls
        self._timeout = timeout
        self._skew = refresh_skew
        self._assertion_lifetime = assertion_lifetime
        self._jku = jku
        self._wall_clock = wall_clock
        self._monotonic = monotonic_clock
        self._lock = asyncio.Lock()
        self._key: SigningKey | None = None
        self._cached: AccessToken | None = None

    async def __aenter__(self) -> Self:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None
            self._owns_session = False

    async def token(self) -> str:
        """A cached token that is still fresh, or a new one."""
        cached = self._cached
        if cached is not None and self._monotonic() < cached.refresh_at:
            return cached.value
        async with self._lock:
            cached = self._cached
            if cached is not None and self._monotonic() < cached.refresh_at:
                return cached.value  # another coroutine refreshed while this one waited
            return (await self._fetch()).value

    async def refresh(self, *, stale: str) -> str:
        """A token other than ``stale`` (which a server refused), fetching one if needed."""
        async with self._lock:
            cached = self._cached
            if (
                cached is not None
                and cached.value != stale
                and self._monotonic() < cached.refresh_at
            ):
                return cached.value
            self._cached = None
            return (await self._fetch()).value

    async def _fetch(self) -> AccessToken:
        """Request a token (the caller holds the lock) and cache it."""
        session = self._session
        if session is None:
            raise RuntimeError("TokenSource needs a session: pass one, or use 'async with'")
        key = await self._signing_key()
        settings = self.settings
        assertion = build_client_assertion(
            key,
            client_id=settings.client_id,
            token_url=settings.token_url,
            kid=settings.key_id or key.kid,
            now=self._wall_clock(),
            lifetime=self._assertion_lifetime,
            jku=self._jku,
        )
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion,
            "scope": " ".join(settings.scopes),
        }
        started = self._monotonic()
        try:
            async with (
                asyncio.timeout(self._timeout),
                session.post(
                    settings.token_url,
                    data=form,
                    headers={"Accept": "application/json"},
                    ssl=self._ssl,
                    allow_redirects=False,
                    raise_for_status=False,
                ) as response,
            ):
                body = await read_limited(response, limit=MAX_TOKEN_ANSWER_BYTES)
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            why = transport_failure(error, timeout=self._timeout)
            raise TransportError(f"token endpoint {settings.token_url}: {why}") from error
        if body is None:
            raise AuthError(
                f"token endpoint {settings.token_url} answered HTTP {status} with more than "
                f"{MAX_TOKEN_ANSWER_BYTES} bytes"
            )
        token = self._parse_answer(status, body, started=started)
        self._cached = token
        logger.info(
            "access token from %s (scope %s), refresh in %.0f s",
            settings.token_url,
            token.scope or "as requested",
            token.refresh_at - self._monotonic(),
        )
        return token

    async def _signing_key(self) -> SigningKey:
        if self._key is None:
            settings = self.settings
            key = await asyncio.to_thread(
                load_key_file, settings.key_path, algorithm=settings.algorithm
            )
            if settings.key_id is not None and key.kid != settings.key_id:
                logger.warning(
                    "key_id %r is not the thumbprint %r that the exported JWKS names; the "
                    "hospital must have registered the key under %r",
                    settings.key_id,
                    key.kid,
                    settings.key_id,
                )
            self._key = key
        return self._key

    def _parse_answer(self, status: int, body: bytes, *, started: float) -> AccessToken:
        url = self.settings.token_url
        answer = parse_json_object(body)
        if status != 200:
            error = _short_text(answer.get("error")) if answer else None
            description = _short_text(answer.get("error_description")) if answer else None
            detail = f"{error}: {description}" if description else (error or "no error code")
            raise TokenRequestError(
                f"token endpoint {url} refused the cabin: HTTP {status}, {detail}",
                status=status,
                error=error,
                description=description,
            )
        if answer is None:
            raise AuthError(f"token endpoint {url} answered 200 without a JSON object")
        value = answer.get("access_token")
        if not isinstance(value, str) or not _BEARER_TOKEN.fullmatch(value):
            raise AuthError(f"token endpoint {url} answered without a usable access_token")
        token_type = answer.get("token_type")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise AuthError(f"token endpoint {url} issued a {token_type!r} token, not bearer")
        lifetime = answer.get("expires_in", DEFAULT_TOKEN_LIFETIME)
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            raise AuthError(f"token endpoint {url} gave expires_in {lifetime!r}")
        lifetime = min(float(lifetime), 86400.0)
        margin = min(self._skew, lifetime / 2)
        scope = answer.get("scope")
        return AccessToken(
            value=value,
            refresh_at=started + lifetime - margin,
            scope=scope if isinstance(scope, str) else None,
        )


def _short_text(value: object) -> str | None:
    """A server-supplied string made safe for a log line: printable, at most 200 chars."""
    if not isinstance(value, str):
        return None
    printable = "".join(char if char.isprintable() else "?" for char in value)
    return printable[:200]
