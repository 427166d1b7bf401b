"""Fuzzing a real node: a stranger sends every message type, well-formed and not, mid-call.

One node per test runs on an event loop in a background thread, so that Hypothesis (which
drives a plain function) can send example after example to the same node and call. A cabin
and a doctor of ``bv-a`` are in a call; another cabin waits for ``bv-b``. The stranger — a
cabin, a ``bv-a`` doctor or an admin, signed in — sends the generated messages one at a time
and must get an answer (a reply naming its id, or an error) to each; the server closes its
connection only after a fatal error or a ``bye``, and then the stranger signs in again under
a new name. Afterwards the node is healthy, logged no error, and the call still relays.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from signaling.client import ClientError, Message, SignalingClient
from signaling.codes import ErrorCode
from signaling.errors import ProtocolError
from signaling.messages import INBOUND_TYPES, Bye, decode, validate_outbound
from signaling.model import Role
from tests.signaling.harness import Node, running_node
from tests.signaling.test_messages import JSON_VALUES, MINIMAL, inbound

T = TypeVar("T")

OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
LIMIT = 64 * 1024
ANSWER_TIMEOUT_S = 3.0
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


# -- the party: a client whose every incoming message is recorded and schema-checked ---------


@dataclass
class Party:
    """A signed-in client read continuously, so the server never sees it as a slow consumer."""

    name: str
    client: SignalingClient
    inbox: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    seen: list[Message] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    closed: str | None = None
    reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        while True:
            try:
                message = await self.client.receive(timeout_s=3600)
            except ClientError as exc:
                self.closed = str(exc)
                return
            try:
                validate_outbound(message)
            except ProtocolError as exc:
                self.invalid.append(f"{message.get('type')}: {exc}")
            self.seen.append(message)
            self.inbox.put_nowait(message)

    async def expect(self, message_type: str) -> Message:
        async with asyncio.timeout(ANSWER_TIMEOUT_S):
            while True:
                message = await self.inbox.get()
                if message["type"] == message_type:
                    return message

    async def stop(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
        await self.client.leave()


# -- the stranger: sends one message, waits for its answer, signs in again when thrown out ---


@dataclass
class Outcome:
    """What one fuzz message got back."""

    sent: str
    answer: Message | None
    """The reply or error; None when the connection closed instead."""
    closed_by: str | None = None


class Stranger:
    """A third connection of one role that is party to nothing it is fuzzing."""

    def __init__(self, node: Node, role: Role) -> None:
        self._node = node
        self.role = role
        self._names: Iterator[int] = itertools.count()
        self.client: SignalingClient | None = None
        self.sign_ins = 0
        self.invalid: list[str] = []

    async def connect(self) -> SignalingClient:
        name = f"fuzz-{self.role}-{next(self._names)}"
        match self.role:
            case Role.CABIN:
                self.client = await self._node.cabin(name)
            case Role.DOCTOR:
                self.client = await self._node.doctor(name, ["bv-a"])
            case Role.ADMIN:
                self.client = await self._node.admin(name)
        self.sign_ins += 1
        return self.client

    async def send(self, text: str) -> Outcome:
        """Send ``text``; reconnect and send it again if the connection was already closing."""
        for _ in range(3):
            client = self.client if self.client and self.client.connected else None
            client = client or await self.connect()
            try:
                await client.send_text(text)
                outcome = await self._answer(client, text)
            except ClientError as exc:
                outcome = Outcome(text, None, closed_by=str(exc))
            if outcome.answer is not None and outcome.answer.get("code") in _THROWN_OUT:
                await client.drop()
                continue  # thrown out for earlier errors before this message was read
            if outcome.answer is None and not _is_bye(text):
                await client.drop()
                continue  # closed by an earlier fatal error that we had not read yet
            return outcome
        raise AssertionError(f"no answer to {text[:200]!r} after three connections")

    async def _answer(self, client: SignalingClient, text: str) -> Outcome:
        ref = _id_of(text)
        async with asyncio.timeout(ANSWER_TIMEOUT_S):
            while True:
                try:
                    message = await client.receive(timeout_s=ANSWER_TIMEOUT_S)
                except ClientError as exc:
                    return Outcome(text, None, closed_by=str(exc))
                try:
                    validate_outbound(message)
                except ProtocolError as exc:
                    self.invalid.append(f"{message.get('type')}: {exc}")
                if ref is not None and message.get("ref") == ref:
                    return Outcome(text, message)
                if message["type"] == "error" and message.get("ref") is None:
                    return Outcome(text, message)


_THROWN_OUT = {ErrorCode.TOO_MANY_ERRORS.value}


def _id_of(text: str) -> str | None:
    try:
        loaded = json.loads(text)
    except (ValueError, RecursionError):
        return None
    ref = loaded.get("id") if isinstance(loaded, dict) else None
    return ref if isinstance(ref, str) else None


def _is_bye(text: str) -> bool:
    try:
        return isinstance(decode(text, max_bytes=LIMIT), Bye)
    except ProtocolError:
        return False


# -- a node in a thread, with a call in it ---------------------------------------------------


class LiveCall:
    """A node on its own event loop thread; a cabin and a doctor in a call; a waiting cabin."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self._thread = threading.Thread(target=self._serve, name="signaling-node", daemon=True)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self.node: Node | None = None
        self.cabin: Party | None = None
        self.doctor: Party | None = None
        self.waiting: Party | None = None
        self.call_id = ""
        self.foreign_ticket = ""

    def __enter__(self) -> LiveCall:
        self._thread.start()
        self._ready.wait(20)
        if self._failure is not None:
            raise self._failure
        assert self._loop is not None, "the node did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(20)
        if self._failure is not None and exc[0] is None:
            raise self._failure

    def run(self, work: Callable[[], Awaitable[T]], *, timeout_s: float = 30.0) -> T:
        """Run a coroutine on the node's loop and wait for its result."""
        assert self._loop is not None

        async def wrapped() -> T:
            return await work()

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(timeout_s)

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test thread
            self._failure = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with running_node(self._tmp_path) as node:
            self.node = node
            await self._meet(node)
            self._ready.set()
            await self._stop.wait()
            for party in (self.cabin, self.doctor, self.waiting):
                if party is not None:
                    await party.stop()

    async def _meet(self, node: Node) -> None:
        doctor = await node.doctor("dr-a", ["bv-a"])
        cabin = await node.cabin("dkc-01")
        queued = await cabin.request(
            {"type": "consult-request", "triage": {"urgency": "urgent", "hospital": "bv-a"}},
            reply_type="queued",
        )
        call = await doctor.request(
            {"type": "accept", "ticket": queued["ticket"]}, reply_type="call"
        )
        await cabin.wait_for("call")
        waiting = await node.cabin("dkc-02")
        foreign = await waiting.request(
            {"type": "consult-request", "triage": {"urgency": "routine", "hospital": "bv-b"}},
            reply_type="queued",
        )
        self.call_id, self.foreign_ticket = call["call"], foreign["ticket"]
        self.cabin, self.doctor, self.waiting = (
            Party("cabin", cabin),
            Party("doctor", doctor),
            Party("waiting", waiting),
        )
        for party in (self.cabin, self.doctor, self.waiting):
            party.start()

    async def healthz(self) -> int:
        assert self.node is not None
        url = self.node.url.removesuffix("/ws") + "/healthz"
        async with self.node.http.get(url) as response:
            return response.status

    async def relay_both_ways(self) -> None:
        """The call is intact: an offer from each side reaches the other."""
        assert self.cabin is not None
        assert self.doctor is not None
        for sender, receiver in ((self.cabin, self.doctor), (self.doctor, self.cabin)):
            await sender.client.send({"type": "offer", "call": self.call_id, "sdp": OFFER})
            relayed = await receiver.expect("offer")
            assert relayed == {
                "type": "offer",
                "call": self.call_id,
                "from": sender.name,
                "sdp": OFFER,
            }


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveCall]:
    with LiveCall(tmp_path) as running:
        yield running


