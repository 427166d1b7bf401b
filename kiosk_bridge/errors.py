"""Exceptions raised by :mod:`kiosk_bridge`, and the stable reason codes of a refused identity.

One root, so callers can catch everything this package raises with one clause::

    KioskBridgeError
    ├── IdentityRefused       the identity offered (chip data or kiosk assertion) is not
    │                         accepted; ``reason`` says why, for machines, ``str()`` for people
    ├── ConfigurationError    a trust store or JWKS the cabin was configured with is unusable
    ├── RequestRefused        the service-flow API refuses a request (``status``, ``reason``)
    │   └── KioskAuthRefused  the kiosk did not authenticate (401) or was refused (403)
    ├── SessionUnknown        no live session has this id (never opened, or wiped)
    └── WipeOverdue           the visit did not confirm a wipe within one second

Third-party exceptions (``asn1crypto``'s ``ValueError``/``TypeError``, ``jwt.PyJWTError``,
``cryptography``'s ``InvalidSignature``, ``OSError`` from the loaders) are translated to these
at the boundary: a caller never sees them.

``IdentityRefused`` is about the *resident's* data (answer the kiosk with a 4xx and the
reason); ``ConfigurationError`` is about the *cabin's* set-up (an operator must act).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class RefusalReason(StrEnum):
    """Why an identity was refused: a stable code for the kiosk, metrics and tests.

    The values never change meaning once published; new ones may be added.  The table in
    ``docs/kiosk_bridge.md`` says what each means and what the kiosk should do about it.
    """

    # the MRZ (DG1) and the card itself
    DG1_MALFORMED = "dg1_malformed"
    MRZ_FORMAT = "mrz_format"
    MRZ_CHECK_DIGIT = "mrz_check_digit"
    DOCUMENT_UNSUPPORTED = "document_unsupported"
    CARD_EXPIRED = "card_expired"
    # DG13, Vietnam's personal-data group
    DG13_MALFORMED = "dg13_malformed"
    DG13_FIELD_MISSING = "dg13_field_missing"
    # consistency between the MRZ and DG13
    ID_MISMATCH = "id_mismatch"
    BIRTH_DATE_MISMATCH = "birth_date_mismatch"
    SEX_MISMATCH = "sex_mismatch"
    EXPIRY_MISMATCH = "expiry_mismatch"
    # passive authentication (SOD, document signer, CSCA)
    SOD_MISSING = "sod_missing"
    SOD_MALFORMED = "sod_malformed"
    SOD_ALGORITHM_UNSUPPORTED = "sod_algorithm_unsupported"
    SOD_SIGNATURE_INVALID = "sod_signature_invalid"
    DG_HASH_MISMATCH = "dg_hash_mismatch"
    DG_NOT_IN_SOD = "dg_not_in_sod"
    DS_CERTIFICATE_EXPIRED = "ds_certificate_expired"
    DS_CERTIFICATE_NOT_YET_VALID = "ds_certificate_not_yet_valid"
    CSCA_UNKNOWN = "csca_unknown"
    CSCA_EXPIRED = "csca_expired"
    CSCA_NOT_YET_VALID = "csca_not_yet_valid"
    PASSIVE_AUTH_UNAVAILABLE = "passive_auth_unavailable"
    # kiosk assertion (JWT)
    ASSERTION_MALFORMED = "assertion_malformed"
    ASSERTION_ALGORITHM_REFUSED = "assertion_algorithm_refused"
    ISSUER_UNKNOWN = "issuer_unknown"
    ASSERTION_KEY_UNKNOWN = "assertion_key_unknown"
    ASSERTION_FORGED = "assertion_forged"
    ASSERTION_WRONG_AUDIENCE = "assertion_wrong_audience"
    ASSERTION_EXPIRED = "assertion_expired"
    ASSERTION_NOT_YET_VALID = "assertion_not_yet_valid"
    ASSERTION_LIFETIME_TOO_LONG = "assertion_lifetime_too_long"
    ASSERTION_REPLAYED = "assertion_replayed"
    ASSERTION_CLAIMS_INVALID = "assertion_claims_invalid"


class KioskBridgeError(Exception):
    """Root of every exception raised by :mod:`kiosk_bridge`."""


class IdentityRefused(KioskBridgeError):
    """The identity offered is not accepted.

    ``reason`` is the stable machine-readable code; ``str(error)`` is one English sentence
    for logs and operators (never holding the resident's name or full ID number);
    ``details`` adds machine-readable specifics where a kiosk can use them, e.g.
    ``{"card_expiry": "2024-04-12"}`` for :attr:`RefusalReason.CARD_EXPIRED` or
    ``{"field": "birth_date"}`` for a failed MRZ check digit.
    """

    def __init__(
        self, reason: RefusalReason, message: str, *, details: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.details: Mapping[str, str] = MappingProxyType(dict(details or {}))

    def __repr__(self) -> str:
        return f"IdentityRefused({self.reason.value!r}, {self.message!r})"


class ConfigurationError(KioskBridgeError):
    """A trust store directory or a JWKS the cabin was configured with cannot be used."""


class RequestReason(StrEnum):
    """Why the service-flow API refused a request that was not about the identity itself.

    Stable codes, like :class:`RefusalReason`: the ``error`` field of every 4xx body is one of
    these or a :class:`RefusalReason` (422).  New ones may be added, none changes meaning.
    """

    MALFORMED_REQUEST = "malformed_request"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    REQUEST_TOO_LARGE = "request_too_large"
    CALLBACK_REFUSED = "callback_refused"
    SESSION_NOT_FOUND = "session_not_found"
    SESSION_ACTIVE = "session_active"
    WIPE_OVERDUE = "wipe_overdue"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_FOUND = "not_found"
    # kiosk authentication
    CREDENTIALS_MISSING = "credentials_missing"
    CREDENTIALS_INVALID = "credentials_invalid"
    KIOSK_KEY_UNKNOWN = "kiosk_key_unknown"
    SIGNATURE_INVALID = "signature_invalid"
    TIMESTAMP_OUT_OF_WINDOW = "timestamp_out_of_window"
    SIGNATURE_REPLAYED = "signature_replayed"


class RequestRefused(KioskBridgeError):
    """A request to the service-flow API is refused; ``status`` is the HTTP status (4xx),
    ``reason`` the stable code and ``str(error)`` one English sentence for the kiosk's logs."""

    def __init__(self, status: int, reason: RequestReason, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"RequestRefused({self.status}, {self.reason.value!r}, {self.message!r})"


class KioskAuthRefused(RequestRefused):
    """The kiosk did not authenticate: 401 when no usable credentials came, 403 when the
    credentials came and are wrong, stale or replayed."""


class SessionUnknown(KioskBridgeError):
    """No live session has this id (never opened, or already wiped)."""


class WipeOverdue(KioskBridgeError):
    """The cabin's visit did not confirm a wipe within the deadline (the cabin's fault: the
    kiosk is answered 503 and may retry the DELETE; operators are alerted by the log)."""
