"""The kiosk bridge's consent record as the FHIR mapping's neutral ``ConsentInfo`` (pure).

``kiosk_bridge`` records what the resident chose; ``fhir`` builds the ``Consent`` resource and
may not import the bridge, so the cabin, which may import both, translates between them here.
The policy URI is the one ``ConsentRecord.fhir_consent_values`` names, so the bridge stays
the one place that spells it.
"""

from __future__ import annotations

from fhir.visit import (
    ConsentInfo,
    ConsentProvision,
    ConsentPurpose,
    ConsentStatus,
    ProvisionType,
)
from kiosk_bridge.consent import ConsentPurpose as KioskPurpose
from kiosk_bridge.consent import ConsentRecord

_PURPOSES = {
    KioskPurpose.MEASURING: ConsentPurpose.MEASURING,
    KioskPurpose.HOSPITAL: ConsentPurpose.HOSPITAL,
    KioskPurpose.VIDEO_CONSULTATION: ConsentPurpose.VIDEO_CONSULTATION,
}


def consent_info(record: ConsentRecord) -> ConsentInfo:
    """``record`` as FHIR-neutral values: one provision per purpose, permit or deny.

    A withdrawal record (``withdrawn_at`` set) becomes an ``inactive`` consent whose choices
    are all "deny" (withdrawal turns every choice to "no").
    """
    granted = record.choices.granted()
    policy_uri = record.fhir_consent_values()["policy_uri"]
    if not isinstance(policy_uri, str):
        raise TypeError("the consent record's policy URI is not text")
    return ConsentInfo(
        session_id=record.session_id,
        status=ConsentStatus.INACTIVE if record.withdrawn_at else ConsentStatus.ACTIVE,
        date_time=record.recorded_at,
        policy_uri=policy_uri,
        text_sha256=record.text_sha256,
        language=record.locale.value,
        organization=record.hospital,
        provisions=tuple(
            ConsentProvision(
                ours, ProvisionType.PERMIT if theirs in granted else ProvisionType.DENY
            )
            for theirs, ours in _PURPOSES.items()
        ),
        withdrawn_at=record.withdrawn_at,
    )
