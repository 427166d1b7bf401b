"""Fixtures for vitals tests: simulators on real pseudo-terminals."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def pty_dir(tmp_path: Path) -> Path:
    """A directory for the simulators' stable port symlinks."""
    directory = tmp_path / "ports"
    directory.mkdir()
    return directory
