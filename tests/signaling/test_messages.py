"""The message decoder: every inbound type, every way a message can be wrong, and the schemas.

Valid examples are generated from the shipped JSON Schemas themselves (:func:`from_schema`
below understands the subset of JSON Schema they use), so a schema change is exercised
without editing a fixture. Every refusal is a :class:`ProtocolError` with a stable code.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from signaling import messages
from signaling.codes import ErrorCode
from signaling.errors import ProtocolError
from signaling.messages import (
    INBOUND_TYPES,
    Accept,
    Bye,
    ConsultCancel,
    ConsultRequest,
    ConsultStay,
    HangUp,
    Hello,
    IceRefresh,
    Inbound,
    Ping,
    QueueGet,
    Relay,
    SetPresence,
    StatsGet,
    decode,
    triage_json,
)

LIMIT = 64 * 1024
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

EXPECTED_CLASS: dict[str, type] = {
    "hello": Hello,
    "ping": Ping,
    "ice-refresh": IceRefresh,
    "consult-request": ConsultRequest,
    "consult-cancel": ConsultCancel,
    "consult-stay": ConsultStay,
    "presence": SetPresence,
    "queue-get": QueueGet,
    "accept": Accept,
    "offer": Relay,
    "answer": Relay,
    "candidate": Relay,
    "hangup": HangUp,
    "bye": Bye,
    "stats": StatsGet,
}

MINIMAL: dict[str, dict[str, Any]] = {
    "hello": {"type": "hello", "v": 1, "token": "eyJ.x.y"},
    "ping": {"type": "ping"},
    "ice-refresh": {"type": "ice-refresh"},
    "consult-request": {"type": "consult-request", "triage": {"urgency": "urgent"}},
    "consult-cancel": {"type": "consult-cancel"},
    "consult-stay": {"type": "consult-stay"},
    "presence": {"type": "presence", "status": "available"},
    "queue-get": {"type": "queue-get"},
    "accept": {"type": "accept", "ticket": "t-1"},
    "offer": {"type": "offer", "call": "c-1", "sdp": "v=0\r\n"},
    "answer": {"type": "answer", "call": "c-1", "sdp": "v=0\r\n"},
    "candidate": {"type": "candidate", "call": "c-1", "candidate": None},
    "hangup": {"type": "hangup", "call": "c-1"},
    "bye": {"type": "bye"},
    "stats": {"type": "stats"},
}
"""The smallest valid message of each type (required properties only)."""


# -- a generator of instances of the shipped schemas ---------------------------------------


def from_schema(
    schema: Mapping[str, Any],
    *,
    alphabet: st.SearchStrategy[str] | None = None,
    overrides: Mapping[str, st.SearchStrategy[Any]] | None = None,
    max_text: int = 40,
) -> st.SearchStrategy[Any]:
    """Values valid against ``schema`` (the JSON Schema keywords our message schemas use).

    Free text is drawn from ``alphabet`` (default: any character a WebSocket text frame can
    carry, so no lone surrogates), at most ``max_text`` characters past its ``minLength``.

    ``overrides`` replaces the strategy of any object property with that name, at any depth
    (the fuzz test uses it to aim ``call`` and ``ticket`` at real and foreign resources).
    """
    over = dict(overrides or {})
    chars = alphabet if alphabet is not None else st.characters(codec="utf-8")

    def build(node: Mapping[str, Any]) -> st.SearchStrategy[Any]:
        if "const" in node:
            return st.just(node["const"])
        if "enum" in node:
            return st.sampled_from(list(node["enum"]))
        if "oneOf" in node:
            return st.one_of([build(option) for option in node["oneOf"]])
        kind = node.get("type")
        if isinstance(kind, list):
            return st.one_of([build({**node, "type": k}) for k in kind])
        if kind == "null":
            return st.none()
        if kind == "boolean":
            return st.booleans()
        if kind == "integer":
            return st.integers(node.get("minimum"), node.get("maximum"))
        if kind == "string":
            return string(node)
        if kind == "array":
            items = build(node.get("items", {}))
            unique = bool(node.get("uniqueItems"))
            return st.lists(items, max_size=min(node.get("maxItems", 8), 8), unique=unique)
        if kind == "object":
            return obj(node)
        raise AssertionError(f"the test's schema generator does not know {dict(node)}")

    def string(node: Mapping[str, Any]) -> st.SearchStrategy[str]:
        low = node.get("minLength", 0)
        high = min(node.get("maxLength", low + max_text), low + max_text)
        if "pattern" in node:
            return st.from_regex(node["pattern"], fullmatch=True).filter(
                lambda s: low <= len(s) <= node.get("maxLength", len(s))
            )
        return st.text(chars, min_size=low, max_size=max(low, high))

    def obj(node: Mapping[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        properties: Mapping[str, Any] = node.get("properties", {})
        required = set(node.get("required", ()))
        fields = {
            name: over[name] if name in over else build(sub) for name, sub in properties.items()
        }
        return st.fixed_dictionaries(
            {name: fields[name] for name in properties if name in required},
            optional={name: fields[name] for name in properties if name not in required},
        )

    return build(schema)


def inbound(message_type: str, **options: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Valid messages of one inbound type, straight from its schema."""
    shape = messages.schema("inbound", message_type)
    if message_type != "hello":
        return from_schema(shape, **options)
    # the schema cannot say "exactly one of token and resume": one shape for each
    shapes = []
    for keep, drop in (("token", "resume"), ("resume", "token")):
        properties = {k: v for k, v in shape["properties"].items() if k != drop}
        required = [*shape["required"], keep]
        shapes.append(from_schema({**shape, "properties": properties, "required": required}))
    return st.one_of(shapes)


