"""ICE servers and coturn REST-style TURN credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from signaling.errors import ConfigError
from signaling.ice import IceServer, IceSettings, ice_servers, refresh_due, turn_username

NOW = datetime(2025, 10, 10, 9, 0, tzinfo=UTC)
SETTINGS = IceSettings(
    stun_urls=("stun:stun.example:3478",),
    turn_urls=("turn:turn.example:3478?transport=udp", "turns:turn.example:5349"),
    turn_secret="north-wind",
    ttl_s=3600,
)


def test_turn_credential_is_the_coturn_rest_hmac() -> None:
    stun, turn = ice_servers(SETTINGS, identity="fleet|cabin-7", now=NOW)
    expiry = int(NOW.timestamp()) + 3600
    assert turn.username == f"{expiry}:fleet|cabin-7"
    expected = base64.b64encode(
        hmac.new(b"north-wind", f"{expiry}:fleet|cabin-7".encode(), hashlib.sha1).digest()
    ).decode()
    assert turn.credential == expected
    assert turn.expires_at == NOW + timedelta(seconds=3600)
    assert stun.expires_at is None
    assert refresh_due((stun, turn)) == NOW + timedelta(seconds=3600)


def test_known_vector() -> None:
    """Fixed inputs, fixed output: 1760090400:fleet|cabin-7 under the secret north-wind."""
    _, turn = ice_servers(SETTINGS, identity="fleet|cabin-7", now=NOW)
    digest = hmac.new(b"north-wind", b"1760090400:fleet|cabin-7", "sha1").digest()
    assert turn.credential == base64.b64encode(digest).decode()


def test_json_shape_is_rtc_ice_server() -> None:
    stun, turn = ice_servers(SETTINGS, identity="fleet|cabin-7", now=NOW)
    assert stun.to_json() == {"urls": ["stun:stun.example:3478"]}
    assert set(turn.to_json()) == {"urls", "username", "credential"}
    assert turn.to_json()["urls"] == list(SETTINGS.turn_urls)


def test_colons_in_the_identity_are_escaped() -> None:
    username = turn_username("https://idp.h|dr:1%", expires_unix=10)
    assert username == "10:https%3A//idp.h|dr%3A1%25"
    assert username.count(":") == 1


@pytest.mark.parametrize("identity", ["a" * 600, ":" * 200, "cabin\n7"])
def test_identity_that_does_not_fit_becomes_a_stable_digest(identity: str) -> None:
    username = turn_username(identity, expires_unix=10)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    assert username == f"10:h-{digest}"


def test_empty_identity_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="identity"):
        ice_servers(SETTINGS, identity="", now=NOW)


def test_stun_only_settings_give_no_credentials() -> None:
    servers = ice_servers(IceSettings(stun_urls=("stun:s:3478",)), identity="x", now=NOW)
    assert servers == (IceServer(urls=("stun:s:3478",)),)
    assert refresh_due(servers) is None


@pytest.mark.parametrize(
    "build",
    [
        lambda: IceSettings(turn_urls=("turn:t",)),
        lambda: IceSettings(stun_urls=("http://s",)),
        lambda: IceSettings(turn_urls=("stun:t",), turn_secret="s"),
        lambda: IceSettings(ttl_s=0),
    ],
)
def test_bad_settings_are_config_errors(build: Callable[[], IceSettings]) -> None:
    with pytest.raises(ConfigError):
        build()
