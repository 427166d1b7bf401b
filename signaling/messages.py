"""Protocol messages: inbound JSON checked against its schema and turned into typed values.

Every message is one JSON object with a ``type``; the schema for each type lives in
``signaling/schemas/inbound/<type>.json`` (client to server) or ``outbound/`` (server to
client), and ``docs/signaling.md`` is written from the same files. The decoder is the only
place that sees raw JSON; the rest of the service gets the frozen dataclasses below.
Outbound messages are built by the ``*_message`` functions and serialised once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

from jsonschema import Draft202012Validator, ValidationError, validators

from signaling.codes import ErrorCode
from signaling.errors import ProtocolError
from signaling.model import Presence, Triage, Urgency

PROTOCOL_VERSION = 1
_MAX_ERRORS_SHOWN = 3
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@cache
def _ecma_pattern(pattern: str) -> re.Pattern[str]:
    """A schema pattern with ECMA-262's ``$`` (end of input, not "before a final newline")."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _ecma_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = validators.extend(Draft202012Validator, {"pattern": _pattern})  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class Hello:
    version: int
    token: str | None
    resume: str | None
    client: str | None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    id: str | None = None


@dataclass(frozen=True, slots=True)
class IceRefresh:
    id: str | None = None


@dataclass(frozen=True, slots=True)
class ConsultRequest:
    triage: Triage
    id: str | None = None


@dataclass(frozen=True, slots=True)
class ConsultCancel:
    id: str | None = None


@dataclass(frozen=True, slots=True)
class ConsultStay:
    id: str | None = None


@dataclass(frozen=True, slots=True)
class SetPresence:
    status: Presence
    id: str | None = None


@dataclass(frozen=True, slots=True)
class QueueGet:
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Accept:
    ticket: str
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """One ICE candidate in the browser's ``RTCIceCandidateInit`` shape."""

    candidate: str
    sdp_mid: str | None
    sdp_mline_index: int | None
    username_fragment: str | None


@dataclass(frozen=True, slots=True)
class Relay:
    """An offer, answer or candidate for the other party of ``call``."""

    kind: Literal["offer", "answer", "candidate"]
    call: str
    sdp: str | None = None
    restart: bool = False
    candidate: Candidate | None = None
    """None with ``kind == "candidate"`` means end of candidates."""
    id: str | None = None


@dataclass(frozen=True, slots=True)
class HangUp:
    call: str
    reason: str
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Bye:
    id: str | None = None


@dataclass(frozen=True, slots=True)
class StatsGet:
    id: str | None = None


Inbound = (
    Hello
    | Ping
    | IceRefresh
    | ConsultRequest
    | ConsultCancel
    | ConsultStay
    | SetPresence
    | QueueGet
    | Accept
    | Relay
    | HangUp
    | Bye
    | StatsGet
)

INBOUND_TYPES = (
    "hello",
    "ping",
    "ice-refresh",
    "consult-request",
    "consult-cancel",
    "consult-stay",
    "presence",
    "queue-get",
    "accept",
    "offer",
    "answer",
    "candidate",
    "hangup",
    "bye",
    "stats",
)


def schema(direction: Literal["inbound", "outbound"], message_type: str) -> dict[str, Any]:
    """The JSON Schema of one message type, as shipped in the package."""
    return dict(_load_schema(direction, message_type))


@cache
def _load_schema(direction: str, message_type: str) -> Mapping[str, Any]:
    text = resources.files("signaling").joinpath(f"schemas/{direction}/{message_type}.json")
    loaded: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return loaded


@cache
def _validator(direction: str, message_type: str) -> Any:
    return _Validator(_load_schema(direction, message_type))


def outbound_types() -> tuple[str, ...]:
    """Every server-to-client message type that has a schema."""
    folder = resources.files("signaling").joinpath("schemas/outbound")
    return tuple(sorted(p.name.removesuffix(".json") for p in folder.iterdir()))


