"""The service-flow API against a real aiohttp server: sessions opened from an assertion or
chip data, state, wipe within a second, every refusal as a JSON 4xx, and garbage never a 5xx."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk_bridge.api import MAX_BODY, IdentityGate, create_kiosk_app
from kiosk_bridge.assertion import AssertionPolicy, MemoryJtiStore, TrustedKiosks
from kiosk_bridge.intake import ChipData, IntakePolicy, TrustAnchors
from kiosk_bridge.kiosk_auth import (
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BearerToken,
    HmacKeys,
    KioskAuth,
    request_signature,
)
from kiosk_bridge.sessions import MemoryVisits, SessionPolicy, VisitState
from kiosk_bridge.testcards import (
    Citizen,
    SyntheticKiosk,
    Tamper,
    issue_card,
    make_csca,
    make_document_signer,
    make_kiosk,
    synthetic_citizen,
)
from tests.kiosk_bridge.test_events import KioskPeer, kiosk_peer, sender

CABIN = "cabin-test-01"
TOKEN = "kiosk-bearer-token-for-tests-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
HMAC_SECRET = b"h" * 32
LAUNCH = "https://cabin.test/launch"


@dataclass(frozen=True)
class World:
    """Test CSCA, document signer, kiosk and residents (all synthetic)."""

    kiosk: SyntheticKiosk
    forger: SyntheticKiosk
    gate_anchors: TrustAnchors
    card: ChipData
    tampered: ChipData
    citizen: Citizen
    other: Citizen


def make_world() -> World:
    csca = make_csca()
    signer = make_document_signer(csca)
    kiosk = make_kiosk()
    today = datetime.now(UTC).date()
    citizen = synthetic_citizen(21, today=today, birth_date=date(1980, 5, 6))
    other = synthetic_citizen(22, today=today, birth_date=date(1990, 7, 8))
    return World(
        kiosk=kiosk,
        forger=make_kiosk(issuer=kiosk.issuer, kid=kiosk.kid),
        gate_anchors=TrustAnchors(
            cscas=(csca.certificate,),
            kiosks=TrustedKiosks.from_jwks({kiosk.issuer: kiosk.jwks()}),
        ),
        card=issue_card(citizen, signer=signer),
        tampered=issue_card(citizen, signer=signer, tamper=frozenset({Tamper.DG13_AFTER_SIGNING})),
        citizen=citizen,
        other=other,
    )


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


class Clock:
    """The wall clock, movable forward (for expiry)."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


def gate(world: World) -> IdentityGate:
    return IdentityGate(
        policy=IntakePolicy(assertion=AssertionPolicy(audience=CABIN)),
        anchors=world.gate_anchors,
        jti_store=MemoryJtiStore(),
    )


@dataclass
class Cabin:
    client: TestClient[web.Request, web.Application]
    visits: MemoryVisits
    peer: KioskPeer
    clock: Clock


class StuckVisits(MemoryVisits):
    """A visit whose wipe hangs (a cabin fault)."""

    async def wipe(self, session_id: str) -> None:
        await asyncio.sleep(5)


@asynccontextmanager
async def cabin(
    world: World,
    tmp_path: Path,
    *,
    auth: KioskAuth | None = None,
    visits: MemoryVisits | None = None,
) -> AsyncIterator[Cabin]:
    """The API on a loopback port, its events going to a test kiosk server."""
    clock = Clock()
    visits = visits if visits is not None else MemoryVisits()
    async with kiosk_peer() as peer, sender(tmp_path / "events.db").running() as events:
        app = create_kiosk_app(
            intake=gate(world),
            visits=visits,
            events=events,
            auth=auth or KioskAuth(bearer=BearerToken(TOKEN)),
            clock=clock,
            launch_base_url=LAUNCH,
            policy=SessionPolicy(lifetime=timedelta(minutes=30)),
        )
        async with TestClient(TestServer(app)) as client:
            yield Cabin(client=client, visits=visits, peer=peer, clock=clock)


def assertion_body(
    world: World, peer: KioskPeer, *, citizen: Citizen | None = None
) -> dict[str, Any]:
    token = world.kiosk.assertion(citizen or world.citizen, audience=CABIN, now=datetime.now(UTC))
    return {
        "identity": {"assertion": token},
        "service": "both",
        "callback_url": peer.url,
        "locale": "vi",
    }


