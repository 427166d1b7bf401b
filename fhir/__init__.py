"""FHIR R4 mapping and delivery.

Shares the ``fhir`` import name with ``fhir.resources``; this file only extends the package
path (DESIGN.md, "The fhir name") so both live side by side as ``fhir.<module>``.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
