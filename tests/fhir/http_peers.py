"""Test peers on loopback: a server runner, a FHIR stand-in, a SMART token endpoint.

:func:`fhir_server` serves a few ``(method, path)`` handlers under ``/fhir``, each test
writing exactly the behaviour it protects (a status, a header, a slow or hostile body).
:class:`TokenEndpoint` plays the hospital's authorization server.  It knows the cabin only by
the JWK Set the cabin exports (``fhir.keys.public_jwks``) and verifies each assertion with
PyJWT as a real server must: signature by the ``kid``'s key, ``alg`` RS384/ES384, ``aud`` =
its own URL, ``iss`` = ``sub`` = the client id, ``exp`` at most five minutes ahead, and a
``jti`` never seen before.  Anything wrong is answered ``400 invalid_client`` with the reason.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from aiohttp.test_utils import TestServer

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FHIR_JSON = "application/fhir+json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serve(app: web.Application, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """Run ``app`` on a free 127.0.0.1 port for the block; yields its root URL (no slash)."""
    server = TestServer(app, host="127.0.0.1", shutdown_timeout=1.0)
    await server.start_server(ssl=tls)
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@asynccontextmanager
async def fhir_server(
    routes: dict[tuple[str, str], Handler], *, tls: ssl.SSLContext | None = None
) -> AsyncIterator[str]:
    """A FHIR stand-in with the given ``(method, path)`` handlers; yields its base URL."""
    app = web.Application()
    for (method, path), handler in routes.items():
        app.router.add_route(method, path, handler)
    async with serve(app, tls=tls) as root:
        yield f"{root}/fhir"


def fhir_json(resource: dict[str, Any], *, status: int = 200) -> web.Response:
    """``resource`` as an ``application/fhir+json`` answer."""
    return web.Response(status=status, body=json.dumps(resource).encode(), content_type=FHIR_JSON)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class TokenEndpoint:
    """The token endpoint's state for one test (never shared between tests)."""

    jwks: dict[str, Any]
    client_id: str
    expires_in: Any = 300
    """What to answer as ``expires_in``; ``None`` leaves it out."""
    delay: float = 0.0
    url: str = ""
    """Set by :meth:`running` once the port is known; the ``aud`` the assertion must carry."""
    seen_jti: set[str] = field(default_factory=set)
    issued: list[str] = field(default_factory=list)
    assertions: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[TokenEndpoint]:
        app = web.Application()
        app.router.add_post("/auth/token", self._token)
        async with serve(app) as root:
            self.url = f"{root}/auth/token"
            yield self

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if self.delay:
            await asyncio.sleep(self.delay)
        assertion = str(form.get("client_assertion", ""))
        self.assertions.append(assertion)
        reason = self._refusal(form, assertion)
        if reason is not None:
            self.refusals.append(reason)
            body = {"error": "invalid_client", "error_description": reason}
            return web.json_response(body, status=400)
        self.scopes.append(str(form["scope"]))
        token = f"token-{len(self.issued) + 1}"
        self.issued.append(token)
        answer: dict[str, Any] = {"access_token": token, "token_type": "bearer"}
        answer["scope"] = form["scope"]
        if self.expires_in is not None:
            answer["expires_in"] = self.expires_in
        return web.json_response(answer)

    def _refusal(self, form: Any, assertion: str) -> str | None:
        """Why the request must be refused, or ``None``."""
        if form.get("grant_type") != "client_credentials":
            return "grant_type must be client_credentials"
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return "wrong client_assertion_type"
        if not form.get("scope"):
            return "scope missing"
        try:
            header = jwt.get_unverified_header(assertion)
            keys = {key.key_id: key for key in jwt.PyJWKSet.from_dict(self.jwks).keys}
            jwk = keys.get(header.get("kid"))
            if jwk is None:
                return f"unknown kid {header.get('kid')!r}"
            if header.get("alg") not in {"RS384", "ES384"}:
                return f"alg {header.get('alg')!r} not allowed"
            claims = jwt.decode(
                assertion,
                key=jwk.key,
                algorithms=[header["alg"]],
                audience=self.url,
                issuer=self.client_id,
                options={"require": ["iss", "sub", "aud", "exp", "jti"]},
            )
        except jwt.PyJWTError as error:
            return f"assertion rejected: {error}"
        if claims["sub"] != self.client_id:
            return "sub is not the client id"
        if claims["exp"] > time.time() + 300:
            return "exp more than five minutes ahead"
        if claims["jti"] in self.seen_jti:
            return "jti replayed"
        self.seen_jti.add(claims["jti"])
        return None
