"""The FHIR R4 HTTP client: transaction POST for delivery, capability check, read and search.

:class:`FhirClient` is the :class:`~fhir.transport.BundleTransport` that carries a visit's
Bundle to a hospital.  Its contract with the delivery worker is narrow on purpose:

- an HTTP answer, whatever its status, comes back as a
  :class:`~fhir.transport.TransportResponse` (status, body, ``Retry-After`` in seconds): what
  a 409 or a 503 means is the worker's call;
- no usable answer (refused, reset, TLS failure, timeout, a body over the size limit) raises
  :class:`~fhir.errors.TransportError`; no token raises :class:`~fhir.errors.AuthError`.
  In both cases the bundle may be sent again: every create in it is conditional.

Requests carry ``Authorization: Bearer`` from a token provider (``fhir.smart.TokenSource``)
when one is given; a 401 refreshes the token once and repeats the request.  Redirects are
never followed (a POST must not turn into a GET, a token must not go to another host).
``read`` and ``search`` serve tests and operator tools and raise on anything but a well-formed
FHIR JSON answer.  Bodies are never logged: they hold PHI.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, Self

import aiohttp
from yarl import URL

from fhir.errors import (
    IncompatibleServerError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
)
from fhir.transport import TransportResponse

logger = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
JSON_TYPES = frozenset({FHIR_JSON, "application/json"})
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_PAGES = 50
_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{1,63}")
_RESOURCE_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_R4_VERSION = re.compile(r"4\.0\.\d+")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class TokenProvider(Protocol):
    """Bearer tokens for requests; ``fhir.smart.TokenSource`` is the real one."""

    async def token(self) -> str:
        """A token believed valid now."""

    async def refresh(self, *, stale: str) -> str:
        """A token other than ``stale``, which the server has just refused."""


@dataclass(frozen=True, slots=True)
class ServerCapabilities:
    """What the start-up check learned from ``[base]/metadata``."""

    fhir_version: str
    software: str | None
    """``software.name`` of the CapabilityStatement, if given."""


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    content_type: str
    body: bytes | None  # None: larger than the limit (reading stopped there)
    retry_after: str | None


class FhirClient:
    """Talks FHIR R4 JSON to one server at ``base_url``.

    Pass a ``session`` to share one (its owner closes it), or use the client as
    ``async with FhirClient(...) as client`` to own one for that block.  For a configured
    hospital: ``FhirClient(h.base_url, verify_tls=h.verify_tls, timeout=h.timeout, ...)``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        token_source: TokenProvider | None = None,
        verify_tls: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_pages: int = DEFAULT_MAX_PAGES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        base = URL(base_url.rstrip("/"))
        if base.scheme not in {"http", "https"} or not base.host:
            raise ValueError(f"a FHIR base URL is http(s)://host/..., not {base_url!r}")
        if ssl_context is not None and not verify_tls:
            raise ValueError("ssl_context verifies certificates; it contradicts verify_tls=False")
        if timeout <= 0 or max_response_bytes <= 0 or max_pages <= 0:
            raise ValueError("timeout, max_response_bytes and max_pages must be positive")
        warn_if_cleartext(base, what="FHIR server")
        self.base_url = base
        self._session = session
        self._owns_session = False
        self._tokens = token_source
        self._ssl: ssl.SSLContext | bool = ssl_context or verify_tls
        self._timeout = timeout
        self._max_bytes = max_response_bytes
        self._max_pages = max_pages
        self._clock = clock

    async def __aenter__(self) -> Self:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None
            self._owns_session = False

    async def capabilities(self) -> ServerCapabilities:
        """Fetch ``[base]/metadata``; insist on FHIR 4.0.x and the ``transaction`` interaction."""
        answer = await self._exchange("GET", self.base_url / "metadata")
        statement = self._resource_from(answer, what="the CapabilityStatement", of=None)
        if statement.get("resourceType") != "CapabilityStatement":
            raise IncompatibleServerError(
                f"{self.base_url}/metadata is a {statement.get('resourceType')!r}, "
                "not a CapabilityStatement: is this a FHIR base URL?"
            )
        version = statement.get("fhirVersion")
        if not isinstance(version, str) or not _R4_VERSION.fullmatch(version):
            raise IncompatibleServerError(
                f"{self.base_url} speaks FHIR {version!r}; the cabin sends R4 (4.0.x)"
            )
        if not _supports_transaction(statement):
            raise IncompatibleServerError(
                f"{self.base_url} does not list the 'transaction' interaction in a server rest"
            )
        software = statement.get("software")
        name = software.get("name") if isinstance(software, dict) else None
        name = name if isinstance(name, str) else None
        logger.info("FHIR server %s: FHIR %s, %s", self.base_url, version, name or "unnamed")
        return ServerCapabilities(fhir_version=version, software=name)

    async def post_transaction(self, bundle: bytes) -> TransportResponse:
        """POST a transaction Bundle to the base URL and return the answer as it came.

        Raises ``TransportError`` when no usable answer came, ``AuthError`` when no token
        could be had; a 401 is retried once with a fresh token, then returned like any status.
        """
        answer = await self._exchange("POST", self.base_url, body=bundle)
        if answer.body is None:
            too_big = f"HTTP {answer.status} with a body over {self._max_bytes} bytes (dropped)"
            raise TransportError(f"{self.base_url} answered {too_big}")
        return TransportResponse(
            status=answer.status,
            body=answer.body,
            retry_after=parse_retry_after(answer.retry_after, now=self._clock()),
        )

    async def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        """``GET [base]/type/id``; the resource as parsed JSON (for tests and tools)."""
        if not _TYPE_NAME.fullmatch(resource_type) or not _RESOURCE_ID.fullmatch(resource_id):
            raise ValueError(f"not a FHIR type and id: {resource_type!r}, {resource_id!r}")
        answer = await self._exchange("GET", self.base_url / resource_type / resource_id)
        return self._resource_from(answer, what=f"{resource_type}/{resource_id}", of=resource_type)

    async def search(
        self, resource_type: str, params: Mapping[str, str] | Sequence[tuple[str, str]] = ()
    ) -> list[dict[str, Any]]:
        """``GET [base]/type?params`` and its ``next`` pages: every match and include, in order.

        ``next`` links must stay on the base URL's origin (the token goes nowhere else); more
        than ``max_pages`` pages is an ``UnexpectedResponseError``, never a partial result.
        """
        if not _TYPE_NAME.fullmatch(resource_type):
            raise ValueError(f"not a FHIR resource type: {resource_type!r}")
        query = list(params.items()) if isinstance(params, Mapping) else list(params)
        url: URL = (self.base_url / resource_type).extend_query(query)
        found: list[dict[str, Any]] = []
        for _ in range(self._max_pages):
            answer = await self._exchange("GET", url)
            bundle = self._resource_from(answer, what=f"a {resource_type} search", of="Bundle")
            found.extend(_search_resources(bundle, status=answer.status))
            following = self._next_page(bundle, status=answer.status)
            if following is None:
                return found
            url = following
        pages = f"more than {self._max_pages} pages"
        raise UnexpectedResponseError(f"a {resource_type} search has {pages}", status=200)

    def _next_page(self, bundle: dict[str, Any], *, status: int) -> URL | None:
        links = bundle.get("link")
        for link in links if isinstance(links, list) else []:
            if isinstance(link, dict) and link.get("relation") == "next":
                target = link.get("url")
                if not isinstance(target, str) or not target:
                    raise UnexpectedResponseError("a 'next' link without a url", status=status)
                following = self.base_url.join(URL(target, encoded=True))
                if following.origin() != self.base_url.origin():
                    raise UnexpectedResponseError(
                        f"a 'next' link leaves {self.base_url.origin()} for {following.origin()}",
                        status=status,
                    )
                return following
        return None

    async def _exchange(self, method: str, url: URL, *, body: bytes | None = None) -> _Answer:
        """One request, repeated once with a fresh token after a 401."""
        if self._tokens is None:
            return await self._send(method, url, body=body, token=None)
        token = await self._tokens.token()
        answer = await self._send(method, url, body=body, token=token)
        if answer.status == 401:
            logger.info("%s refused the access token (401); refreshing it once", self.base_url)
            token = await self._tokens.refresh(stale=token)
            answer = await self._send(method, url, body=body, token=token)
        return answer

    async def _send(
        self, method: str, url: URL, *, body: bytes | None, token: str | None
    ) -> _Answer:
        session = self._session
        if session is None:
            raise RuntimeError("FhirClient needs a session: pass one, or use 'async with'")
        headers = {"Accept": FHIR_JSON} | ({} if body is None else {"Content-Type": FHIR_JSON})
        headers |= {} if token is None else {"Authorization": f"Bearer {token}"}
        started = time.monotonic()
        try:
            async with (
                asyncio.timeout(self._timeout),
                session.request(
                    method,
                    url,
                    data=body,
                    headers=headers,
                    ssl=self._ssl,
                    allow_redirects=False,
                    raise_for_status=False,
                ) as response,
            ):
                content = await read_limited(response, limit=self._max_bytes)
                answer = _Answer(
                    status=response.status,
                    content_type=response.content_type,
                    body=content,
                    retry_after=response.headers.get("Retry-After"),
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            why = transport_failure(error, timeout=self._timeout)
            raise TransportError(f"{method} {url.with_query(None)}: {why}") from error
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.debug("%s %s -> %d (%.0f ms)", method, url.path, answer.status, elapsed_ms)
        return answer

    def _resource_from(self, answer: _Answer, *, what: str, of: str | None) -> dict[str, Any]:
        """The answer's resource (of type ``of``), or the error that says why there is none."""
        if not 200 <= answer.status < 300:
            outcome = parse_json_object(answer.body) if answer.content_type in JSON_TYPES else None
            raise ServerError(
                f"{self.base_url} answered HTTP {answer.status} for {what}{_diagnostics(outcome)}",
                status=answer.status,
                outcome=outcome,
            )
        if answer.body is None:
            raise UnexpectedResponseError(
                f"{what} is larger than {self._max_bytes} bytes", status=answer.status
            )
        if answer.content_type not in JSON_TYPES:
            raise UnexpectedResponseError(
                f"{what} came as {answer.content_type!r}, not {FHIR_JSON}", status=answer.status
            )
        parsed = parse_json_object(answer.body)
        if parsed is None:
            raise UnexpectedResponseError(f"{what} is not a JSON object", status=answer.status)
        if of is not None and parsed.get("resourceType") != of:
            found = parsed.get("resourceType")
            raise UnexpectedResponseError(f"{what}: a {found!r}, not a {of}", status=answer.status)
        return parsed


async def read_limited(response: aiohttp.ClientResponse, *, limit: int) -> bytes | None:
    """The response body, or ``None`` as soon as it proves longer than ``limit`` bytes.

    The declared ``Content-Length`` is checked first; the decoded (decompressed) bytes are
    counted as they arrive, so neither a lying header nor a compression bomb gets past.
    """
    declared = response.content_length
    if declared is not None and declared > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 §10.2.3), or ``None``.

    ``delay-seconds`` (digits only) is taken as is; an HTTP-date becomes the seconds from
    ``now`` (never negative).  Anything else is ignored: a malformed hint must not stall or
    crash delivery.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        try:
            return float(int(text))
        except (ValueError, OverflowError):
            return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        logger.debug("ignoring an unreadable Retry-After: %r", text[:64])
        return None
    if when.tzinfo is None:  # "-0000": UTC with no claim about local time
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def warn_if_cleartext(url: URL, *, what: str) -> None:
    """Log a warning for plain ``http`` to anything but loopback: PHI and tokens travel there."""
    if url.scheme == "http" and url.host not in _LOOPBACK_HOSTS:
        logger.warning("%s %s is plain http: PHI and tokens would travel unencrypted", what, url)


