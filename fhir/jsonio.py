"""FHIR JSON that keeps decimals as written: ``72.35`` stays ``72.35``, ``36.80`` stays
``36.80``, ``120`` stays ``120``.

FHIR decimals carry their precision in their text; Python's ``json`` and ``fhir.resources``
both go through floats and lose it.  simplejson writes :class:`~decimal.Decimal` verbatim.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import simplejson


def dumps(document: Any) -> bytes:
    """Compact UTF-8 JSON; Decimals verbatim; no NaN or infinities."""
    text = simplejson.dumps(
        document,
        use_decimal=True,
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
    )
    return text.encode("utf-8")


def loads(data: bytes | str) -> Any:
    """Parse JSON with every non-integer number as a Decimal."""
    return simplejson.loads(data, use_decimal=True)


def plain(value: Decimal) -> Decimal:
    """The same number without an exponent (``1E+2`` -> ``100``), keeping its decimals."""
    return Decimal(format(value, "f"))