def chip_body(card: ChipData, peer: KioskPeer) -> dict[str, Any]:
    assert card.sod is not None
    chip = {
        "dg1": base64.b64encode(card.dg1).decode(),
        "dg13": base64.b64encode(card.dg13).decode(),
        "sod": base64.b64encode(card.sod).decode(),
    }
    return {
        "identity": {"chip": chip},
        "service": "health-check",
        "callback_url": peer.url,
        "locale": "en",
    }


async def refusal(response: Any, status: int, error: str) -> dict[str, Any]:
    body: dict[str, Any] = await response.json()
    assert (response.status, body["error"]) == (status, error), body
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


# --- the happy paths ------------------------------------------------------------------------


def test_a_session_opened_from_an_assertion(world: World, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with cabin(world, tmp_path) as c:
            response = await c.client.post(
                "/kiosk/v1/sessions", json=assertion_body(world, c.peer), headers=BEARER
            )
            assert response.status == 201
            body = await response.json()
            assert set(body) == {"session_id", "launch_url", "expires_at", "assurance"}
            assert body["assurance"] == "asserted"
            assert body["launch_url"].startswith(f"{LAUNCH}/{body['session_id']}?launch=")
            expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
            assert timedelta(minutes=29) < expires - datetime.now(UTC) <= timedelta(minutes=30)
            await c.peer.wait_for(1)
            started = c.peer.received[0]
            assert started["subject"] == body["session_id"]
            assert started["data"]["assurance"] == "asserted"
            assert world.citizen.cccd not in json.dumps(started)

    asyncio.run(scenario())


def test_a_session_opened_from_chip_data_reaches_passive_auth(world: World, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with cabin(world, tmp_path) as c:
            response = await c.client.post(
                "/kiosk/v1/sessions", json=chip_body(world.card, c.peer), headers=BEARER
            )
            assert response.status == 201
            assert (await response.json())["assurance"] == "passive_auth"

    asyncio.run(scenario())


def test_state_and_progress(world: World, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with cabin(world, tmp_path) as c:
            created = await c.client.post(
                "/kiosk/v1/sessions", json=assertion_body(world, c.peer), headers=BEARER
            )
            session_id = (await created.json())["session_id"]
            response = await c.client.get(f"/kiosk/v1/sessions/{session_id}", headers=BEARER)
            assert response.status == 200
            body = await response.json()
            assert body["state"] == "opened"
            assert body["progress"] == {"done": 0, "total": 7}
            assert body["service"] == "both"
            c.visits.advance(session_id, VisitState.MEASURING, steps=3)
            body = await (
                await c.client.get(f"/kiosk/v1/sessions/{session_id}", headers=BEARER)
            ).json()
            assert (body["state"], body["progress"]) == ("measuring", {"done": 3, "total": 7})
            c.clock.ahead = timedelta(minutes=31)
            body = await (
                await c.client.get(f"/kiosk/v1/sessions/{session_id}", headers=BEARER)
            ).json()
            assert body["state"] == "expired"

    asyncio.run(scenario())


def test_delete_wipes_within_a_second_then_answers_404(world: World, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with cabin(world, tmp_path) as c:
            created = await c.client.post(
                "/kiosk/v1/sessions", json=assertion_body(world, c.peer), headers=BEARER
            )
            session_id = (await created.json())["session_id"]
            c.visits.advance(session_id, VisitState.MEASURING)
            started = time.monotonic()
            response = await c.client.delete(f"/kiosk/v1/sessions/{session_id}", headers=BEARER)
            elapsed = time.monotonic() - started
            assert response.status == 204
            assert elapsed < 1.0
            assert session_id in c.visits.wiped
            assert not c.visits.holds(session_id)
            await c.peer.wait_for(2)
            assert c.peer.types(session_id) == ["session.started", "session.wiped"]
            again = await c.client.delete(f"/kiosk/v1/sessions/{session_id}", headers=BEARER)
            await refusal(again, 404, "session_not_found")
            gone = await c.client.get(f"/kiosk/v1/sessions/{session_id}", headers=BEARER)
            await refusal(gone, 404, "session_not_found")

    asyncio.run(scenario())


def test_a_visit_that_cannot_wipe_in_a_second_is_503_and_stays_live(
    world: World, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with cabin(world, tmp_path, visits=StuckVisits()) as c:
            created = await c.client.post(
                "/kiosk/v1/sessions", json=assertion_body(world, c.peer), headers=BEARER
            )
            session_id = (await created.json())["session_id"]
            started = time.monotonic()
            response = await c.client.delete(f"/kiosk/v1/sessions/{session_id}", headers=BEARER)
            assert time.monotonic() - started < 1.5
            await refusal(response, 503, "wipe_overdue")
            status = await c.client.get(f"/kiosk/v1/sessions/{session_id}", headers=BEARER)
            assert status.status == 200

    asyncio.run(scenario())


def test_after_a_wipe_the_resident_may_start_again(world: World, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with cabin(world, tmp_path) as c:
            first = await c.client.post(
                "/kiosk/v1/sessions", json=assertion_body(world, c.peer), headers=BEARER
            )
            await c.client.delete(
                f"/kiosk/v1/sessions/{(await first.json())['session_id']}", headers=BEARER
            )
            second = await c.client.post(
                "/kiosk/v1/sessions", json=assertion_body(world, c.peer), headers=BEARER
            )
            assert second.status == 201

    asyncio.run(scenario())


def test_openapi_document_is_public(world: World, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with cabin(world, tmp_path) as c:
            response = await c.client.get("/kiosk/v1/openapi.json")
            assert response.status == 200
            assert (await response.json())["openapi"].startswith("3.0")

    asyncio.run(scenario())


# --- refusals -------------------------------------------------------------------------------


def test_kiosk_auth_is_required_on_every_session_endpoint(world: World, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with cabin(world, tmp_path) as c:
            wrong = {"Authorization": "Bearer " + "x" * len(TOKEN)}
            for method, path in (
                ("POST", "/kiosk/v1/sessions"),
                ("GET", "/kiosk/v1/sessions/abc"),
                ("DELETE", "/kiosk/v1/sessions/abc"),
            ):
                await refusal(await c.client.request(method, path), 401, "credentials_missing")
                await refusal(
                    await c.client.request(method, path, headers=wrong), 403, "credentials_invalid"
                )

    asyncio.run(scenario())


def test_signed_requests_are_accepted_once(world: World, tmp_path: Path) -> None:
    async def scenario() -> None:
        auth = KioskAuth(hmac_keys=HmacKeys({"kiosk-1": HMAC_SECRET}))
        async with cabin(world, tmp_path, auth=auth) as c:
            body = json.dumps(assertion_body(world, c.peer)).encode()
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                KEY_ID_HEADER: "kiosk-1",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: request_signature(
                    HMAC_SECRET,
                    method="POST",
                    path="/kiosk/v1/sessions",
                    timestamp=timestamp,
                    body=body,
                ),
            }
            first = await c.client.post("/kiosk/v1/sessions", data=body, headers=headers)
            assert first.status == 201
            replay = await c.client.post("/kiosk/v1/sessions", data=body, headers=headers)
            await refusal(replay, 403, "signature_replayed")
            stale = {**headers, TIMESTAMP_HEADER: str(int(time.time()) - 400)}
            await refusal(
                await c.client.post("/kiosk/v1/sessions", data=body, headers=stale),
                403,
                "timestamp_out_of_window",
            )

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("mutate", "status", "error"),
    [
        (lambda b: {**b, "service": "surgery"}, 400, "malformed_request"),
        (lambda b: {**b, "locale": "fr"}, 400, "malformed_request"),
        (lambda b: {k: v for k, v in b.items() if k != "service"}, 400, "malformed_request"),
        (lambda b: {**b, "extra": 1}, 400, "malformed_request"),
        (lambda b: {**b, "identity": {}}, 400, "malformed_request"),
        (
            lambda b: {**b, "identity": {**b["identity"], "chip": {"dg1": "", "dg13": ""}}},
            400,
            "malformed_request",
        ),
        (lambda b: {**b, "identity": {"assertion": 5}}, 400, "malformed_request"),
        (lambda b: {**b, "identity": {"assertion": "x" * 9000}}, 400, "malformed_request"),
        (
            lambda b: {**b, "identity": {"chip": {"dg1": "!!", "dg13": "AA=="}}},
            400,
            "malformed_request",
        ),
        (lambda b: {**b, "callback_url": "ftp://kiosk/x"}, 400, "callback_refused"),
        (lambda b: {**b, "callback_url": "/relative"}, 400, "callback_refused"),
        (lambda b: {**b, "callback_url": "http://k:99999/"}, 400, "callback_refused"),
        (lambda b: {**b, "identity": {"assertion": "not.a.jwt"}}, 422, "assertion_malformed"),
        (lambda b: [b], 400, "malformed_request"),
    ],
    ids=[
        "service",
        "locale",
        "missing",
        "extra",
        "no-identity",
        "both-identities",
        "assertion-type",
        "assertion-long",
        "bad-base64",
        "ftp-callback",
        "relative-callback",
        "bad-port",
        "not-a-jwt",
        "array",
    ],
)
def test_a_malformed_request_is_refused_with_its_reason(
    world: World, tmp_path: Path, mutate: Any, status: int, error: str
) -> None:
    async def scenario() -> None:
        async with cabin(world, tmp_path) as c:
            body = mutate(assertion_body(world, c.peer))
            response = await c.client.post("/kiosk/v1/sessions", json=body, headers=BEARER)
            await refusal(response, status, error)

    asyncio.run(scenario())


def test_refusals_of_the_wire_format(world: World, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with cabin(world, tmp_path) as c:
            post = c.client.post
            path = "/kiosk/v1/sessions"
            await refusal(
                await post(path, data=b"{}", headers={**BEARER, "Content-Type": "text/plain"}),
                415,
                "unsupported_media_type",
            )
            await refusal(
                await post(path, data=b"{}", headers=BEARER), 415, "unsupported_media_type"
            )
            json_headers = {**BEARER, "Content-Type": "application/json"}
            await refusal(
                await post(path, data=b"{not json", headers=json_headers), 400, "malformed_request"
            )
            await refusal(
                await post(path, data=b"\xff\xfe", headers=json_headers), 400, "malformed_request"
            )
            await refusal(
                await post(path, data=b"[" * 100_000, headers=json_headers),
                413,
                "request_too_large",
            )
            await refusal(
                await post(path, data=b"[" * 60_000 + b"]" * 60_0, headers=json_headers),
                400,
                "malformed_request",
            )
            await refusal(
                await post(path, data=b" " * (MAX_BODY + 1), headers=json_headers),
                413,
                "request_too_large",
            )

            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(100):
                    yield b" " * 1024

            await refusal(
                await post(path, data=chunks(), headers=json_headers), 413, "request_too_large"
            )
            await refusal(await c.client.put(path, headers=BEARER), 405, "method_not_allowed")
            await refusal(await c.client.get("/kiosk/v1/nothing"), 404, "not_found")

    asyncio.run(scenario())


def test_identity_refusals_are_422_with_the_intake_reason(world: World, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with cabin(world, tmp_path) as c:
            path = "/kiosk/v1/sessions"
            forged = assertion_body(world, c.peer)
            forged["identity"]["assertion"] = world.forger.assertion(
                world.citizen, audience=CABIN, now=datetime.now(UTC)
            )
            await refusal(
                await c.client.post(path, json=forged, headers=BEARER), 422, "assertion_forged"
            )
            wrong_audience = assertion_body(world, c.peer)
            wrong_audience["identity"]["assertion"] = world.kiosk.assertion(
                world.citizen, audience="another-cabin", now=datetime.now(UTC)
            )
            await refusal(
                await c.client.post(path, json=wrong_audience, headers=BEARER),
                422,
                "assertion_wrong_audience",
            )
            tampered = chip_body(world.tampered, c.peer)
            body = await refusal(
                await c.client.post(path, json=tampered, headers=BEARER), 422, "dg_hash_mismatch"
            )
            assert body["details"]["data_group"]

    asyncio.run(scenario())


def test_a_replayed_assertion_is_422(world: World, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with cabin(world, tmp_path) as c:
            body = assertion_body(world, c.peer)
            first = await c.client.post("/kiosk/v1/sessions", json=body, headers=BEARER)
            await c.client.delete(
                f"/kiosk/v1/sessions/{(await first.json())['session_id']}", headers=BEARER
            )
            again = await c.client.post("/kiosk/v1/sessions", json=body, headers=BEARER)
            await refusal(again, 422, "assertion_replayed")

    asyncio.run(scenario())


def test_a_second_live_session_for_one_resident_is_409(world: World, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with cabin(world, tmp_path) as c:
            path = "/kiosk/v1/sessions"
            first = await c.client.post(path, json=assertion_body(world, c.peer), headers=BEARER)
            assert first.status == 201
            second = await c.client.post(path, json=assertion_body(world, c.peer), headers=BEARER)
            await refusal(second, 409, "session_active")
            other = assertion_body(world, c.peer, citizen=world.other)
            assert (await c.client.post(path, json=other, headers=BEARER)).status == 201

    asyncio.run(scenario())


# --- hostile input from a separate client (hypothesis) --------------------------------------


@dataclass(frozen=True)
class RunningCabin:
    """The API served from a background thread, for synchronous clients (hypothesis,
    schemathesis)."""

    base_url: str
    visits: MemoryVisits


@contextmanager
def cabin_in_thread(world: World, tmp_path: Path) -> Iterator[RunningCabin]:
    """Run the API and a test kiosk on their own event loop in a thread."""
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        holder["stop"] = stop
        holder["loop"] = asyncio.get_running_loop()
        visits = MemoryVisits()
        async with kiosk_peer() as peer, sender(tmp_path / "events.db").running() as events:
            app = create_kiosk_app(
                intake=gate(world),
                visits=visits,
                events=events,
                auth=KioskAuth(bearer=BearerToken(TOKEN)),
                clock=lambda: datetime.now(UTC),
                launch_base_url=LAUNCH,
            )
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            holder["cabin"] = RunningCabin(base_url=f"http://127.0.0.1:{port}", visits=visits)
            holder["peer"] = peer
            ready.set()
            try:
                await stop.wait()
            finally:
                await runner.cleanup()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert ready.wait(10), "the cabin API did not start"
    try:
        yield holder["cabin"]
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(10)


@pytest.fixture(scope="module")
def running_cabin(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCabin]:
    with cabin_in_thread(world, tmp_path_factory.mktemp("cabin")) as running:
        yield running


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
hostile_bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries(
        {
            "identity": st.one_of(
                json_values,
                st.fixed_dictionaries({"assertion": st.text(max_size=200)}),
                st.fixed_dictionaries(
                    {
                        "chip": st.dictionaries(
                            st.sampled_from(["dg1", "dg13", "sod"]), st.text(max_size=40)
                        )
                    }
                ),
            ),
            "service": st.sampled_from(["health-check", "consult", "both", "x"]),
            "callback_url": st.text(max_size=60) | st.just("http://127.0.0.1:9/"),
            "locale": st.sampled_from(["vi", "en", "de"]),
        }
    ).map(lambda value: json.dumps(value).encode()),
)


def assert_clear_refusal(response: requests.Response) -> None:
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert isinstance(body["error"], str)
    assert isinstance(body["message"], str)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=hostile_bodies)
def test_hostile_session_requests_get_a_clear_4xx(running_cabin: RunningCabin, body: bytes) -> None:
    response = requests.post(
        f"{running_cabin.base_url}/kiosk/v1/sessions",
        data=body,
        headers={**BEARER, "Content-Type": "application/json"},
        timeout=5,
    )
    assert_clear_refusal(response)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    session_id=st.text(
        st.characters(exclude_categories=["Cs"], exclude_characters="/?#"),
        min_size=1,
        max_size=80,
    ),
    method=st.sampled_from(["GET", "DELETE"]),
    authorization=st.one_of(
        st.just(f"Bearer {TOKEN}"),
        st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=60),
    ),
)
def test_hostile_session_ids_and_credentials_get_a_clear_4xx(
    running_cabin: RunningCabin, session_id: str, method: str, authorization: str
) -> None:
    response = requests.request(
        method,
        f"{running_cabin.base_url}/kiosk/v1/sessions/{quote(session_id, safe='')}",
        headers={"Authorization": authorization},
        timeout=5,
    )
    assert_clear_refusal(response)