def decode(text: str | bytes, *, max_bytes: int) -> Inbound:
    """Parse and validate one client message; :class:`ProtocolError` says what is wrong.

    The size is checked on the encoded bytes before parsing, so an oversize message costs no
    more than its length.
    """
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"{size} bytes; the limit is {max_bytes}")
    try:
        raw = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(ErrorCode.BAD_JSON, str(exc)[:200]) from None
    if not isinstance(raw, dict):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "a message is a JSON object")
    message_type = raw.get("type")
    if not isinstance(message_type, str) or message_type not in INBOUND_TYPES:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"type {str(message_type)[:40]!r}")
    version = raw.get("v")
    if message_type == "hello" and isinstance(version, int) and version != PROTOCOL_VERSION:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION, f"this server speaks version {PROTOCOL_VERSION}"
        )
    if _SURROGATE_ESCAPE.search(text if isinstance(text, str) else text.decode("latin-1")):
        # an escaped lone surrogate parses, but cannot be sent on as UTF-8
        try:
            json.dumps(raw, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ProtocolError(ErrorCode.INVALID_MESSAGE, "a lone UTF-16 surrogate") from None
    if message_type in _RELAY_TYPES and _relay_conforms(raw):
        return _typed(message_type, raw)  # the hot path: same verdict, a tenth of the cost
    errors = sorted(_validator("inbound", message_type).iter_errors(raw), key=lambda e: e.path)
    if errors:
        shown = "; ".join(_describe(e.json_path, e.message) for e in errors[:_MAX_ERRORS_SHOWN])
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"{message_type}: {shown}")
    return _typed(message_type, raw)


_RELAY_TYPES = frozenset({"offer", "answer", "candidate"})
_RELAY_KEYS = {
    "offer": frozenset({"type", "id", "call", "sdp", "restart"}),
    "answer": frozenset({"type", "id", "call", "sdp"}),
    "candidate": frozenset({"type", "id", "call", "candidate"}),
}
_CANDIDATE_KEYS = frozenset({"candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"})
_OPAQUE = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}\Z")


def _relay_conforms(raw: dict[str, Any]) -> bool:
    """The relay schemas (offer, answer, candidate) checked by hand, for speed.

    Relayed messages are most of the traffic, and jsonschema costs ~100 µs each. This check
    accepts a subset of what the schemas accept (a hypothesis test holds it to that), so a
    message it refuses still goes through jsonschema, which accepts it or says what is wrong.
    """
    kind = raw["type"]
    if not raw.keys() <= _RELAY_KEYS[kind]:
        return False
    call, mid = raw.get("call"), raw.get("id")
    if type(call) is not str or not _OPAQUE.match(call):
        return False
    if mid is not None and (type(mid) is not str or not _ID.match(mid)):
        return False
    if "id" in raw and mid is None:
        return False
    if kind == "candidate":
        return "candidate" in raw and _candidate_conforms(raw["candidate"])
    sdp = raw.get("sdp")
    if type(sdp) is not str or not 1 <= len(sdp) <= 60000:
        return False
    return "restart" not in raw or type(raw["restart"]) is bool


def _candidate_conforms(candidate: Any) -> bool:
    if candidate is None:
        return True
    if type(candidate) is not dict or not candidate.keys() <= _CANDIDATE_KEYS:
        return False
    text = candidate.get("candidate")
    if type(text) is not str or len(text) > 1024:
        return False
    mid = candidate.get("sdpMid")
    if mid is not None and (type(mid) is not str or len(mid) > 64):
        return False
    index = candidate.get("sdpMLineIndex")
    if index is not None and (type(index) is not int or not 0 <= index <= 255):
        return False
    fragment = candidate.get("usernameFragment")
    return fragment is None or (type(fragment) is str and len(fragment) <= 256)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _describe(path: str, message: str) -> str:
    return f"{path}: {message[:120]}"


