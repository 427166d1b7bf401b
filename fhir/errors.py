"""Exceptions raised by our ``fhir`` modules.

::

    FhirError
    ├── MappingError        a visit cannot be expressed as valid FHIR R4 (a bug or bad input)
    ├── OutboxError         the durable outbox cannot be opened, read or written
    │   └── OutboxKeyError  the encryption key is missing, malformed or does not open the data
    ├── TransportError      no HTTP answer: connection refused, reset, TLS failure, timeout
    ├── IncompatibleServerError  the CapabilityStatement rules the server out (not 4.0.x, no
    │                       transaction)
    ├── ServerError         the FHIR server answered with an error status (OperationOutcome kept)
    │   └── UnexpectedResponseError  a 2xx whose body is not the FHIR JSON asked for, or too large
    └── AuthError           the SMART token endpoint refused the cabin, or answered nonsense
        ├── SigningKeyError the cabin's signing key is missing, malformed or of the wrong kind
        └── TokenRequestError  the token endpoint refused (RFC 6749 section 5.2)

Third-party exceptions (``aiohttp.ClientError``, ``sqlite3.Error``, ``jwt.PyJWTError``,
``cryptography`` errors, pydantic validation errors) are translated to these at the boundary.
"""

from __future__ import annotations

from typing import Any


class FhirError(Exception):
    """Root of every exception raised by our ``fhir`` modules."""


class MappingError(FhirError, ValueError):
    """A visit cannot be expressed as valid FHIR R4 resources."""


class OutboxError(FhirError):
    """The outbox database cannot be opened, read or written."""


class OutboxKeyError(OutboxError):
    """The outbox encryption key is missing, malformed, or does not decrypt the data."""


class TransportError(FhirError):
    """The request got no HTTP answer (network, TLS or timeout)."""


class ServerError(FhirError):
    """The FHIR server answered with an error status."""

    def __init__(self, message: str, *, status: int, outcome: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.outcome = outcome


class AuthError(FhirError):
    """The SMART Backend Services token request failed."""


class IncompatibleServerError(FhirError):
    """The server's CapabilityStatement rules it out: not FHIR 4.0.x, or no ``transaction``."""


class UnexpectedResponseError(ServerError):
    """A successful status with a body that is not the FHIR JSON asked for (or is too large)."""


class SigningKeyError(AuthError):
    """The cabin's signing key is missing, unreadable, malformed, or of the wrong kind.

    Without a usable key the cabin cannot authenticate to the hospital.
    """


class TokenRequestError(AuthError):
    """The token endpoint answered with an error (OAuth 2.0, RFC 6749 section 5.2)."""

    def __init__(self, message: str, *, status: int, error: str | None, description: str | None):
        super().__init__(message)
        self.status = status
        self.error = error
        """``invalid_client``, ``invalid_scope``, ... or ``None`` if the body had none."""
        self.description = description