@pytest.fixture
def server_errors(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """Every ERROR the server side logged (handler exceptions, task crashes)."""
    caplog.set_level(logging.WARNING)

    def errors() -> list[str]:
        return [
            f"{r.name}: {r.getMessage()} {r.exc_text or ''}"[:500]
            for r in caplog.records
            if r.levelno >= logging.ERROR
        ]

    return errors


# -- what the stranger sends -----------------------------------------------------------------


def fuzz_batches(call_id: str, foreign_ticket: str) -> st.SearchStrategy[list[str]]:
    """One to six messages: schema-valid ones of any inbound type with random values, and
    broken ones (mutated, truncated, not JSON, not an object, too large, too deep).

    String values may hold any code point, lone surrogates included (sent as JSON escapes).
    ``call`` names the real call or none; ``ticket`` another hospital's resident or none.
    """
    overrides: dict[str, st.SearchStrategy[Any]] = {
        "call": st.sampled_from([call_id, "c-none", "x" * 64]),
        "ticket": st.sampled_from([foreign_ticket, "t-none"]),
    }
    ids = st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True).map(lambda s: f"f-{s}")
    valid = st.one_of(
        [
            st.tuples(
                inbound(t, overrides=overrides, alphabet=st.characters(), max_text=60), ids
            ).map(lambda drawn: {**drawn[0], "id": drawn[1]})  # an id, so the answer names it
            for t in INBOUND_TYPES
        ]
    )
    mutated = st.tuples(
        valid,
        st.sampled_from(["drop", "add", "replace"]),
        st.text(min_size=1, max_size=8),
        JSON_VALUES,
    ).map(_mutate)
    truncated = valid.map(json.dumps).flatmap(
        lambda t: st.integers(0, len(t) - 1).map(lambda n: t[:n])
    )
    broken = st.one_of(
        mutated.map(json.dumps),
        truncated,
        st.text(max_size=100),
        JSON_VALUES.map(json.dumps),
        st.just('{"type":"ping","id":"big","x":"' + "a" * LIMIT + '"}'),
        st.just("[" * 10_000),
    )
    as_text = valid.map(json.dumps)
    return st.lists(st.one_of(as_text, as_text, broken), min_size=1, max_size=6)


