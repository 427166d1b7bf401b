"""A stand-in for the digital citizen station's kiosk: the demo's and the tests' card reader.

One page (``/``) and a small JSON API behind it::

    GET  /                       the page: test citizen cards, service, place / remove card, log
    GET  /api/citizens           the generated TEST cards (all fake: "Thử Nghiệm", province 099)
    GET  /api/state?after=N      the card in the slot, and the events logged after N
    POST /api/card               {citizen, service, locale} → sign an assertion, POST the session
    GET  /api/card/status        the cabin's GET /kiosk/v1/sessions/{id} for the placed card
    DELETE /api/card             the card is removed → the cabin's DELETE /kiosk/v1/sessions/{id}
    POST /events                 the cabin's signed events (HMAC checked: ✓ or ✗ in the log)
    GET  /jwks.json              the simulated kiosk's public key, for the cabin's trust anchors

The simulator signs each assertion (ES256) with its own :class:`SyntheticKiosk` key, so the
cabin must trust that key: pass :meth:`KioskSimulator.jwks` (under :attr:`issuer`) to the
cabin's ``TrustedKiosks.from_jwks``, or point it at ``/jwks.json``.  The cabin's answers are
relayed to the page as ``{"cabin_status": …, "cabin_reply": …}``; the page renders every value
with ``textContent`` and links only to http(s) launch URLs.

It is a test tool, not a kiosk: one card slot, state in memory, the log bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from kiosk_bridge.events import (
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TYPE_PREFIX,
    SigningKey,
    verify_signature,
)
from kiosk_bridge.testcards import Citizen, SyntheticKiosk, synthetic_citizen

logger = logging.getLogger(__name__)

UI_DIR: Final = Path(__file__).with_name("kiosksim_ui")
SESSIONS_PATH: Final = "/kiosk/v1/sessions"
DEFAULT_AUDIENCE: Final = "cabin-demo-01"
SERVICES: Final = ("health-check", "consult", "both")
LOCALES: Final = ("vi", "en")
MAX_LOG: Final = 500
MAX_EVENT_BODY: Final = 1024 * 1024
CABIN_TIMEOUT_S: Final = 10.0


def demo_citizens(count: int = 6, *, seed: int = 8000, today: date | None = None) -> list[Citizen]:
    """``count`` reproducible TEST citizens (seeds ``seed``, ``seed + 1``, …)."""
    day = today or datetime.now(UTC).date()
    return [synthetic_citizen(seed + n, today=day) for n in range(count)]


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedEvent:
    """One event the cabin posted, as the page shows it."""

    seq: int
    received_at: datetime
    verified: bool
    problem: str | None
    event_id: str | None
    type: str | None
    subject: str | None
    time: str | None
    data: Any

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "received_at": self.received_at.isoformat().replace("+00:00", "Z"),
            "verified": self.verified,
            "problem": self.problem,
            "id": self.event_id,
            "type": self.type,
            "subject": self.subject,
            "time": self.time,
            "data": self.data,
        }


@dataclass(slots=True, kw_only=True)
class PlacedCard:
    """The card in the slot and the session the cabin opened for it."""

    citizen: int
    service: str
    locale: str
    session_id: str
    launch_url: str
    expires_at: str | None
    assurance: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "citizen": self.citizen,
            "service": self.service,
            "locale": self.locale,
            "session_id": self.session_id,
            "launch_url": self.launch_url,
            "expires_at": self.expires_at,
            "assurance": self.assurance,
        }


@dataclass(slots=True)
class _Log:
    entries: list[LoggedEvent] = field(default_factory=list)
    seen_ids: set[str] = field(default_factory=set)
    next_seq: int = 1
    duplicates: int = 0


_HTTP: Final = web.AppKey("kiosksim_http", aiohttp.ClientSession)


class KioskSimulator:
    """The kiosk simulator's aiohttp application (:attr:`app`) and its state.

    ``cabin_url`` is the cabin's base URL (the API lives under ``/kiosk/v1``);
    ``bearer_token`` the kiosk's credentials there; ``event_key`` the secret the cabin signs
    events with; ``kiosk`` the key assertions are signed with; ``citizens`` the test cards.
    ``audience`` is the cabin's id (the assertion's ``aud``).  ``callback_url`` is where the
    cabin posts events; by default this simulator's ``/events`` at the address the page was
    loaded from (right when the cabin runs on the same machine).
    """

    def __init__(
        self,
        *,
        cabin_url: str,
        bearer_token: str,
        event_key: SigningKey,
        kiosk: SyntheticKiosk,
        citizens: Sequence[Citizen],
        audience: str = DEFAULT_AUDIENCE,
        callback_url: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not citizens:
            raise ValueError("the simulator needs at least one test citizen")
        self._cabin_url = cabin_url.rstrip("/")
        self._bearer = bearer_token
        self._event_key = event_key
        self._kiosk = kiosk
        self._citizens = tuple(citizens)
        self._audience = audience
        self._callback_url = callback_url
        self._clock = clock
        self._card: PlacedCard | None = None
        self._slot = asyncio.Lock()  # one card operation at a time (a double click)
        self._log = _Log()
        self.app = self._build_app()

    @property
    def issuer(self) -> str:
        """The ``iss`` of the simulator's assertions (the key of its JWKS in the cabin)."""
        return self._kiosk.issuer

    def jwks(self) -> dict[str, Any]:
        """The public JWKS the cabin must trust for :attr:`issuer`."""
        return self._kiosk.jwks()

    @property
    def card(self) -> PlacedCard | None:
        """The card in the slot, if any."""
        return self._card

    def events(self) -> list[LoggedEvent]:
        """Every event logged so far (the newest :data:`MAX_LOG`), oldest first."""
        return list(self._log.entries)

    # --- the application --------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_EVENT_BODY)
        app.cleanup_ctx.append(self._http_session)
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", UI_DIR, append_version=False)
        app.router.add_get("/jwks.json", self._jwks)
        app.router.add_get("/api/citizens", self._list_citizens)
        app.router.add_get("/api/state", self._state)
        app.router.add_post("/api/card", self._place_card)
        app.router.add_get("/api/card/status", self._card_status)
        app.router.add_delete("/api/card", self._remove_card)
        app.router.add_post("/events", self._receive_event)
        return app

    @staticmethod
    async def _http_session(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=CABIN_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            app[_HTTP] = http
            yield

    # --- page and read-only views -----------------------------------------------------------

    async def _index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(UI_DIR / "index.html")

    async def _jwks(self, request: web.Request) -> web.Response:
        return web.json_response(self.jwks())

    async def _list_citizens(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.issuer,
                "citizens": [_card_view(index, c) for index, c in enumerate(self._citizens)],
            }
        )

    async def _state(self, request: web.Request) -> web.Response:
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            raise web.HTTPBadRequest(reason="after is a number") from None
        entries = [e.as_json() for e in self._log.entries if e.seq > after]
        return web.json_response(
            {
                "card": None if self._card is None else self._card.as_json(),
                "events": entries,
                "cabin_url": self._cabin_url,
                "duplicates": self._log.duplicates,
            }
        )

    # --- the card ---------------------------------------------------------------------------

    async def _place_card(self, request: web.Request) -> web.Response:
        if self._slot.locked():
            return _problem(409, "reader_busy", "The reader is busy with the card: wait.")
        async with self._slot:
            return await self._place_card_locked(request)

    async def _place_card_locked(self, request: web.Request) -> web.Response:
        if self._card is not None:
            return _problem(409, "card_present", "A card is already in the reader: remove it.")
        try:
            choice = await request.json()
        except (ValueError, UnicodeDecodeError):
            return _problem(400, "malformed", "Send JSON {citizen, service, locale}.")
        if not isinstance(choice, dict):
            return _problem(400, "malformed", "Send JSON {citizen, service, locale}.")
        index = choice.get("citizen")
        service = choice.get("service", "both")
        locale = choice.get("locale", "vi")
        if (
            not isinstance(index, int)
            or isinstance(index, bool)
            or not 0 <= index < len(self._citizens)
        ):
            return _problem(400, "malformed", "citizen is the index of a test card.")
        if service not in SERVICES or locale not in LOCALES:
            return _problem(400, "malformed", "service or locale is not one the cabin knows.")
        assertion = self._kiosk.assertion(
            self._citizens[index], audience=self._audience, now=self._clock()
        )
        body = {
            "identity": {"assertion": assertion},
            "service": service,
            "callback_url": self._callback_url or f"{request.url.origin()}/events",
            "locale": locale,
        }
        status, reply = await self._call_cabin(request.app, "POST", SESSIONS_PATH, body)
        if status is None:
            return _problem(502, "cabin_unreachable", str(reply))
        if status == 201 and isinstance(reply, dict) and _text(reply.get("session_id")):
            self._card = PlacedCard(
                citizen=index,
                service=service,
                locale=locale,
                session_id=str(reply["session_id"]),
                launch_url=_launch_url(reply.get("launch_url")),
                expires_at=_text(reply.get("expires_at")),
                assurance=_text(reply.get("assurance")),
            )
        return self._relay(status, reply)

    async def _card_status(self, request: web.Request) -> web.Response:
        card = self._card
        if card is None:
            return _problem(404, "no_card", "No card is in the reader.")
        status, reply = await self._call_cabin(
            request.app, "GET", f"{SESSIONS_PATH}/{card.session_id}", None
        )
        if status is None:
            return _problem(502, "cabin_unreachable", str(reply))
        return self._relay(status, reply)

    async def _remove_card(self, request: web.Request) -> web.Response:
        if self._slot.locked():
            return _problem(409, "reader_busy", "The reader is busy with the card: wait.")
        async with self._slot:
            return await self._remove_card_locked(request)

    async def _remove_card_locked(self, request: web.Request) -> web.Response:
        card = self._card
        if card is None:
            return _problem(404, "no_card", "No card is in the reader.")
        status, reply = await self._call_cabin(
            request.app, "DELETE", f"{SESSIONS_PATH}/{card.session_id}", None
        )
        if status is None:
            return _problem(502, "cabin_unreachable", str(reply))
        # 204: wiped; 404: the cabin already forgot it.  Anything else (503 wipe_overdue):
        # the session is still live, so the card stays in and the kiosk retries.
        if status in {204, 404}:
            self._card = None
        return self._relay(status, reply)

    async def _call_cabin(
        self, app: web.Application, method: str, path: str, body: Mapping[str, Any] | None
    ) -> tuple[int | None, Any]:
        """(status, JSON reply or None) from the cabin, or (None, why) when it cannot be reached."""
        url = f"{self._cabin_url}{path}"
        headers = {"Authorization": f"Bearer {self._bearer}"}
        try:
            async with app[_HTTP].request(method, url, json=body, headers=headers) as response:
                raw = await response.read()
                reply: Any = None
                if raw:
                    try:
                        reply = json.loads(raw)
                    except ValueError:
                        reply = {"raw": raw[:500].decode("utf-8", "replace")}
                return response.status, reply
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.warning("kiosk simulator: %s %s failed: %s", method, url, error)
            return None, f"{method} {url}: {type(error).__name__} {error}"

    def _relay(self, status: int, reply: Any) -> web.Response:
        return web.json_response(
            {
                "cabin_status": status,
                "cabin_reply": reply,
                "card": None if self._card is None else self._card.as_json(),
            }
        )

    # --- events from the cabin --------------------------------------------------------------

    async def _receive_event(self, request: web.Request) -> web.Response:
        body = await request.read()
        problem = self._signature_problem(body, request.headers)
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            document = {}
            problem = problem or "not a JSON object"
        event_id = _text(document.get("id"))
        if problem is None and event_id is not None and event_id in self._log.seen_ids:
            self._log.duplicates += 1  # a retry of one already acknowledged: same bytes, same id
            return web.Response(status=204)
        event_type = _text(document.get("type"))
        self._append(
            LoggedEvent(
                seq=self._log.next_seq,
                received_at=self._clock(),
                verified=problem is None,
                problem=problem,
                event_id=event_id,
                type=None if event_type is None else event_type.removeprefix(TYPE_PREFIX),
                subject=_text(document.get("subject")),
                time=_text(document.get("time")),
                data=document.get("data"),
            )
        )
        if problem is not None:
            logger.warning("kiosk simulator: refused an event: %s", problem)
            return web.json_response({"error": "signature_invalid", "message": problem}, status=401)
        if event_id is not None:
            self._log.seen_ids.add(event_id)
        return web.Response(status=204)

    def _signature_problem(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        key_id = headers.get(KEY_ID_HEADER)
        if key_id != self._event_key.key_id:
            return f"unknown key id {key_id!r}"
        if not headers.get(TIMESTAMP_HEADER, "").isdigit():
            return "no signature timestamp"
        if not verify_signature(body, headers.get(SIGNATURE_HEADER, ""), key=self._event_key):
            return "the HMAC signature does not match the body"
        return None

    def _append(self, entry: LoggedEvent) -> None:
        self._log.next_seq += 1
        self._log.entries.append(entry)
        del self._log.entries[:-MAX_LOG]


def _card_view(index: int, citizen: Citizen) -> dict[str, Any]:
    return {
        "index": index,
        "name": citizen.full_name,
        "cccd": citizen.cccd,
        "birth_date": citizen.birth_date.isoformat(),
        "sex": citizen.sex.value,
        "card_expiry": None if citizen.card_expiry is None else citizen.card_expiry.isoformat(),
    }


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _problem(status: int, error: str, message: str) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status)


def _launch_url(value: object) -> str:
    """The cabin's launch URL if it is an absolute http(s) URL (the page links to it), else ""."""
    if not isinstance(value, str):
        return ""
    try:
        parts = urlsplit(value)
    except ValueError:
        return ""
    return value if parts.scheme in {"http", "https"} and parts.netloc else ""


@contextlib.asynccontextmanager
async def serving(
    simulator: KioskSimulator, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve ``simulator`` on ``host:port`` (0: a free port); yields its base URL."""
    runner = web.AppRunner(simulator.app, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{bound}"
    finally:
        await runner.cleanup()
