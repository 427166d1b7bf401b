"""A finished consultation as the visit record keeps it (what the FHIR bundle carries).

The call gives who the doctor was, when, and the notes sent over the vitals channel; the last
note is the one that counts (a doctor may correct themselves), with its disposition.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cabin.call import CallOutcome
from fhir.visit import Consultation, Disposition


def consultation_of(outcome: CallOutcome, *, doctor_name: str | None = None) -> Consultation | None:
    """The visit's consultation, or None when no doctor took the call."""
    if outcome.call_id is None or outcome.doctor is None or outcome.started_at is None:
        return None
    note = outcome.notes[-1] if outcome.notes else None
    disposition = None
    if note is not None:
        try:
            disposition = Disposition(note.disposition)
        except ValueError:
            disposition = None
    return Consultation(
        call_id=outcome.call_id,
        doctor_id=outcome.doctor,
        hospital=outcome.hospital or "",
        started=datetime.fromtimestamp(outcome.started_at, UTC),
        ended=datetime.fromtimestamp(max(outcome.ended_at, outcome.started_at), UTC),
        doctor_name=(note.doctor if note is not None and note.doctor else doctor_name),
        note=None if note is None else note.text,
        disposition=disposition,
        noted_at=None if note is None else datetime.fromtimestamp(note.received_at, UTC),
    )
