"""Client address behind reverse proxies: trusted chains honoured, spoofing ignored."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from signaling.errors import ConfigError
from signaling.forwarded import ClientAddress, ProxyHeader, TrustedProxies, client_address

PROXIES = TrustedProxies.parse(["10.0.0.0/8", "127.0.0.1", "2001:db8::/32"])


def test_untrusted_peer_headers_are_ignored() -> None:
    headers = {"Forwarded": "for=1.2.3.4;proto=https", "X-Forwarded-For": "1.2.3.4"}
    assert client_address("203.0.113.9", headers, PROXIES) == ClientAddress("203.0.113.9", "http")


def test_trusted_peer_without_headers_is_the_client() -> None:
    assert client_address("10.0.0.7", {}, PROXIES, scheme="https") == ClientAddress(
        "10.0.0.7", "https"
    )


def test_forwarded_chain_is_walked_right_to_left_past_trusted_proxies() -> None:
    headers = {"forwarded": "for=198.51.100.1, for=203.0.113.9;proto=https, for=10.0.0.5"}
    assert client_address("10.0.0.7", headers, PROXIES) == ClientAddress("203.0.113.9", "https")


def test_forwarded_ipv6_with_port_and_quotes() -> None:
    headers = {"Forwarded": 'for="[2001:db9::1]:4711";proto=wss'}
    assert client_address("127.0.0.1", headers, PROXIES) == ClientAddress("2001:db9::1", "wss")


def test_x_forwarded_for_with_proto() -> None:
    headers = {"X-Forwarded-For": "6.6.6.6, 203.0.113.9, 10.1.2.3", "X-Forwarded-Proto": "https"}
    assert client_address("10.0.0.7", headers, PROXIES) == ClientAddress("203.0.113.9", "https")


def test_client_spoofing_the_header_gets_only_its_own_address() -> None:
    """The client wrote ``X-Forwarded-For: 10.9.9.9``; the proxy appended the real address."""
    headers = {"X-Forwarded-For": "10.9.9.9, 203.0.113.9"}
    assert client_address("10.0.0.7", headers, PROXIES).ip == "203.0.113.9"


def test_unknown_hop_stops_the_walk_at_the_last_known_proxy() -> None:
    headers = {"Forwarded": "for=203.0.113.9, for=unknown, for=10.0.0.5"}
    assert client_address("10.0.0.7", headers, PROXIES).ip == "10.0.0.5"


def test_all_trusted_chain_gives_its_leftmost_hop() -> None:
    headers = {"X-Forwarded-For": "10.0.0.1, 10.0.0.2"}
    assert client_address("127.0.0.1", headers, PROXIES).ip == "10.0.0.1"


def test_repeated_header_fields_are_one_list() -> None:
    """As aiohttp hands them over: a multidict whose ``items()`` yields every field."""
    headers = CIMultiDict([("Forwarded", "for=203.0.113.9"), ("forwarded", "for=10.0.0.5")])
    assert client_address("10.0.0.7", headers, PROXIES).ip == "203.0.113.9"


def test_pinned_header_ignores_the_other_one() -> None:
    pinned = TrustedProxies.parse(["10.0.0.0/8"], header=ProxyHeader.X_FORWARDED)
    headers = {"Forwarded": "for=6.6.6.6", "X-Forwarded-For": "203.0.113.9"}
    assert client_address("10.0.0.7", headers, pinned).ip == "203.0.113.9"


def test_ipv4_mapped_peer_is_recognised_as_trusted() -> None:
    headers = {"X-Forwarded-For": "203.0.113.9"}
    assert client_address("::ffff:10.0.0.7", headers, PROXIES).ip == "203.0.113.9"


@pytest.mark.parametrize("entries", [["10.0.0.0/33"], ["proxy.local"], "10.0.0.1"])
def test_bad_trusted_proxy_entries_are_config_errors(entries: list[str] | str) -> None:
    with pytest.raises(ConfigError):
        TrustedProxies.parse(entries)


@given(
    st.text(),
    st.dictionaries(
        st.sampled_from(["Forwarded", "X-Forwarded-For", "X-Forwarded-Proto", "Other"]),
        st.text(),
    ),
)
def test_garbage_headers_never_raise(peer: str, headers: dict[str, str]) -> None:
    result = client_address(peer, headers, PROXIES)
    assert isinstance(result, ClientAddress)
    assert client_address("10.0.0.7", headers, PROXIES).scheme in {"http", "https", "ws", "wss"}
