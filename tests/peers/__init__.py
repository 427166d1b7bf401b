"""Real peers for integration tests, and the rule for when one is missing.

A test that needs a peer that cannot run here skips with the reason, except under
``CI=true``, where a missing peer fails the test (DESIGN.md, "Real peers for tests").
"""

from __future__ import annotations

import os

import pytest


def require(available: bool, reason: str) -> None:
    """Skips the calling test (fails it when CI is "true") unless the peer is ``available``."""
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"a peer the test needs is missing under CI: {reason}", pytrace=False)
    pytest.skip(reason)
