"""Kiosk authentication: bearer token and HMAC-signed requests, and each way they are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from multidict import CIMultiDict

from kiosk_bridge.errors import KioskAuthRefused, RequestReason
from kiosk_bridge.kiosk_auth import (
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BearerToken,
    HmacKeys,
    KioskAuth,
    request_signature,
    string_to_sign,
)

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
TOKEN = "t" * 40
SECRET = b"s" * 32
BODY = b'{"service":"consult"}'
PATH = "/kiosk/v1/sessions"


def bearer_auth() -> KioskAuth:
    return KioskAuth(bearer=BearerToken(TOKEN))


def hmac_auth() -> KioskAuth:
    return KioskAuth(hmac_keys=HmacKeys({"kiosk-1": SECRET}))


def signed_headers(
    *,
    at: datetime = NOW,
    body: bytes = BODY,
    key_id: str = "kiosk-1",
    secret: bytes = SECRET,
    method: str = "POST",
    path: str = PATH,
) -> CIMultiDict[str]:
    timestamp = str(int(at.timestamp()))
    signature = request_signature(secret, method=method, path=path, timestamp=timestamp, body=body)
    return CIMultiDict(
        {KEY_ID_HEADER: key_id, TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature}
    )


def refusal(
    auth: KioskAuth,
    headers: CIMultiDict[str],
    *,
    body: bytes = BODY,
    method: str = "POST",
    path: str = PATH,
    now: datetime = NOW,
) -> KioskAuthRefused:
    with pytest.raises(KioskAuthRefused) as caught:
        auth.check(method=method, path=path, headers=headers, body=body, now=now)
    return caught.value


def test_the_right_bearer_token_is_accepted() -> None:
    headers = CIMultiDict({"Authorization": f"Bearer {TOKEN}"})
    bearer_auth().check(method="GET", path=PATH, headers=headers, body=b"", now=NOW)


def test_a_lower_case_bearer_scheme_is_accepted() -> None:
    headers = CIMultiDict({"authorization": f"bearer {TOKEN}"})
    bearer_auth().check(method="GET", path=PATH, headers=headers, body=b"", now=NOW)


def test_no_authorization_header_is_401_credentials_missing() -> None:
    refused = refusal(bearer_auth(), CIMultiDict())
    assert (refused.status, refused.reason) == (401, RequestReason.CREDENTIALS_MISSING)


@pytest.mark.parametrize("value", ["Basic dXNlcg==", "Bearer", "Bearer   ", TOKEN])
def test_a_non_bearer_authorization_is_401(value: str) -> None:
    refused = refusal(bearer_auth(), CIMultiDict({"Authorization": value}))
    assert (refused.status, refused.reason) == (401, RequestReason.CREDENTIALS_MISSING)


@pytest.mark.parametrize("token", ["t" * 39, "t" * 41, "u" * 40, "ť" * 40])
def test_a_wrong_bearer_token_is_403_credentials_invalid(token: str) -> None:
    refused = refusal(bearer_auth(), CIMultiDict({"Authorization": f"Bearer {token}"}))
    assert (refused.status, refused.reason) == (403, RequestReason.CREDENTIALS_INVALID)


def test_a_short_bearer_token_cannot_be_configured() -> None:
    with pytest.raises(ValueError, match="32 characters"):
        BearerToken("short")


def test_exactly_one_scheme_is_configured() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        KioskAuth()
    with pytest.raises(ValueError, match="exactly one"):
        KioskAuth(bearer=BearerToken(TOKEN), hmac_keys=HmacKeys({"k": SECRET}))


def test_string_to_sign_binds_method_path_timestamp_and_body_hash() -> None:
    assert string_to_sign(method="post", path="/p?q=1", timestamp="17", body=b"") == (
        b"POST\n/p?q=1\n17\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_a_correctly_signed_request_is_accepted() -> None:
    hmac_auth().check(method="POST", path=PATH, headers=signed_headers(), body=BODY, now=NOW)


def test_a_signature_within_the_window_is_accepted() -> None:
    headers = signed_headers(at=NOW - timedelta(seconds=299))
    hmac_auth().check(method="POST", path=PATH, headers=headers, body=BODY, now=NOW)


@pytest.mark.parametrize(
    "missing", [KEY_ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER], ids=["key", "time", "sig"]
)
def test_a_signed_request_missing_a_header_is_401(missing: str) -> None:
    headers = signed_headers()
    del headers[missing]
    refused = refusal(hmac_auth(), headers)
    assert (refused.status, refused.reason) == (401, RequestReason.CREDENTIALS_MISSING)


@pytest.mark.parametrize("timestamp", ["soon", "-5", "1.5", "١٢٣", "9" * 40])
def test_a_timestamp_that_is_not_unix_seconds_is_401(timestamp: str) -> None:
    headers = signed_headers()
    headers[TIMESTAMP_HEADER] = timestamp
    refused = refusal(hmac_auth(), headers)
    assert (refused.status, refused.reason) == (401, RequestReason.CREDENTIALS_MISSING)


def test_an_unknown_key_id_is_403() -> None:
    refused = refusal(hmac_auth(), signed_headers(key_id="kiosk-9"))
    assert (refused.status, refused.reason) == (403, RequestReason.KIOSK_KEY_UNKNOWN)


@pytest.mark.parametrize("skew", [301, -301, 10**9])
def test_a_timestamp_outside_300_seconds_is_403(skew: int) -> None:
    refused = refusal(hmac_auth(), signed_headers(at=NOW + timedelta(seconds=skew)))
    assert (refused.status, refused.reason) == (403, RequestReason.TIMESTAMP_OUT_OF_WINDOW)


def test_a_changed_body_is_403_signature_invalid() -> None:
    refused = refusal(hmac_auth(), signed_headers(), body=BODY + b" ")
    assert (refused.status, refused.reason) == (403, RequestReason.SIGNATURE_INVALID)


def test_another_path_or_method_is_403_signature_invalid() -> None:
    assert refusal(hmac_auth(), signed_headers(), path=PATH + "/x").status == 403
    assert refusal(hmac_auth(), signed_headers(), method="DELETE").status == 403


def test_a_wrong_secret_is_403_signature_invalid() -> None:
    refused = refusal(hmac_auth(), signed_headers(secret=b"x" * 32))
    assert (refused.status, refused.reason) == (403, RequestReason.SIGNATURE_INVALID)


def test_a_replayed_signature_is_403() -> None:
    auth = hmac_auth()
    auth.check(method="POST", path=PATH, headers=signed_headers(), body=BODY, now=NOW)
    refused = refusal(auth, signed_headers(), now=NOW + timedelta(seconds=5))
    assert (refused.status, refused.reason) == (403, RequestReason.SIGNATURE_REPLAYED)


def test_a_refused_signature_is_not_remembered_as_used() -> None:
    auth = hmac_auth()
    refusal(auth, signed_headers(), body=b"other")
    auth.check(method="POST", path=PATH, headers=signed_headers(), body=BODY, now=NOW)


def test_hmac_keys_need_long_secrets() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        HmacKeys({"k": b"short"})
    with pytest.raises(ValueError, match="at least one"):
        HmacKeys({})


def test_reprs_hold_no_secret() -> None:
    assert TOKEN not in repr(BearerToken(TOKEN))
    assert "sss" not in repr(HmacKeys({"kiosk-1": SECRET}))
