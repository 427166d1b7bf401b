"""Protocol messages: inbound JSON checked against its schema and turned into typed values.

Every message is one JSON object with a ``type``; the schema for each type lives in
``signaling/schemas/inbound/<type>.json`` (client to server) or ``outbound/`` (server to
client), and ``docs/signaling.md`` is written from the same files. The decoder is the only
place that sees raw JSON; the rest of the service gets the frozen dataclasses below.
Outbound messages are built by the ``*_message`` functions and serialised once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

from jsonschema import Draft202012Validator

from signaling.codes import ErrorCode
from signaling.errors import ProtocolError
from signaling.model import Presence, Triage, Urgency

PROTOCOL_VERSION = 1
_MAX_ERRORS_SHOWN = 3


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
def _validator(direction: str, message_type: str) -> Draft202012Validator:
    return Draft202012Validator(_load_schema(direction, message_type))


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
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(ErrorCode.BAD_JSON, str(exc)[:200]) from None
    if not isinstance(raw, dict):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "a message is a JSON object")
    message_type = raw.get("type")
    if not isinstance(message_type, str) or message_type not in INBOUND_TYPES:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"type {str(message_type)[:40]!r}")
    errors = sorted(_validator("inbound", message_type).iter_errors(raw), key=lambda e: e.path)
    if errors:
        shown = "; ".join(_describe(e.json_path, e.message) for e in errors[:_MAX_ERRORS_SHOWN])
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"{message_type}: {shown}")
    return _typed(message_type, raw)


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
