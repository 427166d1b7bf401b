"""The service-flow API the kiosk calls (aiohttp), mounted by the cabin service at ``/kiosk/v1``.

::

    POST   /kiosk/v1/sessions        identity + service + callback URL + locale → 201 session
    GET    /kiosk/v1/sessions/{id}   → state, progress, service, expiry
    DELETE /kiosk/v1/sessions/{id}   card removed / kiosk logged out → visit wiped (≤ 1 s), 204
    GET    /kiosk/v1/openapi.json    the OpenAPI 3.0 document of the above (public)

Every refusal is a 4xx with ``{"error": <stable code>, "message": <sentence>}``: 400 malformed,
401/403 kiosk authentication, 404 unknown session, 409 a live session for the same resident,
413 too large, 415 not JSON, 422 identity refused (``error`` = the intake's reason code).
Checks run cheapest first: size, kiosk credentials, content type, JSON shape, identity.

This module is the thin shell: parsing into typed values at the edge, then
:class:`~kiosk_bridge.sessions.KioskSessions` and the pure intake do the work.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from aiohttp import web

from kiosk_bridge.assertion import JtiStore
from kiosk_bridge.consent import Locale
from kiosk_bridge.errors import (
    IdentityRefused,
    RequestReason,
    RequestRefused,
    SessionUnknown,
    WipeOverdue,
)
from kiosk_bridge.events import EventSender
from kiosk_bridge.identity import Identity
from kiosk_bridge.intake import (
    ChipData,
    Evidence,
    IntakePolicy,
    KioskAssertion,
    TrustAnchors,
    identify,
)
from kiosk_bridge.kiosk_auth import KioskAuth
from kiosk_bridge.openapi import openapi_document
from kiosk_bridge.sessions import KioskSessions, Service, SessionPolicy, VisitPort

logger = logging.getLogger(__name__)

PREFIX: Final = "/kiosk/v1"
MAX_BODY: Final = 64 * 1024
"""Bytes a request body may have: chip data groups are a few kB, base64 adds a third."""
MAX_ASSERTION: Final = 8192
MAX_CALLBACK_URL: Final = 2048
BODY_TIMEOUT: Final = 10.0
DEFAULT_SESSION_POLICY: Final = SessionPolicy()
_BASE64: Final = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_CHIP_FIELDS: Final = ("dg1", "dg13", "sod", "dg14", "dg15")
_Choice = TypeVar("_Choice", Service, Locale)
_HTTP_REASONS: Final = {
    404: RequestReason.NOT_FOUND,
    405: RequestReason.METHOD_NOT_ALLOWED,
    413: RequestReason.REQUEST_TOO_LARGE,
    415: RequestReason.UNSUPPORTED_MEDIA_TYPE,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityGate:
    """Intake as configured: policy, trust anchors and the assertion-id store."""

    policy: IntakePolicy
    anchors: TrustAnchors
    jti_store: JtiStore

    def identify(self, evidence: Evidence, *, now: datetime) -> Identity:
        """An identity, or :class:`IdentityRefused` (blocking crypto: run it off the loop)."""
        return identify(
            evidence, policy=self.policy, anchors=self.anchors, jti_store=self.jti_store, now=now
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRequest:
    """A ``POST /sessions`` body, parsed and checked."""

    evidence: Evidence
    service: Service
    callback_url: str
    locale: Locale


@dataclass(frozen=True, slots=True, kw_only=True)
class _Api:
    intake: IdentityGate
    sessions: KioskSessions
    auth: KioskAuth
    clock: Callable[[], datetime]
    launch_base_url: str
    callback_prefixes: tuple[str, ...] | None
    document: Mapping[str, Any]


API: Final = web.AppKey("kiosk_api", _Api)


def kiosk_subapp(
    *,
    intake: IdentityGate,
    visits: VisitPort,
    events: EventSender,
    auth: KioskAuth,
    clock: Callable[[], datetime],
    launch_base_url: str,
    policy: SessionPolicy = DEFAULT_SESSION_POLICY,
) -> web.Application:
    """The API as an aiohttp sub-application, to mount with ``app.add_subapp(PREFIX, ...)``."""
    app = web.Application(middlewares=[_json_errors])
    app[API] = _Api(
        intake=intake,
        sessions=KioskSessions(visits=visits, events=events, clock=clock, policy=policy),
        auth=auth,
        clock=clock,
        launch_base_url=launch_base_url.rstrip("/"),
        callback_prefixes=policy.callback_prefixes,
        document=openapi_document(),
    )
    app.router.add_post("/sessions", _create_session)
    app.router.add_get("/sessions/{session_id}", _session_status, allow_head=False)
    app.router.add_delete("/sessions/{session_id}", _delete_session)
    app.router.add_get("/openapi.json", _openapi, allow_head=False)
    return app


def create_kiosk_app(
    *,
    intake: IdentityGate,
    visits: VisitPort,
    events: EventSender,
    auth: KioskAuth,
    clock: Callable[[], datetime],
    launch_base_url: str,
    policy: SessionPolicy = DEFAULT_SESSION_POLICY,
) -> web.Application:
    """A stand-alone application serving the API under :data:`PREFIX` (tests, the demo)."""
    root = web.Application(middlewares=[_json_errors])
    root.add_subapp(
        PREFIX,
        kiosk_subapp(
            intake=intake,
            visits=visits,
            events=events,
            auth=auth,
            clock=clock,
            launch_base_url=launch_base_url,
            policy=policy,
        ),
    )
    return root


def kiosk_sessions(app: web.Application) -> KioskSessions:
    """The sessions behind a sub-app from :func:`kiosk_subapp` (what the cabin drives)."""
    return app[API].sessions


# --- handlers -------------------------------------------------------------------------------


async def _create_session(request: web.Request) -> web.Response:
    api = request.app[API]
    body = await _authenticated_body(request, api)
    if request.content_type != "application/json":
        raise RequestRefused(
            415, RequestReason.UNSUPPORTED_MEDIA_TYPE, "Send the request as application/json."
        )
    parsed = parse_session_request(body, callback_prefixes=api.callback_prefixes)
    now = api.clock()
    try:
        identity = await asyncio.to_thread(api.intake.identify, parsed.evidence, now=now)
    except IdentityRefused as refused:
        logger.info("identity refused: %s", refused.reason.value)
        return _error(422, refused.reason.value, refused.message, details=refused.details)
    session = await api.sessions.open(
        identity=identity,
        service=parsed.service,
        callback_url=parsed.callback_url,
        locale=parsed.locale,
    )
    launch_url = f"{api.launch_base_url}/{session.session_id}?launch={session.launch_token}"
    return web.json_response(
        {
            "session_id": session.session_id,
            "launch_url": launch_url,
            "expires_at": _instant(session.expires_at),
            "assurance": identity.assurance.value,
        },
        status=201,
    )


async def _session_status(request: web.Request) -> web.Response:
    api = request.app[API]
    await _authenticated_body(request, api)
    session_id = request.match_info["session_id"]
    session = api.sessions.get(session_id)
    status = await api.sessions.status(session_id)
    return web.json_response(
        {
            "state": status.state.value,
            "progress": {"done": status.progress.done, "total": status.progress.total},
            "service": session.service.value,
            "expires_at": _instant(session.expires_at),
        }
    )


async def _delete_session(request: web.Request) -> web.Response:
    api = request.app[API]
    await _authenticated_body(request, api)
    await api.sessions.wipe(request.match_info["session_id"])
    return web.Response(status=204)


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(dict(request.app[API].document))


# --- the edge: body, credentials, parsing ---------------------------------------------------


async def _authenticated_body(request: web.Request, api: _Api) -> bytes:
    """Read the body (bounded in size and time), then check the kiosk's credentials."""
    body = await _read_body(request)
    api.auth.check(
        method=request.method,
        path=request.raw_path,
        headers=request.headers,
        body=body,
        now=api.clock(),
    )
    return body