def refused_with(text: str | bytes, *, max_bytes: int = LIMIT) -> ErrorCode:
    """The code the decoder refuses ``text`` with (fails the test if it is accepted)."""
    with pytest.raises(ProtocolError) as caught:
        decode(text, max_bytes=max_bytes)
    return caught.value.code


def dump(message: Mapping[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


# -- every type decodes --------------------------------------------------------------------


def check_typed(message: Mapping[str, Any], decoded: Inbound) -> None:
    """The dataclass carries exactly what the message said (or the documented default)."""
    kind = message["type"]
    assert type(decoded) is EXPECTED_CLASS[kind]
    assert decoded.id == message.get("id")
    match decoded:
        case Hello():
            assert decoded.version == 1
            assert (decoded.token, decoded.resume) == (message.get("token"), message.get("resume"))
            assert decoded.client == message.get("client")
        case ConsultRequest():
            sent = message["triage"]
            expected = {
                "flags": [],
                "language": "vi",
                "hospital": None,
                "summary": "",
                **sent,
            }
            assert triage_json(decoded.triage) == expected
        case SetPresence():
            assert decoded.status.value == message["status"]
        case Accept():
            assert decoded.ticket == message["ticket"]
        case Relay():
            assert decoded.kind == kind
            assert decoded.call == message["call"]
            assert decoded.sdp == message.get("sdp")
            assert decoded.restart == message.get("restart", False)
            if kind == "candidate":
                sent = message["candidate"]
                if sent is None:
                    assert decoded.candidate is None
                else:
                    assert decoded.candidate is not None
                    assert decoded.candidate.candidate == sent["candidate"]
                    assert decoded.candidate.sdp_mid == sent.get("sdpMid")
                    assert decoded.candidate.sdp_mline_index == sent.get("sdpMLineIndex")
                    assert decoded.candidate.username_fragment == sent.get("usernameFragment")
        case HangUp():
            assert decoded.call == message["call"]
            assert decoded.reason == message.get("reason", "hangup")
        case _:
            pass


@pytest.mark.parametrize("message_type", INBOUND_TYPES)
def test_the_smallest_message_of_each_type_decodes(message_type: str) -> None:
    message = MINIMAL[message_type]
    check_typed(message, decode(dump(message), max_bytes=LIMIT))


@pytest.mark.parametrize("message_type", INBOUND_TYPES)
@FAST
@given(data=st.data())
def test_every_schema_valid_message_decodes_to_its_dataclass(
    message_type: str, data: st.DataObject
) -> None:
    message = data.draw(inbound(message_type))
    check_typed(message, decode(dump(message), max_bytes=LIMIT))


def test_bytes_are_decoded_like_text() -> None:
    text = dump({"type": "ping", "id": "p-1"})
    assert decode(text.encode("utf-8"), max_bytes=LIMIT) == Ping(id="p-1")


def test_every_minimal_example_is_valid_against_its_schema() -> None:
    for message_type, message in MINIMAL.items():
        Draft202012Validator(messages.schema("inbound", message_type)).validate(message)


# -- every way to be wrong -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "hello",
        "{",
        "{'type': 'ping'}",
        '{"type": "ping",}',
        '{"type": "ping"} {"type": "ping"}',
        "\x00",
        '{"type":"ping"',
        b"\xff\xfe\x00",
        b'{"type":"ping","id":"\xc3"}',
    ],
)
def test_text_that_is_not_json_is_bad_json(text: str | bytes) -> None:
    assert refused_with(text) is ErrorCode.BAD_JSON


