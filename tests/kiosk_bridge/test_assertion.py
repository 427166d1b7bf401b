"""Kiosk assertions: ES256 only, this cabin only, short-lived, single use, claims checked."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk_bridge.assertion import (
    AssertionPolicy,
    MemoryJtiStore,
    TrustedKiosks,
    fetch_jwks,
    load_jwks_file,
    verify_assertion,
)
from kiosk_bridge.errors import ConfigurationError, IdentityRefused, RefusalReason
from kiosk_bridge.identity import Assurance, Sex, Source
from kiosk_bridge.testcards import Citizen, SyntheticKiosk, make_kiosk, synthetic_citizen

NOW = datetime(2025, 11, 1, 3, 0, tzinfo=UTC)
CABIN = "cabin-dao-kim-cuong-01"
POLICY = AssertionPolicy(audience=CABIN)


@pytest.fixture(scope="module")
def kiosk() -> SyntheticKiosk:
    return make_kiosk()


@pytest.fixture(scope="module")
def forger(kiosk: SyntheticKiosk) -> SyntheticKiosk:
    """Same issuer and key id as the real kiosk, another key."""
    return make_kiosk(issuer=kiosk.issuer, kid=kiosk.kid)


@pytest.fixture(scope="module")
def kiosks(kiosk: SyntheticKiosk) -> TrustedKiosks:
    return TrustedKiosks.from_jwks({kiosk.issuer: kiosk.jwks()})


@pytest.fixture(scope="module")
def citizen() -> Citizen:
    return synthetic_citizen(3, today=NOW.date())


def _verify(
    token: str,
    kiosks: TrustedKiosks,
    *,
    now: datetime = NOW,
    store: MemoryJtiStore | None = None,
    policy: AssertionPolicy = POLICY,
) -> Any:
    return verify_assertion(
        token,
        kiosks=kiosks,
        policy=policy,
        jti_store=store if store is not None else MemoryJtiStore(clock=lambda: now),
        now=now,
    )


def _reason(token: str, kiosks: TrustedKiosks, **kwargs: Any) -> RefusalReason:
    with pytest.raises(IdentityRefused) as caught:
        _verify(token, kiosks, **kwargs)
    return caught.value.reason


def test_a_good_assertion_gives_an_asserted_identity(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen
) -> None:
    identity = _verify(kiosk.assertion(citizen, audience=CABIN, now=NOW), kiosks)
    assert identity.assurance is Assurance.ASSERTED
    assert identity.source is Source.KIOSK_ASSERTION
    assert identity.issuer == kiosk.issuer
    assert (identity.cccd, identity.full_name) == (citizen.cccd, citizen.full_name)
    assert (identity.birth_date, identity.sex) == (citizen.birth_date, citizen.sex)
    assert (identity.bhyt, identity.card_expiry) == (citizen.bhyt, citizen.card_expiry)
    assert identity.extras.kept() == frozenset()


def test_optional_claims_may_be_absent(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen
) -> None:
    token = kiosk.assertion(citizen, audience=CABIN, now=NOW, claims={"bhyt": None})
    identity = _verify(token, kiosks)
    assert identity.bhyt is None


def test_a_forged_assertion_is_refused(
    forger: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen
) -> None:
    token = forger.assertion(citizen, audience=CABIN, now=NOW)
    assert _reason(token, kiosks) is RefusalReason.ASSERTION_FORGED


def test_a_changed_claim_breaks_the_signature(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen
) -> None:
    header, payload, signature = kiosk.assertion(citizen, audience=CABIN, now=NOW).split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["cccd"] = "099000000001"
    changed = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    assert _reason(f"{header}.{changed}.{signature}", kiosks) is RefusalReason.ASSERTION_FORGED


def test_an_assertion_for_another_cabin_is_refused(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen
) -> None:
    token = kiosk.assertion(citizen, audience="cabin-elsewhere", now=NOW)
    assert _reason(token, kiosks) is RefusalReason.ASSERTION_WRONG_AUDIENCE


def test_an_audience_list_is_refused_even_if_it_names_this_cabin(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen
) -> None:
    token = kiosk.assertion(citizen, audience=CABIN, now=NOW, claims={"aud": [CABIN, "other"]})
    assert _reason(token, kiosks) is RefusalReason.ASSERTION_WRONG_AUDIENCE


def test_an_expired_assertion_is_refused(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen
) -> None:
    token = kiosk.assertion(citizen, audience=CABIN, now=NOW, lifetime=timedelta(seconds=60))
    assert _verify(token, kiosks, now=NOW + timedelta(seconds=69)).cccd == citizen.cccd
    later = NOW + timedelta(seconds=70)  # exp + the 10 s leeway
    with pytest.raises(IdentityRefused) as caught:
        _verify(token, kiosks, now=later)
    assert caught.value.reason is RefusalReason.ASSERTION_EXPIRED
    assert "expired_at" in caught.value.details


def test_the_leeway_is_configurable(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen
) -> None:
    token = kiosk.assertion(citizen, audience=CABIN, now=NOW, lifetime=timedelta(seconds=60))
    strict = AssertionPolicy(audience=CABIN, leeway=timedelta(0))
    assert (
        _reason(token, kiosks, now=NOW + timedelta(seconds=60), policy=strict)
        is RefusalReason.ASSERTION_EXPIRED
    )


def test_a_replayed_assertion_is_refused(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen
) -> None:
    store = MemoryJtiStore(clock=lambda: NOW)
    token = kiosk.assertion(citizen, audience=CABIN, now=NOW)
    _verify(token, kiosks, store=store)
    assert _reason(token, kiosks, store=store) is RefusalReason.ASSERTION_REPLAYED


def test_a_refused_assertion_does_not_use_up_its_jti(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen
) -> None:
    store = MemoryJtiStore(clock=lambda: NOW)
    bad = kiosk.assertion(citizen, audience=CABIN, now=NOW, jti="same", claims={"sex": "M"})
    assert _reason(bad, kiosks, store=store) is RefusalReason.ASSERTION_CLAIMS_INVALID
    good = kiosk.assertion(citizen, audience=CABIN, now=NOW, jti="same")
    assert _verify(good, kiosks, store=store).cccd == citizen.cccd


@pytest.mark.parametrize(("seconds", "accepted"), [(300, True), (301, False)])
def test_a_lifetime_over_five_minutes_is_refused(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen, seconds: int, accepted: bool
) -> None:
    token = kiosk.assertion(citizen, audience=CABIN, now=NOW, lifetime=timedelta(seconds=seconds))
    if accepted:
        _verify(token, kiosks)
    else:
        assert _reason(token, kiosks) is RefusalReason.ASSERTION_LIFETIME_TOO_LONG


def test_an_assertion_from_the_future_is_refused(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen
) -> None:
    token = kiosk.assertion(citizen, audience=CABIN, now=NOW + timedelta(seconds=30))
    assert _reason(token, kiosks) is RefusalReason.ASSERTION_NOT_YET_VALID
    skewed = kiosk.assertion(citizen, audience=CABIN, now=NOW + timedelta(seconds=5))
    assert _verify(skewed, kiosks).cccd == citizen.cccd


def test_a_not_before_in_the_future_is_refused(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen
) -> None:
    nbf = int((NOW + timedelta(seconds=60)).timestamp())
    token = kiosk.assertion(citizen, audience=CABIN, now=NOW, claims={"nbf": nbf})
    assert _reason(token, kiosks) is RefusalReason.ASSERTION_NOT_YET_VALID


def _unsigned(payload: dict[str, Any], header: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return jwt.utils.base64url_encode(json.dumps(value).encode()).decode()

    return f"{part(header)}.{part(payload)}."


def test_other_algorithms_are_refused(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen
) -> None:
    payload = jwt.decode(
        kiosk.assertion(citizen, audience=CABIN, now=NOW), options={"verify_signature": False}
    )
    hs256 = jwt.encode(payload, "a shared secret of 32 bytes or more!", algorithm="HS256")
    es384 = jwt.encode(payload, ec.generate_private_key(ec.SECP384R1()), algorithm="ES384")
    none = _unsigned(payload, {"alg": "none", "typ": "JWT"})
    for token in (hs256, es384, none):
        assert _reason(token, kiosks) is RefusalReason.ASSERTION_ALGORITHM_REFUSED


def test_an_unknown_issuer_is_refused(kiosks: TrustedKiosks, citizen: Citizen) -> None:
    stranger = make_kiosk(issuer="kiosk-unknown")
    token = stranger.assertion(citizen, audience=CABIN, now=NOW)
    assert _reason(token, kiosks) is RefusalReason.ISSUER_UNKNOWN


def test_an_unknown_key_id_is_refused(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen
) -> None:
    other = make_kiosk(issuer=kiosk.issuer, kid="kiosk-test-key-2")
    token = other.assertion(citizen, audience=CABIN, now=NOW)
    assert _reason(token, kiosks) is RefusalReason.ASSERTION_KEY_UNKNOWN


def test_a_key_rollover_accepts_either_key(kiosk: SyntheticKiosk, citizen: Citizen) -> None:
    new = make_kiosk(issuer=kiosk.issuer, kid="kiosk-test-key-2")
    both = {"keys": kiosk.jwks()["keys"] + new.jwks()["keys"]}
    kiosks = TrustedKiosks.from_jwks({kiosk.issuer: both})
    for signer in (kiosk, new):
        _verify(signer.assertion(citizen, audience=CABIN, now=NOW), kiosks)


@pytest.mark.parametrize("claim", ["jti", "exp", "iat", "aud", "iss"])
def test_a_missing_registered_claim_is_malformed(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen, claim: str
) -> None:
    token = kiosk.assertion(citizen, audience=CABIN, now=NOW, claims={claim: None})
    assert _reason(token, kiosks) is RefusalReason.ASSERTION_MALFORMED


@pytest.mark.parametrize("claim", ["cccd", "name", "birth_date", "sex"])
def test_a_missing_identity_claim_is_malformed(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen, claim: str
) -> None:
    token = kiosk.assertion(citizen, audience=CABIN, now=NOW)
    payload = jwt.decode(token, options={"verify_signature": False})
    del payload[claim]
    stripped = jwt.encode(payload, kiosk.key, algorithm="ES256", headers={"kid": kiosk.kid})
    assert _reason(stripped, kiosks) is RefusalReason.ASSERTION_MALFORMED


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("cccd", "09900000000"),
        ("cccd", 99000000001),
        ("name", "   "),
        ("name", "x" * 201),
        ("birth_date", "12/04/1985"),
        ("birth_date", "2030-01-01"),
        ("sex", "M"),
        ("sex", ["male"]),
        ("sex", {"value": "male"}),
        ("bhyt", "dn4797915107264"),
        ("card_expiry", "2045-13-01"),
    ],
)
def test_invalid_identity_claims_are_refused(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen, claim: str, value: object
) -> None:
    token = kiosk.assertion(citizen, audience=CABIN, now=NOW, claims={claim: value})
    with pytest.raises(IdentityRefused) as caught:
        _verify(token, kiosks)
    assert caught.value.reason is RefusalReason.ASSERTION_CLAIMS_INVALID
    assert caught.value.details["claim"] == claim


def test_an_expired_card_in_an_assertion_is_refused(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks
) -> None:
    expired = synthetic_citizen(4, today=NOW.date(), card_expiry=date(2025, 10, 31))
    with pytest.raises(IdentityRefused) as caught:
        _verify(kiosk.assertion(expired, audience=CABIN, now=NOW), kiosks)
    assert caught.value.reason is RefusalReason.CARD_EXPIRED
    assert caught.value.details["card_expiry"] == "2025-10-31"


def test_the_name_is_normalised(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen
) -> None:
    decomposed = " Le\u0302   Thu\u031b\u0309 Nghie\u0323\u0302m An "
    token = kiosk.assertion(citizen, audience=CABIN, now=NOW, claims={"name": decomposed})
    assert _verify(token, kiosks).full_name == "Lê Thử Nghiệm An"


@pytest.mark.parametrize("token", ["", "a.b.c", "x" * 100_000], ids=["empty", "dots", "oversized"])
def test_garbage_and_oversized_tokens_are_malformed(kiosks: TrustedKiosks, token: str) -> None:
    assert _reason(token, kiosks) is RefusalReason.ASSERTION_MALFORMED


@given(st.text(max_size=300))
def test_any_text_is_refused_with_a_reason_never_a_pyjwt_error(text: str) -> None:
    kiosks = TrustedKiosks.from_jwks({})
    with pytest.raises(IdentityRefused):
        verify_assertion(text, kiosks=kiosks, policy=POLICY, jti_store=MemoryJtiStore(), now=NOW)


@given(
    header=st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit"]), st.text(max_size=5)),
    payload=st.dictionaries(
        st.sampled_from(["iss", "aud", "iat", "exp", "jti", "nbf", "cccd"]),
        st.none() | st.integers() | st.floats() | st.text(max_size=5),
    ),
)
def test_any_unsigned_token_is_refused_with_a_reason(
    header: dict[str, Any], payload: dict[str, Any]
) -> None:
    kiosks = TrustedKiosks.from_jwks({"": {"keys": make_kiosk().jwks()["keys"]}})
    with pytest.raises(IdentityRefused):
        verify_assertion(
            _unsigned(payload, header),
            kiosks=kiosks,
            policy=POLICY,
            jti_store=MemoryJtiStore(),
            now=NOW,
        )


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=5,
)
_CLAIMS = [
    "aud",
    "iat",
    "exp",
    "nbf",
    "jti",
    "cccd",
    "name",
    "birth_date",
    "sex",
    "bhyt",
    "card_expiry",
]


@settings(max_examples=200)
@given(changes=st.dictionaries(st.sampled_from(_CLAIMS), _JSON, min_size=1, max_size=3))
def test_any_claim_values_signed_by_a_trusted_kiosk_are_refused_or_accepted(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen, changes: dict[str, Any]
) -> None:
    payload = {
        "iss": kiosk.issuer,
        "aud": CABIN,
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 60,
        "jti": "fuzz",
        **citizen.claims(),
        **changes,
    }
    token = jwt.encode(payload, kiosk.key, algorithm="ES256", headers={"kid": kiosk.kid})
    try:
        identity = _verify(token, kiosks)
    except IdentityRefused:
        return
    assert identity.assurance is Assurance.ASSERTED


def test_the_jti_store_forgets_ids_after_their_time() -> None:
    clock = [NOW]
    store = MemoryJtiStore(clock=lambda: clock[0])
    assert store.claim("a", NOW + timedelta(seconds=60))
    assert not store.claim("a", NOW + timedelta(seconds=60))
    clock[0] = NOW + timedelta(seconds=61)
    assert store.remembered() == 0
    assert store.claim("a", NOW + timedelta(seconds=200))


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "oct", "k": "c2VjcmV0"},
        "not an object",
    ],
    ids=["bad-point", "symmetric", "not-object"],
)
def test_unusable_keys_are_configuration_errors(jwk: object) -> None:
    with pytest.raises(ConfigurationError):
        TrustedKiosks.from_jwks({"kiosk": {"keys": [jwk]}})


def test_private_rsa_and_non_es256_keys_are_configuration_errors(kiosk: SyntheticKiosk) -> None:
    private = jwt.algorithms.ECAlgorithm.to_jwk(kiosk.key, as_dict=True)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    rsa_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key, as_dict=True)
    p384 = jwt.algorithms.ECAlgorithm.to_jwk(
        ec.generate_private_key(ec.SECP384R1()).public_key(), as_dict=True
    )
    es384 = {**kiosk.jwks()["keys"][0], "alg": "ES384"}
    for jwk in (private, rsa_jwk, p384, es384):
        with pytest.raises(ConfigurationError):
            TrustedKiosks.from_jwks({"kiosk": {"keys": [jwk]}})
    with pytest.raises(ConfigurationError):
        TrustedKiosks.from_jwks({"kiosk": {"keys": []}})


def test_a_jwks_file_is_loaded(kiosk: SyntheticKiosk, tmp_path: Path) -> None:
    path = tmp_path / "kiosk.jwks.json"
    path.write_text(json.dumps(kiosk.jwks()), encoding="utf-8")
    assert load_jwks_file(path) == kiosk.jwks()


@pytest.mark.parametrize("content", [None, "{not json", '{"keys": {}}', "[]"])
def test_an_unusable_jwks_file_is_a_configuration_error(
    tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "kiosk.jwks.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigurationError):
        load_jwks_file(path)


@pytest.fixture
def jwks_server(kiosk: SyntheticKiosk) -> Iterator[str]:
    body = json.dumps(kiosk.jwks()).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_jwks_is_fetched_from_a_url(kiosk: SyntheticKiosk, jwks_server: str) -> None:
    assert fetch_jwks(jwks_server, timeout=5) == kiosk.jwks()


def test_an_unreachable_jwks_url_is_a_configuration_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConfigurationError):
        fetch_jwks(f"http://127.0.0.1:{port}/jwks.json", timeout=2)


def test_identity_repr_hides_everything_but_a_masked_cccd(
    kiosk: SyntheticKiosk, kiosks: TrustedKiosks, citizen: Citizen
) -> None:
    identity = _verify(kiosk.assertion(citizen, audience=CABIN, now=NOW), kiosks)
    shown = repr(identity)
    assert citizen.cccd not in shown
    assert citizen.cccd[-3:] in shown
    assert citizen.surname not in shown
    assert citizen.birth_date.isoformat() not in shown
    assert str(Sex.FEMALE) not in shown
    assert str(Sex.MALE) not in shown
