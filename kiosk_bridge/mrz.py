"""The TD1 machine-readable zone (ICAO 9303 part 5) of the CCCD: parse, check, format.

Three lines of 30 characters from ``A``–``Z``, ``0``–``9`` and the filler ``<``::

      pos  1 2 | 3 4 5 | 6 ......... 14 | 15 | 16 .................. 30
    1      doc | state | document no.   | cd | optional data 1
           I D | V N M | 0 8 5 0 0 9 8 7 6 | 1 | 0 0 1 0 8 5 0 0 9 8 7 6 < < 2
                                                 └── CCCD: 12-digit ID, <<, ID check digit

      pos  1 ........ 6 | 7  | 8   | 9 ....... 14 | 15 | 16 17 18 | 19 ....... 29 | 30
    2      birth YYMMDD | cd | sex | expiry YYMMDD | cd | nation.  | optional data 2 | composite
           8 5 0 4 1 2  | 4  | M   | 4 5 0 4 1 2   | 6  | V N M    | < < < < < < < < < < < | 8

      pos  1 ....................................................... 30
    3      primary identifier << secondary identifier (components joined by <)
           N G U Y E N < < V A N < B I N H < < < < < < < < < < < < < <

Check digits (``cd``) weight the characters 7, 3, 1, 7, 3, 1, ... (``<`` = 0, digits as
themselves, ``A``–``Z`` = 10–35) and keep the sum modulo 10.  The composite covers line 1
from position 6 to 30, and line 2's positions 1–7, 9–15 and 19–29.

For a CCCD the document number is the last 9 digits of the 12-digit ID, and optional data 1
carries the whole ID, ``<<`` and the ID's own check digit: :func:`cccd_number` checks both.

Two-digit years: a birth date takes the latest century that does not put it in the future
(so a centenarian's ``25`` reads as 2025 — the caller cross-checks the full year against
DG13); an expiry is always 20YY.  An expiry of all fillers means "no expiry" (cards of
residents over 60).  A birth date with unknown day or month (fillers) is refused: the
identity needs a full date.  ICAO's long-document-number scheme (check digit position holding
``<``) is not used by the CCCD and is refused as a format error.

Pure: text and ``today`` in, values out; every failure is an
:class:`~kiosk_bridge.errors.IdentityRefused` with reason ``mrz_format`` or
``mrz_check_digit`` (``details["field"]`` names the field).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final

from kiosk_bridge.errors import IdentityRefused, RefusalReason
from kiosk_bridge.identity import Sex

LINES: Final = 3
LINE_LENGTH: Final = 30
FILLER: Final = "<"

_CHARSET = re.compile(r"[A-Z0-9<]*")
_WEIGHTS: Final = (7, 3, 1)
_SEX_CODES: Final = {"M": Sex.MALE, "F": Sex.FEMALE, "X": Sex.OTHER, FILLER: Sex.UNKNOWN}
_SEX_LETTERS: Final = {sex: code for code, sex in _SEX_CODES.items()}
_CCCD_OPTIONAL_DATA = re.compile(r"([0-9]{12})<<([0-9])")


@dataclass(frozen=True, slots=True, kw_only=True)
class TD1:
    """A parsed TD1 MRZ, fillers stripped from the ends of each field.

    ``birth_date`` is resolved to a full date by the century rule; ``birth_date_yymmdd``
    keeps the six digits as printed, for cross-checks against other sources.
    ``expiry_date`` is ``None`` when the card has no expiry.
    """

    document_code: str
    issuing_state: str
    document_number: str
    optional_data_1: str
    birth_date: date
    sex: Sex
    expiry_date: date | None
    nationality: str
    optional_data_2: str
    primary_identifier: str
    secondary_identifier: str

    @property
    def birth_date_yymmdd(self) -> str:
        return self.birth_date.strftime("%y%m%d")

    def __repr__(self) -> str:
        # the MRZ is personal data: show only what identifies the document type
        return f"TD1(document_code={self.document_code!r}, issuing_state={self.issuing_state!r})"


def check_digit(text: str) -> str:
    """The ICAO 9303 check digit of ``text`` (weights 7-3-1, ``<`` = 0, ``A`` = 10, ...)."""
    total = 0
    for index, char in enumerate(text):
        total += _char_value(char) * _WEIGHTS[index % 3]
    return str(total % 10)


def parse_td1(text: str, *, today: date) -> TD1:
    """Parse a TD1 MRZ: three 30-character lines, separated by newlines or concatenated.

    Every check digit is verified (document number, birth date, expiry, composite).
    ``today`` resolves the century of the birth date.
    """
    lines = _split_lines(text)
    line1, line2, line3 = lines
    document_code = _strip(line1[0:2])
    if not document_code or document_code[0] not in "ACI":
        raise _format_error("document_code", "the document code is not a TD1 card code")
    number_field, number_check = line1[5:14], line1[14]
    if number_check == FILLER:
        raise _format_error(
            "document_number", "the long-document-number scheme is not used by this card"
        )
    _verify(number_field, number_check, "document_number")
    birth_field, birth_check = line2[0:6], line2[6]
    _verify(birth_field, birth_check, "birth_date")
    expiry_field, expiry_check = line2[8:14], line2[14]
    _verify(expiry_field, expiry_check, "expiry_date")
    composite = line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]
    _verify(composite, line2[29], "composite")
    sex_code = line2[7]
    if sex_code not in _SEX_CODES:
        raise _format_error("sex", "the sex code is not M, F, X or <")
    primary, secondary = _split_names(line3)
    return TD1(
        document_code=document_code,
        issuing_state=_strip(line1[2:5]),
        document_number=_strip(number_field),
        optional_data_1=_strip(line1[15:30]),
        birth_date=_birth_date(birth_field, today=today),
        sex=_SEX_CODES[sex_code],
        expiry_date=_expiry_date(expiry_field),
        nationality=_strip(line2[15:18]),
        optional_data_2=_strip(line2[18:29]),
        primary_identifier=primary,
        secondary_identifier=secondary,
    )


def format_td1(mrz: TD1) -> str:
    """Encode ``mrz`` as three 30-character lines joined by ``\\n``, check digits computed.

    The inverse of :func:`parse_td1` (names are upper-cased, spaces become ``<`` and the
    line is cut at 30 characters, as ICAO prescribes).  Raises ``ValueError`` for a field
    that does not fit or holds characters outside the MRZ alphabet.
    """
    document_number = _field(mrz.document_number, 9, "document_number")
    line1 = (
        _field(mrz.document_code, 2, "document_code")
        + _field(mrz.issuing_state, 3, "issuing_state")
        + document_number
        + check_digit(document_number)
        + _field(mrz.optional_data_1, 15, "optional_data_1")
    )
    birth = mrz.birth_date.strftime("%y%m%d")
    expiry = FILLER * 6 if mrz.expiry_date is None else mrz.expiry_date.strftime("%y%m%d")
    if mrz.expiry_date is not None and mrz.expiry_date.year // 100 != 20:
        raise ValueError("an MRZ expiry must lie in 2000-2099")
    line2 = (
        birth
        + check_digit(birth)
        + _SEX_LETTERS[mrz.sex]
        + expiry
        + check_digit(expiry)
        + _field(mrz.nationality, 3, "nationality")
        + _field(mrz.optional_data_2, 11, "optional_data_2")
    )
    line2 += check_digit(line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29])
    names = _name_part(mrz.primary_identifier) + FILLER * 2 + _name_part(mrz.secondary_identifier)
    line3 = names[:LINE_LENGTH].ljust(LINE_LENGTH, FILLER)
    return "\n".join((line1, line2, line3))


def cccd_number(mrz: TD1) -> str:
    """The 12-digit CCCD number from optional data 1, with its check digit verified.

    The document number must be the ID's last 9 digits (reason ``id_mismatch`` otherwise).
    """
    match = _CCCD_OPTIONAL_DATA.fullmatch(mrz.optional_data_1)
    if match is None:
        raise _format_error(
            "optional_data_1", "optional data 1 does not hold a 12-digit ID and its check digit"
        )
    cccd, digit = match.group(1), match.group(2)
    if check_digit(cccd) != digit:
        raise IdentityRefused(
            RefusalReason.MRZ_CHECK_DIGIT,
            "The MRZ check digit of the ID number is wrong.",
            details={"field": "id_number"},
        )
    if mrz.document_number != cccd[-9:]:
        raise IdentityRefused(
            RefusalReason.ID_MISMATCH,
            "The MRZ document number is not the last 9 digits of the ID number.",
            details={"sources": "mrz_document_number,mrz_optional_data"},
        )
    return cccd


def cccd_optional_data(cccd: str) -> str:
    """Optional data 1 of a CCCD's MRZ for ``cccd``: the ID, ``<<``, its check digit."""
    return f"{cccd}<<{check_digit(cccd)}"


