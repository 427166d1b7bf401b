"""The whole digital citizen station on one machine: ``cabin station`` (what ``make demo`` runs).

Starts, in one process and one ``TaskGroup``:

- the signaling service (in memory) with the doctor console at ``/console/``;
- the cabin service: the resident's screen, every device simulated on its own pty and read by
  the real serial code, the visit store and the FHIR outbox with its delivery worker (to the
  embedded directory sink, or ``--fhir-url``), the kiosk API at ``/kiosk/v1``;
- a kiosk simulator page: choose a generated test citizen card, place it (the kiosk's signed
  assertion opens a session and the launch link), remove it (the visit is wiped).

It prints the three URLs and a development doctor token. Ctrl-C stops everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import signal
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web

from cabin.config import CabinConfig
from cabin.devices import DeviceSessions, simulated_devices
from cabin.kiosksim import KioskSimulator, demo_citizens
from cabin.operator import open_outbox
from cabin.selftest import SelfTest
from cabin.service import CabinService, ServiceOptions
from cabin.transports import open_transports
from cabin.visit_machine import Step, VisitMachine, VisitPlan
from cabin.visit_runner import VisitContext, VisitRunner, recover_visits
from cabin.visits import VisitStore
from fhir.config import HospitalConfig
from fhir.delivery import DeliveryWorker
from kiosk_bridge.api import IdentityGate, kiosk_sessions, kiosk_subapp
from kiosk_bridge.assertion import AssertionPolicy, MemoryJtiStore, TrustedKiosks
from kiosk_bridge.consent import ConsentRecord
from kiosk_bridge.events import EventSender, SigningKey
from kiosk_bridge.intake import IntakePolicy, TrustAnchors
from kiosk_bridge.kiosk_auth import BearerToken, KioskAuth
from kiosk_bridge.sessions import KioskSessions, Session, VisitPort, VisitStatus
from kiosk_bridge.testcards import make_kiosk
from signaling.config import SignalingConfig
from signaling.model import Role
from signaling.service import create_server
from signaling.tokens import DevKey, mint
from vitals.sim.truth import Truth

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class StationOptions:
    host: str = "127.0.0.1"
    signaling_port: int = 8765
    cabin_port: int = 8080
    kiosk_port: int = 8090
    fast: bool = False
    """Simulated devices at test speed (seconds instead of minutes)."""
    plan: VisitPlan = dataclasses.field(default_factory=VisitPlan)
    voice_dir: Path | None = None
    selftest_s: float = 300.0
    """How often the self-test runs (it also runs at start)."""
    truth: Truth | None = None
    """The simulated resident's body and the devices' faults (default: a healthy adult)."""


@dataclass
class Station:
    """What a running station exposes (for the demo's banner and for tests)."""

    console_url: str
    cabin_url: str
    kiosk_url: str
    signaling_url: str
    doctor_token: Callable[[str], str]
    store: VisitStore
    service: CabinService
    sessions: KioskSessions
    runners: dict[str, VisitRunner]
    worker: DeliveryWorker
    selftest: SelfTest


class _RunnerVisits:
    """The kiosk API's VisitPort: the visit store, with the running visit told of a wipe."""

    def __init__(self, store: VisitStore, runners: dict[str, VisitRunner]) -> None:
        self._store = store
        self._runners = runners

    async def open(self, session: Session) -> None:
        await self._store.open(session)

    async def status(self, session_id: str) -> VisitStatus | None:
        return await self._store.status(session_id)

    async def record_consent(self, record: ConsentRecord) -> None:
        await self._store.record_consent(record)

    async def withdraw(self, session_id: str) -> None:
        await self._store.withdraw(session_id)

    async def wipe(self, session_id: str) -> None:
        runner = self._runners.pop(session_id, None)
        if runner is not None:  # card removed: the visit stops at once, the store forgets it
            runner.stop()
        await self._store.wipe(session_id)


def _port(visits: _RunnerVisits) -> VisitPort:
    return visits  # _RunnerVisits satisfies kiosk_bridge.sessions.VisitPort


def free_port(host: str) -> int:
    """A port nothing listens on right now (for parts that must know each other's URLs)."""
    with contextlib.closing(socket.socket()) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


async def _site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, int(runner.addresses[0][1])


@contextlib.asynccontextmanager
async def running_station(
    config: CabinConfig, options: StationOptions, *, hospitals: tuple[HospitalConfig, ...]
) -> AsyncIterator[Station]:
    """Start every part; stop them all on exit."""
    data = config.data_dir
    host = options.host
    if options.cabin_port == 0:  # the kiosk simulator and the launch links need it up front
        options = dataclasses.replace(options, cabin_port=free_port(host))
    cabin_id = config.cabin.id
    signaling_dir = data / "signaling"
    signaling = create_server(
        SignalingConfig(dev_key_dir=signaling_dir, sweep_s=0.5), node="station"
    )
    key = DevKey.load_or_create(signaling_dir)

    def token(role: Role, subject: str, hospitals_: list[str]) -> str:
        return mint(
            key,
            role=role,
            subject=subject,
            hospitals=hospitals_,
            audience="telehealth-signaling",
            ttl_s=3600 * 8,
            now=datetime.now(UTC),
        )

    kiosk = make_kiosk()
    citizens = demo_citizens()
    event_key = SigningKey(key_id="station-events", secret=secrets.token_bytes(32))
    bearer = secrets.token_urlsafe(24)
    runners: dict[str, VisitRunner] = {}
    outbox = open_outbox(config)
    runners_out: list[web.AppRunner] = []
    try:
        store = await VisitStore.connect(outbox)
        hospital = hospitals[0]
        context = VisitContext(cabin=config.cabin, hospital=hospital.id, hospital_name=hospital.id)
        recovered = await recover_visits(store, context=context)
        if recovered:
            logger.warning("closed %d visit(s) left open by a crash", len(recovered))
        async with (
            signaling.running(),
            EventSender(
                store_path=data / "kiosk-events.db",
                key=event_key,
                source=cabin_id,
                clock=lambda: datetime.now(UTC),
            ).running() as events,
            aiohttp.ClientSession() as http,
            open_transports(hospitals) as transports,
            simulated_devices(
                truth=options.truth, fast=options.fast, directory=data / "devices"
            ) as devices,
            asyncio.TaskGroup() as group,
        ):
            sig_runner, sig_port = await _site(signaling.app, host, options.signaling_port)
            runners_out.append(sig_runner)
            signaling_url = f"ws://{host}:{sig_port}/ws"
            simulator = KioskSimulator(
                cabin_url=f"http://{host}:{options.cabin_port}",
                bearer_token=bearer,
                event_key=event_key,
                kiosk=kiosk,
                citizens=citizens,
                audience=cabin_id,
            )
            gate = IdentityGate(
                policy=IntakePolicy(assertion=AssertionPolicy(audience=cabin_id)),
                anchors=TrustAnchors(
                    cscas=(), kiosks=TrustedKiosks.from_jwks({simulator.issuer: simulator.jwks()})
                ),
                jti_store=MemoryJtiStore(),
            )
            kiosk_app = kiosk_subapp(
                intake=gate,
                visits=_port(_RunnerVisits(store, runners)),
                events=events,
                auth=KioskAuth(bearer=BearerToken(bearer)),
                clock=lambda: datetime.now(UTC),
                launch_base_url=f"http://{host}:{options.cabin_port}/visit",
            )

            async def cabin_token() -> str:
                return token(Role.CABIN, cabin_id, [])

            service = CabinService(
                options=ServiceOptions(signaling_url=signaling_url),
                http=http,
                token=cabin_token,
                hello=dict,
                backlog=list,
                kiosk=kiosk_app,
            )
            sessions = kiosk_sessions(kiosk_app)
            worker = DeliveryWorker(outbox, transports, idle_poll=1.0)
            worker_task = group.create_task(worker.run())
            step_available: list[Callable[[Step], bool]] = [lambda step: True]

            def available(step: Step) -> bool:  # the self-test's verdict, once it has run
                return step_available[0](step)

            _mount_visits(
                service,
                step_available=available,
                group=group,
                runners=runners,
                sessions=sessions,
                store=store,
                devices=devices,
                context=context,
                plan=options.plan,
                worker=worker,
                voices=options.voice_dir is not None and options.voice_dir.is_dir(),
            )
            if options.voice_dir is not None and options.voice_dir.is_dir():
                service.app.router.add_static("/ui/voice/", options.voice_dir, append_version=False)
            async with service.running():
                selftest = SelfTest(
                    devices=devices,
                    camera=service.camera,
                    signaling_url=signaling_url,
                    hospital=hospital,
                    http=http,
                    registry=service.registry,
                    period_s=options.selftest_s,
                )
                await selftest.warm_up()
                selftest_task = group.create_task(selftest.run())
                service.health_report = selftest.report
                step_available[0] = selftest.step_available
                cab_runner, cab_port = await _site(service.app, host, options.cabin_port)
                runners_out.append(cab_runner)
                sim_runner, sim_port = await _site(simulator.app, host, options.kiosk_port)
                runners_out.append(sim_runner)
                station = Station(
                    console_url=f"http://{host}:{sig_port}/console/",
                    cabin_url=f"http://{host}:{cab_port}/ui/",
                    kiosk_url=f"http://{host}:{sim_port}/",
                    signaling_url=signaling_url,
                    doctor_token=lambda subject: token(Role.DOCTOR, subject, [hospital.id]),
                    store=store,
                    service=service,
                    sessions=sessions,
                    runners=runners,
                    worker=worker,
                    selftest=selftest,
                )
                try:
                    yield station
                finally:
                    for runner in list(runners.values()):
                        runner.stop()
                    await signaling.close_connections()
                    for site in reversed(runners_out):
                        await site.cleanup()
                    runners_out.clear()
                    worker_task.cancel()
                    selftest_task.cancel()
    finally:
        for site in reversed(runners_out):
            await site.cleanup()
        outbox.close()


def _mount_visits(
    service: CabinService,
    *,
    group: asyncio.TaskGroup,
    runners: dict[str, VisitRunner],
    sessions: KioskSessions,
    store: VisitStore,
    devices: DeviceSessions,
    context: VisitContext,
    plan: VisitPlan,
    worker: DeliveryWorker,
    voices: bool,
    step_available: Callable[[Step], bool],
) -> None:
    """``/visit/{session}?launch=…``: the kiosk's launch link opens the visit on the screen."""

    async def launch(request: web.Request) -> web.Response:
        session_id = request.match_info["session_id"]
        try:
            session = sessions.get(session_id)
        except Exception:
            raise web.HTTPNotFound(text="no such visit") from None
        given = request.query.get("launch", "")
        if not secrets.compare_digest(given, session.launch_token):
            raise web.HTTPForbidden(text="wrong launch token")
        if session_id not in runners:
            machine = VisitMachine(dataclasses.replace(plan, service=session.service))
            runner = VisitRunner(
                session_id=session_id,
                locale=session.locale,
                machine=machine,
                store=store,
                sessions=sessions,
                service=service,
                devices=devices,
                context=context,
                publish=service.publish,
                speak=voices,
                step_available=step_available,
            )
            runners[session_id] = runner
            service.action_handler = runner.action
            service.call_observer = runner.call_event

            async def run_visit() -> None:
                try:
                    await runner.run()
                finally:
                    runners.pop(session_id, None)
                    if service.action_handler == runner.action:
                        service.action_handler = None
                        service.call_observer = None
                    worker.wake(context.hospital)

            group.create_task(run_visit())
        raise web.HTTPFound("/ui/")

    service.app.router.add_get("/visit/{session_id}", launch)


async def run(
    config: CabinConfig, options: StationOptions, *, hospitals: tuple[HospitalConfig, ...]
) -> None:
    """``cabin station``: run until SIGINT/SIGTERM, printing the URLs."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with running_station(config, options, hospitals=hospitals) as station:
        print(
            "The station is up:\n"
            f"  kiosk simulator:  {station.kiosk_url}\n"
            f"  resident screen:  {station.cabin_url}\n"
            f"  doctor console:   {station.console_url}\n"
            f"  doctor token (dr-demo): {station.doctor_token('dr-demo')}\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        await stop.wait()
