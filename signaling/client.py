"""The signaling client used by cabins, tests and benchmarks (the console has its own in JS).

One :class:`SignalingClient` is one signed-in session. It keeps the resume token from every
``welcome`` so that :meth:`SignalingClient.resume` can take the session back over a new
WebSocket (to the same node or another one) after a drop. Messages are JSON objects as the
protocol defines them (``docs/signaling.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from signaling.errors import SignalingError

logger = logging.getLogger(__name__)

Message = dict[str, Any]


class ClientError(SignalingError):
    """The server refused us, closed the connection, or did not answer in time."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class SignalingClient:
    """A session on the signaling service: sign in, send, receive, resume, leave."""

    def __init__(
        self,
        url: str,
        *,
        http: aiohttp.ClientSession,
        client_name: str = "telehealth-cabin",
        timeout_s: float = 10.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self._http = http
        self._client_name = client_name
        self._timeout_s = timeout_s
        self._headers = headers or {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.welcome: Message | None = None
        self.resume_token: str | None = None

    @property
    def session_id(self) -> str | None:
        return None if self.welcome is None else str(self.welcome["session"])

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def sign_in(self, token: str) -> Message:
        """Open a WebSocket and say hello with a token; returns the welcome."""
        return await self._hello({"type": "hello", "v": 1, "token": token})

    async def resume(self, *, url: str | None = None) -> Message:
        """Take the session back over a new WebSocket, optionally at another node's URL."""
        if self.resume_token is None:
            raise ClientError("nothing to resume: not signed in")
        if url is not None:
            self.url = url
        await self.drop()
        return await self._hello({"type": "hello", "v": 1, "resume": self.resume_token})

    async def _hello(self, hello: Message) -> Message:
        hello["client"] = self._client_name
        try:
            async with asyncio.timeout(self._timeout_s):
                self._ws = await self._http.ws_connect(
                    self.url, headers=self._headers, heartbeat=None, max_msg_size=0
                )
                await self._ws.send_str(json.dumps(hello))
                reply = await self.receive()
        except (aiohttp.ClientError, OSError) as exc:
            raise ClientError(f"cannot reach {self.url}: {exc}") from None
        except TimeoutError:
            raise ClientError(f"no welcome from {self.url} in {self._timeout_s} s") from None
        if reply.get("type") != "welcome":
            raise ClientError(
                f"sign-in refused: {reply.get('code')} {reply.get('detail', '')}",
                code=str(reply.get("code")),
            )
        self.welcome = reply
        self.resume_token = str(reply["resume"])
        return reply

    async def send(self, message: Message) -> None:
        await self.send_text(json.dumps(message, separators=(",", ":")))

    async def send_text(self, text: str) -> None:
        """Send raw text (tests use it for malformed messages)."""
        ws = self._require()
        try:
            await ws.send_str(text)
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise ClientError(f"send failed: {exc}") from None

    async def receive(self, *, timeout_s: float | None = None) -> Message:
        """The next message; ClientError when the server closes the connection."""
        ws = self._require()
        try:
            async with asyncio.timeout(timeout_s if timeout_s is not None else self._timeout_s):
                msg = await ws.receive()
        except TimeoutError:
            raise ClientError("no message in time") from None
        if msg.type == aiohttp.WSMsgType.TEXT:
            loaded: Message = json.loads(msg.data)
            return loaded
        raise ClientError(f"connection closed ({msg.type.name}, code {ws.close_code})")

    async def wait_for(
        self,
        message_type: str,
        *,
        timeout_s: float | None = None,
        where: Callable[[Message], bool] | None = None,
    ) -> Message:
        """Skip messages until one of ``message_type`` (matching ``where``) arrives."""
        limit = timeout_s if timeout_s is not None else self._timeout_s
        try:
            async with asyncio.timeout(limit):
                while True:
                    message = await self.receive(timeout_s=limit)
                    if message.get("type") == message_type and (where is None or where(message)):
                        return message
        except TimeoutError:
            raise ClientError(f"no {message_type} in {limit} s") from None

    async def request(self, message: Message, *, reply_type: str) -> Message:
        """Send a message with an id and wait for its answer (or an error naming it)."""
        ref = message.setdefault("id", f"r{id(message) % 10**9}")
        await self.send(message)
        return await self._answer(str(ref), reply_type)

    async def _answer(self, ref: str, reply_type: str) -> Message:
        async with asyncio.timeout(self._timeout_s):
            while True:
                message = await self.receive()
                if message.get("ref") == ref and message.get("type") in (reply_type, "error"):
                    if message["type"] == "error":
                        raise ClientError(
                            f"{message['code']}: {message.get('detail', message['message'])}",
                            code=str(message["code"]),
                        )
                    return message

    async def drop(self) -> None:
        """Close the WebSocket without saying bye: the server keeps the session (grace)."""
        ws, self._ws = self._ws, None
        if ws is not None and not ws.closed:
            with contextlib.suppress(aiohttp.ClientError, ConnectionError, TimeoutError):
                async with asyncio.timeout(2.0):
                    await ws.close()

    async def leave(self) -> None:
        """Say bye (the session ends now) and close."""
        if self.connected:
            with contextlib.suppress(ClientError):
                await self.send({"type": "bye"})
        await self.drop()

    def _require(self) -> aiohttp.ClientWebSocketResponse:
        if self._ws is None or self._ws.closed:
            raise ClientError("not connected")
        return self._ws
