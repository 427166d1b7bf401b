"""The FHIR code table agrees with the measurement model it codes."""

from fhir.codes import VITAL_CODES


def test_every_code_uses_the_unit_its_reading_kind_is_reported_in() -> None:
    for kind, code in VITAL_CODES.items():
        assert code.ucum == kind.unit, kind


def test_loinc_codes_are_unique() -> None:
    loincs = [code.loinc for code in VITAL_CODES.values()]
    assert len(loincs) == len(set(loincs))
