"""The measurement model: readings, instants, link settings, the simulators' truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from vitals.clock import Clock, Instant
from vitals.link import LinkSettings, Parity
from vitals.model import DeviceInfo, Flag, Kind, Reading, Status
from vitals.sim.truth import Period, Truth

DEVICE = DeviceInfo(model="A&D AD-4406", protocol="and-scale", port="/dev/ttyUSB1")
WALL_NS = 1_763_700_000 * 10**9  # 2025-11-21 04:40:00 UTC


def _clock(mono: list[int]) -> Clock:
    return Clock(monotonic_ns=lambda: mono[0], wall_ns=lambda: WALL_NS)


def test_clock_maps_monotonic_time_onto_utc() -> None:
    mono = [5_000_000_000]
    clock = _clock(mono)
    start = clock.now()
    mono[0] += 1_500_000_000
    later = clock.now()
    assert start.utc == datetime.fromtimestamp(WALL_NS / 1e9, tz=UTC)
    assert later.utc - start.utc == timedelta(seconds=1.5)
    assert later.seconds_since(start) == 1.5
    assert clock.at(mono[0] - 500_000_000).utc == start.utc + timedelta(seconds=1)


def test_an_instant_must_be_utc() -> None:
    with pytest.raises(ValueError, match="aware UTC"):
        Instant(0, datetime(2025, 11, 21, 12, 0))
    with pytest.raises(ValueError, match="aware UTC"):
        Instant(0, datetime(2025, 11, 21, 12, 0, tzinfo=timezone(timedelta(hours=7))))


def _at() -> Instant:
    return _clock([0]).now()


def test_a_valid_reading_needs_a_value_and_a_missing_one_none() -> None:
    with pytest.raises(ValueError, match="a valid spo2 reading needs a value"):
        Reading(Kind.SPO2, None, "%", _at(), DEVICE)
    with pytest.raises(ValueError, match="cannot carry a value"):
        Reading(Kind.SPO2, Decimal(97), "%", _at(), DEVICE, status=Status.NOT_AVAILABLE)
    with pytest.raises(ValueError, match="must be finite"):
        Reading(Kind.BODY_WEIGHT, Decimal("NaN"), "kg", _at(), DEVICE)


def test_json_form_keeps_the_written_precision() -> None:
    reading = Reading(
        Kind.BODY_WEIGHT,
        Decimal("72.30"),
        "kg",
        _at(),
        DEVICE,
        status=Status.QUESTIONABLE,
        flags=frozenset({Flag.UNSTABLE}),
    )
    assert reading.as_dict() == {
        "kind": "body-weight",
        "value": "72.30",
        "unit": "kg",
        "time": "2025-11-21T04:40:00.000+00:00",
        "status": "questionable",
        "device": "and-scale",
        "port": "/dev/ttyUSB1",
        "flags": ["unstable"],
    }


def test_every_kind_has_a_ucum_unit() -> None:
    assert {kind: kind.unit for kind in (Kind.SYSTOLIC_BP, Kind.OBJECT_TEMPERATURE)} == {
        Kind.SYSTOLIC_BP: "mm[Hg]",
        Kind.OBJECT_TEMPERATURE: "Cel",
    }
    assert all(kind.unit for kind in Kind)


def test_link_settings_describe_themselves_and_refuse_nonsense() -> None:
    link = LinkSettings(19200, parity=Parity.ODD)
    assert str(link) == "19200 8O1"
    assert link.seconds_per_byte == pytest.approx(11 / 19200)
    with pytest.raises(ValueError, match="data bits"):
        LinkSettings(9600, bytesize=9)
    with pytest.raises(ValueError, match="baud rate"):
        LinkSettings(0)


def test_truth_refuses_implausible_physiology() -> None:
    with pytest.raises(ValueError, match="implausible truth: dia=130"):
        Truth(sys=120, dia=130)
    with pytest.raises(ValueError, match="mount_height_mm"):
        Truth(height=190, mount_height_mm=1800)


def test_periods_parse_and_contain() -> None:
    periods = Period.parse_list("5-8, 10.5-12")
    assert periods == (Period(5, 8), Period(10.5, 12))
    assert 7.9 in periods[0]
    assert 8 not in periods[0]
    truth = Truth(finger_out=periods)
    assert not truth.finger_in(11)
    assert truth.finger_in_since(13) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="start < end"):
        Period(3, 2)
