"""Consent: the versioned texts, the record, its FHIR values, storage, event and withdrawal."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kiosk_bridge.consent import (
    CONSENT_VERSION,
    ConsentChoices,
    ConsentPurpose,
    Locale,
    consent_text,
    record_consent,
    withdrawal,
)
from kiosk_bridge.events import DeliveryState
from kiosk_bridge.sessions import KioskSessions, MemoryVisits, Service, VisitState
from tests.kiosk_bridge.test_events import RESIDENT, kiosk_peer, sender, wall_clock

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
HOSPITAL = "Bệnh viện Đa khoa Thử Nghiệm"
ALL = ConsentChoices(measuring=True, hospital=True, video_consultation=True)


@pytest.mark.parametrize("locale", list(Locale))
def test_each_text_names_the_three_purposes_and_the_hospital(locale: Locale) -> None:
    shown = consent_text(locale=locale, hospital=HOSPITAL)
    assert shown.version == CONSENT_VERSION
    assert HOSPITAL in shown.text
    assert shown.text.count(HOSPITAL) == 2  # sending to it, and its doctors by video
    assert all(f"{n}. " in shown.text for n in (1, 2, 3))
    assert CONSENT_VERSION in shown.text


def test_the_vietnamese_text_is_vietnamese() -> None:
    text = consent_text(locale=Locale.VI, hospital=HOSPITAL).text
    assert "Đồng ý" in text
    assert "rút lại" in text
    assert "Tư vấn qua video" in text


def test_the_hash_is_sha256_of_the_exact_text_shown() -> None:
    shown = consent_text(locale=Locale.EN, hospital=HOSPITAL)
    assert shown.sha256 == hashlib.sha256(shown.text.encode()).hexdigest()
    other = consent_text(locale=Locale.EN, hospital="Another Hospital")
    assert other.sha256 != shown.sha256


def test_an_unknown_version_or_no_hospital_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        consent_text(locale=Locale.EN, hospital=HOSPITAL, version="1999-01-01")
    with pytest.raises(ValueError, match="hospital"):
        consent_text(locale=Locale.EN, hospital="  ")


def test_choices_are_separate() -> None:
    choices = ConsentChoices(measuring=True, hospital=False, video_consultation=True)
    assert choices.granted() == {ConsentPurpose.MEASURING, ConsentPurpose.VIDEO_CONSULTATION}


def test_the_record_carries_version_hash_choices_time_session_and_locale() -> None:
    shown = consent_text(locale=Locale.VI, hospital=HOSPITAL)
    record = record_consent(session_id="s-1", shown=shown, choices=ALL, now=NOW)
    assert (record.session_id, record.text_version, record.text_sha256) == (
        "s-1",
        CONSENT_VERSION,
        shown.sha256,
    )
    assert (record.locale, record.recorded_at, record.choices) == (Locale.VI, NOW, ALL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.session_id = "other"  # type: ignore[misc]


def test_a_naive_time_is_refused() -> None:
    shown = consent_text(locale=Locale.VI, hospital=HOSPITAL)
    with pytest.raises(ValueError, match="timezone"):
        record_consent(session_id="s", shown=shown, choices=ALL, now=NOW.replace(tzinfo=None))


def test_fhir_values_have_one_provision_per_purpose() -> None:
    shown = consent_text(locale=Locale.EN, hospital=HOSPITAL)
    choices = ConsentChoices(measuring=True, hospital=False, video_consultation=True)
    values = record_consent(session_id="s", shown=shown, choices=choices, now=NOW)
    fhir = values.fhir_consent_values()
    assert fhir["status"] == "active"
    assert fhir["provisions"] == [
        {"purpose": "measuring", "type": "permit"},
        {"purpose": "hospital", "type": "deny"},
        {"purpose": "video_consultation", "type": "permit"},
    ]
    assert fhir["source_hash_sha256"] == shown.sha256
    assert fhir["organization"] == HOSPITAL
    assert fhir["dateTime"] == NOW.isoformat()


def test_withdrawal_is_a_new_inactive_record_denying_everything() -> None:
    shown = consent_text(locale=Locale.EN, hospital=HOSPITAL)
    record = record_consent(session_id="s", shown=shown, choices=ALL, now=NOW)
    later = NOW + timedelta(minutes=3)
    withdrawn = withdrawal(record, now=later)
    assert withdrawn.withdrawn_at == later
    assert record.withdrawn_at is None
    assert withdrawn.choices.granted() == frozenset()
    assert withdrawn.fhir_consent_values()["status"] == "inactive"
    assert withdrawn.event_data()["withdrawn"] is True


def test_event_data_holds_no_identity() -> None:
    shown = consent_text(locale=Locale.EN, hospital=HOSPITAL)
    data = record_consent(session_id="s", shown=shown, choices=ALL, now=NOW).event_data()
    assert set(data) == {
        "text_version",
        "text_sha256",
        "locale",
        "choices",
        "recorded_at",
        "withdrawn",
    }


def test_consent_is_stored_through_the_visit_and_sent_then_withdrawn(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with kiosk_peer() as peer, sender(tmp_path / "events.db").running() as events:
            visits = MemoryVisits()
            sessions = KioskSessions(visits=visits, events=events, clock=wall_clock)
            session = await sessions.open(
                identity=RESIDENT,
                service=Service.HEALTH_CHECK,
                callback_url=peer.url,
                locale=Locale.EN,
            )
            shown = consent_text(locale=Locale.EN, hospital=HOSPITAL)
            record = record_consent(
                session_id=session.session_id, shown=shown, choices=ALL, now=wall_clock()
            )
            await sessions.record_consent(record)
            assert visits.consent(session.session_id) == record
            status = await sessions.status(session.session_id)
            assert status.state is VisitState.CONSENTED
            await sessions.withdraw(record)
            assert session.session_id in visits.withdrawn
            stored = visits.consent(session.session_id)
            assert stored is not None
            assert stored.withdrawn_at is not None
            assert (await sessions.status(session.session_id)).state is VisitState.WITHDRAWN
            await peer.wait_for(3)
            assert peer.types() == ["session.started", "consent.recorded", "consent.recorded"]
            sent = [event["data"] for event in peer.received[1:]]
            assert sent[0]["choices"] == {
                "measuring": True,
                "hospital": True,
                "video_consultation": True,
            }
            assert sent[0]["text_sha256"] == shown.sha256
            assert sent[1]["withdrawn"] is True
            rows = await events.stored(session_id=session.session_id)
            assert DeliveryState.ABANDONED not in {row.state for row in rows}

    asyncio.run(scenario())
