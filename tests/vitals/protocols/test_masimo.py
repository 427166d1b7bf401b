"""Masimo ASCII 1 serial lines (Rad-8, Radical-7)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.vitals.framer_checks import (
    assert_frames_any_split,
    assert_recovers_after_every_truncation,
    round_trip,
)
from vitals.errors import FrameError
from vitals.protocols import masimo as proto
from vitals.protocols.masimo import AlarmCode, AsciiRecord, ExceptionCode

# Rad-8 layout (field order from masimo-datacapture's Rad-8 parser), values from the issue:
# SpO2 98 %, pulse 97 /min, PI 3.60 %, no SpCO/SpMET, no alarm, EXC 800 = full Masimo SET.
RAD8 = (
    b"03/19/16 13:37:12 SN=0000093112 SPO2=098% BPM=097 PI=03.60% SPCO=--.-% "
    b"SPMET=--.-% DESAT=-- PIDELTA=+-- ALARM=0000 EXC=000800\r\n"
)
# The same oximeter with no sensor: dashes everywhere, EXC 001 = no sensor.
NO_SENSOR = (
    b"03/19/16 13:37:13 SN=0000093112 SPO2=---% BPM=--- PI=--.--% SPCO=--.-% "
    b"SPMET=--.-% DESAT=-- PIDELTA=+-- ALARM=0000 EXC=000001\r\n"
)
# Radical-7 example line from MD PnP OpenICE: PVI added, EXC 820 = sensor off + Masimo SET.
RADICAL7 = (
    b"12/01/05 11:56:29 SN=0123456789 SPO2=098% BPM=240 PI=20.00% SPCO=01.0% "
    b"SPMET=00.5% DESAT=01 PIDELTA=-02 PVI=027 ALARM=0000 EXC=000820\r\n"
)
# Radical-5 example line from OpenICE: no SN, 2-digit ALARM (20 = silenced), 3-digit EXC.
RADICAL5 = b"09/15/10 15:10:29 SPO2=097% BPM=064 PI=11.82% ALARM=20 EXC=800\r\n"
# Hypothetical firmware: fields reordered, one unknown field, no PI; keys are what count.
REORDERED = b"03/19/16 13:37:14 EXC=000400 BPM=072 SN=0000093112 NEWFIELD=7 SPO2=097%\r\n"

LINES = [RAD8, NO_SENSOR, RADICAL7, RADICAL5, REORDERED]
PARSED = [AsciiRecord.parse(line) for line in LINES]


def test_rad8_line_decodes_to_its_values() -> None:
    record = AsciiRecord.parse(RAD8)
    assert record.taken_at == datetime(2016, 3, 19, 13, 37, 12)
    assert record.serial_number == "0000093112"
    assert (record.spo2, record.pulse_rate) == (98, 97)
    assert record.alarm == AlarmCode(0)
    assert record.exceptions == ExceptionCode.MASIMO_SET
    assert record.get("DESAT") == "--"


def test_pi_keeps_the_precision_the_device_wrote() -> None:
    pi = AsciiRecord.parse(RAD8).perfusion_index
    assert pi == Decimal("3.60")
    assert str(pi) == "3.60"
    assert AsciiRecord.parse(RADICAL5).perfusion_index == Decimal("11.82")


def test_dashes_are_not_values() -> None:
    record = AsciiRecord.parse(NO_SENSOR)
    assert record.spo2 is None
    assert record.pulse_rate is None
    assert record.perfusion_index is None
    assert record.exceptions == ExceptionCode.NO_SENSOR
    dashed_sn = AsciiRecord.parse(NO_SENSOR.replace(b"0000093112", b"----------"))
    assert dashed_sn.serial_number is None


def test_fields_are_found_by_name_whatever_the_firmware() -> None:
    radical7, radical5, reordered = (AsciiRecord.parse(x) for x in (RADICAL7, RADICAL5, REORDERED))
    assert (radical7.pulse_rate, radical7.get("PVI")) == (240, "027")
    assert radical7.exceptions == ExceptionCode.SENSOR_OFF | ExceptionCode.MASIMO_SET
    assert radical5.serial_number is None
    assert radical5.alarm == AlarmCode.SILENCED
    assert radical5.exceptions == ExceptionCode.MASIMO_SET
    assert (reordered.spo2, reordered.pulse_rate, reordered.perfusion_index) == (97, 72, None)
    assert reordered.exceptions == ExceptionCode.LOW_SIGNAL_IQ
    assert reordered.alarm == AlarmCode(0)


def test_exceptions_in_plain_words() -> None:
    assert proto.describe(0x820) == "sensor off the finger; full Masimo SET processing"
    assert proto.describe(0) == "no exceptions"
    assert proto.describe(0x800000) == "unknown exception bits 800000"


def test_lines_round_trip_byte_for_byte() -> None:
    for line, record in zip(LINES, PARSED, strict=True):
        assert bytes(record) == line
    round_trip(PARSED, AsciiRecord.parse)


def test_build_writes_the_rad8_layout() -> None:
    record = AsciiRecord.build(
        taken_at=datetime(2016, 3, 19, 13, 37, 12),
        serial_number="0000093112",
        spo2=98,
        pulse_rate=97,
        perfusion_index=Decimal("3.60"),
        alarm=0,
        exceptions=ExceptionCode.MASIMO_SET,
    )
    assert bytes(record) == RAD8
    blank = AsciiRecord.build(
        taken_at=datetime(2016, 3, 19, 13, 37, 13),
        serial_number="0000093112",
        spo2=None,
        pulse_rate=None,
        perfusion_index=None,
        exceptions=ExceptionCode.NO_SENSOR,
    )
    assert bytes(blank) == NO_SENSOR


def test_lines_any_split() -> None:
    assert_frames_any_split(proto.framer, b"".join(LINES) * 2, PARSED * 2)


def test_bare_lf_lines_are_accepted() -> None:
    framer = proto.framer()
    assert framer.feed(RAD8.replace(b"\r\n", b"\n") + RADICAL5) == [PARSED[0], PARSED[3]]
    assert framer.stats.discarded_bytes == 0


def test_recovers_after_every_truncation() -> None:
    assert_recovers_after_every_truncation(proto.framer, RADICAL5, RAD8, PARSED[0])


def test_noise_glued_to_the_front_costs_only_the_noise() -> None:
    framer = proto.framer()
    assert framer.feed(b"\x00\xffnoise" + RAD8 + b"\x13" + NO_SENSOR) == PARSED[:2]
    assert framer.stats.discards == {"no sync": 8}


def test_a_line_without_a_date_is_skipped_whole() -> None:
    framer = proto.framer()
    assert framer.feed(b"SPO2=098% BPM=097\r\n" + RAD8) == [PARSED[0]]
    assert framer.stats.discards == {"no sync": 19}


def test_a_bad_line_is_counted_with_its_reason() -> None:
    bad = RAD8.replace(b"SPO2=098%", b"SPO2=105%")
    framer = proto.framer()
    assert framer.feed(bad + RADICAL5) == [PARSED[3]]
    assert framer.stats.discards == {"SPO2=105% outside 0..100": len(bad)}


def test_a_line_without_terminator_is_dropped_as_too_long() -> None:
    framer = proto.framer()
    endless = RAD8[:-2] + b" X=1" * 50  # 325 bytes and no terminator
    assert framer.feed(endless + RAD8) == [PARSED[0]]
    assert framer.stats.discards == {"line too long": proto.MAX_LINE_LENGTH, "no sync": 5}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"\xff" + RAD8, "line is not ASCII"),
        (b"SPO2=098% BPM=097", "line does not start with MM/DD/YY HH:MM:SS"),
        (
            b"13/19/16 13:37:12 SPO2=098% BPM=097",
            "device clock '13/19/16 13:37:12' is not a valid time",
        ),
        (b"03/19/16 13:37:12 SPO2=098% BPM", "field 'BPM' is not KEY=VALUE"),
        (b"03/19/16 13:37:12 SPO2=098% BPM=", "field BPM has an empty or malformed value ''"),
        (
            b"03/19/16 13:37:12 SPO2=098% bpm=097",
            "field name 'bpm' is not upper-case letters and digits",
        ),
        (b"03/19/16 13:37:12 SPO2=098% SPO2=097% BPM=097", "field SPO2 appears twice"),
        (b"03/19/16 13:37:12 BPM=097", "line has no SPO2 field"),
        (b"03/19/16 13:37:12 SPO2=098%", "line has no BPM field"),
        (b"03/19/16 13:37:12 SPO2=9x8% BPM=097", "SPO2=9x8% is neither a number nor dashes"),
        (b"03/19/16 13:37:12 SPO2=098% BPM=250", "BPM=250 outside 0..240"),
        (
            b"03/19/16 13:37:12 SPO2=098% BPM=097 PI=3,60%",
            "PI=3,60% is neither a number nor dashes",
        ),
        (b"03/19/16 13:37:12 SPO2=098% BPM=097 EXC=00G800", "EXC=00G800 is not hexadecimal"),
    ],
)
def test_parse_rejects_non_lines_with_a_clear_error(line: bytes, message: str) -> None:
    with pytest.raises(FrameError) as error:
        AsciiRecord.parse(line)
    assert str(error.value) == message


def test_record_range_checks() -> None:
    with pytest.raises(FrameError) as error:
        AsciiRecord(datetime(1999, 12, 31), (("SPO2", "098%"), ("BPM", "097")))
    assert str(error.value) == "device year 1999 outside 2000..2099"


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    framer = proto.framer()
    records = framer.feed(data)
    for record in records:
        assert AsciiRecord.parse(bytes(record)) == record
    assert framer.pending <= proto.MAX_LINE_LENGTH
    consumed = sum(len(bytes(record)) for record in records)
    assert framer.stats.discarded_bytes + framer.pending + consumed == len(data)


# Noise without ASCII digits cannot forge the date that starts a line, so every line must come
# back, in order, and the noise must be all that is discarded.
_NOISE = st.binary(max_size=40).map(lambda noise: bytes(b for b in noise if not 0x30 <= b <= 0x39))


@given(st.lists(st.tuples(st.sampled_from(range(len(LINES))), _NOISE), max_size=12))
def test_lines_embedded_in_noise_are_all_recovered(parts: list[tuple[int, bytes]]) -> None:
    stream = b"".join(noise + LINES[index] for index, noise in parts)
    framer = proto.framer()
    assert framer.feed(stream) == [PARSED[index] for index, _ in parts]
    assert framer.stats.discarded_bytes == sum(len(noise) for _, noise in parts)
