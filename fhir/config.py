"""Per-hospital FHIR configuration: where to send, how to authenticate, which identifier systems.

Vietnam's draft core guides disagree on identifier system URIs, so each hospital's are
configured; the defaults are placeholders in this project's own namespace, to be replaced by
what the hospital's integration engineer gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CCCD_SYSTEM = "urn:oid:2.16.704.1.0.1.cccd"
"""Placeholder for the national citizen ID (Căn cước công dân) system; configure per hospital."""
DEFAULT_BHYT_SYSTEM = "urn:oid:2.16.704.1.0.1.bhyt"
"""Placeholder for the health-insurance card (Bảo hiểm y tế) system; configure per hospital."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentifierSystems:
    """The identifier ``system`` URIs a hospital expects."""

    cccd: str = DEFAULT_CCCD_SYSTEM
    bhyt: str = DEFAULT_BHYT_SYSTEM
    device: str = "urn:ietf:rfc:3986"
    """System of device serial-number identifiers."""
    observation: str = "urn:ietf:rfc:3986"
    """System of the stable Observation identifiers (device-patient-type-timestamp)."""
    encounter: str = "urn:ietf:rfc:3986"
    """System of the visit identifiers."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SmartSettings:
    """SMART Backend Services (client credentials with a signed JWT assertion)."""

    token_url: str
    client_id: str
    key_path: Path
    """PEM private key (RSA for RS384, P-384 EC for ES384)."""
    key_id: str | None = None
    """The ``kid`` the hospital registered; None: the key's RFC 7638 thumbprint, which is
    what ``cabin keys jwks`` publishes."""
    algorithm: str = "RS384"
    scopes: tuple[str, ...] = ("system/Patient.write", "system/Observation.write")


@dataclass(frozen=True, slots=True, kw_only=True)
class HospitalConfig:
    """One hospital the cabin delivers to."""

    id: str
    """Short stable name, e.g. ``bv-quan-2``: the outbox queue's key."""
    base_url: str
    """``http(s)://…`` FHIR base URL, or ``file:///dir`` for the NDJSON directory sink."""
    identifiers: IdentifierSystems = field(default_factory=IdentifierSystems)
    smart: SmartSettings | None = None
    verify_tls: bool = True
    ca_file: Path | None = None
    """CA bundle for a hospital behind a private certificate authority."""
    timeout: float = 30.0
