"""The kiosk bridge's API mounted by the cabin service, on the cabin's real visit store.

A kiosk opens a session for a (synthetic) resident, the resident consents and a measurement
is committed, then the card is removed: the visit is wiped within a second, nothing about the
resident is left in the cabin's database files, and the kiosk gets the signed events in order.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from cabin.service import CabinService, ServiceOptions
from cabin.visits import VisitStage, VisitStore
from fhir.crypto import KeyRing, generate_key
from fhir.outbox import Outbox
from kiosk_bridge.api import kiosk_subapp
from kiosk_bridge.kiosk_auth import BearerToken, KioskAuth
from tests.cabin.test_visits import _consent, _nhung_measurements
from tests.kiosk_bridge.test_api import (
    BEARER,
    LAUNCH,
    TOKEN,
    assertion_body,
    gate,
    make_world,
)
from tests.kiosk_bridge.test_events import kiosk_peer, sender


def test_card_removal_mid_measurement_wipes_the_visit_from_the_cabin(tmp_path: Path) -> None:
    world = make_world()

    async def scenario() -> None:
        outbox = Outbox(tmp_path / "cabin.db", keys=KeyRing([generate_key()]))
        store = await VisitStore.connect(outbox)
        async with (
            kiosk_peer() as peer,
            sender(tmp_path / "events.db").running() as events,
            aiohttp.ClientSession() as http,
        ):
            kiosk = kiosk_subapp(
                intake=gate(world),
                visits=store,
                events=events,
                auth=KioskAuth(bearer=BearerToken(TOKEN)),
                clock=lambda: datetime.now(UTC),
                launch_base_url=LAUNCH,
            )

            async def token() -> str:
                return "unused"

            service = CabinService(
                options=ServiceOptions(signaling_url="ws://127.0.0.1:9/ws"),
                http=http,
                token=token,
                hello=dict,
                backlog=list,
                kiosk=kiosk,
            )
            async with TestClient(TestServer(service.app)) as client:
                opened = await client.post(
                    "/kiosk/v1/sessions", json=assertion_body(world, peer), headers=BEARER
                )
                assert opened.status == 201, await opened.text()
                session_id = (await opened.json())["session_id"]
                await store.record_consent(_consent(session_id))
                await store.set_state(session_id, VisitStage.MEASURING, step="temperature")
                await store.commit_measurement(session_id, _nhung_measurements()[0])
                started = time.monotonic()
                removed = await client.delete(f"/kiosk/v1/sessions/{session_id}", headers=BEARER)
                wiped_in = time.monotonic() - started
                assert removed.status == 204
                assert wiped_in < 1.0
                assert not await store.holds(session_id)
                [line] = [a for a in await store.audit() if a.session_id == session_id]
                async with asyncio.timeout(10):
                    while not any(e["type"].endswith("session.wiped") for e in peer.received):
                        await asyncio.sleep(0.05)
        outbox.close()
        kinds = [e["type"].removeprefix("vn.tramcongdanso.cabin.") for e in peer.received]
        assert kinds[0] == "session.started"
        assert kinds[-1] == "session.wiped"
        assert peer.bad_signatures == 0
        assert line.session_id == session_id

    asyncio.run(asyncio.wait_for(scenario(), 60))
    for path in tmp_path.glob("cabin.db*"):  # the database, its WAL and shared memory
        data = path.read_bytes()
        assert world.citizen.full_name.encode() not in data
        assert world.citizen.cccd.encode() not in data
