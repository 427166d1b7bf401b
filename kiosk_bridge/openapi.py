"""The OpenAPI 3.0 document of the service-flow API, served at ``/kiosk/v1/openapi.json``.

Written by hand next to the handlers it describes (``kiosk_bridge.api``) and kept true by a
schemathesis test that runs every operation against the real application.  Built by a
function (no module-level mutable state): each call returns a fresh document.
"""

from __future__ import annotations

from typing import Any, Final

from kiosk_bridge.consent import Locale
from kiosk_bridge.errors import RefusalReason, RequestReason
from kiosk_bridge.sessions import Service, VisitState

API_VERSION: Final = "1.0.0"
BASE64_PATTERN: Final = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _refusal(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


_AUTH_RESPONSES: Final = (
    ("401", "No usable kiosk credentials (`credentials_missing`)."),
    (
        "403",
        "Kiosk credentials refused: `credentials_invalid`, `kiosk_key_unknown`, "
        "`signature_invalid`, `timestamp_out_of_window`, `signature_replayed`.",
    ),
    ("408", "The request body did not arrive within 10 seconds."),
    ("413", "The request body exceeds 65536 bytes (`request_too_large`)."),
)


def _common_refusals() -> dict[str, Any]:
    return {status: _refusal(text) for status, text in _AUTH_RESPONSES}


def _session_id_parameter() -> dict[str, Any]:
    return {
        "name": "session_id",
        "in": "path",
        "required": True,
        "description": "The id `POST /sessions` returned.",
        "schema": {"type": "string", "minLength": 1},
    }


def _base64(description: str) -> dict[str, Any]:
    return {
        "type": "string",
        "format": "byte",
        "pattern": BASE64_PATTERN,
        "maxLength": 65536,
        "description": description,
    }


def _schemas() -> dict[str, Any]:
    return {
        "Error": {
            "type": "object",
            "required": ["error", "message"],
            "properties": {
                "error": {
                    "type": "string",
                    "description": "A stable reason code.",
                    "enum": sorted(
                        {reason.value for reason in RequestReason}
                        | {reason.value for reason in RefusalReason}
                    ),
                },
                "message": {"type": "string", "description": "One English sentence."},
                "details": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "additionalProperties": False,
        },
        "Assertion": {
            "type": "object",
            "required": ["assertion"],
            "properties": {
                "assertion": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 8192,
                    "description": "A kiosk-signed ES256 JWT (docs/kiosk_bridge.md).",
                }
            },
            "additionalProperties": False,
        },
        "Chip": {
            "type": "object",
            "required": ["chip"],
            "properties": {
                "chip": {
                    "type": "object",
                    "required": ["dg1", "dg13"],
                    "properties": {
                        "dg1": _base64("DG1 (the MRZ) as read from the chip."),
                        "dg13": _base64("DG13 (Vietnamese personal data)."),
                        "sod": _base64("The document security object."),
                        "dg14": _base64("DG14, if read."),
                        "dg15": _base64("DG15, if read."),
                    },
                    "additionalProperties": False,
                }
            },
            "additionalProperties": False,
        },
        "SessionRequest": {
            "type": "object",
            "required": ["identity", "service", "callback_url", "locale"],
            "properties": {
                "identity": {"oneOf": [_ref("Assertion"), _ref("Chip")]},
                "service": {"type": "string", "enum": [item.value for item in Service]},
                "callback_url": {
                    "type": "string",
                    "format": "uri",
                    "minLength": 1,
                    "maxLength": 2048,
                    "description": "Absolute http(s) URL the cabin posts events to.",
                },
                "locale": {"type": "string", "enum": [item.value for item in Locale]},
            },
            "additionalProperties": False,
        },
        "SessionCreated": {
            "type": "object",
            "required": ["session_id", "launch_url", "expires_at", "assurance"],
            "properties": {
                "session_id": {"type": "string"},
                "launch_url": {"type": "string", "format": "uri"},
                "expires_at": {"type": "string", "format": "date-time"},
                "assurance": {
                    "type": "string",
                    "enum": ["asserted", "mrz_checked", "passive_auth", "active_auth"],
                },
            },
            "additionalProperties": False,
        },
        "SessionStatus": {
            "type": "object",
            "required": ["state", "progress", "service", "expires_at"],
            "properties": {
                "state": {"type": "string", "enum": [item.value for item in VisitState]},
                "progress": {
                    "type": "object",
                    "required": ["done", "total"],
                    "properties": {
                        "done": {"type": "integer", "minimum": 0},
                        "total": {"type": "integer", "minimum": 0},
                    },
                    "additionalProperties": False,
                },
                "service": {"type": "string", "enum": [item.value for item in Service]},
                "expires_at": {"type": "string", "format": "date-time"},
            },
            "additionalProperties": False,
        },
    }


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the document."""
    security: list[dict[str, list[str]]] = [
        {"bearer": []},
        {"kioskKeyId": [], "kioskTimestamp": [], "kioskSignature": []},
    ]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Telehealth cabin — kiosk service-flow API",
            "version": API_VERSION,
            "description": "How the digital citizen station's kiosk hands a resident to the "
            "health cabin. Events come back to the session's callback_url (docs/kiosk_bridge.md).",
        },
        "servers": [{"url": "/kiosk/v1"}],
        "paths": {
            "/sessions": {
                "post": {
                    "operationId": "createSession",
                    "summary": "Open a session for a resident identified by the kiosk.",
                    "security": security,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("SessionRequest")}},
                    },
                    "responses": {
                        "201": {
                            "description": "The session is open.",
                            "content": {"application/json": {"schema": _ref("SessionCreated")}},
                        },
                        "400": _refusal(
                            "Malformed body (`malformed_request`, `callback_refused`)."
                        ),
                        **_common_refusals(),
                        "409": _refusal("This resident has a live session (`session_active`)."),
                        "415": _refusal("Not application/json (`unsupported_media_type`)."),
                        "422": _refusal("Identity refused; `error` is the intake's reason."),
                    },
                }
            },
            "/sessions/{session_id}": {
                "parameters": [_session_id_parameter()],
                "get": {
                    "operationId": "getSession",
                    "summary": "Where the session's visit stands.",
                    "security": security,
                    "responses": {
                        "200": {
                            "description": "The session's state and progress.",
                            "content": {"application/json": {"schema": _ref("SessionStatus")}},
                        },
                        **_common_refusals(),
                        "404": _refusal("No live session has this id (`session_not_found`)."),
                    },
                },
                "delete": {
                    "operationId": "deleteSession",
                    "summary": "Card removed or kiosk logged out: wipe the visit within 1 s.",
                    "description": "A second DELETE of the same id answers 404: the session is "
                    "forgotten once wiped.",
                    "security": security,
                    "responses": {
                        "204": {"description": "Wiped; a session.wiped event follows."},
                        **_common_refusals(),
                        "404": _refusal("No live session has this id (`session_not_found`)."),
                        "503": _refusal(
                            "The cabin's visit did not confirm the wipe within 1 s "
                            "(`wipe_overdue`); the session stays live, retry the DELETE."
                        ),
                    },
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document.",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "kioskKeyId": {"type": "apiKey", "in": "header", "name": "X-Kiosk-Key-Id"},
                "kioskTimestamp": {"type": "apiKey", "in": "header", "name": "X-Kiosk-Timestamp"},
                "kioskSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Kiosk-Signature",
                    "description": "sha256=<hex HMAC-SHA256 over METHOD\\npath\\ntimestamp\\n"
                    "hex SHA-256(body)>",
                },
            },
        },
    }
