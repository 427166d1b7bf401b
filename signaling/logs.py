"""Structured JSON logs for the signaling service: one object per line, never a token or PHI.

A line looks like::

    {"time": "2025-10-10T09:00:00.123Z", "level": "INFO", "logger": "signaling.server",
     "message": "call accepted", "call": "c-1", "role": "doctor", "event": "accept"}

Only allow-listed ``extra`` fields are written. Redaction, applied to the message, the
exception text and every written value (nested too):

- a value under a secret key (``token``, ``resume``, ``resume_token``, ``sdp``,
  ``candidate``, ``triage``) becomes ``"[redacted]"``; the key stays, showing it was there;
- anything shaped like a JWT (three base64url segments, the first a JSON header) becomes
  ``"[redacted]"`` wherever it appears in a string.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Final, TextIO

__all__ = [
    "DEFAULT_FIELDS",
    "REDACTED",
    "SECRET_KEYS",
    "JsonFormatter",
    "configure_logging",
    "redact",
]

REDACTED: Final = "[redacted]"
DEFAULT_FIELDS: Final = frozenset(
    {
        "call",
        "session",
        "connection",
        "role",
        "node",
        "hospital",
        "code",
        "event",
        "state",
        "reason",
        "peer",
        "count",
        "duration_ms",
    }
)
SECRET_KEYS: Final = frozenset({"token", "resume", "resume_token", "sdp", "candidate", "triage"})

# A JSON object's base64url always starts "e" + one of w x y z ('{' then any ASCII byte).
_JWT: Final = re.compile(r"e[w-z][A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_MAX_DEPTH: Final = 8


def redact(value: object, *, _depth: int = 0) -> object:
    """``value`` made safe to log: JWT-shaped text and secret keys replaced (see module doc)."""
    if isinstance(value, str):
        return _JWT.sub(REDACTED, value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if _depth >= _MAX_DEPTH:
        return REDACTED
    if isinstance(value, Mapping):
        return {
            str(key): REDACTED
            if str(key).lower() in SECRET_KEYS
            else redact(item, _depth=_depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(item, _depth=_depth + 1) for item in value]
    return redact(str(value), _depth=_depth + 1)


class JsonFormatter(logging.Formatter):
    """Formats each record as one redacted JSON object with allow-listed extra fields."""

    def __init__(self, *, fields: Iterable[str] = DEFAULT_FIELDS) -> None:
        """``fields``: the ``extra`` attributes written (secret keys are never written)."""
        super().__init__()
        self._fields = frozenset(fields)

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single JSON line."""
        created = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, object] = {
            "time": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for name, value in record.__dict__.items():
            if name.lower() in SECRET_KEYS:
                entry[name] = REDACTED
            elif name in self._fields:
                entry[name] = redact(value)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class _PlainFormatter(logging.Formatter):
    """Human-readable lines for a terminal, redacted like the JSON ones."""

    def format(self, record: logging.LogRecord) -> str:
        return str(redact(super().format(record)))


class _SignalingHandler(logging.StreamHandler[TextIO]):
    """The handler ``configure_logging`` installs (so a second call can replace it)."""


def configure_logging(level: int | str, *, json: bool) -> None:
    """Send the root logger to stderr at ``level``, as JSON lines or as plain text.

    Replaces the handler installed by an earlier call, so calling it twice is harmless.
    """
    root = logging.getLogger()
    for old in [handler for handler in root.handlers if isinstance(handler, _SignalingHandler)]:
        root.removeHandler(old)
    handler = _SignalingHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json
        else _PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level)
