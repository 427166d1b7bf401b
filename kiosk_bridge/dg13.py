"""DG13 of the CCCD chip: Vietnam's own personal-data group, parsed by field number.

::

    6D len                                    [APPLICATION 13], the data group
      30 len                                  SEQUENCE
        02 01 01                              INTEGER 1                       (version)
        06 06 28 D3 16 01 00 08               OID 1.0.10646.1.0.8             (UTF-8, ISO 10646)
        31 len                                SET OF
          30 len  02 01 01  0C 0C "001085009876"          field 1: ID number
          30 len  02 01 02  0C ..  "Nguyễn Văn Bình"       field 2: full name
          ...
          30 len  02 01 0D  30 len { 0C father  0C mother }   field 13: parents
          30 len  02 01 0E  30 len { 0C spouse }              field 14: spouse (absent if none)

Each field is a SEQUENCE whose first element is the field number; the values that follow are
UTF8String or PrintableString.  Fields are found by NUMBER, never by position: a field may be
absent and the SET's order is not relied on.  Known fields (DESIGN.md, "Identity (CCCD)"):

====  =======================  ====  =================================
 no.  field                     no.  field
====  =======================  ====  =================================
  1   ID number (12 digits)      9   residence
  2   full name                 10   identifying marks
  3   date of birth dd/mm/yyyy  11   issue date dd/mm/yyyy
  4   sex ("Nam" / "Nữ")        12   expiry dd/mm/yyyy, or "Không thời hạn"
  5   nationality               13   father, mother (a nested SEQUENCE)
  6   ethnicity                 14   spouse (a nested SEQUENCE)
  7   religion                  15   old ID number / other document
  8   place of origin           ..   anything else: kept opaque (its DER)
====  =======================  ====  =================================

Fields 13 and 14 are read from a nested SEQUENCE as DESIGN.md draws them, and also when the
names follow the number directly (a layout seen in some readers' notes).  Values are kept as
written on the card (dates as ``dd/mm/yyyy`` text); :func:`card_date` converts them.

ASN.1 is decoded with asn1crypto; any failure is an
:class:`~kiosk_bridge.errors.IdentityRefused` with reason ``dg13_malformed``.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import IntEnum
from typing import Final, Literal

from asn1crypto import core

from kiosk_bridge.errors import IdentityRefused, RefusalReason
from kiosk_bridge.identity import Sex

logger = logging.getLogger(__name__)

DG13_OID: Final = "1.0.10646.1.0.8"
DG13_VERSION: Final = 1
MAX_DG13_BYTES: Final = 16 * 1024
"""A real DG13 holds well under 2 KiB; anything far larger is refused before decoding."""

_EXPLICIT: Final = ("application", 13)
_NO_EXPIRY: Final = "khong thoi han"
_CARD_DATE = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4})")


class FieldNumber(IntEnum):
    """The DG13 field numbers this module names (DESIGN.md)."""

    ID_NUMBER = 1
    FULL_NAME = 2
    BIRTH_DATE = 3
    SEX = 4
    NATIONALITY = 5
    ETHNICITY = 6
    RELIGION = 7
    PLACE_OF_ORIGIN = 8
    RESIDENCE = 9
    IDENTIFYING_MARKS = 10
    ISSUE_DATE = 11
    EXPIRY_DATE = 12
    PARENTS = 13
    SPOUSE = 14
    OLD_ID_NUMBER = 15


# the single-text fields, by number, and the PersonalData attribute each fills
_TEXT_FIELDS: Final = {
    FieldNumber.ID_NUMBER: "id_number",
    FieldNumber.FULL_NAME: "full_name",
    FieldNumber.BIRTH_DATE: "birth_date",
    FieldNumber.SEX: "sex",
    FieldNumber.NATIONALITY: "nationality",
    FieldNumber.ETHNICITY: "ethnicity",
    FieldNumber.RELIGION: "religion",
    FieldNumber.PLACE_OF_ORIGIN: "place_of_origin",
    FieldNumber.RESIDENCE: "residence",
    FieldNumber.IDENTIFYING_MARKS: "identifying_marks",
    FieldNumber.ISSUE_DATE: "issue_date",
    FieldNumber.EXPIRY_DATE: "expiry_date",
    FieldNumber.OLD_ID_NUMBER: "old_id_number",
}


class _Values(core.SequenceOf):  # type: ignore[misc]
    """A field: SEQUENCE { INTEGER number, value... } — or a nested SEQUENCE of names."""

    _child_spec = core.Any


class _Fields(core.SetOf):  # type: ignore[misc]
    _child_spec = _Values


class _PersonalData(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 - asn1crypto's class-level schema
        ("version", core.Integer),
        ("charset", core.ObjectIdentifier),
        ("fields", _Fields),
    ]


@dataclass(frozen=True, slots=True)
class OpaqueField:
    """A field this module does not name: its number and the DER of each value, untouched."""

    number: int
    values: tuple[bytes, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonalData:
    """The fields of one DG13, as written on the card; ``None`` where a field is absent.

    ``repr()`` lists which fields are present, never their values.
    """

    id_number: str | None = None
    full_name: str | None = None
    birth_date: str | None = None
    sex: str | None = None
    nationality: str | None = None
    ethnicity: str | None = None
    religion: str | None = None
    place_of_origin: str | None = None
    residence: str | None = None
    identifying_marks: str | None = None
    issue_date: str | None = None
    expiry_date: str | None = None
    father_name: str | None = None
    mother_name: str | None = None
    spouse_name: str | None = None
    old_id_number: str | None = None
    unknown: tuple[OpaqueField, ...] = field(default=())

    def present(self) -> frozenset[str]:
        """Names of the fields that hold a value."""
        names = {
            name
            for name in (*_TEXT_FIELDS.values(), "father_name", "mother_name", "spouse_name")
            if getattr(self, name) is not None
        }
        return frozenset(names)

    def __repr__(self) -> str:
        unknown = [opaque.number for opaque in self.unknown]
        return f"PersonalData(present={sorted(self.present())!r}, unknown={unknown!r})"


def parse_dg13(data: bytes) -> PersonalData:
    """Decode DG13 bytes (tag 0x6D) into :class:`PersonalData`.

    Refused (``dg13_malformed``): not DER/BER of the layout above, trailing bytes, another
    version or character-set OID, a field number twice, a named field whose value is not text.
    """
    if len(data) > MAX_DG13_BYTES:
        raise _malformed(f"DG13 is {len(data)} bytes, more than the {MAX_DG13_BYTES} allowed")
    try:
        decoded = _PersonalData.load(data, strict=True, explicit=_EXPLICIT)
        version = decoded["version"].native
        charset = decoded["charset"].dotted
        fields = [list(values) for values in decoded["fields"]]
    except (ValueError, TypeError, OverflowError, KeyError, IndexError) as exc:
        raise _malformed(f"DG13 is not valid ASN.1 of the expected layout ({exc})") from None
    if version != DG13_VERSION or charset != DG13_OID:
        raise _malformed("DG13 has an unknown version or character-set identifier")
    texts: dict[str, str | None] = {}
    unknown: list[OpaqueField] = []
    seen: set[int] = set()
    for values in fields:
        number = _field_number(values)
        if number in seen:
            raise _malformed(f"DG13 field {number} appears twice")
        seen.add(number)
        rest = values[1:]
        if number in _TEXT_FIELDS:
            texts[_TEXT_FIELDS[FieldNumber(number)]] = _one_text(rest, number)
        elif number == FieldNumber.PARENTS:
            names = _names(rest, number)
            texts["father_name"] = names[0] if names else None
            texts["mother_name"] = names[1] if len(names) > 1 else None
        elif number == FieldNumber.SPOUSE:
            names = _names(rest, number)
            texts["spouse_name"] = names[0] if names else None
        else:
            unknown.append(OpaqueField(number, tuple(value.dump() for value in rest)))
    return PersonalData(**texts, unknown=tuple(sorted(unknown, key=lambda f: f.number)))


def encode_dg13(
    data: PersonalData,
    *,
    string_type: Literal["utf8", "printable"] = "utf8",
    field_order: Sequence[int] | None = None,
) -> bytes:
    """Encode ``data`` as DG13 bytes (for tests and the kiosk simulator).

    ``string_type`` picks UTF8String or PrintableString (the latter only fits ASCII text);
    ``field_order`` lists field numbers in the order they are written (default: ascending, as
    DER sorts a SET), to prove that parsing never relies on position.  Parents are written as
    a nested SEQUENCE { father, mother }, an unknown parent as an empty string.
    """
    encoded: dict[int, bytes] = {}
    for number, name in _TEXT_FIELDS.items():
        value = getattr(data, name)
        if value is not None:
            encoded[number] = _field(number, [_text(value, string_type)])
    if data.father_name is not None or data.mother_name is not None:
        parents = [_text(name or "", string_type) for name in (data.father_name, data.mother_name)]
        encoded[FieldNumber.PARENTS] = _field(FieldNumber.PARENTS, [_Values(parents)])
    if data.spouse_name is not None:
        spouse = _Values([_text(data.spouse_name, string_type)])
        encoded[FieldNumber.SPOUSE] = _field(FieldNumber.SPOUSE, [spouse])
    for opaque in data.unknown:
        encoded[opaque.number] = _field(
            opaque.number, [core.Any.load(value) for value in opaque.values]
        )
    order = sorted(encoded) if field_order is None else list(field_order)
    if sorted(order) != sorted(encoded):
        raise ValueError("field_order must list exactly the fields present")
    # contents= keeps the chosen order (a SetOf built from a list would sort it)
    fields = _Fields(contents=b"".join(encoded[number] for number in order))
    personal = _PersonalData(
        {"version": DG13_VERSION, "charset": DG13_OID, "fields": fields}, explicit=_EXPLICIT
    )
    return bytes(personal.dump())


def card_date(text: str, *, field_name: str) -> date:
    """A card date ``dd/mm/yyyy`` as a :class:`~datetime.date` (``dg13_malformed`` if not)."""
    match = _CARD_DATE.fullmatch(text.strip())
    if match is None:
        raise _malformed(f"DG13 {field_name} is not a dd/mm/yyyy date")
    day, month, year = (int(part) for part in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        raise _malformed(f"DG13 {field_name} is not a valid date") from None


def card_expiry(text: str) -> date | None:
    """The expiry field: a date, or ``None`` for "Không thời hạn" (no expiry)."""
    if _fold(text) == _NO_EXPIRY:
        return None
    return card_date(text, field_name="expiry date")


def card_sex(text: str) -> Sex:
    """The sex field (``Nam`` / ``Nữ``) as :class:`~kiosk_bridge.identity.Sex`; anything
    else is ``unknown`` rather than a refusal (the MRZ carries the sex too)."""
    return {"nam": Sex.MALE, "nu": Sex.FEMALE}.get(_fold(text), Sex.UNKNOWN)


def _fold(text: str) -> str:
    """Lower-case ASCII skeleton of Vietnamese text (``Không thời hạn`` → ``khong thoi han``)."""
    decomposed = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(stripped.lower().split())


def _field_number(values: list[core.Any]) -> int:
    if not values:
        raise _malformed("DG13 has an empty field")
    try:
        number = values[0].parsed
        if not isinstance(number, core.Integer):
            raise _malformed("a DG13 field does not start with its number")
        native = number.native
    except (ValueError, TypeError, OverflowError) as exc:
        raise _malformed(f"a DG13 field number is not an INTEGER ({exc})") from None
    if not isinstance(native, int) or native < 0:
        raise _malformed("a DG13 field number is negative")
    return native


def _one_text(values: list[core.Any], number: int) -> str | None:
    if len(values) != 1:
        raise _malformed(f"DG13 field {number} holds {len(values)} values, not one")
    return _as_text(values[0], number)


def _names(values: list[core.Any], number: int) -> list[str | None]:
    """The names of field 13 or 14: from one nested SEQUENCE, or directly after the number."""
    try:
        if len(values) == 1 and isinstance(values[0].parsed, core.Sequence):
            values = list(values[0].parse(_Values))
    except (ValueError, TypeError, OverflowError) as exc:
        raise _malformed(f"DG13 field {number} is not a SEQUENCE of names ({exc})") from None
    return [_as_text(value, number) for value in values]


def _as_text(value: core.Any, number: int) -> str | None:
    try:
        parsed = value.parsed
        if not isinstance(parsed, core.UTF8String | core.PrintableString):
            raise _malformed(f"DG13 field {number} is not a UTF8String or PrintableString")
        text = parsed.native
    except (ValueError, TypeError, OverflowError) as exc:
        raise _malformed(f"DG13 field {number} is not valid text ({exc})") from None
    if not isinstance(text, str):
        raise _malformed(f"DG13 field {number} is not valid text")
    # the card writes Vietnamese as precomposed (NFC) text; normalise what arrives otherwise
    text = unicodedata.normalize("NFC", text)
    return text or None


def _text(value: str, string_type: Literal["utf8", "printable"]) -> core.Asn1Value:
    return core.UTF8String(value) if string_type == "utf8" else core.PrintableString(value)


def _field(number: int, values: list[core.Asn1Value]) -> bytes:
    items = [core.Any(core.Integer(number)), *(core.Any(value) for value in values)]
    return bytes(_Values(items).dump())


def _malformed(sentence: str) -> IdentityRefused:
    return IdentityRefused(RefusalReason.DG13_MALFORMED, sentence + ".")
