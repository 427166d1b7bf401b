"""Stable identifiers, so that building a visit's bundle twice gives the same bundle.

Personal Health Device habit: an Observation is identified by device, patient, type and
time.  We hash that tuple into a name-based UUID (RFC 9562 version 5) so the identifier is
stable but does not spell out the citizen ID; the same goes for the bundle's ``urn:uuid``
full URLs, which makes a rebuilt bundle byte-identical.
"""

from __future__ import annotations

import uuid
from typing import Final

NAMESPACE: Final = uuid.UUID("6f0c3a52-5d1e-4f7e-9a53-2f4c6b1d8e90")
"""This product's UUIDv5 namespace (random, fixed forever)."""


def stable_uuid(*parts: str) -> str:
    """The UUIDv5 of ``parts`` joined (``|`` cannot occur inside them ambiguously: escaped)."""
    name = "|".join(part.replace("\\", "\\\\").replace("|", "\\|") for part in parts)
    return str(uuid.uuid5(NAMESPACE, name))


def urn(*parts: str) -> str:
    """``urn:uuid:`` + :func:`stable_uuid` of ``parts``."""
    return f"urn:uuid:{stable_uuid(*parts)}"
