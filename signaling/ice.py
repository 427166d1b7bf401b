"""ICE servers for the welcome message, with time-limited TURN credentials.

TURN credentials follow the TURN REST API convention that coturn implements with
``use-auth-secret`` / ``static-auth-secret``::

    username   = "<expiry unix seconds>:<identity>"
    credential = base64( HMAC-SHA1( shared secret, username ) )

coturn recomputes the credential from the username and refuses it after the expiry, so
nothing is stored per user. The identity is escaped (``%`` → ``%25``, ``:`` → ``%3A``) so
that the username has exactly one ``:``, whatever the subject or an issuer URL contains;
one that still does not fit a STUN username is replaced by a digest (see ``turn_username``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from signaling.errors import ConfigError

__all__ = ["IceServer", "IceSettings", "ice_servers", "refresh_due", "turn_username"]

_STUN_SCHEMES = ("stun:", "stuns:")
_TURN_SCHEMES = ("turn:", "turns:")
_MAX_USERNAME_BYTES = 512  # RFC 8489: USERNAME is under 513 bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class IceSettings:
    """STUN and TURN URLs from configuration and the TURN shared secret.

    TURN URLs need the secret (static TURN passwords are not supported: they would be
    long-lived and shared by every client).
    """

    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = None
    ttl_s: int = 3600

    def __post_init__(self) -> None:
        for url in self.stun_urls:
            if not url.startswith(_STUN_SCHEMES):
                raise ConfigError(f"STUN URL {url!r} must start with stun: or stuns:")
        for url in self.turn_urls:
            if not url.startswith(_TURN_SCHEMES):
                raise ConfigError(f"TURN URL {url!r} must start with turn: or turns:")
        if self.turn_urls and not self.turn_secret:
            raise ConfigError("TURN URLs need turn_secret (coturn use-auth-secret)")
        if self.ttl_s <= 0:
            raise ConfigError("ttl_s must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class IceServer:
    """One ``RTCIceServer`` entry; ``expires_at`` is set for TURN (refresh before it)."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None
    expires_at: datetime | None = None

    def to_json(self) -> dict[str, str | list[str]]:
        """The WebRTC ``RTCIceServer`` dict (no username/credential keys for STUN)."""
        entry: dict[str, str | list[str]] = {"urls": list(self.urls)}
        if self.username is not None and self.credential is not None:
            entry["username"] = self.username
            entry["credential"] = self.credential
        return entry


def turn_username(identity: str, *, expires_unix: int) -> str:
    """``expiry:identity`` with ``%`` and ``:`` in the identity percent-escaped.

    An identity that cannot be carried as is (control characters, or a username over the
    STUN limit of 512 bytes once escaped) is replaced by a stable digest, ``h-`` + 32 hex
    digits of its SHA-256, so that no token content can make this fail. An empty identity
    is a programming error (ValueError).
    """
    if not identity:
        raise ValueError("identity must not be empty")
    escaped = identity.replace("%", "%25").replace(":", "%3A")
    username = f"{expires_unix}:{escaped}"
    if len(username.encode("utf-8")) > _MAX_USERNAME_BYTES or any(
        ord(char) < 0x20 or ord(char) == 0x7F for char in identity
    ):
        digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()
        username = f"{expires_unix}:h-{digest[:32]}"
    return username


def _credential(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def ice_servers(settings: IceSettings, *, identity: str, now: datetime) -> tuple[IceServer, ...]:
    """The ICE servers for ``identity``: one STUN entry, one TURN entry valid ``ttl_s`` from now.

    ``now`` must be timezone-aware; the expiry is whole seconds (``int(now) + ttl_s``).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    servers: list[IceServer] = []
    if settings.stun_urls:
        servers.append(IceServer(urls=settings.stun_urls))
    if settings.turn_urls and settings.turn_secret:
        expires_unix = int(now.timestamp()) + settings.ttl_s
        username = turn_username(identity, expires_unix=expires_unix)
        servers.append(
            IceServer(
                urls=settings.turn_urls,
                username=username,
                credential=_credential(settings.turn_secret, username),
                expires_at=datetime.fromtimestamp(expires_unix, UTC),
            )
        )
    return tuple(servers)


def refresh_due(servers: Sequence[IceServer]) -> datetime | None:
    """The earliest TURN expiry among ``servers`` (None when no entry expires)."""
    expiries = [server.expires_at for server in servers if server.expires_at is not None]
    return min(expiries, default=None)