def one_of_each(call_id: str, foreign_ticket: str) -> list[str]:
    """The smallest valid message of every type, aimed at the real call and the foreign
    ticket, then one of each kind of broken message."""
    texts = []
    for message_type in INBOUND_TYPES:
        message = {**MINIMAL[message_type], "id": f"min-{message_type}"}
        if "call" in message:
            message["call"] = call_id
        if "ticket" in message:
            message["ticket"] = foreign_ticket
        texts.append(json.dumps(message))
    broken = [
        "",
        "[]",
        '{"type":"ring","id":"x-1"}',
        '{"type":"ping","id":"x-2","extra":1}',
        texts[0][:-3],
        '{"type":"ping","id":"big","x":"' + "a" * LIMIT + '"}',
        "[" * 10_000,
    ]
    return [*texts, *broken]


def _mutate(drawn: tuple[dict[str, Any], str, str, Any]) -> dict[str, Any]:
    message, how, name, value = drawn
    keys = sorted(k for k in message if k not in ("type", "id"))
    changed = dict(message)
    if how == "drop" and keys:
        del changed[keys[0]]
    elif how == "replace" and keys:
        changed[keys[-1]] = value
    else:
        changed[name] = value
    return changed


# -- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.CABIN, Role.DOCTOR, Role.ADMIN])
def test_a_stranger_fuzzing_every_message_type_breaks_nothing(
    live: LiveCall, role: Role, server_errors: Callable[[], list[str]]
) -> None:
    assert live.node is not None
    stranger = Stranger(live.node, role)
    outcomes: list[Outcome] = []

    @FUZZ
    @example(one_of_each(live.call_id, live.foreign_ticket))
    @given(fuzz_batches(live.call_id, live.foreign_ticket))
    def every_message_is_answered(texts: list[str]) -> None:
        for text in texts:
            outcome = live.run(functools.partial(stranger.send, text))
            outcomes.append(outcome)
            assert outcome.answer is not None or _is_bye(text), outcome

    every_message_is_answered()

    assert live.run(live.healthz) == 200
    assert server_errors() == []
    assert stranger.invalid == []
    assert live.cabin is not None
    assert live.doctor is not None
    for party in (live.cabin, live.doctor):
        assert party.closed is None, f"{party.name}: {party.closed}"
        assert party.invalid == []
        # nothing of the stranger's reached the call: no relay, no error, no hang-up
        kinds = {m["type"] for m in party.seen}
        assert not kinds & {"offer", "answer", "candidate", "call-ended", "error"}, kinds
    live.run(live.relay_both_ways)
    assert server_errors() == []
    # the stranger sent every type, and was refused for the right reasons
    assert {_kind(o.sent) for o in outcomes} == {*INBOUND_TYPES, "broken"}
    codes = {o.answer.get("code") for o in outcomes if o.answer and o.answer["type"] == "error"}
    for code in (ErrorCode.BAD_JSON, ErrorCode.INVALID_MESSAGE, ErrorCode.UNKNOWN_TYPE):
        assert code.value in codes
    assert ErrorCode.TOO_LARGE.value in codes
    if role is not Role.ADMIN:
        assert ErrorCode.NOT_IN_CALL.value in codes
    assert ErrorCode.FORBIDDEN.value in codes


