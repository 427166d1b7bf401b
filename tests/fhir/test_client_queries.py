"""The FHIR client's queries: the capability check at start, read and search (tests, tools)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from fhir.client import FhirClient
from fhir.errors import IncompatibleServerError, ServerError, UnexpectedResponseError
from tests.fhir.http_peers import FHIR_JSON, fhir_json, fhir_server

BUNDLE = b'{"resourceType": "Bundle", "type": "transaction", "entry": []}'


def _capability(version: str = "4.0.1", interactions: tuple[str, ...] = ("transaction",)) -> Any:
    statement = {
        "resourceType": "CapabilityStatement",
        "fhirVersion": version,
        "software": {"name": "Stand-in", "version": "1"},
        "rest": [{"mode": "server", "interaction": [{"code": code} for code in interactions]}],
    }

    async def metadata(request: web.Request) -> web.Response:
        return fhir_json(statement)

    return metadata


# capabilities()


def test_r4_server_with_transaction_passes_the_capability_check() -> None:
    async def scenario() -> Any:
        async with (
            fhir_server({("GET", "/fhir/metadata"): _capability()}) as base,
            FhirClient(base) as client,
        ):
            return await client.capabilities()

    capabilities = asyncio.run(scenario())
    assert (capabilities.fhir_version, capabilities.software) == ("4.0.1", "Stand-in")


@pytest.mark.parametrize(
    ("version", "interactions", "message"),
    [
        ("5.0.0", ("transaction",), "speaks FHIR '5.0.0'"),
        ("3.0.2", ("transaction",), "speaks FHIR '3.0.2'"),
        ("4.0.1", ("batch", "search-system"), "'transaction'"),
    ],
)
def test_a_server_that_cannot_take_r4_transactions_is_refused(
    version: str, interactions: tuple[str, ...], message: str
) -> None:
    async def scenario() -> None:
        metadata = _capability(version, interactions)
        async with (
            fhir_server({("GET", "/fhir/metadata"): metadata}) as base,
            FhirClient(base) as client,
        ):
            await client.capabilities()

    with pytest.raises(IncompatibleServerError, match=message):
        asyncio.run(scenario())


def test_a_web_page_at_metadata_is_not_a_capability_statement() -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html>Login</html>", content_type="text/html")

    async def scenario() -> None:
        async with (
            fhir_server({("GET", "/fhir/metadata"): page}) as base,
            FhirClient(base) as client,
        ):
            await client.capabilities()

    with pytest.raises(UnexpectedResponseError, match="'text/html'"):
        asyncio.run(scenario())


# read()


def _read(respond: Callable[[web.Request], Awaitable[web.Response]]) -> dict[str, Any]:
    async def scenario() -> dict[str, Any]:
        async with (
            fhir_server({("GET", "/fhir/Patient/p-1"): respond}) as base,
            FhirClient(base) as client,
        ):
            return await client.read("Patient", "p-1")

    return asyncio.run(scenario())


def test_read_returns_the_resource() -> None:
    async def patient(request: web.Request) -> web.Response:
        return fhir_json({"resourceType": "Patient", "id": "p-1"})

    assert _read(patient) == {"resourceType": "Patient", "id": "p-1"}


def test_read_of_a_missing_resource_is_a_server_error_with_the_outcome() -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"diagnostics": "Not found"}]}

    async def missing(request: web.Request) -> web.Response:
        return fhir_json(outcome, status=404)

    with pytest.raises(ServerError, match="HTTP 404 for Patient/p-1: Not found") as caught:
        _read(missing)
    assert (caught.value.status, caught.value.outcome) == (404, outcome)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"<html>oops</html>", "text/html", "came as 'text/html'"),
        (b"{not json", FHIR_JSON, "not a JSON object"),
        (b"\xff\xfe\x00garbage", FHIR_JSON, "not a JSON object"),
        (b'["a", "list"]', FHIR_JSON, "not a JSON object"),
        (b"[" * 200_000, FHIR_JSON, "not a JSON object"),
        (b'{"resourceType": "Observation"}', FHIR_JSON, "not a Patient"),
        (b'{"resourceType": "Patient", "pad": "' + b"x" * 20_000_000 + b'"}', FHIR_JSON, "larger"),
    ],
    ids=["html", "broken-json", "binary", "list", "deep", "wrong-type", "oversize"],
)
def test_a_hostile_read_answer_is_a_clear_error(
    body: bytes, content_type: str, message: str
) -> None:
    async def hostile(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type)

    with pytest.raises(UnexpectedResponseError, match=message):
        _read(hostile)


def test_read_refuses_an_id_that_is_not_a_fhir_id() -> None:
    async def scenario() -> None:
        async with FhirClient("http://127.0.0.1:9/fhir") as client:
            await client.read("Patient", "../metadata")

    with pytest.raises(ValueError, match="not a FHIR type and id"):
        asyncio.run(scenario())


# search()


def _page(resources: list[dict[str, Any]], next_url: str | None, *, outcome: bool = False) -> Any:
    entries: list[dict[str, Any]] = [
        {"resource": r, "search": {"mode": "match"}} for r in resources
    ]
    if outcome:
        warning = {"resourceType": "OperationOutcome", "issue": []}
        entries.append({"resource": warning, "search": {"mode": "outcome"}})
    links = [{"relation": "next", "url": next_url}] if next_url else []
    return {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries}


def test_search_follows_next_links_and_drops_outcome_entries() -> None:
    queries: list[dict[str, str]] = []

    async def observations(request: web.Request) -> web.Response:
        queries.append(dict(request.query))
        if "page" not in request.query:
            following = str(request.url.with_query({"page": "2"}))
            return fhir_json(_page([{"resourceType": "Observation", "id": "o1"}], following))
        found = [{"resourceType": "Observation", "id": "o2"}]
        return fhir_json(_page(found, None, outcome=True))

    async def scenario() -> list[dict[str, Any]]:
        async with (
            fhir_server({("GET", "/fhir/Observation"): observations}) as base,
            FhirClient(base) as client,
        ):
            return await client.search("Observation", {"subject:identifier": "sys|0790"})

    found = asyncio.run(scenario())
    assert [resource["id"] for resource in found] == ["o1", "o2"]
    assert queries == [{"subject:identifier": "sys|0790"}, {"page": "2"}]


def test_search_never_follows_a_next_link_to_another_origin() -> None:
    async def observations(request: web.Request) -> web.Response:
        return fhir_json(_page([], "http://127.0.0.2:8080/fhir/Observation?page=2"))

    async def scenario() -> None:
        async with (
            fhir_server({("GET", "/fhir/Observation"): observations}) as base,
            FhirClient(base) as client,
        ):
            await client.search("Observation")

    with pytest.raises(UnexpectedResponseError, match="leaves"):
        asyncio.run(scenario())


def test_endless_paging_stops_at_max_pages() -> None:
    requests: list[str] = []

    async def observations(request: web.Request) -> web.Response:
        requests.append(request.query.get("page", "1"))
        following = request.url.with_query({"page": str(len(requests) + 1)})
        return fhir_json(_page([], str(following)))

    async def scenario() -> None:
        async with (
            fhir_server({("GET", "/fhir/Observation"): observations}) as base,
            FhirClient(base, max_pages=3) as client,
        ):
            await client.search("Observation")

    with pytest.raises(UnexpectedResponseError, match="more than 3 pages"):
        asyncio.run(scenario())
    assert requests == ["1", "2", "3"]


# Construction and shutdown.


@pytest.mark.parametrize("base", ["ftp://host/fhir", "file:///tmp/outbox", "fhir", ""])
def test_a_base_url_that_is_not_http_is_refused(base: str) -> None:
    with pytest.raises(ValueError, match="http"):
        FhirClient(base)


def test_owned_session_is_closed_and_an_injected_one_is_left_open() -> None:
    async def scenario() -> None:
        client = FhirClient("http://127.0.0.1:9/fhir")
        async with client:
            pass
        with pytest.raises(RuntimeError, match="needs a session"):
            await client.post_transaction(BUNDLE)
        async with aiohttp.ClientSession() as session:
            async with FhirClient("http://127.0.0.1:9/fhir", session=session):
                pass
            assert not session.closed

    asyncio.run(scenario())
