"""DG13: fields by number, nested parents and spouse, opaque unknowns, hostile bytes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date

import pytest
from asn1crypto import core
from hypothesis import given
from hypothesis import strategies as st

from kiosk_bridge.dg13 import (
    DG13_OID,
    MAX_DG13_BYTES,
    OpaqueField,
    PersonalData,
    card_date,
    card_expiry,
    card_sex,
    encode_dg13,
    parse_dg13,
)
from kiosk_bridge.errors import IdentityRefused, RefusalReason
from kiosk_bridge.identity import Sex
from kiosk_bridge.testcards import synthetic_citizen

# fields 1-4 of a synthetic card, written out byte by byte
SMALL_DG13 = bytes.fromhex(
    "6d 59 30 57"
    " 02 01 01"  # version 1
    " 06 06 28 d3 16 01 00 08"  # 1.0.10646.1.0.8
    " 31 4a"
    " 30 11 02 01 01 0c 0c 303031303835303039383736"  # 1: "001085009876"
    " 30 1a 02 01 02 0c 15 4cc3aa205468e1bbad204e676869e1bb876d20416e"  # 2: "Lê Thử Nghiệm An"
    " 30 0f 02 01 03 0c 0a 31322f30342f31393835"  # 3: "12/04/1985"
    " 30 08 02 01 04 0c 03 4e616d"  # 4: "Nam"
)
SMALL = PersonalData(
    id_number="001085009876", full_name="Lê Thử Nghiệm An", birth_date="12/04/1985", sex="Nam"
)
FULL = replace(
    synthetic_citizen(7, today=date(2025, 11, 1)).personal_data(),
    spouse_name="Phạm Thử Nghiệm Vợ",
    old_id_number="099000111",
)


class _Field(core.SequenceOf):  # type: ignore[misc]
    _child_spec = core.Any


def _raw_dg13(*fields: list[core.Asn1Value], version: int = 1, oid: str = DG13_OID) -> bytes:
    """A DG13 built field by field with asn1crypto (for layouts the encoder never writes)."""

    class Fields(core.SetOf):  # type: ignore[misc]
        _child_spec = _Field

    class Body(core.Sequence):  # type: ignore[misc]
        _fields = [  # noqa: RUF012
            ("version", core.Integer),
            ("charset", core.ObjectIdentifier),
            ("fields", Fields),
        ]

    contents = b"".join(_Field([core.Any(value) for value in f]).dump() for f in fields)
    body = Body(
        {"version": version, "charset": oid, "fields": Fields(contents=contents)},
        explicit=("application", 13),
    )
    return bytes(body.dump())


def _refusal_of(parse: Callable[[], object]) -> RefusalReason | None:
    """The reason ``parse`` was refused with, or ``None`` if it succeeded."""
    try:
        parse()
    except IdentityRefused as refused:
        return refused.reason
    return None


def test_a_byte_fixture_parses_into_named_fields() -> None:
    assert parse_dg13(SMALL_DG13) == SMALL


def test_the_encoder_writes_the_byte_fixture() -> None:
    assert encode_dg13(SMALL) == SMALL_DG13


def test_every_known_field_round_trips() -> None:
    parsed = parse_dg13(encode_dg13(FULL))
    assert parsed == FULL
    assert parsed.father_name == FULL.father_name
    assert parsed.spouse_name == "Phạm Thử Nghiệm Vợ"


@given(st.permutations(sorted({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})))
def test_fields_are_found_by_number_in_any_order(order: list[int]) -> None:
    assert parse_dg13(encode_dg13(FULL, field_order=order)) == FULL


def test_absent_fields_are_none_and_positions_do_not_shift() -> None:
    sparse = PersonalData(id_number="001085009876", full_name="Lê Thử Nghiệm An", residence="X")
    parsed = parse_dg13(encode_dg13(sparse))
    assert parsed.residence == "X"
    assert parsed.birth_date is None
    assert parsed.religion is None
    assert parsed.spouse_name is None


def test_printable_string_values_are_read_too() -> None:
    ascii_only = PersonalData(id_number="001085009876", full_name="Le Thu Nghiem An")
    assert parse_dg13(encode_dg13(ascii_only, string_type="printable")) == ascii_only


def test_unknown_fields_are_kept_opaque_and_round_trip() -> None:
    unknown = (
        OpaqueField(16, (core.UTF8String("chưa rõ").dump(),)),
        OpaqueField(42, (core.Integer(7).dump(), core.OctetString(b"\x00\xff").dump())),
    )
    data = replace(SMALL, unknown=unknown)
    parsed = parse_dg13(encode_dg13(data))
    assert parsed.unknown == unknown
    assert parsed == data


def test_parents_may_also_follow_the_field_number_directly() -> None:
    data = _raw_dg13(
        [core.Integer(1), core.UTF8String("001085009876")],
        [core.Integer(13), core.UTF8String("Cha Thử Nghiệm"), core.UTF8String("Mẹ Thử Nghiệm")],
    )
    parsed = parse_dg13(data)
    assert (parsed.father_name, parsed.mother_name) == ("Cha Thử Nghiệm", "Mẹ Thử Nghiệm")


def test_an_unknown_parent_is_none() -> None:
    data = replace(SMALL, father_name=None, mother_name="Mẹ Thử Nghiệm")
    parsed = parse_dg13(encode_dg13(data))
    assert (parsed.father_name, parsed.mother_name) == (None, "Mẹ Thử Nghiệm")


def test_decomposed_vietnamese_is_normalised_to_nfc() -> None:
    decomposed = "Le\u0302 Thu\u031b\u0309 Nghie\u0323\u0302m An"
    data = _raw_dg13([core.Integer(2), core.UTF8String(decomposed)])
    assert parse_dg13(data).full_name == "Lê Thử Nghiệm An"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (SMALL_DG13[:-1], "truncated"),
        (SMALL_DG13 + b"\x00", "trailing byte"),
        (b"\x6e" + SMALL_DG13[1:], "wrong tag"),
        (_raw_dg13([core.Integer(1), core.UTF8String("1")], version=2), "version 2"),
        (_raw_dg13([core.Integer(1), core.UTF8String("1")], oid="1.2.3"), "other charset"),
        (
            _raw_dg13(
                [core.Integer(1), core.UTF8String("1")], [core.Integer(1), core.UTF8String("2")]
            ),
            "field twice",
        ),
        (_raw_dg13([core.Integer(2), core.Integer(5)]), "name is an INTEGER"),
        (_raw_dg13([core.Integer(2)]), "name without value"),
        (_raw_dg13([core.UTF8String("2"), core.UTF8String("x")]), "number is text"),
        (_raw_dg13([core.Integer(-1), core.UTF8String("x")]), "negative number"),
        (_raw_dg13([]), "empty field"),
        (_raw_dg13([core.Integer(13), core.Integer(1)]), "parent is an INTEGER"),
        (b"", "empty"),
        (b"\x6d" + b"\x84\xff\xff\xff\xff", "absurd length"),
        (b"\x00" * (MAX_DG13_BYTES + 1), "oversized"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_malformed_dg13_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(IdentityRefused) as caught:
        parse_dg13(data)
    assert caught.value.reason is RefusalReason.DG13_MALFORMED, why


def test_every_truncation_is_refused() -> None:
    data = encode_dg13(FULL)
    for cut in range(len(data)):
        with pytest.raises(IdentityRefused):
            parse_dg13(data[:cut])


@given(st.binary(max_size=2048))
def test_any_bytes_are_parsed_or_refused_with_a_reason(data: bytes) -> None:
    assert _refusal_of(lambda: parse_dg13(data)) in {None, RefusalReason.DG13_MALFORMED}


@given(position=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255))
def test_any_changed_byte_is_parsed_or_refused_with_a_reason(position: int, value: int) -> None:
    data = bytearray(encode_dg13(FULL))
    data[position % len(data)] = value
    assert _refusal_of(lambda: parse_dg13(bytes(data))) in {None, RefusalReason.DG13_MALFORMED}


def test_repr_names_fields_but_shows_no_values() -> None:
    shown = repr(parse_dg13(encode_dg13(FULL)))
    assert "full_name" in shown
    assert FULL.full_name is not None
    assert FULL.full_name not in shown
    assert "001085009876" not in shown


@pytest.mark.parametrize(
    ("text", "expected"), [("12/04/1985", date(1985, 4, 12)), (" 01/01/2000 ", date(2000, 1, 1))]
)
def test_card_dates_are_day_month_year(text: str, expected: date) -> None:
    assert card_date(text, field_name="birth date") == expected


@pytest.mark.parametrize("text", ["1985-04-12", "31/02/1985", "1/4/1985", "", "12/04/85"])
def test_other_date_forms_are_refused(text: str) -> None:
    with pytest.raises(IdentityRefused) as caught:
        card_date(text, field_name="birth date")
    assert caught.value.reason is RefusalReason.DG13_MALFORMED


@pytest.mark.parametrize("text", ["Không thời hạn", "KHÔNG THỜI HẠN", "khong thoi han"])
def test_no_expiry_is_read_as_none(text: str) -> None:
    assert card_expiry(text) is None


def test_an_expiry_date_is_read_as_a_date() -> None:
    assert card_expiry("12/04/2045") == date(2045, 4, 12)


@pytest.mark.parametrize(
    ("text", "sex"),
    [("Nam", Sex.MALE), ("Nữ", Sex.FEMALE), ("NỮ", Sex.FEMALE), ("?", Sex.UNKNOWN)],
)
def test_sex_words(text: str, sex: Sex) -> None:
    assert card_sex(text) is sex
