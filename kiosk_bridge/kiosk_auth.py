"""How the kiosk authenticates to the cabin's service-flow API: a bearer token or HMAC-signed
requests (configurable; mutual TLS, when TLS is on, is the TLS layer's business).

Bearer::

    Authorization: Bearer <token>                  compared in constant time

HMAC-SHA256 signed request::

    X-Kiosk-Key-Id: <key id>
    X-Kiosk-Timestamp: <unix seconds>              within ±300 s of the cabin's clock
    X-Kiosk-Signature: sha256=<hex HMAC-SHA256(secret, string to sign)>

    string to sign = METHOD "\\n" path-with-query "\\n" timestamp "\\n" hex SHA-256(body)

A signature is accepted once: replays inside the window are refused (the signatures seen are
remembered until their timestamp leaves the window).

401 (no usable credentials) vs 403 (credentials that are wrong, stale or replayed) follows
RFC 9110.  The pure part (:func:`string_to_sign`, :func:`request_signature`) needs no server.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final

from kiosk_bridge.errors import KioskAuthRefused, RequestReason

KEY_ID_HEADER: Final = "X-Kiosk-Key-Id"
TIMESTAMP_HEADER: Final = "X-Kiosk-Timestamp"
SIGNATURE_HEADER: Final = "X-Kiosk-Signature"
WINDOW: Final = timedelta(seconds=300)


def string_to_sign(*, method: str, path: str, timestamp: str, body: bytes) -> bytes:
    """What an HMAC-signed request signs (see the module docstring)."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{path}\n{timestamp}\n{digest}".encode()


def request_signature(secret: bytes, *, method: str, path: str, timestamp: str, body: bytes) -> str:
    """The ``X-Kiosk-Signature`` value for a request (what the kiosk computes)."""
    message = string_to_sign(method=method, path=path, timestamp=timestamp, body=body)
    return "sha256=" + hmac.new(secret, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class BearerToken:
    """A configured bearer token (at least 32 characters)."""

    token: str = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.token) < 32:
            raise ValueError("a kiosk bearer token needs at least 32 characters")


@dataclass(frozen=True, slots=True)
class HmacKeys:
    """The kiosks' HMAC secrets by key id."""

    secrets: Mapping[str, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.secrets or any(len(secret) < 32 for secret in self.secrets.values()):
            raise ValueError("HMAC keys: at least one, each secret at least 32 bytes")
        object.__setattr__(self, "secrets", MappingProxyType(dict(self.secrets)))


class KioskAuth:
    """Checks each API request's credentials; holds the replay memory of signed requests.

    Exactly one of ``bearer`` and ``hmac_keys`` is configured.  Thread-safe.
    """

    def __init__(
        self,
        *,
        bearer: BearerToken | None = None,
        hmac_keys: HmacKeys | None = None,
        window: timedelta = WINDOW,
    ) -> None:
        if (bearer is None) == (hmac_keys is None):
            raise ValueError("configure exactly one of a bearer token and HMAC keys")
        self._bearer = bearer
        self._keys = hmac_keys
        self._window = window
        self._seen: set[str] = set()
        self._expiries: list[tuple[datetime, str]] = []
        self._lock = threading.Lock()

    @property
    def scheme(self) -> str:
        """``bearer`` or ``hmac``."""
        return "bearer" if self._bearer is not None else "hmac"

    def check(
        self,
        *,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        now: datetime,
    ) -> None:
        """Return if the request is the kiosk's; raise :class:`KioskAuthRefused` if not.

        ``headers`` must look names up case-insensitively (aiohttp's ``CIMultiDict`` does).
        """
        if self._bearer is not None:
            self._check_bearer(self._bearer, headers)
        elif self._keys is not None:
            self._check_hmac(
                self._keys, method=method, path=path, headers=headers, body=body, now=now
            )

    def _check_bearer(self, bearer: BearerToken, headers: Mapping[str, str]) -> None:
        value = headers.get("Authorization")
        if value is None:
            raise _refused(401, RequestReason.CREDENTIALS_MISSING, "A bearer token is required.")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _refused(401, RequestReason.CREDENTIALS_MISSING, "A bearer token is required.")
        if not hmac.compare_digest(
            token.strip().encode("utf-8", "surrogateescape"), bearer.token.encode()
        ):
            raise _refused(403, RequestReason.CREDENTIALS_INVALID, "The bearer token is wrong.")

    def _check_hmac(
        self,
        keys: HmacKeys,
        *,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        now: datetime,
    ) -> None:
        key_id = headers.get(KEY_ID_HEADER)
        timestamp = headers.get(TIMESTAMP_HEADER)
        signature = headers.get(SIGNATURE_HEADER)
        if key_id is None or timestamp is None or signature is None:
            raise _refused(
                401,
                RequestReason.CREDENTIALS_MISSING,
                f"Signed requests need {KEY_ID_HEADER}, {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}.",
            )
        secret = keys.secrets.get(key_id)
        if secret is None:
            raise _refused(403, RequestReason.KIOSK_KEY_UNKNOWN, "The key id is not configured.")
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise _refused(
                401, RequestReason.CREDENTIALS_MISSING, "The timestamp is not unix seconds."
            )
        if abs(now.timestamp() - int(timestamp)) > self._window.total_seconds():
            raise _refused(
                403,
                RequestReason.TIMESTAMP_OUT_OF_WINDOW,
                "The request's timestamp is more than 300 seconds from the cabin's clock.",
            )
        expected = request_signature(
            secret, method=method, path=path, timestamp=timestamp, body=body
        )
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "surrogateescape")):
            raise _refused(403, RequestReason.SIGNATURE_INVALID, "The request signature is wrong.")
        signed_at = datetime.fromtimestamp(int(timestamp), tz=now.tzinfo)
        self._remember(expected, until=signed_at + self._window, now=now)

    def _remember(self, signature: str, *, until: datetime, now: datetime) -> None:
        with self._lock:
            while self._expiries and self._expiries[0][0] < now:
                _, old = heapq.heappop(self._expiries)
                self._seen.discard(old)
            if signature in self._seen:
                raise _refused(
                    403, RequestReason.SIGNATURE_REPLAYED, "This signed request was already used."
                )
            self._seen.add(signature)
            heapq.heappush(self._expiries, (until, signature))


def _refused(status: int, reason: RequestReason, message: str) -> KioskAuthRefused:
    return KioskAuthRefused(status, reason, message)
