"""Stable error codes of the signaling protocol, each with the sentence a person reads.

Clients branch on the code; the sentence is for logs and for the doctor's screen. A code is
never renamed once released: add a new one instead.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Every ``error`` message carries one of these."""

    # the message itself
    BAD_JSON = "bad-json"
    TOO_LARGE = "too-large"
    UNKNOWN_TYPE = "unknown-type"
    INVALID_MESSAGE = "invalid-message"
    UNSUPPORTED_VERSION = "unsupported-version"
    RATE_LIMITED = "rate-limited"
    # authentication
    NOT_AUTHENTICATED = "not-authenticated"
    ALREADY_AUTHENTICATED = "already-authenticated"
    AUTH_FAILED = "auth-failed"
    RESUME_FAILED = "resume-failed"
    TOO_MANY_CONNECTIONS = "too-many-connections"
    # authorization and state
    FORBIDDEN = "forbidden"
    ALREADY_QUEUED = "already-queued"
    NOT_QUEUED = "not-queued"
    IN_CALL = "in-call"
    NO_SUCH_TICKET = "no-such-ticket"
    ALREADY_TAKEN = "already-taken"
    DOCTOR_BUSY = "doctor-busy"
    NOT_IN_CALL = "not-in-call"
    PEER_UNAVAILABLE = "peer-unavailable"
    # the connection
    TOO_MANY_ERRORS = "too-many-errors"
    SLOW_CONSUMER = "slow-consumer"
    REPLACED = "replaced"
    AUTH_TIMEOUT = "auth-timeout"
    SHUTTING_DOWN = "shutting-down"
    INTERNAL = "internal"

    @property
    def sentence(self) -> str:
        """One plain English sentence explaining the code."""
        return _SENTENCES[self]

    @property
    def fatal(self) -> bool:
        """Whether the server closes the connection after sending this error."""
        return self in _FATAL


_SENTENCES: dict[ErrorCode, str] = {
    ErrorCode.BAD_JSON: "The message is not valid JSON text.",
    ErrorCode.TOO_LARGE: "The message is larger than the server accepts.",
    ErrorCode.UNKNOWN_TYPE: "The message type is not part of the protocol.",
    ErrorCode.INVALID_MESSAGE: "The message does not match its schema.",
    ErrorCode.UNSUPPORTED_VERSION: "The server does not speak this protocol version.",
    ErrorCode.RATE_LIMITED: "Too many messages in a short time; this one was dropped.",
    ErrorCode.NOT_AUTHENTICATED: "Send hello with a token before anything else.",
    ErrorCode.ALREADY_AUTHENTICATED: "This connection has already said hello.",
    ErrorCode.AUTH_FAILED: "The token was refused.",
    ErrorCode.RESUME_FAILED: "The session cannot be resumed; sign in again.",
    ErrorCode.TOO_MANY_CONNECTIONS: "This identity already has the most connections allowed.",
    ErrorCode.FORBIDDEN: "This role may not do that, or the resource belongs to someone else.",
    ErrorCode.ALREADY_QUEUED: "This cabin is already waiting for a doctor.",
    ErrorCode.NOT_QUEUED: "This cabin is not waiting for a doctor.",
    ErrorCode.IN_CALL: "Not possible during a call.",
    ErrorCode.NO_SUCH_TICKET: "That resident is no longer waiting.",
    ErrorCode.ALREADY_TAKEN: "Another doctor has already taken this resident.",
    ErrorCode.DOCTOR_BUSY: "Finish the current call before taking another.",
    ErrorCode.NOT_IN_CALL: "This connection is not a party to that call.",
    ErrorCode.PEER_UNAVAILABLE: "The other party is reconnecting; the message was not delivered.",
    ErrorCode.TOO_MANY_ERRORS: "Too many bad messages; the connection is closed.",
    ErrorCode.SLOW_CONSUMER: "The connection could not keep up with its messages and is closed.",
    ErrorCode.REPLACED: "The session was resumed by another connection.",
    ErrorCode.AUTH_TIMEOUT: "No hello arrived in time.",
    ErrorCode.SHUTTING_DOWN: "The server is restarting; resume on another node.",
    ErrorCode.INTERNAL: "The server failed; the request was not carried out.",
}

_FATAL = frozenset(
    {
        ErrorCode.UNSUPPORTED_VERSION,
        ErrorCode.AUTH_FAILED,
        ErrorCode.RESUME_FAILED,
        ErrorCode.TOO_MANY_CONNECTIONS,
        ErrorCode.TOO_MANY_ERRORS,
        ErrorCode.SLOW_CONSUMER,
        ErrorCode.REPLACED,
        ErrorCode.AUTH_TIMEOUT,
        ErrorCode.SHUTTING_DOWN,
    }
)