@pytest.mark.parametrize("message_type", INBOUND_TYPES)
def test_every_truncation_of_a_valid_message_is_refused(message_type: str) -> None:
    text = dump({**MINIMAL[message_type], "id": "req-1"})
    for end in range(len(text)):
        assert refused_with(text[:end]) is ErrorCode.BAD_JSON, text[:end]


@pytest.mark.parametrize("text", ["[]", '[{"type":"ping"}]', "1", '"ping"', "null", "true"])
def test_json_that_is_not_an_object_is_invalid(text: str) -> None:
    assert refused_with(text) is ErrorCode.INVALID_MESSAGE


@pytest.mark.parametrize("text", ["NaN", '{"type": "ping", "id": Infinity}', "-Infinity"])
def test_non_standard_json_constants_are_bad_json(text: str) -> None:
    assert refused_with(text) is ErrorCode.BAD_JSON


def test_a_message_one_byte_over_the_limit_is_too_large() -> None:
    text = dump({"type": "offer", "call": "c-1", "sdp": "x" * 100})
    assert isinstance(decode(text, max_bytes=len(text)), Relay)
    assert refused_with(text, max_bytes=len(text) - 1) is ErrorCode.TOO_LARGE


def test_the_limit_counts_utf8_bytes_not_characters() -> None:
    summary = "Khó thở, đau ngực"  # Vietnamese: several characters take 2-3 bytes
    text = json.dumps(
        {"type": "consult-request", "triage": {"urgency": "urgent", "summary": summary}},
        ensure_ascii=False,
    )
    size = len(text.encode("utf-8"))
    assert size > len(text)
    assert isinstance(decode(text, max_bytes=size), ConsultRequest)
    assert refused_with(text, max_bytes=size - 1) is ErrorCode.TOO_LARGE
    assert refused_with(text, max_bytes=len(text)) is ErrorCode.TOO_LARGE


def test_the_default_limit_refuses_64_kib_plus_one() -> None:
    head, tail = '{"type":"ping","id":"', '"}'
    text = head + "a" * (LIMIT + 1 - len(head) - len(tail)) + tail
    assert len(text.encode("utf-8")) == LIMIT + 1
    assert refused_with(text) is ErrorCode.TOO_LARGE
    assert refused_with(text[:-1] + "é") is ErrorCode.TOO_LARGE  # 1 character, 2 bytes


def test_an_oversize_message_is_refused_before_it_is_parsed() -> None:
    assert refused_with("[" * (LIMIT + 1)) is ErrorCode.TOO_LARGE


