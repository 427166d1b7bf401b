"""Identity intake: the refusal matrix, assurance levels, the consistency gate, minimisation."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk_bridge.assertion import AssertionPolicy, MemoryJtiStore, TrustedKiosks
from kiosk_bridge.dg13 import encode_dg13
from kiosk_bridge.errors import IdentityRefused, RefusalReason
from kiosk_bridge.identity import Assurance, Identity, Sex, Source
from kiosk_bridge.intake import (
    ChipData,
    Evidence,
    ExtraField,
    IntakePolicy,
    KioskAssertion,
    Purpose,
    TrustAnchors,
    identify,
    identify_chip,
)
from kiosk_bridge.lds import encode_dg1
from kiosk_bridge.mrz import format_td1
from kiosk_bridge.testcards import (
    Citizen,
    DocumentSigner,
    SyntheticCsca,
    SyntheticKiosk,
    Tamper,
    issue_card,
    make_csca,
    make_document_signer,
    make_kiosk,
    make_sod,
    synthetic_citizen,
)

NOW = datetime(2025, 11, 1, 3, 0, tzinfo=UTC)  # 10:00 in Ho Chi Minh City
TODAY = date(2025, 11, 1)
YEAR = timedelta(days=365)
CABIN = "cabin-dao-kim-cuong-01"
FACE = b"stand-in for a DG2 face image"


@dataclass(frozen=True)
class World:
    """The PKI and kiosks of the module, generated once."""

    csca: SyntheticCsca
    signer: DocumentSigner
    rogue_signer: DocumentSigner
    expired_signer: DocumentSigner
    kiosk: SyntheticKiosk
    forger: SyntheticKiosk
    citizen: Citizen

    @property
    def anchors(self) -> TrustAnchors:
        return TrustAnchors(
            cscas=(self.csca.certificate,),
            kiosks=TrustedKiosks.from_jwks({self.kiosk.issuer: self.kiosk.jwks()}),
        )


@pytest.fixture(scope="module")
def world() -> World:
    csca = make_csca(not_before=NOW - YEAR, not_after=NOW + 10 * YEAR)
    rogue = make_csca(name="CSCA ROGUE")
    kiosk = make_kiosk()
    return World(
        csca=csca,
        signer=make_document_signer(csca, not_before=NOW - YEAR, not_after=NOW + 5 * YEAR),
        rogue_signer=make_document_signer(rogue),
        expired_signer=make_document_signer(
            csca, not_before=NOW - 6 * YEAR, not_after=NOW - timedelta(days=1)
        ),
        kiosk=kiosk,
        forger=make_kiosk(issuer=kiosk.issuer, kid=kiosk.kid),
        citizen=synthetic_citizen(11, today=TODAY, birth_date=date(1985, 4, 12)),
    )


POLICY = IntakePolicy(assertion=AssertionPolicy(audience=CABIN))


def _identify(
    world: World,
    evidence: Evidence,
    *,
    policy: IntakePolicy = POLICY,
    anchors: TrustAnchors | None = None,
    store: MemoryJtiStore | None = None,
    now: datetime = NOW,
) -> Identity:
    return identify(
        evidence,
        policy=policy,
        anchors=anchors or world.anchors,
        jti_store=store if store is not None else MemoryJtiStore(clock=lambda: now),
        now=now,
    )


def _card(world: World, *tamper: Tamper, citizen: Citizen | None = None) -> ChipData:
    return issue_card(citizen or world.citizen, signer=world.signer, tamper=frozenset(tamper))


def _assertion(world: World, **kwargs: object) -> KioskAssertion:
    token = world.kiosk.assertion(world.citizen, audience=CABIN, now=NOW, **kwargs)  # type: ignore[arg-type]
    return KioskAssertion(token)


# --- good evidence passes at the right level ------------------------------------------------


def test_a_genuine_card_passes_at_passive_auth(world: World) -> None:
    identity = _identify(world, _card(world))
    assert identity.assurance is Assurance.PASSIVE_AUTH
    assert identity.source is Source.CHIP
    assert identity.cccd == world.citizen.cccd
    assert identity.full_name == world.citizen.full_name
    assert identity.birth_date == date(1985, 4, 12)
    assert identity.sex is world.citizen.sex
    assert identity.card_expiry == world.citizen.card_expiry
    assert identity.bhyt is None
    assert identity.issuer is not None
    assert "DS TEST VNM 01" in identity.issuer


def test_a_good_assertion_passes_at_asserted(world: World) -> None:
    identity = _identify(world, _assertion(world))
    assert identity.assurance is Assurance.ASSERTED
    assert identity.bhyt == world.citizen.bhyt


def test_without_a_trust_store_a_card_passes_at_mrz_checked_only_if_allowed(world: World) -> None:
    no_store = replace(world.anchors, cscas=None)
    with pytest.raises(IdentityRefused) as caught:
        _identify(world, _card(world), anchors=no_store)
    assert caught.value.reason is RefusalReason.PASSIVE_AUTH_UNAVAILABLE
    allowed = replace(POLICY, allow_mrz_checked=True)
    identity = _identify(world, _card(world), anchors=no_store, policy=allowed)
    assert identity.assurance is Assurance.MRZ_CHECKED
    assert identity.issuer is None


def test_without_a_sod_a_card_passes_at_mrz_checked_only_if_allowed(world: World) -> None:
    unsigned = issue_card(world.citizen, signer=None)
    with pytest.raises(IdentityRefused) as caught:
        _identify(world, unsigned)
    assert caught.value.reason is RefusalReason.SOD_MISSING
    allowed = replace(POLICY, allow_mrz_checked=True)
    assert _identify(world, unsigned, policy=allowed).assurance is Assurance.MRZ_CHECKED


def test_without_a_trust_store_a_tampered_card_is_still_refused(world: World) -> None:
    allowed = replace(POLICY, allow_mrz_checked=True)
    no_store = replace(world.anchors, cscas=None)
    with pytest.raises(IdentityRefused) as caught:
        _identify(world, _card(world, Tamper.DG13_AFTER_SIGNING), anchors=no_store, policy=allowed)
    assert caught.value.reason is RefusalReason.DG_HASH_MISMATCH


def test_a_failing_sod_is_never_downgraded_to_mrz_checked(world: World) -> None:
    allowed = replace(POLICY, allow_mrz_checked=True)
    rogue = issue_card(world.citizen, signer=world.rogue_signer)
    with pytest.raises(IdentityRefused) as caught:
        _identify(world, rogue, policy=allowed)
    assert caught.value.reason is RefusalReason.CSCA_UNKNOWN


def test_assurance_levels_are_ordered() -> None:
    assert Assurance.PASSIVE_AUTH.at_least(Assurance.MRZ_CHECKED)
    assert Assurance.ACTIVE_AUTH.at_least(Assurance.PASSIVE_AUTH)
    assert not Assurance.ASSERTED.at_least(Assurance.MRZ_CHECKED)
    assert Assurance.ASSERTED.at_least(Assurance.ASSERTED)


# --- THE REFUSAL MATRIX --------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    build: Callable[[World], Evidence]
    reason: RefusalReason
    replay: bool = False


def _expired_card(world: World) -> ChipData:
    citizen = replace(world.citizen, card_expiry=date(2025, 10, 31))
    return issue_card(citizen, signer=world.signer)


def _wrong_document(world: World) -> ChipData:
    td1 = replace(world.citizen.td1(), issuing_state="UTO")
    card = issue_card(world.citizen, signer=None)
    return replace(card, dg1=encode_dg1(format_td1(td1)))


MATRIX: dict[str, Case] = {
    "tampered-dg13": Case(
        lambda w: _card(w, Tamper.DG13_AFTER_SIGNING), RefusalReason.DG_HASH_MISMATCH
    ),
    "wrong-csca": Case(
        lambda w: issue_card(w.citizen, signer=w.rogue_signer), RefusalReason.CSCA_UNKNOWN
    ),
    "expired-ds-certificate": Case(
        lambda w: issue_card(w.citizen, signer=w.expired_signer),
        RefusalReason.DS_CERTIFICATE_EXPIRED,
    ),
    "bad-mrz-check-digit": Case(
        lambda w: _card(w, Tamper.BAD_MRZ_CHECK_DIGIT), RefusalReason.MRZ_CHECK_DIGIT
    ),
    "mismatched-ids": Case(lambda w: _card(w, Tamper.MISMATCHED_ID), RefusalReason.ID_MISMATCH),
    "mismatched-birth-dates": Case(
        lambda w: _card(w, Tamper.BIRTH_DATE_MISMATCH), RefusalReason.BIRTH_DATE_MISMATCH
    ),
    "expired-card": Case(_expired_card, RefusalReason.CARD_EXPIRED),
    "broken-sod-signature": Case(
        lambda w: _card(w, Tamper.SOD_SIGNATURE), RefusalReason.SOD_SIGNATURE_INVALID
    ),
    "dg13-not-in-sod": Case(
        lambda w: _card(w, Tamper.DG13_NOT_IN_SOD), RefusalReason.DG_NOT_IN_SOD
    ),
    "no-sod": Case(lambda w: issue_card(w.citizen, signer=None), RefusalReason.SOD_MISSING),
    "not-a-cccd": Case(_wrong_document, RefusalReason.DOCUMENT_UNSUPPORTED),
    "garbage-dg1": Case(lambda w: replace(_card(w), dg1=b"\x61\x00"), RefusalReason.DG1_MALFORMED),
    "garbage-dg13": Case(lambda w: replace(_card(w), dg13=b"\x6d"), RefusalReason.DG13_MALFORMED),
    "garbage-sod": Case(lambda w: replace(_card(w), sod=b"\x77\x00"), RefusalReason.SOD_MALFORMED),
    "forged-assertion": Case(
        lambda w: KioskAssertion(w.forger.assertion(w.citizen, audience=CABIN, now=NOW)),
        RefusalReason.ASSERTION_FORGED,
    ),
    "expired-assertion": Case(
        lambda w: KioskAssertion(
            w.kiosk.assertion(w.citizen, audience=CABIN, now=NOW - timedelta(minutes=10))
        ),
        RefusalReason.ASSERTION_EXPIRED,
    ),
    "replayed-assertion": Case(_assertion, RefusalReason.ASSERTION_REPLAYED, replay=True),
    "wrong-audience-assertion": Case(
        lambda w: KioskAssertion(w.kiosk.assertion(w.citizen, audience="cabin-other", now=NOW)),
        RefusalReason.ASSERTION_WRONG_AUDIENCE,
    ),
    "long-lived-assertion": Case(
        lambda w: _assertion(w, lifetime=timedelta(minutes=30)),
        RefusalReason.ASSERTION_LIFETIME_TOO_LONG,
    ),
    "unknown-kiosk": Case(
        lambda w: KioskAssertion(
            make_kiosk(issuer="kiosk-elsewhere").assertion(w.citizen, audience=CABIN, now=NOW)
        ),
        RefusalReason.ISSUER_UNKNOWN,
    ),
    "expired-card-assertion": Case(
        lambda w: KioskAssertion(
            w.kiosk.assertion(
                replace(w.citizen, card_expiry=date(2025, 10, 31)), audience=CABIN, now=NOW
            )
        ),
        RefusalReason.CARD_EXPIRED,
    ),
}


@pytest.mark.parametrize("case", MATRIX.values(), ids=MATRIX.keys())
def test_the_refusal_matrix(world: World, case: Case) -> None:
    evidence = case.build(world)
    store = MemoryJtiStore(clock=lambda: NOW)
    if case.replay:
        _identify(world, evidence, store=store)  # the first use is accepted
    with pytest.raises(IdentityRefused) as caught:
        _identify(world, evidence, store=store)
    assert caught.value.reason is case.reason, str(caught.value)
    assert str(caught.value)  # a sentence for people, too


def test_an_expired_card_is_refused_with_its_expiry_date(world: World) -> None:
    with pytest.raises(IdentityRefused) as caught:
        _identify(world, _expired_card(world))
    assert caught.value.details == {"card_expiry": "2025-10-31"}
    assert "2025-10-31" in str(caught.value)


def test_a_card_is_valid_through_its_expiry_day_in_vietnam_time(world: World) -> None:
    citizen = replace(world.citizen, card_expiry=date(2025, 11, 1))
    card = issue_card(citizen, signer=world.signer)
    late_evening = datetime(2025, 11, 1, 16, 59, tzinfo=UTC)  # 23:59 in Vietnam
    assert _identify(world, card, now=late_evening).card_expiry == date(2025, 11, 1)
    after_midnight = datetime(2025, 11, 1, 17, 1, tzinfo=UTC)  # 00:01 on 2 November
    with pytest.raises(IdentityRefused) as caught:
        _identify(world, card, now=after_midnight)
    assert caught.value.reason is RefusalReason.CARD_EXPIRED


# --- the consistency gate ------------------------------------------------------------------


def _resigned_card(world: World, citizen: Citizen, **dg13_changes: object) -> ChipData:
    """A genuine-looking card whose DG13 was issued with ``dg13_changes`` (then signed)."""
    personal = replace(citizen.personal_data(), **dg13_changes)  # type: ignore[arg-type]
    dg1 = encode_dg1(format_td1(citizen.td1()))
    dg13 = encode_dg13(personal)
    return ChipData(dg1=dg1, dg13=dg13, sod=make_sod({1: dg1, 13: dg13}, signer=world.signer))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"sex": "Nữ"}, RefusalReason.SEX_MISMATCH),
        ({"expiry_date": "01/01/2040"}, RefusalReason.EXPIRY_MISMATCH),
        ({"id_number": None}, RefusalReason.DG13_FIELD_MISSING),
        ({"full_name": None}, RefusalReason.DG13_FIELD_MISSING),
        ({"birth_date": None}, RefusalReason.DG13_FIELD_MISSING),
        ({"birth_date": "1985-04-12"}, RefusalReason.DG13_MALFORMED),
        ({"expiry_date": "sometime"}, RefusalReason.DG13_MALFORMED),
    ],
)
def test_inconsistent_or_incomplete_dg13_is_refused(
    world: World, changes: dict[str, object], reason: RefusalReason
) -> None:
    male = replace(world.citizen, sex=Sex.MALE)
    with pytest.raises(IdentityRefused) as caught:
        _identify(world, _resigned_card(world, male, **changes))
    assert caught.value.reason is reason


def test_a_dg13_without_sex_takes_the_mrz_sex(world: World) -> None:
    identity = _identify(world, _resigned_card(world, world.citizen, sex=None))
    assert identity.sex is world.citizen.sex


def test_a_card_without_expiry_passes(world: World) -> None:
    elder = synthetic_citizen(12, today=TODAY, birth_date=date(1950, 6, 1))
    assert elder.card_expiry is None
    identity = _identify(world, issue_card(elder, signer=world.signer))
    assert identity.card_expiry is None


def test_a_centenarian_gets_the_birth_year_from_dg13(world: World) -> None:
    # "250301" in the MRZ reads as 2025; DG13 says 1925 and agrees on the six digits
    centenarian = synthetic_citizen(13, today=TODAY, birth_date=date(1925, 3, 1))
    identity = _identify(world, issue_card(centenarian, signer=world.signer))
    assert identity.birth_date == date(1925, 3, 1)


def test_a_dg13_birth_date_in_the_future_is_refused(world: World) -> None:
    born_2025 = synthetic_citizen(14, today=TODAY, birth_date=date(2025, 3, 1))
    card = _resigned_card(world, born_2025, birth_date="01/03/2125")
    with pytest.raises(IdentityRefused) as caught:
        _identify(world, card)
    assert caught.value.reason is RefusalReason.DG13_MALFORMED


# --- minimisation ----------------------------------------------------------------------------


def test_by_default_nothing_beyond_the_core_identity_survives(world: World) -> None:
    citizen = replace(world.citizen, spouse_name="Phạm Thử Nghiệm Vợ")
    card = issue_card(citizen, signer=world.signer, face_image=FACE)
    identity = _identify(world, card)
    assert identity.extras.kept() == frozenset()
    assert identity.extras.face_image is None
    assert identity.extras.religion is None
    assert identity.extras.residence is None


def test_a_purpose_keeps_exactly_what_it_needs(world: World) -> None:
    home_visits = Purpose(
        name="home-visit-follow-up",
        needs=frozenset({ExtraField.RESIDENCE, ExtraField.FACE_IMAGE, ExtraField.ISSUE_DATE}),
    )
    policy = replace(POLICY, purposes=(home_visits,))
    card = issue_card(world.citizen, signer=world.signer, face_image=FACE)
    extras = _identify(world, card, policy=policy).extras
    assert extras.kept() == {"residence", "face_image", "issue_date"}
    assert extras.residence == world.citizen.residence
    assert extras.face_image == FACE
    assert extras.issue_date == world.citizen.issue_date
    assert "residence" in repr(extras)
    assert world.citizen.residence not in repr(extras)


@pytest.mark.parametrize(
    ("extra", "attributes"),
    [
        (ExtraField.ETHNICITY, {"ethnicity"}),
        (ExtraField.RELIGION, {"religion"}),
        (ExtraField.PLACE_OF_ORIGIN, {"place_of_origin"}),
        (ExtraField.IDENTIFYING_MARKS, {"identifying_marks"}),
        (ExtraField.PARENTS, {"father_name", "mother_name"}),
        (ExtraField.SPOUSE, {"spouse_name"}),
    ],
)
def test_each_extra_field_is_kept_only_on_request(
    world: World, extra: ExtraField, attributes: set[str]
) -> None:
    citizen = replace(world.citizen, spouse_name="Phạm Thử Nghiệm Vợ")
    policy = replace(POLICY, purposes=(Purpose(name="research", needs=frozenset({extra})),))
    identity = _identify(world, issue_card(citizen, signer=world.signer), policy=policy)
    assert identity.extras.kept() == attributes


def test_the_face_image_is_checked_against_the_sod_even_when_dropped(world: World) -> None:
    card = issue_card(world.citizen, signer=world.signer, face_image=FACE)
    swapped = replace(card, dg2=b"someone else's face")
    with pytest.raises(IdentityRefused) as caught:
        _identify(world, swapped)
    assert caught.value.reason is RefusalReason.DG_HASH_MISMATCH
    assert caught.value.details["data_group"] == "2"


def test_assertions_are_refused_when_no_kiosk_is_configured(world: World) -> None:
    no_kiosks = replace(world.anchors, kiosks=None)
    with pytest.raises(IdentityRefused) as caught:
        _identify(world, _assertion(world), anchors=no_kiosks)
    assert caught.value.reason is RefusalReason.ISSUER_UNKNOWN


def test_logs_and_reprs_carry_no_personal_data(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kiosk_bridge")
    card = _card(world)
    identity = _identify(world, card)
    _identify(world, _assertion(world))
    with pytest.raises(IdentityRefused) as caught:
        _identify(world, _card(world, Tamper.MISMATCHED_ID))
    shown = " ".join(
        [
            caplog.text,
            repr(identity),
            str(identity),
            repr(card),
            repr(caught.value),
            str(caught.value),
        ]
    )
    assert world.citizen.cccd not in shown
    assert world.citizen.surname not in shown
    assert world.citizen.given_names not in shown
    assert "1985" not in shown
    assert identity.masked_cccd in caplog.text


# --- hostile input never escapes as another exception ----------------------------------------


@settings(max_examples=150)
@given(
    dg1=st.binary(max_size=300),
    dg13=st.binary(max_size=300),
    sod=st.none() | st.binary(max_size=300),
)
def test_any_chip_bytes_are_refused_with_a_reason(
    world: World, dg1: bytes, dg13: bytes, sod: bytes | None
) -> None:
    with pytest.raises(IdentityRefused):
        identify_chip(
            ChipData(dg1=dg1, dg13=dg13, sod=sod),
            policy=IntakePolicy(allow_mrz_checked=True),
            cscas=(world.csca.certificate,),
            now=NOW,
        )


@settings(max_examples=300)
@given(
    group=st.sampled_from(["dg1", "dg13", "sod"]),
    position=st.integers(min_value=0),
    value=st.integers(min_value=0, max_value=255),
)
def test_any_changed_byte_of_a_genuine_card_is_refused_or_harmless(
    world: World, group: str, position: int, value: int
) -> None:
    card = _card(world)
    data = bytearray(getattr(card, group))
    index = position % len(data)
    if data[index] == value:
        return
    data[index] = value
    changed = replace(card, **{group: bytes(data)})
    try:
        identity = _identify(world, changed)
    except IdentityRefused:
        return  # refused, with a reason: the matrix tests which one
    # only bytes no signature or hash covers can change without notice (e.g. in the SOD's
    # certificate outside the signed parts): the identity itself must be untouched
    assert identity.cccd == world.citizen.cccd
    assert identity.full_name == world.citizen.full_name
    assert identity.birth_date == world.citizen.birth_date


@pytest.mark.parametrize("group", ["dg1", "dg13", "sod"])
def test_oversized_groups_are_refused(world: World, group: str) -> None:
    card = _card(world)
    changed = replace(card, **{group: getattr(card, group) + b"\x00" * 40_000})
    with pytest.raises(IdentityRefused):
        _identify(world, changed)
