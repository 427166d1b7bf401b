"""The client's address and scheme when the service sits behind reverse proxies.

Proxy headers are believed only when the direct peer is a configured trusted proxy, and
then only as far back as the chain stays trusted. Each proxy appends the address it
received from, so the chain is read right to left::

    Forwarded: for=203.0.113.9;proto=https, for=10.0.0.5      (RFC 7239)
    X-Forwarded-For: 203.0.113.9, 10.0.0.5                     (de facto)
                     ▲ client     ▲ trusted proxy   ◀── peer 10.0.0.7 (trusted)

    → client 203.0.113.9, scheme https

Walking stops at the first hop that is not trusted (the client, or whoever claims to be
it), or at one that is not an address (``unknown``, obfuscated, garbage), in which case
the last known hop is reported. Garbage never raises.

Which header: ``AUTO`` uses ``Forwarded`` when present, else ``X-Forwarded-For``. A proxy
that sets one header but passes the other through from clients lets them spoof it: pin
the header the proxies actually write (``ProxyHeader.FORWARDED`` or ``X_FORWARDED``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

from signaling.errors import ConfigError

__all__ = ["ClientAddress", "ProxyHeader", "TrustedProxies", "client_address"]

_IpAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
_SCHEMES = frozenset({"http", "https", "ws", "wss"})


class ProxyHeader(StrEnum):
    """Which forwarding header the trusted proxies write."""

    AUTO = "auto"
    FORWARDED = "forwarded"
    X_FORWARDED = "x-forwarded"


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """Networks whose hosts are our reverse proxies, and which header they write."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    header: ProxyHeader = ProxyHeader.AUTO

    @classmethod
    def parse(
        cls, entries: Iterable[str], *, header: ProxyHeader = ProxyHeader.AUTO
    ) -> TrustedProxies:
        """From addresses and CIDR networks (``"10.0.0.0/8"``, ``"::1"``); bad ones: ConfigError."""
        if isinstance(entries, str):
            raise ConfigError("trusted proxies must be a list, not one string")
        networks = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError as error:
                raise ConfigError(f"bad trusted proxy {entry!r}: {error}") from error
        return cls(networks=tuple(networks), header=header)

    def trusts(self, address: _IpAddress) -> bool:
        """Whether ``address`` belongs to one of the trusted networks."""
        return any(address in network for network in self.networks)


@dataclass(frozen=True, slots=True)
class ClientAddress:
    """Where a request really came from: the client's IP and the scheme it used."""

    ip: str
    scheme: str

    @property
    def secure(self) -> bool:
        """Whether the client used TLS (https or wss) to reach the first proxy."""
        return self.scheme in ("https", "wss")


@dataclass(frozen=True, slots=True)
class _Hop:
    address: _IpAddress | None
    proto: str | None


def _ip(text: str) -> _IpAddress | None:
    """An address from a node (``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``, ``::1``) or None."""
    node = text.strip().strip('"').strip()
    if node.startswith("["):
        end = node.find("]")
        if end < 0 or (node[end + 1 :] and not node[end + 1 :].startswith(":")):
            return None
        node = node[1:end]
    elif node.count(":") == 1:
        node = node.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(node)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _scheme(text: str | None) -> str | None:
    if text is None:
        return None
    scheme = text.strip().strip('"').strip().lower()
    return scheme if scheme in _SCHEMES else None


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _forwarded_hops(value: str) -> list[_Hop]:
    """RFC 7239 elements, left to right; an element without a usable ``for`` has no address."""
    hops = []
    for element in _split_outside_quotes(value, ","):
        pairs: dict[str, str] = {}
        for pair in _split_outside_quotes(element, ";"):
            name, equals, raw = pair.partition("=")
            if equals:
                pairs.setdefault(name.strip().lower(), raw)
        node = pairs.get("for")
        hops.append(_Hop(_ip(node) if node is not None else None, _scheme(pairs.get("proto"))))
    return hops


def _x_forwarded_hops(addresses: str, protos: str | None) -> list[_Hop]:
    """X-Forwarded-For entries; X-Forwarded-Proto aligned by position, else its last value."""
    nodes = addresses.split(",")
    schemes = [_scheme(item) for item in protos.split(",")] if protos else []
    if len(schemes) != len(nodes):
        last = next((scheme for scheme in reversed(schemes) if scheme), None)
        schemes = [last] * len(nodes)
    return [_Hop(_ip(node), scheme) for node, scheme in zip(nodes, schemes, strict=True)]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """All values of a header (case-insensitive, repeated fields joined by commas)."""
    values = [value for key, value in headers.items() if key.lower() == name]
    return ",".join(values) if values else None


def client_address(
    peer_ip: str, headers: Mapping[str, str], trusted: TrustedProxies, *, scheme: str = "http"
) -> ClientAddress:
    """The client behind the proxies, or the direct peer when it is not a trusted proxy.

    ``scheme`` is that of the direct connection (``https`` when this server terminates
    TLS); it stands unless a trusted proxy reports another.
    """
    peer = _ip(peer_ip)
    if peer is None or not trusted.trusts(peer):
        return ClientAddress(ip=str(peer) if peer else peer_ip, scheme=scheme)
    forwarded = _header(headers, "forwarded")
    x_forwarded = _header(headers, "x-forwarded-for")
    hops: list[_Hop] = []
    if forwarded is not None and trusted.header in (ProxyHeader.AUTO, ProxyHeader.FORWARDED):
        hops = _forwarded_hops(forwarded)
    elif x_forwarded is not None and trusted.header in (ProxyHeader.AUTO, ProxyHeader.X_FORWARDED):
        hops = _x_forwarded_hops(x_forwarded, _header(headers, "x-forwarded-proto"))
    last_known = _Hop(peer, None)
    for hop in reversed(hops):
        if hop.address is None:
            break
        last_known = hop
        if not trusted.trusts(hop.address):
            break
    return ClientAddress(ip=str(last_known.address), scheme=last_known.proto or scheme)