def transport_failure(error: BaseException, *, timeout: float) -> str:
    """Why a request got no answer, in words (the query string is never included: PHI)."""
    if isinstance(error, TimeoutError):
        return f"no answer within {timeout:g} s"
    return f"{type(error).__name__}: {error}"


def _supports_transaction(statement: dict[str, Any]) -> bool:
    rests = statement.get("rest")
    for rest in rests if isinstance(rests, list) else []:
        if isinstance(rest, dict) and rest.get("mode") == "server":
            interactions = rest.get("interaction")
            items = interactions if isinstance(interactions, list) else []
            if "transaction" in {item.get("code") for item in items if isinstance(item, dict)}:
                return True
    return False


def _search_resources(bundle: dict[str, Any], *, status: int) -> list[dict[str, Any]]:
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise UnexpectedResponseError("a search Bundle whose 'entry' is not a list", status=status)
    resources: list[dict[str, Any]] = []
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            raise UnexpectedResponseError("a search entry without a resource", status=status)
        search = entry.get("search")
        if isinstance(search, dict) and search.get("mode") == "outcome":
            continue
        resources.append(resource)
    return resources


def parse_json_object(body: bytes | None) -> dict[str, Any] | None:
    """``body`` parsed as a JSON object, or ``None`` for anything else (garbage included)."""
    if body is None:
        return None
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
    return parsed if isinstance(parsed, dict) else None


def _diagnostics(outcome: dict[str, Any] | None) -> str:
    """``: <first issue's diagnostics>`` of an OperationOutcome, shortened, or nothing."""
    issues = outcome.get("issue") if outcome else None
    first = issues[0] if isinstance(issues, list) and issues else None
    text = first.get("diagnostics") if isinstance(first, dict) else None
    return f": {text[:200]}" if isinstance(text, str) else ""
