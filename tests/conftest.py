"""Fixtures shared across the suite: the real peers (DESIGN.md, "Real peers for tests")."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers import require
from tests.peers.medplum import MedplumPeer, peer_availability


@pytest.fixture(scope="session")
def medplum(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MedplumPeer]:
    """One Medplum FHIR peer (full R4 and vital-signs validation) for the whole session.

    Tests isolate themselves by using their own identifiers (a fresh CCCD per test).
    """
    require(*peer_availability())
    log_path = tmp_path_factory.mktemp("medplum") / "peer.log"
    with MedplumPeer(log_path=log_path) as running:
        yield running