@pytest.mark.parametrize(
    "text",
    [
        "[" * 10_000,
        "{" * 10_000,
        '{"type":"ping","id":' + "[" * 10_000,
        "[" * 5_000 + "]" * 5_000,
        '{"type":"ping","x":' + '{"a":' * 3_000 + "1" + "}" * 3_000 + "}",
    ],
    ids=["open-arrays", "open-objects", "inside-a-message", "closed-arrays", "closed-objects"],
)
def test_deep_nesting_is_refused_never_a_recursion_error(text: str) -> None:
    assert refused_with(text) in {ErrorCode.BAD_JSON, ErrorCode.INVALID_MESSAGE}


@pytest.mark.parametrize("depth", [200, 900, 960, 980, 990, 995, 1_000])
@pytest.mark.parametrize(
    "template",
    [
        '{"type":%s}',
        '{"type":"ping","id":%s}',
        '{"type":"hello","v":1,"token":%s}',
        '{"type":"consult-request","triage":%s}',
        '{"type":"candidate","call":"c","candidate":%s}',
    ],
)
def test_nesting_near_the_recursion_limit_is_refused_cleanly(depth: int, template: str) -> None:
    """Just under the parser's limit the nested value reaches the schema checker and repr."""
    nested = "[" * depth + "]" * depth
    refused = refused_with(template % nested)
    assert refused in {ErrorCode.BAD_JSON, ErrorCode.INVALID_MESSAGE, ErrorCode.UNKNOWN_TYPE}


@pytest.mark.parametrize(
    "message",
    [
        {"type": "ring"},
        {"type": "Ping"},
        {"type": "welcome"},
        {"type": "error"},
        {"type": ""},
        {"type": 1},
        {"type": None},
        {"type": ["ping"]},
        {"kind": "ping"},
        {},
    ],
)
def test_an_unknown_or_missing_type_is_unknown_type(message: dict[str, Any]) -> None:
    assert refused_with(dump(message)) is ErrorCode.UNKNOWN_TYPE


@pytest.mark.parametrize("message_type", INBOUND_TYPES)
def test_an_extra_property_is_invalid(message_type: str) -> None:
    message = {**MINIMAL[message_type], "extra": True}
    assert refused_with(dump(message)) is ErrorCode.INVALID_MESSAGE


@pytest.mark.parametrize("message_type", [t for t in INBOUND_TYPES if len(MINIMAL[t]) > 1])
def test_a_missing_required_property_is_invalid(message_type: str) -> None:
    for name in MINIMAL[message_type]:
        if name == "type":
            continue
        message = {k: v for k, v in MINIMAL[message_type].items() if k != name}
        assert refused_with(dump(message)) is ErrorCode.INVALID_MESSAGE, name