async def _read_body(request: web.Request) -> bytes:
    too_large = RequestRefused(
        413, RequestReason.REQUEST_TOO_LARGE, f"The body exceeds {MAX_BODY} bytes."
    )
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            async for chunk in request.content.iter_any():
                size += len(chunk)
                if size > MAX_BODY:
                    raise too_large
                chunks.append(chunk)
    except TimeoutError:
        raise RequestRefused(
            408, RequestReason.MALFORMED_REQUEST, "The body did not arrive in time."
        ) from None
    return b"".join(chunks)


def parse_session_request(
    body: bytes, *, callback_prefixes: tuple[str, ...] | None = None
) -> SessionRequest:
    """Parse and check a ``POST /sessions`` body; :class:`RequestRefused` (400) if it is not
    exactly what the OpenAPI document describes."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _malformed("The body is not JSON.") from None
    fields = _object(
        document, "the body", required={"identity", "service", "callback_url", "locale"}
    )
    identity = _object(
        fields["identity"], "identity", required=set(), optional={"assertion", "chip"}
    )
    if len(identity) != 1:
        raise _malformed("identity holds exactly one of assertion and chip.")
    evidence: Evidence
    if "assertion" in identity:
        token = identity["assertion"]
        if not isinstance(token, str) or not 1 <= len(token) <= MAX_ASSERTION:
            raise _malformed(f"identity.assertion is a JWT of at most {MAX_ASSERTION} characters.")
        evidence = KioskAssertion(token)
    else:
        evidence = _chip(identity["chip"])
    service = _choice(fields["service"], Service, "service")
    locale = _choice(fields["locale"], Locale, "locale")
    callback_url = _callback(fields["callback_url"], callback_prefixes)
    return SessionRequest(
        evidence=evidence, service=service, callback_url=callback_url, locale=locale
    )


def _chip(value: object) -> ChipData:
    chip = _object(
        value, "identity.chip", required={"dg1", "dg13"}, optional={"sod", "dg14", "dg15"}
    )
    groups: dict[str, bytes] = {}
    for name in _CHIP_FIELDS:
        if name not in chip:
            continue
        encoded = chip[name]
        if not isinstance(encoded, str) or not _BASE64.fullmatch(encoded):
            raise _malformed(f"identity.chip.{name} is not base64.")
        try:
            groups[name] = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise _malformed(f"identity.chip.{name} is not base64.") from None
    return ChipData(
        dg1=groups["dg1"],
        dg13=groups["dg13"],
        sod=groups.get("sod"),
        dg14=groups.get("dg14"),
        dg15=groups.get("dg15"),
    )


def _object(
    value: object, name: str, *, required: set[str], optional: set[str] | None = None
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _malformed(f"{name} is not a JSON object.")
    allowed = required | (optional or set())
    unknown = set(value) - allowed
    if unknown:
        raise _malformed(f"{name} has unknown members.")
    missing = required - set(value)
    if missing:
        raise _malformed(f"{name} lacks {', '.join(sorted(missing))}.")
    return value


def _choice(value: object, kind: type[_Choice], name: str) -> _Choice:
    try:
        if not isinstance(value, str):
            raise ValueError(name)
        return kind(value)
    except ValueError:
        choices = ", ".join(item.value for item in kind)
        raise _malformed(f"{name} is one of {choices}.") from None


def _callback(value: object, prefixes: tuple[str, ...] | None) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_CALLBACK_URL:
        raise _malformed(f"callback_url is a URL of at most {MAX_CALLBACK_URL} characters.")
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if not port_ok or parts.scheme not in {"http", "https"} or not parts.hostname:
        raise RequestRefused(
            400, RequestReason.CALLBACK_REFUSED, "callback_url must be an absolute http(s) URL."
        )
    if not value.isascii() or any(char.isspace() or ord(char) < 32 for char in value):
        raise RequestRefused(
            400, RequestReason.CALLBACK_REFUSED, "callback_url must be ASCII without spaces."
        )
    if prefixes is not None and not value.startswith(prefixes):
        raise RequestRefused(
            400, RequestReason.CALLBACK_REFUSED, "callback_url is not one this cabin may call."
        )
    return value


def _malformed(message: str) -> RequestRefused:
    return RequestRefused(400, RequestReason.MALFORMED_REQUEST, message)


# --- errors as JSON -------------------------------------------------------------------------


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every refusal, whoever raised it, leaves as ``{"error", "message"}`` JSON."""
    try:
        return await handler(request)
    except RequestRefused as refused:
        return _error(refused.status, refused.reason.value, refused.message)
    except SessionUnknown:
        return _error(404, RequestReason.SESSION_NOT_FOUND.value, "No live session has this id.")
    except WipeOverdue:
        return _error(
            503, RequestReason.WIPE_OVERDUE.value, "The visit was not wiped in time; retry."
        )
    except web.HTTPException as http_error:
        if http_error.status < 400:
            raise
        reason = _HTTP_REASONS.get(http_error.status, RequestReason.MALFORMED_REQUEST)
        response = _error(http_error.status, reason.value, http_error.reason + ".")
        if "Allow" in http_error.headers:
            response.headers["Allow"] = http_error.headers["Allow"]
        return response


def _error(
    status: int, reason: str, message: str, *, details: Mapping[str, str] | None = None
) -> web.Response:
    body: dict[str, Any] = {"error": reason, "message": message}
    if details:
        body["details"] = dict(details)
    return web.json_response(body, status=status)


def _instant(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
