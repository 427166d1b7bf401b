"""The OpenAPI document is true: schemathesis runs every operation against the real API (on a
loopback port) and finds no server error and no response the document does not describe."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.schemas import OpenApiSchema

from kiosk_bridge.openapi import openapi_document
from tests.kiosk_bridge.test_api import (  # noqa: F401  (fixtures)
    BEARER,
    CABIN,
    RunningCabin,
    World,
    running_cabin,
    world,
)


@pytest.fixture(scope="module")
def api_schema(running_cabin: RunningCabin) -> OpenApiSchema:  # noqa: F811
    """The document as the running API serves it."""
    return schemathesis.openapi.from_url(f"{running_cabin.base_url}/kiosk/v1/openapi.json")


def operations(api_schema: OpenApiSchema) -> list[APIOperation[Any, Any, Any, Any]]:
    found = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result
        found.append(result.ok())
    return found


# schemathesis' pytest plugin (``from_fixture``) does not run under pytest 9, so each
# operation's strategy is driven by hypothesis directly: the same cases, the same checks.
@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda mode: mode.value)
def test_every_operation_conforms_to_the_document(
    api_schema: OpenApiSchema,
    running_cabin: RunningCabin,  # noqa: F811
    mode: GenerationMode,
) -> None:
    base_url = f"{running_cabin.base_url}/kiosk/v1"
    for operation in operations(api_schema):

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def conforms(case: Case[Any]) -> None:
            case.call_and_validate(
                base_url=base_url,
                headers=dict(BEARER),
                # a schema-valid body with a made-up identity is rightly refused (422)
                excluded_checks=[positive_data_acceptance],
            )

        conforms()


def test_success_responses_match_the_document(
    running_cabin: RunningCabin,  # noqa: F811
    world: World,  # noqa: F811
    api_schema: OpenApiSchema,
) -> None:
    """Schemathesis cannot forge an identity, so the 201/200/204 paths are walked by hand."""
    base = f"{running_cabin.base_url}/kiosk/v1"
    token = world.kiosk.assertion(world.other, audience=CABIN, now=datetime.now(UTC))
    body: dict[str, Any] = {
        "identity": {"assertion": token},
        "service": "consult",
        "callback_url": "http://127.0.0.1:9/events",
        "locale": "en",
    }
    created = requests.post(f"{base}/sessions", json=body, headers=BEARER, timeout=5)
    assert created.status_code == 201
    api_schema["/sessions"]["POST"].validate_response(created)
    session_id = created.json()["session_id"]
    status = requests.get(f"{base}/sessions/{session_id}", headers=BEARER, timeout=5)
    assert status.status_code == 200
    api_schema["/sessions/{session_id}"]["GET"].validate_response(status)
    deleted = requests.delete(f"{base}/sessions/{session_id}", headers=BEARER, timeout=5)
    assert deleted.status_code == 204
    api_schema["/sessions/{session_id}"]["DELETE"].validate_response(deleted)


def test_the_served_document_is_the_built_one(running_cabin: RunningCabin) -> None:  # noqa: F811
    served = requests.get(f"{running_cabin.base_url}/kiosk/v1/openapi.json", timeout=5)
    assert served.json() == openapi_document()


def test_the_document_is_openapi_3() -> None:
    document = openapi_document()
    assert document["openapi"] == "3.0.3"
    assert set(document["paths"]) == {"/sessions", "/sessions/{session_id}", "/openapi.json"}
