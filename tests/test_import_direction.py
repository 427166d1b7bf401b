"""Imports flow one way (DESIGN.md, "Packages and the direction of imports")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = ("cabin", "signaling", "vitals", "fhir", "kiosk_bridge")
# what each package may import of ours (fhir: only vitals' model - the values it maps)
ALLOWED: dict[str, set[str]] = {
    "vitals": set(),
    "signaling": set(),
    "kiosk_bridge": set(),
    "fhir": {"vitals.model", "vitals.measurement", "vitals.clock"},
    "cabin": {"vitals", "fhir", "signaling", "kiosk_bridge"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _ours(name: str) -> str | None:
    top = name.split(".", maxsplit=1)[0]
    if top == "fhir" and name.startswith("fhir.resources"):
        return None  # the third-party package sharing our name
    return name if top in OURS else None


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_what_it_may(package: str) -> None:
    allowed = ALLOWED[package]
    wrong = []
    for path in sorted((REPO / package).rglob("*.py")):
        for name in filter(None, map(_ours, _imports(path))):
            top = name.split(".")[0]
            if top == package:
                continue
            if not any(name == a or name.startswith(a + ".") for a in allowed):
                wrong.append(f"{path.relative_to(REPO)} imports {name}")
    assert not wrong, "\n".join(wrong)