def _char_value(char: str) -> int:
    if char == FILLER:
        return 0
    if "0" <= char <= "9":
        return ord(char) - ord("0")
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 10
    raise _format_error("charset", "the MRZ holds a character outside A-Z, 0-9 and <")


def _split_lines(text: str) -> tuple[str, str, str]:
    lines = [line.rstrip("\r") for line in text.strip().split("\n")]
    if len(lines) == 1 and len(lines[0]) == LINES * LINE_LENGTH:
        lines = [lines[0][i : i + LINE_LENGTH] for i in range(0, LINES * LINE_LENGTH, 30)]
    if len(lines) != LINES or any(len(line) != LINE_LENGTH for line in lines):
        raise _format_error("layout", "the MRZ is not three lines of 30 characters")
    if not all(_CHARSET.fullmatch(line) for line in lines):
        raise _format_error("charset", "the MRZ holds a character outside A-Z, 0-9 and <")
    return lines[0], lines[1], lines[2]


def _verify(field_text: str, digit: str, name: str) -> None:
    expected = check_digit(field_text)
    # an all-filler field may carry < as its check digit (ICAO 9303 part 3)
    if digit == expected or (digit == FILLER and set(field_text) == {FILLER}):
        return
    raise IdentityRefused(
        RefusalReason.MRZ_CHECK_DIGIT,
        f"The MRZ check digit of the {name.replace('_', ' ')} is wrong.",
        details={"field": name},
    )


