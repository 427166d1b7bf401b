"""Exceptions raised by our ``fhir`` modules.

::

    FhirError
    ├── MappingError        a visit cannot be expressed as valid FHIR R4 (a bug or bad input)
    ├── OutboxError         the durable outbox cannot be opened, read or written
    │   └── KeyError_       the encryption key is missing, malformed or does not open the data
    ├── TransportError      no HTTP answer: connection refused, reset, TLS failure, timeout
    ├── ServerError         the FHIR server answered with an error status (OperationOutcome kept)
    └── AuthError           the SMART token endpoint refused the cabin, or answered nonsense

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
