"""Exceptions raised by the signaling package.

Every failure a caller of ``signaling`` can see is a :class:`SignalingError`;
third-party exceptions (PyJWT, cryptography, Redis clients) are translated at
the boundary where they occur and never escape.

::

    SignalingError                root of the package
    ├── AuthError(code, message)  a token or resume token refused
    ├── ConfigError               bad configuration (keys, issuers, files)
    ├── BackplaneError            the shared state store failed (Redis down…)
    └── ProtocolError(code)       a request refused with a protocol error code
                                  (bad message, forbidden, already taken…)
"""

from __future__ import annotations

from enum import StrEnum

from signaling.codes import ErrorCode

__all__ = [
    "AuthError",
    "AuthFailure",
    "BackplaneError",
    "ConfigError",
    "ProtocolError",
    "SignalingError",
]


class AuthFailure(StrEnum):
    """Stable machine-readable reasons for refusing a token (sent to clients, logged)."""

    TOKEN_MALFORMED = "token-malformed"
    TOKEN_EXPIRED = "token-expired"
    TOKEN_NOT_YET_VALID = "token-not-yet-valid"
    TOKEN_FORGED = "token-forged"
    WRONG_AUDIENCE = "wrong-audience"
    UNKNOWN_ISSUER = "unknown-issuer"
    TOKEN_REPLAYED = "token-replayed"
    ROLE_NOT_ALLOWED = "role-not-allowed"
    HOSPITAL_NOT_ALLOWED = "hospital-not-allowed"
    CLAIMS_MISSING = "claims-missing"
    TOKEN_LIFETIME_TOO_LONG = "token-lifetime-too-long"
    ALGORITHM_NOT_ALLOWED = "algorithm-not-allowed"


class SignalingError(Exception):
    """Root of every exception the signaling package raises."""


class AuthError(SignalingError):
    """A token or resume token was refused; ``code`` says why in a stable form."""

    def __init__(self, code: AuthFailure, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ConfigError(SignalingError):
    """The configuration is unusable: keys, issuers or files missing or invalid."""


class BackplaneError(SignalingError):
    """The shared state store (Redis or another backplane) failed or is unreachable."""


class ProtocolError(SignalingError):
    """A request refused with one of the protocol's stable :class:`ErrorCode` values.

    Raised by the state machine and the message decoder; the connection turns it into an
    ``error`` message and keeps going unless the code is fatal.
    """

    def __init__(self, code: ErrorCode, detail: str | None = None) -> None:
        super().__init__(f"{code}: {detail or code.sentence}")
        self.code = code
        self.detail = detail