def _birth_date(yymmdd: str, *, today: date) -> date:
    if not yymmdd.isdigit():
        raise _format_error("birth_date", "the birth date is not a full YYMMDD date")
    year = int(yymmdd[:2])
    candidate = _date(2000 + year, yymmdd, "birth_date")
    if candidate <= today:
        return candidate
    return _date(1900 + year, yymmdd, "birth_date")


def _expiry_date(yymmdd: str) -> date | None:
    if yymmdd == FILLER * 6:
        return None
    if not yymmdd.isdigit():
        raise _format_error("expiry_date", "the expiry is not a YYMMDD date")
    return _date(2000 + int(yymmdd[:2]), yymmdd, "expiry_date")


def _date(year: int, yymmdd: str, name: str) -> date:
    try:
        return date(year, int(yymmdd[2:4]), int(yymmdd[4:6]))
    except ValueError:
        # 29 February of a year that is not a leap year in the other century lands here too
        raise _format_error(name, f"the {name.replace('_', ' ')} is not a valid date") from None


def _split_names(line: str) -> tuple[str, str]:
    primary, _, secondary = line.partition(FILLER * 2)
    return _strip(primary).replace(FILLER, " "), _strip(secondary).replace(FILLER, " ")


def _strip(text: str) -> str:
    # ICAO fills to the right: only trailing fillers are padding
    return text.rstrip(FILLER)


def _field(value: str, width: int, name: str) -> str:
    if len(value) > width or not _CHARSET.fullmatch(value):
        raise ValueError(f"{name} does not fit {width} MRZ characters: {value!r}")
    return value.ljust(width, FILLER)


def _name_part(name: str) -> str:
    part = FILLER.join(name.upper().split())
    if not _CHARSET.fullmatch(part):
        raise ValueError("names must be transliterated to A-Z before formatting")
    return part


def _format_error(name: str, sentence: str) -> IdentityRefused:
    return IdentityRefused(
        RefusalReason.MRZ_FORMAT, sentence[0].upper() + sentence[1:] + ".", details={"field": name}
    )
