"""The hand-written check of relayed messages never accepts what the JSON Schemas refuse."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from signaling.messages import _relay_conforms, _validator

TEXT = st.one_of(
    st.text(max_size=8),
    st.text(alphabet="abcXYZ019_-.:\n ", min_size=0, max_size=70),
    st.just("c" * 64),
    st.just("c" * 65),
)
ANY = st.one_of(st.none(), st.booleans(), st.integers(-2, 300), st.floats(-1, 300), TEXT)
CANDIDATE = st.one_of(
    st.none(),
    ANY,
    st.dictionaries(
        st.sampled_from(["candidate", "sdpMid", "sdpMLineIndex", "usernameFragment", "x"]),
        ANY,
        max_size=5,
    ),
)


@st.composite
def relay_messages(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["offer", "answer", "candidate"]))
    keys = draw(
        st.sets(st.sampled_from(["id", "call", "sdp", "restart", "candidate", "extra"]), max_size=6)
    )
    message: dict[str, Any] = {"type": kind}
    for key in keys:
        message[key] = draw(CANDIDATE if key == "candidate" else ANY)
    return message


@settings(max_examples=1500, deadline=None)
@given(relay_messages())
def test_the_fast_path_accepts_only_what_the_schema_accepts(message: dict[str, Any]) -> None:
    if _relay_conforms(message):
        errors = list(_validator("inbound", message["type"]).iter_errors(message))
        assert errors == [], message


def test_ordinary_relay_messages_take_the_fast_path() -> None:
    candidate = {
        "candidate": "candidate:1 1 udp 2130706431 192.168.1.5 50000 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": "abcd",
    }
    assert _relay_conforms({"type": "candidate", "call": "c-1", "candidate": candidate})
    assert _relay_conforms({"type": "candidate", "call": "c-1", "candidate": None, "id": "x.1"})
    assert _relay_conforms({"type": "offer", "call": "c-1", "sdp": "v=0\r\n", "restart": True})
    assert _relay_conforms({"type": "answer", "call": "c-1", "sdp": "v=0\r\n"})
    assert not _relay_conforms({"type": "answer", "call": "c-1\n", "sdp": "v=0"})
    assert not _relay_conforms({"type": "offer", "call": "c-1", "sdp": ""})
