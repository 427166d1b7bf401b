"""The signaling service's configuration: one typed object, loaded once from TOML + environment.

::

    [signaling]
    audience = "telehealth-signaling"     # the `aud` every token must carry
    grace_s = 60                           # a dropped connection keeps its place / call this long
    no_doctor_s = 300                      # tell a waiting cabin after this long with no doctor
    mean_consult_s = 600                   # for the waiting-time estimate
    allowed_origins = ["https://console.bv-a.vn"]   # browsers; same-origin is always allowed
    trusted_proxies = ["10.0.0.0/8"]      # honour X-Forwarded-* / Forwarded only from these
    redis_url = "redis://127.0.0.1:6379/0"           # absent: one node, state in memory
    dev_key_dir = "var/signaling"          # trust `signaling token` development tokens

    [signaling.limits]                     # see Limits
    max_message_bytes = 65536

    [signaling.ice]
    stun_urls = ["stun:turn.example.vn:3478"]
    turn_urls = ["turn:turn.example.vn:3478?transport=udp"]
    ttl_s = 3600                           # the secret comes from SIGNALING_TURN_SECRET

    [[signaling.issuers]]                  # one per identity provider
    issuer = "https://idp.bv-a.vn"
    jwks_url = "https://idp.bv-a.vn/jwks.json"   # or jwks_file = "…"
    roles = ["doctor"]
    hospitals = ["bv-a"]                   # this IdP may only vouch for bv-a's doctors
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signaling.errors import ConfigError
from signaling.ice import IceSettings
from signaling.model import Role

TURN_SECRET_ENV = "SIGNALING_TURN_SECRET"


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """What one connection may cost the service."""

    max_message_bytes: int = 64 * 1024
    rate_per_s: float = 50.0
    """Sustained inbound messages per second per connection (a trickle of ICE is ~20)."""
    burst: int = 200
    strikes: int = 10
    """Client-fault errors tolerated per ``strike_window_s`` before the connection is closed."""
    strike_window_s: float = 60.0
    connections_per_identity: int = 4
    send_queue_messages: int = 1024
    send_queue_bytes: int = 4 * 1024 * 1024
    """A client that lets more than this wait unsent is too slow and is disconnected."""
    auth_timeout_s: float = 10.0
    heartbeat_s: float = 20.0
    """WebSocket ping interval; no pong within half of it closes the connection."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuerConfig:
    """One token issuer: whose keys, which roles and which hospitals it may vouch for."""

    issuer: str
    jwks_file: Path | None = None
    jwks_url: str | None = None
    roles: frozenset[Role] = frozenset({Role.DOCTOR})
    hospitals: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if (self.jwks_file is None) == (self.jwks_url is None):
            raise ConfigError(f"issuer {self.issuer!r}: give exactly one of jwks_file, jwks_url")


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalingConfig:
    audience: str = "telehealth-signaling"
    node: str = ""
    """This node's name in logs and in Redis; empty picks host name + port."""
    issuers: tuple[IssuerConfig, ...] = ()
    dev_key_dir: Path | None = None
    ice: IceSettings = field(default_factory=IceSettings)
    limits: Limits = field(default_factory=Limits)
    grace_s: float = 60.0
    no_doctor_s: float = 300.0
    mean_consult_s: float = 600.0
    allowed_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    redis_url: str | None = None
    redis_prefix: str = "sig:"
    """Key and channel prefix in Redis: deployments (or tests) sharing a server stay apart."""
    node_ttl_s: float = 10.0
    """A node that has not heartbeated for this long is dead; its sessions are parked."""
    sweep_s: float = 1.0
    """How often a node expires grace windows, adopts a dead node's sessions and checks waits."""


def load_config(path: Path | None, *, environ: Mapping[str, str] | None = None) -> SignalingConfig:
    """Read the ``[signaling]`` table of a TOML file (or defaults when ``path`` is None)."""
    env = os.environ if environ is None else environ
    table: dict[str, Any] = {}
    if path is not None:
        try:
            with path.open("rb") as handle:
                table = tomllib.load(handle).get("signaling", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
    base = path.parent if path is not None else Path.cwd()
    try:
        return _config(table, base=base, env=env)
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"{path or 'defaults'}: {exc}") from None


def _config(table: dict[str, Any], *, base: Path, env: Mapping[str, str]) -> SignalingConfig:
    ice_table = dict(table.pop("ice", {}))
    limits = Limits(**table.pop("limits", {}))
    issuers = tuple(_issuer(raw, base=base) for raw in table.pop("issuers", []))
    ice = IceSettings(
        stun_urls=tuple(ice_table.get("stun_urls", ())),
        turn_urls=tuple(ice_table.get("turn_urls", ())),
        turn_secret=env.get(TURN_SECRET_ENV) or ice_table.get("turn_secret"),
        ttl_s=int(ice_table.get("ttl_s", 3600)),
    )
    dev = table.pop("dev_key_dir", None)
    for name in ("allowed_origins", "trusted_proxies"):
        if name in table:
            table[name] = tuple(table[name])
    return SignalingConfig(
        issuers=issuers,
        ice=ice,
        limits=limits,
        dev_key_dir=None if dev is None else base / dev,
        **table,
    )


def _issuer(raw: dict[str, Any], *, base: Path) -> IssuerConfig:
    hospitals = raw.get("hospitals")
    return IssuerConfig(
        issuer=str(raw["issuer"]),
        jwks_file=None if raw.get("jwks_file") is None else base / raw["jwks_file"],
        jwks_url=raw.get("jwks_url"),
        roles=frozenset(Role(r) for r in raw.get("roles", ["doctor"])),
        hospitals=None if hospitals is None else frozenset(str(h) for h in hospitals),
    )