def _typed(message_type: str, raw: dict[str, Any]) -> Inbound:
    mid: str | None = raw.get("id")
    match message_type:
        case "hello":
            hello = Hello(
                version=raw["v"],
                token=raw.get("token"),
                resume=raw.get("resume"),
                client=raw.get("client"),
                id=mid,
            )
            if (hello.token is None) == (hello.resume is None):
                raise ProtocolError(ErrorCode.INVALID_MESSAGE, "hello: give a token or resume")
            return hello
        case "ping":
            return Ping(id=mid)
        case "ice-refresh":
            return IceRefresh(id=mid)
        case "consult-request":
            return ConsultRequest(triage=_triage(raw["triage"]), id=mid)
        case "consult-cancel":
            return ConsultCancel(id=mid)
        case "consult-stay":
            return ConsultStay(id=mid)
        case "presence":
            return SetPresence(status=Presence(raw["status"]), id=mid)
        case "queue-get":
            return QueueGet(id=mid)
        case "accept":
            return Accept(ticket=raw["ticket"], id=mid)
        case "offer":
            return Relay(
                "offer", raw["call"], sdp=raw["sdp"], restart=raw.get("restart", False), id=mid
            )
        case "answer":
            return Relay("answer", raw["call"], sdp=raw["sdp"], id=mid)
        case "candidate":
            c = raw["candidate"]
            candidate = (
                None
                if c is None
                else Candidate(
                    candidate=c["candidate"],
                    sdp_mid=c.get("sdpMid"),
                    sdp_mline_index=c.get("sdpMLineIndex"),
                    username_fragment=c.get("usernameFragment"),
                )
            )
            return Relay("candidate", raw["call"], candidate=candidate, id=mid)
        case "hangup":
            return HangUp(call=raw["call"], reason=raw.get("reason", "hangup"), id=mid)
        case "bye":
            return Bye(id=mid)
        case "stats":
            return StatsGet(id=mid)
    raise ProtocolError(ErrorCode.UNKNOWN_TYPE, message_type)  # pragma: no cover


def _triage(raw: dict[str, Any]) -> Triage:
    return Triage(
        urgency=Urgency(raw["urgency"]),
        flags=tuple(raw.get("flags", ())),
        language=raw.get("language", "vi"),
        hospital=raw.get("hospital"),
        summary=raw.get("summary", ""),
        age=raw.get("age"),
        sex=raw.get("sex"),
    )


# -- outbound ------------------------------------------------------------------------------


def encode(message: Mapping[str, Any]) -> str:
    """Serialise an outbound message (compact, UTF-8 kept as is)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def validate_outbound(message: Mapping[str, Any]) -> None:
    """Check a server message against its schema (tests; the server trusts its own builders)."""
    errors = list(_validator("outbound", str(message["type"])).iter_errors(dict(message)))
    if errors:
        raise ProtocolError(ErrorCode.INTERNAL, "; ".join(e.message for e in errors[:3]))


def triage_json(triage: Triage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "urgency": triage.urgency.value,
        "flags": list(triage.flags),
        "language": triage.language,
        "hospital": triage.hospital,
        "summary": triage.summary,
    }
    if triage.age is not None:
        out["age"] = triage.age
    if triage.sex is not None:
        out["sex"] = triage.sex
    return out


def error_message(
    code: ErrorCode, *, detail: str | None = None, ref: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "error",
        "code": code.value,
        "message": code.sentence,
        "fatal": code.fatal,
    }
    if detail:
        out["detail"] = detail[:300]
    if ref is not None:
        out["ref"] = ref
    return out


def relay_message(relay: Relay, *, sender: str) -> dict[str, Any]:
    """What the other party receives for a relayed offer, answer or candidate."""
    out: dict[str, Any] = {"type": relay.kind, "call": relay.call, "from": sender}
    if relay.kind == "candidate":
        c = relay.candidate
        out["candidate"] = (
            None
            if c is None
            else {
                "candidate": c.candidate,
                "sdpMid": c.sdp_mid,
                "sdpMLineIndex": c.sdp_mline_index,
                "usernameFragment": c.username_fragment,
            }
        )
    else:
        out["sdp"] = relay.sdp
        if relay.kind == "offer" and relay.restart:
            out["restart"] = True
    return out