def test_a_lone_surrogate_in_a_relayed_offer_is_refused_and_the_peer_stays(
    live: LiveCall, server_errors: Callable[[], list[str]]
) -> None:
    """Relayed as is, it made the peer's writer raise UnicodeEncodeError and drop the peer."""
    assert live.cabin is not None
    assert live.doctor is not None
    cabin, doctor = live.cabin, live.doctor
    text = json.dumps({"type": "offer", "call": live.call_id, "sdp": "v=0 \ud800", "id": "o-1"})

    async def send() -> Message:
        await cabin.client.send_text(text)
        refused = await cabin.expect("error")
        await live.relay_both_ways()
        return refused

    refused = live.run(send)
    assert (refused["code"], refused.get("ref")) == (ErrorCode.INVALID_MESSAGE.value, None)
    assert doctor.closed is None
    assert [m for m in doctor.seen if m["type"] == "offer" and m["sdp"] != OFFER] == []
    assert server_errors() == []


def test_a_lone_surrogate_in_a_triage_summary_is_refused_and_the_doctors_stay(
    live: LiveCall, server_errors: Callable[[], list[str]]
) -> None:
    """Queued as is, it went into every bv-a doctor's queue and disconnected them all."""
    assert live.node is not None
    assert live.doctor is not None
    node, doctor = live.node, live.doctor
    text = json.dumps(
        {
            "type": "consult-request",
            "id": "q-1",
            "triage": {"urgency": "routine", "hospital": "bv-a", "summary": "\udc00"},
        }
    )

    async def request() -> Message:
        stranger = await node.cabin("dkc-03")
        await stranger.send_text(text)
        refused = await stranger.receive()
        await stranger.request({"type": "ping"}, reply_type="pong")
        await stranger.leave()
        await live.relay_both_ways()
        return refused

    refused = live.run(request)
    assert (refused["type"], refused["code"]) == ("error", ErrorCode.INVALID_MESSAGE.value)
    assert doctor.closed is None
    assert server_errors() == []


def _kind(text: str) -> str:
    """The inbound type of a message the decoder accepts, else "broken"."""
    try:
        decode(text, max_bytes=LIMIT)
    except ProtocolError:
        return "broken"
    loaded: dict[str, Any] = json.loads(text)
    return str(loaded["type"])


async def _raw_sign_in(node: Node, subject: str) -> aiohttp.ClientWebSocketResponse:
    ws = await node.http.ws_connect(node.url)
    await ws.send_str(json.dumps({"type": "hello", "v": 1, "token": node.token("cabin", subject)}))
    welcome = await ws.receive_json(timeout=5)
    assert welcome["type"] == "welcome"
    return ws


def test_a_binary_frame_is_refused_and_the_connection_survives(
    live: LiveCall, server_errors: Callable[[], list[str]]
) -> None:
    assert live.node is not None
    node = live.node

    async def scenario() -> None:
        ws = await _raw_sign_in(node, "dkc-binary")
        await ws.send_bytes(b'{"type":"ping","id":"b-1"}')
        refused = await ws.receive_json(timeout=5)
        assert (refused["type"], refused["code"]) == ("error", ErrorCode.INVALID_MESSAGE.value)
        await ws.send_str('{"type":"ping","id":"p-1"}')
        assert (await ws.receive_json(timeout=5))["ref"] == "p-1"
        await ws.close()
        await live.relay_both_ways()

    live.run(scenario)
    assert server_errors() == []


def test_a_frame_past_the_transport_limit_closes_only_that_connection(
    live: LiveCall, server_errors: Callable[[], list[str]]
) -> None:
    """Past four times the message limit aiohttp itself refuses the frame (close 1009)."""
    assert live.node is not None
    node = live.node

    async def scenario() -> None:
        ws = await _raw_sign_in(node, "dkc-huge")
        await ws.send_str('{"type":"ping","x":"' + "a" * (4 * LIMIT) + '"}')
        closing = await ws.receive(timeout=5)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
        await live.relay_both_ways()
        assert live.cabin is not None
        assert live.doctor is not None
        assert live.cabin.closed is None
        assert live.doctor.closed is None

    live.run(scenario)
    assert server_errors() == []
