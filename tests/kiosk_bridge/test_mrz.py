"""The TD1 MRZ: the DESIGN.md example, every check digit, the century rule, round trips."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk_bridge.errors import IdentityRefused, RefusalReason
from kiosk_bridge.identity import Sex
from kiosk_bridge.mrz import (
    TD1,
    cccd_number,
    cccd_optional_data,
    check_digit,
    format_td1,
    parse_td1,
)

TODAY = date(2025, 11, 1)
# DESIGN.md, "Identity (CCCD)": a synthetic CCCD
DESIGN_EXAMPLE = (
    "IDVNM0850098761001085009876<<2\n8504124M4504126VNM<<<<<<<<<<<8\nNGUYEN<<VAN<BINH<<<<<<<<<<<<<<"
)
# ICAO 9303 part 5, the TD1 specimen
ICAO_SPECIMEN = (
    "I<UTOD231458907<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<"
)


def _refusal_of(parse: Callable[[], object]) -> RefusalReason | None:
    """The reason ``parse`` was refused with, or ``None`` if it succeeded."""
    try:
        parse()
    except IdentityRefused as refused:
        return refused.reason
    return None


def _with_char(text: str, line: int, column: int, char: str) -> str:
    lines = text.split("\n")
    lines[line] = lines[line][:column] + char + lines[line][column + 1 :]
    return "\n".join(lines)


def _other_digit(digit: str) -> str:
    return str((int(digit) + 1) % 10)


def test_the_design_example_parses_into_its_fields() -> None:
    mrz = parse_td1(DESIGN_EXAMPLE, today=TODAY)
    assert mrz == TD1(
        document_code="ID",
        issuing_state="VNM",
        document_number="085009876",
        optional_data_1="001085009876<<2",
        birth_date=date(1985, 4, 12),
        sex=Sex.MALE,
        expiry_date=date(2045, 4, 12),
        nationality="VNM",
        optional_data_2="",
        primary_identifier="NGUYEN",
        secondary_identifier="VAN BINH",
    )
    assert cccd_number(mrz) == "001085009876"


def test_the_icao_specimen_parses() -> None:
    mrz = parse_td1(ICAO_SPECIMEN, today=TODAY)
    assert (mrz.document_code, mrz.document_number, mrz.sex) == ("I", "D23145890", Sex.FEMALE)
    assert (mrz.birth_date, mrz.expiry_date) == (date(1974, 8, 12), date(2012, 4, 15))
    assert (mrz.primary_identifier, mrz.secondary_identifier) == ("ERIKSSON", "ANNA MARIA")


@pytest.mark.parametrize(
    ("text", "digit"),
    [
        ("D23145890", "7"),
        ("740812", "2"),
        ("120415", "9"),
        ("L898902C3", "6"),
        ("085009876", "1"),
        ("001085009876", "2"),
        ("<<<<<<", "0"),
    ],
)
def test_check_digits_follow_icao_9303(text: str, digit: str) -> None:
    assert check_digit(text) == digit


@pytest.mark.parametrize("text", [DESIGN_EXAMPLE, ICAO_SPECIMEN])
def test_formatting_a_parsed_mrz_gives_back_the_same_text(text: str) -> None:
    assert format_td1(parse_td1(text, today=TODAY)) == text


@pytest.mark.parametrize(
    ("line", "column", "field"),
    [
        (0, 14, "document_number"),
        (1, 6, "birth_date"),
        (1, 14, "expiry_date"),
        (1, 29, "composite"),
    ],
)
def test_a_wrong_check_digit_is_refused_naming_its_field(
    line: int, column: int, field: str
) -> None:
    original = DESIGN_EXAMPLE.split("\n")[line][column]
    text = _with_char(DESIGN_EXAMPLE, line, column, _other_digit(original))
    with pytest.raises(IdentityRefused) as caught:
        parse_td1(text, today=TODAY)
    assert caught.value.reason is RefusalReason.MRZ_CHECK_DIGIT
    assert caught.value.details["field"] == field


def test_a_changed_data_character_is_caught_by_the_composite() -> None:
    # optional data 2 has no check digit of its own: only the composite covers it
    text = _with_char(DESIGN_EXAMPLE, 1, 20, "7")
    with pytest.raises(IdentityRefused) as caught:
        parse_td1(text, today=TODAY)
    assert caught.value.details["field"] == "composite"


def test_a_wrong_id_check_digit_in_optional_data_is_refused() -> None:
    good = parse_td1(DESIGN_EXAMPLE, today=TODAY)
    text = format_td1(replace(good, optional_data_1="001085009876<<3"))
    with pytest.raises(IdentityRefused) as caught:
        cccd_number(parse_td1(text, today=TODAY))
    assert caught.value.reason is RefusalReason.MRZ_CHECK_DIGIT
    assert caught.value.details["field"] == "id_number"


def test_a_document_number_that_is_not_the_ids_last_nine_digits_is_an_id_mismatch() -> None:
    good = parse_td1(DESIGN_EXAMPLE, today=TODAY)
    text = format_td1(replace(good, document_number="085009877"))
    with pytest.raises(IdentityRefused) as caught:
        cccd_number(parse_td1(text, today=TODAY))
    assert caught.value.reason is RefusalReason.ID_MISMATCH


def test_optional_data_without_a_cccd_is_a_format_error() -> None:
    specimen = parse_td1(ICAO_SPECIMEN, today=TODAY)
    with pytest.raises(IdentityRefused) as caught:
        cccd_number(specimen)
    assert caught.value.reason is RefusalReason.MRZ_FORMAT


@pytest.mark.parametrize(
    "text",
    [
        "",
        DESIGN_EXAMPLE.replace("\n", "\n\n"),
        DESIGN_EXAMPLE[:-1],
        DESIGN_EXAMPLE + "<",
        DESIGN_EXAMPLE.lower(),
        DESIGN_EXAMPLE.replace("NGUYEN", "NGUYỄN"),
        DESIGN_EXAMPLE.replace("<", " "),
        "\n".join(DESIGN_EXAMPLE.split("\n")[:2]),
    ],
    ids=["empty", "blank-line", "short", "long", "lower-case", "diacritics", "spaces", "two-lines"],
)
def test_a_malformed_layout_is_a_format_error(text: str) -> None:
    with pytest.raises(IdentityRefused) as caught:
        parse_td1(text, today=TODAY)
    assert caught.value.reason is RefusalReason.MRZ_FORMAT


def test_oversized_text_is_a_format_error() -> None:
    with pytest.raises(IdentityRefused) as caught:
        parse_td1(DESIGN_EXAMPLE * 1000, today=TODAY)
    assert caught.value.reason is RefusalReason.MRZ_FORMAT


def test_lines_may_come_concatenated_or_with_crlf() -> None:
    expected = parse_td1(DESIGN_EXAMPLE, today=TODAY)
    assert parse_td1(DESIGN_EXAMPLE.replace("\n", ""), today=TODAY) == expected
    assert parse_td1(DESIGN_EXAMPLE.replace("\n", "\r\n") + "\r\n", today=TODAY) == expected


def _mrz(**changes: object) -> TD1:
    return replace(parse_td1(DESIGN_EXAMPLE, today=TODAY), **changes)  # type: ignore[arg-type]


def test_a_birth_year_takes_the_latest_century_not_in_the_future() -> None:
    text = format_td1(_mrz(birth_date=date(2025, 1, 1)))
    assert parse_td1(text, today=date(2025, 6, 1)).birth_date == date(2025, 1, 1)
    assert parse_td1(text, today=date(2024, 12, 31)).birth_date == date(1925, 1, 1)
    assert parse_td1(text, today=date(2025, 1, 1)).birth_date == date(2025, 1, 1)


def test_an_expiry_is_always_in_this_century() -> None:
    for expiry in (date(2001, 1, 1), date(2045, 4, 12), date(2099, 12, 31)):
        assert parse_td1(format_td1(_mrz(expiry_date=expiry)), today=TODAY).expiry_date == expiry


@pytest.mark.parametrize("check", ["<", "0"])
def test_an_all_filler_expiry_means_no_expiry(check: str) -> None:
    text = format_td1(_mrz(expiry_date=None))
    assert text.split("\n")[1][8:15] == "<<<<<<0"
    if check == "<":
        # the composite covers the expiry check digit: recompute it for the < variant
        line1, line2, line3 = text.split("\n")
        line2 = line2[:14] + "<" + line2[15:29]
        line2 += check_digit(line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29])
        text = "\n".join((line1, line2, line3))
    assert parse_td1(text, today=TODAY).expiry_date is None


@pytest.mark.parametrize(("yymmdd", "field"), [("851312", "birth_date"), ("850230", "birth_date")])
def test_an_impossible_date_is_a_format_error(yymmdd: str, field: str) -> None:
    line1, _, line3 = DESIGN_EXAMPLE.split("\n")
    line2 = yymmdd + check_digit(yymmdd) + "M4504126VNM<<<<<<<<<<<"
    line2 += check_digit(line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29])
    with pytest.raises(IdentityRefused) as caught:
        parse_td1("\n".join((line1, line2, line3)), today=TODAY)
    assert caught.value.reason is RefusalReason.MRZ_FORMAT
    assert caught.value.details["field"] == field


@pytest.mark.parametrize(
    ("code", "sex"), [("M", Sex.MALE), ("F", Sex.FEMALE), ("X", Sex.OTHER), ("<", Sex.UNKNOWN)]
)
def test_sex_codes(code: str, sex: Sex) -> None:
    text = format_td1(_mrz(sex=sex))
    assert text.split("\n")[1][7] == code
    assert parse_td1(text, today=TODAY).sex is sex


def test_repr_shows_no_personal_data() -> None:
    shown = repr(parse_td1(DESIGN_EXAMPLE, today=TODAY))
    assert "NGUYEN" not in shown
    assert "085009876" not in shown
    assert "1985" not in shown


_DIGITS = st.text(alphabet="0123456789", min_size=12, max_size=12)
_NAME = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8)


@given(
    cccd=_DIGITS,
    age_days=st.integers(min_value=0, max_value=99 * 365),
    expiry=st.none() | st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    sex=st.sampled_from(Sex),
    surname=_NAME,
    given_names=st.lists(_NAME, min_size=0, max_size=3),
)
def test_format_then_parse_round_trips(
    *,
    cccd: str,
    age_days: int,
    expiry: date | None,
    sex: Sex,
    surname: str,
    given_names: list[str],
) -> None:
    secondary = " ".join(given_names)
    # names longer than line 3 are cut by ICAO's rule: keep them within 30 characters here
    if len(surname) + 2 + len(secondary) > 30:
        secondary = ""
    mrz = TD1(
        document_code="ID",
        issuing_state="VNM",
        document_number=cccd[-9:],
        optional_data_1=cccd_optional_data(cccd),
        birth_date=TODAY - timedelta(days=age_days),
        sex=sex,
        expiry_date=expiry,
        nationality="VNM",
        optional_data_2="",
        primary_identifier=surname,
        secondary_identifier=secondary,
    )
    parsed = parse_td1(format_td1(mrz), today=TODAY)
    assert parsed == mrz
    assert cccd_number(parsed) == cccd


@given(st.text(max_size=200))
def test_any_text_is_parsed_or_refused_with_a_reason(text: str) -> None:
    assert _refusal_of(lambda: parse_td1(text, today=TODAY)) in {
        None,
        RefusalReason.MRZ_FORMAT,
        RefusalReason.MRZ_CHECK_DIGIT,
    }


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<", min_size=90, max_size=90))
def test_any_mrz_alphabet_text_is_parsed_or_refused_with_a_reason(text: str) -> None:
    assert _refusal_of(lambda: cccd_number(parse_td1(text, today=TODAY))) in {
        None,
        RefusalReason.MRZ_FORMAT,
        RefusalReason.MRZ_CHECK_DIGIT,
        RefusalReason.ID_MISMATCH,
    }


def _value(char: str) -> int:
    return 0 if char == "<" else int(char, 36)


# no check digit covers the document code, issuing state, sex, nationality or the names
_UNCHECKED = {*range(5), 37, 45, 46, 47, *range(60, 90)}


@given(position=st.integers(min_value=0, max_value=89), char=st.sampled_from("0123456789<AZ"))
def test_a_single_changed_character_never_passes_unnoticed_in_checked_fields(
    position: int, char: str
) -> None:
    flat = DESIGN_EXAMPLE.replace("\n", "")
    if flat[position] == char or position in _UNCHECKED:
        return
    if _value(flat[position]) % 10 == _value(char) % 10:
        return  # e.g. < 0 A K U all weigh 0: swaps the ICAO check digit cannot see
    changed = flat[:position] + char + flat[position + 1 :]
    with pytest.raises(IdentityRefused):
        cccd_number(parse_td1(changed, today=TODAY))
