"""The seam between the delivery worker and whatever carries a bundle to a hospital.

The FHIR HTTP client and the directory sink implement :class:`BundleTransport`; tests use an
in-memory one.  A transport returns the server's answer as it came (status, body,
``Retry-After``) or raises :class:`~fhir.errors.TransportError` when there was no answer; the
delivery worker decides what the answer means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TransportResponse:
    """An HTTP answer to a transaction POST."""

    status: int
    body: bytes
    retry_after: float | None = None
    """Seconds the server asked to wait (``Retry-After``, seconds or HTTP-date), if any."""


class BundleTransport(Protocol):
    """Posts one transaction Bundle (JSON bytes) to a hospital."""

    async def post_transaction(self, bundle: bytes) -> TransportResponse:
        """Send; return the answer; raise ``TransportError`` if none came."""
        ...