WRONG_TYPES: list[tuple[str, dict[str, Any]]] = [
    ("hello", {"v": "1"}),
    ("hello", {"v": 2.0}),
    ("hello", {"v": True}),
    ("hello", {"token": 42}),
    ("hello", {"token": ""}),
    ("hello", {"client": ["x"]}),
    ("ping", {"id": 7}),
    ("ping", {"id": ""}),
    ("ping", {"id": "has space"}),
    ("ping", {"id": "x" * 65}),
    ("consult-request", {"triage": "urgent"}),
    ("consult-request", {"triage": {"urgency": "soon"}}),
    ("consult-request", {"triage": {"urgency": "urgent", "flags": "sos"}}),
    ("consult-request", {"triage": {"urgency": "urgent", "flags": ["sos", "sos"]}}),
    ("consult-request", {"triage": {"urgency": "urgent", "flags": ["SOS"]}}),
    ("consult-request", {"triage": {"urgency": "urgent", "age": -1}}),
    ("consult-request", {"triage": {"urgency": "urgent", "age": 131}}),
    ("consult-request", {"triage": {"urgency": "urgent", "age": "40"}}),
    ("consult-request", {"triage": {"urgency": "urgent", "sex": "m"}}),
    ("consult-request", {"triage": {"urgency": "urgent", "summary": "x" * 501}}),
    ("consult-request", {"triage": {"urgency": "urgent", "hospital": ""}}),
    ("consult-request", {"triage": {"urgency": "urgent", "hospital": "bv a"}}),
    ("consult-request", {"triage": {"urgency": "urgent", "language": "Vietnamese"}}),
    ("consult-request", {"triage": {"urgency": "urgent", "name": "Nguyen Van A"}}),
    ("presence", {"status": "online"}),
    ("presence", {"status": None}),
    ("accept", {"ticket": 12}),
    ("accept", {"ticket": "../etc"}),
    ("accept", {"ticket": ""}),
    ("offer", {"sdp": ""}),
    ("offer", {"sdp": None}),
    ("offer", {"call": 1}),
    ("offer", {"restart": "yes"}),
    ("answer", {"sdp": "x" * 60_001}),
    ("candidate", {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host"}),
    ("candidate", {"candidate": {}}),
    ("candidate", {"candidate": {"candidate": "c", "sdpMLineIndex": 256}}),
    ("candidate", {"candidate": {"candidate": "c", "sdpMLineIndex": -1}}),
    ("candidate", {"candidate": {"candidate": "c", "extra": 1}}),
    ("hangup", {"reason": "Done"}),
    ("hangup", {"reason": ""}),
    ("hangup", {"call": None}),
]


@pytest.mark.parametrize(
    ("message_type", "change"),
    WRONG_TYPES,
    ids=[f"{t}-{'-'.join(c)}-{n}" for n, (t, c) in enumerate(WRONG_TYPES)],
)
def test_a_wrong_value_is_invalid(message_type: str, change: dict[str, Any]) -> None:
    message = {**MINIMAL[message_type], **change}
    assert refused_with(dump(message)) is ErrorCode.INVALID_MESSAGE


def test_hello_needs_exactly_one_of_token_and_resume() -> None:
    both = {"type": "hello", "v": 1, "token": "eyJ.x.y", "resume": "r" * 32}
    neither = {"type": "hello", "v": 1, "client": "cabin"}
    assert refused_with(dump(both)) is ErrorCode.INVALID_MESSAGE
    assert refused_with(dump(neither)) is ErrorCode.INVALID_MESSAGE
    resumed = decode(dump({"type": "hello", "v": 1, "resume": "r" * 32}), max_bytes=LIMIT)
    assert resumed == Hello(version=1, token=None, resume="r" * 32, client=None)


@pytest.mark.parametrize("version", [0, 2, 99])
def test_hello_of_another_protocol_version_is_unsupported_version(version: int) -> None:
    """A newer client is told (fatally) to speak version 1, not that its hello is invalid."""
    refused = refused_with(dump({"type": "hello", "v": version, "token": "t"}))
    assert refused is ErrorCode.UNSUPPORTED_VERSION
    assert refused.fatal


def test_the_error_detail_names_the_offending_property() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(dump({"type": "presence", "status": "online"}), max_bytes=LIMIT)
    assert caught.value.detail is not None
    assert caught.value.detail.startswith("presence: $.status:")


@pytest.mark.parametrize(
    "message",
    [
        {"type": "offer", "call": "c-1", "sdp": "\ud800"},
        {"type": "consult-request", "triage": {"urgency": "routine", "summary": "\udc00"}},
        {"type": "candidate", "call": "c-1", "candidate": {"candidate": "a\udfffb"}},
    ],
    ids=["offer-sdp", "triage-summary", "candidate"],
)
def test_a_lone_surrogate_escape_is_refused(message: dict[str, Any]) -> None:
    """Relayed or shown in a queue, it would kill the receiving connection's writer."""
    text = dump(message)  # json.dumps escapes it as \ud800: a valid JSON text
    assert text.isascii()
    assert refused_with(text) is ErrorCode.INVALID_MESSAGE
    upper_hex = re.sub(r"\\u(d[89a-f][0-9a-f]{2})", lambda m: "\\u" + m[1].upper(), text)
    assert upper_hex != text
    assert refused_with(upper_hex) is ErrorCode.INVALID_MESSAGE
    assert refused_with(text.encode("ascii")) is ErrorCode.INVALID_MESSAGE


def test_a_surrogate_pair_escape_is_one_character() -> None:
    text = dump({"type": "offer", "call": "c-1", "sdp": "\U0001f600"})
    assert "\\ud83d\\ude00" in text
    decoded = decode(text, max_bytes=LIMIT)
    assert isinstance(decoded, Relay)
    assert decoded.sdp == "\U0001f600"


@pytest.mark.parametrize(
    "message",
    [
        {"type": "accept", "ticket": "t-1\n"},
        {"type": "hangup", "call": "c-1", "reason": "done\n"},
        {"type": "consult-request", "triage": {"urgency": "routine", "hospital": "bv-a\n"}},
    ],
    ids=["ticket", "reason", "hospital"],
)
def test_an_identifier_with_a_trailing_newline_is_invalid(message: dict[str, Any]) -> None:
    assert refused_with(dump(message)) is ErrorCode.INVALID_MESSAGE


# -- nothing but ProtocolError, whatever arrives --------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(st.characters(exclude_categories=()), max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


def decodes_or_refuses(text: str | bytes, *, max_bytes: int = LIMIT) -> None:
    """Any outcome but an exception other than :class:`ProtocolError`."""
    with contextlib.suppress(ProtocolError):
        decode(text, max_bytes=max_bytes)


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(exclude_categories=())) | st.binary())
def test_arbitrary_text_only_ever_raises_protocol_error(text: str | bytes) -> None:
    decodes_or_refuses(text)


