"""JSON logs: one object per line, allow-listed fields, no token and no PHI."""

from __future__ import annotations

import json
import logging

import pytest

from signaling.logs import REDACTED, JsonFormatter, configure_logging, redact

JWT = (
    "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiJkci0xIiwicm9sZSI6ImRvY3RvciJ9"
    ".c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
)


def _line(message: str, *args: object, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("signaling.server", logging.INFO, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed: dict[str, object] = json.loads(line)
    return parsed


def test_line_has_time_level_logger_message_and_allowed_fields() -> None:
    line = _line("call %s accepted", "c-1", call="c-1", role="doctor", node="a", secret_ish=1)
    assert line["level"] == "INFO"
    assert line["logger"] == "signaling.server"
    assert line["message"] == "call c-1 accepted"
    assert (line["call"], line["role"], line["node"]) == ("c-1", "doctor", "a")
    assert "secret_ish" not in line
    assert str(line["time"]).endswith("Z")


def test_jwt_in_the_message_or_a_field_is_redacted() -> None:
    line = _line("bad token %s", JWT, reason=f"refused {JWT} at once")
    assert JWT not in json.dumps(line)
    assert line["message"] == f"bad token {REDACTED}"
    assert line["reason"] == f"refused {REDACTED} at once"


@pytest.mark.parametrize("key", ["token", "resume", "resume_token", "sdp", "candidate", "triage"])
def test_secret_keys_are_redacted(key: str) -> None:
    line = _line("x", **{key: "v=0 o=- 1 2 IN IP4 10.0.0.1"})
    assert line[key] == REDACTED


def test_nested_secret_keys_are_redacted() -> None:
    value = {"message": {"type": "offer", "sdp": "v=0", "triage": {"flags": ["chest pain"]}}}
    assert redact(value) == {"message": {"type": "offer", "sdp": REDACTED, "triage": REDACTED}}


def test_ordinary_dotted_names_are_kept() -> None:
    assert redact("signaling.example.com eu-west.node-1.local") == (
        "signaling.example.com eu-west.node-1.local"
    )


def test_exception_text_is_included_and_redacted() -> None:
    error = ValueError(f"cannot parse {JWT}")
    record = logging.LogRecord(
        "t", logging.ERROR, __file__, 1, "failed", (), (ValueError, error, None)
    )
    line = json.loads(JsonFormatter().format(record))
    assert "ValueError" in line["exception"]
    assert JWT not in line["exception"]


@pytest.mark.parametrize("as_json", [True, False])
def test_configure_logging_installs_one_redacting_handler(
    as_json: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    try:
        configure_logging("INFO", json=as_json)
        configure_logging(logging.INFO, json=as_json)
        assert len(root.handlers) == len(before) + 1
        logging.getLogger("signaling.test").info("token %s", JWT)
        err = capsys.readouterr().err
        assert REDACTED in err
        assert JWT not in err
        if as_json:
            assert json.loads(err.strip().splitlines()[-1])["logger"] == "signaling.test"
    finally:
        for handler in root.handlers:
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)