@settings(max_examples=150, deadline=None)
@given(JSON_VALUES)
def test_arbitrary_json_only_ever_raises_protocol_error(value: Any) -> None:
    decodes_or_refuses(json.dumps(value))


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(INBOUND_TYPES),
    st.dictionaries(
        st.sampled_from(["id", "v", "token", "resume", "triage", "status", "ticket"])
        | st.sampled_from(["call", "sdp", "restart", "candidate", "reason", "client", "x"]),
        JSON_VALUES,
        max_size=5,
    ),
)
def test_arbitrary_fields_of_every_type_only_ever_raise_protocol_error(
    message_type: str, fields: dict[str, Any]
) -> None:
    decodes_or_refuses(json.dumps({"type": message_type, **fields}))


@FAST
@given(st.sampled_from(INBOUND_TYPES).flatmap(inbound), st.integers(0, 100))
def test_the_size_check_holds_for_any_valid_message(message: dict[str, Any], cut: int) -> None:
    text = json.dumps(message, ensure_ascii=False)
    size = len(text.encode("utf-8"))
    decode(text, max_bytes=size)
    if size > cut:
        with pytest.raises(ProtocolError) as caught:
            decode(text, max_bytes=size - 1 - cut)
        assert caught.value.code is ErrorCode.TOO_LARGE


# -- the schemas themselves ----------------------------------------------------------------


def schema_files(direction: str) -> dict[str, Any]:
    folder = resources.files("signaling").joinpath(f"schemas/{direction}")
    return {
        p.name.removesuffix(".json"): json.loads(p.read_text(encoding="utf-8"))
        for p in folder.iterdir()
        if p.name.endswith(".json")
    }


@pytest.mark.parametrize("direction", ["inbound", "outbound"])
def test_every_schema_is_a_valid_draft_2020_12_schema(direction: str) -> None:
    files = schema_files(direction)
    assert files
    for name, loaded in files.items():
        Draft202012Validator.check_schema(loaded)
        assert loaded["$schema"] == "https://json-schema.org/draft/2020-12/schema", name
        assert loaded["title"] == name
        assert loaded["properties"]["type"] == {"const": name}


def test_the_inbound_schema_files_are_exactly_the_inbound_types() -> None:
    assert set(schema_files("inbound")) == set(INBOUND_TYPES)
    assert len(INBOUND_TYPES) == len(set(INBOUND_TYPES))


def test_outbound_types_lists_every_outbound_schema() -> None:
    assert set(messages.outbound_types()) == set(schema_files("outbound"))


def test_every_inbound_schema_forbids_unknown_properties() -> None:
    for name, loaded in schema_files("inbound").items():
        assert loaded["additionalProperties"] is False, name
