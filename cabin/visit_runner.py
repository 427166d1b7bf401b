"""The visit's shell: it feeds the pure :class:`~cabin.visit_machine.VisitMachine` and carries
out its effects — the store, the devices, the resident's screen, the consultation, the kiosk.

One :class:`VisitRunner` per visit, in one ``TaskGroup``: a ticker (inactivity), the event loop
(one event at a time, each effect executed in order before the next event), and at most one
measuring task. Events come from the resident's page (:meth:`VisitRunner.action`), the devices,
the consultation and the kiosk bridge (card removal, withdrawal).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cabin.consent_map import consent_info
from cabin.consultation_record import consultation_of
from cabin.devices import DeviceSessions
from cabin.selftest import DEVICE_UNAVAILABLE
from cabin.service import CabinService
from cabin.visit_machine import (
    AbortStep,
    CallEnded,
    CallStarted,
    CommitMeasurements,
    CompleteVisit,
    ConsentGiven,
    ConsentRefused,
    ConsultQueued,
    ConsultRequested,
    ExtendRequested,
    HangUp,
    HideWarning,
    Launched,
    OverlayClosed,
    PersistStage,
    RaiseSos,
    ResultsSeen,
    RetakeRequested,
    Screen,
    SendKioskEvent,
    ShowScreen,
    ShowWarning,
    SosPressed,
    Speak,
    StartConsult,
    StartStep,
    Step,
    StepFinished,
    StepProgress,
    StepSkipped,
    StepStarted,
    Tick,
    Touch,
    Visit,
    VisitEffect,
    VisitEvent,
    VisitMachine,
    Wipe,
    Withdrawn,
    WithdrawVisit,
)
from cabin.visits import VisitStore, patient_identity
from fhir.bundle import build_bundle
from fhir.visit import CabinInfo, Consultation, VisitRecord
from kiosk_bridge.consent import (
    ConsentChoices,
    ConsentRecord,
    Locale,
    consent_text,
    record_consent,
    withdrawal,
)
from kiosk_bridge.events import CompletedVisit, EventType, FhirDelivery
from kiosk_bridge.sessions import KioskSessions, WipeReason
from vitals.interpretation import interpret
from vitals.measurement import Measurement
from vitals.model import Kind
from vitals.procedures.base import Progress
from vitals.procedures.bmi import body_mass_index

logger = logging.getLogger(__name__)

TICK_S = 1.0
LABELS = {
    Kind.BODY_TEMPERATURE: ("Nhiệt độ", "Temperature"),
    Kind.BODY_WEIGHT: ("Cân nặng", "Weight"),
    Kind.BODY_HEIGHT: ("Chiều cao", "Height"),
    Kind.SPO2: ("Nồng độ oxy (SpO2)", "Blood oxygen (SpO2)"),
    Kind.PULSE_RATE: ("Nhịp tim", "Pulse"),
    Kind.BLOOD_PRESSURE: ("Huyết áp", "Blood pressure"),
    Kind.BMI: ("Chỉ số BMI", "BMI"),
}
UNITS = {"Cel": "°C", "kg": "kg", "cm": "cm", "%": "%", "/min": "/phút", "mm[Hg]": "mmHg"}


@dataclass(frozen=True, slots=True, kw_only=True)
class VisitContext:
    """What the runner needs to know about where it runs."""

    cabin: CabinInfo
    hospital: str
    """The hospital's id in the outbox (where the bundle goes)."""
    hospital_name: str


class VisitRunner:
    """One visit, from launch to wipe (see the module docstring)."""

    def __init__(
        self,
        *,
        session_id: str,
        locale: Locale,
        machine: VisitMachine,
        store: VisitStore,
        sessions: KioskSessions,
        service: CabinService,
        devices: DeviceSessions,
        context: VisitContext,
        publish: Callable[[dict[str, Any]], None],
        clock: Callable[[], float] = time.monotonic,
        speak: bool = True,
        step_available: Callable[[Step], bool] = lambda step: True,
    ) -> None:
        self.session_id = session_id
        self._speak = speak
        self._step_available = step_available
        """Voice prompts exist (generated at set-up): tell the page to play them."""
        self.locale = locale
        self._machine = machine
        self._store = store
        self._sessions = sessions
        self._service = service
        self._devices = devices
        self._context = context
        self._publish = publish
        self._clock = clock
        self.visit: Visit = machine.new(now=clock())
        self._events: asyncio.Queue[VisitEvent | HangUp_ | _ConsentAnswer] = asyncio.Queue()
        self._group: asyncio.TaskGroup | None = None
        self._step_task: asyncio.Task[None] | None = None
        self._consent_shown = consent_text(locale=locale, hospital=context.hospital_name)
        self._consent_record: ConsentRecord | None = None
        self.finished = asyncio.Event()

    # -- inputs --------------------------------------------------------------------------------

    def post(self, event: VisitEvent | HangUp_ | _ConsentAnswer) -> None:
        self._events.put_nowait(event)

    def stop(self) -> None:
        """End the visit's tasks now (the card was removed, or the station stops)."""
        self.finished.set()
        self._events.put_nowait(_STOP)

    def action(self, message: dict[str, Any]) -> bool:
        """A message from the resident's page; False when it is not a visit action."""
        kind = message.get("type")
        if kind == "consent":
            choices = ConsentChoices(
                measuring=bool(message.get("measuring")),
                hospital=bool(message.get("hospital")),
                video_consultation=bool(message.get("video_consultation")),
            )
            record = record_consent(
                session_id=self.session_id,
                shown=self._consent_shown,
                choices=choices,
                now=datetime.now(UTC),
            )
            self.post(_ConsentAnswer(record))
        elif kind == "refuse-consent":
            self.post(ConsentRefused())
        elif kind == "retake" and self.visit.step is not None:
            self.post(RetakeRequested(self.visit.step))
        elif kind == "skip" and self.visit.step is not None:
            self.post(StepSkipped(self.visit.step))
        elif kind == "results-seen":
            self.post(ResultsSeen())
        elif kind == "call-doctor":
            self.post(ConsultRequested())
        elif kind == "hang-up":
            self.post(HangUp_())
        elif kind == "touch":
            self.post(Touch())
        elif kind == "extend":
            self.post(ExtendRequested())
        elif kind == "sos":
            self.post(SosPressed())
        elif kind == "overlay-closed":
            self.post(OverlayClosed())
        elif kind == "withdraw":
            self.post(Withdrawn())
        else:
            return False
        return True

    def call_event(self, kind: str, message: dict[str, Any]) -> None:
        """What the consultation reports (queued, call started, ended)."""
        if kind == "queued":
            self.post(ConsultQueued(position=message.get("position")))
        elif kind == "call":
            self.post(CallStarted())
        elif kind == "ended":
            self.post(CallEnded())

    # -- running -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Until the visit is wiped."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            ticker = group.create_task(self._tick_forever())
            self._service.forget_visit()  # nothing of an earlier resident's call carries over
            self.post(Launched())
            try:
                while True:
                    event = await self._events.get()
                    if event is _STOP:
                        break
                    if isinstance(event, HangUp_):
                        await self._hang_up()
                        continue
                    if isinstance(event, _ConsentAnswer):
                        # stored and sent to the kiosk (consent.recorded) before anything else
                        self._consent_record = event.record
                        await self._sessions.record_consent(event.record)
                        await self._apply(ConsentGiven(choices=event.record.choices))
                        continue
                    await self._apply(event)
                    if self.finished.is_set():
                        break
            finally:
                ticker.cancel()
                if self._step_task is not None:
                    self._step_task.cancel()
                self._service.forget_visit()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.post(Tick())

    async def _apply(self, event: VisitEvent) -> None:
        self.visit, effects = self._machine.apply(self.visit, event, self._clock())
        for effect in effects:
            try:
                await self._execute(effect)
            except Exception:  # one failed effect must not strand the resident
                logger.exception("visit effect %s failed", type(effect).__name__)

    async def _execute(self, effect: VisitEffect) -> None:
        match effect:
            case PersistStage(stage=stage, step=step):
                await self._store.set_state(
                    self.session_id, stage, step=None if step is None else step.value
                )
            case ShowScreen():
                await self._show(effect)
            case Speak(prompt_id=prompt):
                if self._speak:
                    self._publish({"type": "speak", "prompt": prompt})
            case ShowWarning(seconds_left=left, extensions_left=extensions):
                self._publish(
                    {"type": "warning", "seconds_left": round(left), "extensions_left": extensions}
                )
            case HideWarning():
                self._publish({"type": "warning-hide"})
            case StartStep(step=step):
                self._start_step(step)
            case AbortStep():
                if self._step_task is not None:
                    self._step_task.cancel()
                    self._step_task = None
            case CommitMeasurements(measurements=measurements):
                for measurement in measurements:
                    await self._store.commit_measurement(self.session_id, measurement)
                    self._service.send_vitals(_channel_measurement(measurement))
            case StartConsult(urgent=urgent):
                await self._start_consult(urgent=urgent)
            case HangUp():
                await self._hang_up()
            case RaiseSos(cause=cause, consult=consult):
                await self._sessions.publish(
                    self.session_id,
                    EventType.SOS_RAISED,
                    {"cause": cause.value, "consult": consult},
                )
            case SendKioskEvent():
                await self._sessions.publish(self.session_id, effect.type, effect.as_dict())
            case CompleteVisit(send_to_hospital=send):
                await self._complete(send=send)
            case WithdrawVisit():
                if self._consent_record is not None:
                    await self._sessions.withdraw(
                        withdrawal(self._consent_record, now=datetime.now(UTC))
                    )
            case Wipe():
                await self._wipe()

    # -- effects -------------------------------------------------------------------------------

    async def _show(self, effect: ShowScreen) -> None:
        if effect.screen is Screen.CONSENT:
            self._publish(
                {
                    "type": "consent-text",
                    "version": self._consent_shown.version,
                    "hospital": self._context.hospital_name,
                    "vi": consent_text(locale=Locale.VI, hospital=self._context.hospital_name).text,
                    "en": consent_text(locale=Locale.EN, hospital=self._context.hospital_name).text,
                }
            )
        if effect.screen is Screen.RESULTS:
            self._publish(await self._results())
        message: dict[str, Any] = {
            "type": "screen",
            "screen": effect.screen.value,
            "step": None if effect.step is None else effect.step.value,
            "reason": None
            if effect.reason is None
            else {"code": effect.reason.code, "vi": effect.reason.vi, "en": effect.reason.en},
            "finding": None
            if effect.finding is None
            else {"vi": effect.finding.vi, "en": effect.finding.en, "color": "red"},
            "retake": effect.retake,
            "consult": effect.consult,
            "emergency_number": effect.emergency_number,
        }
        self._publish(message)

    def _start_step(self, step: Step) -> None:
        assert self._group is not None
        if not self._step_available(step):  # its device failed the self-test
            self.post(StepSkipped(step, DEVICE_UNAVAILABLE))
            return
        if self._step_task is not None:
            self._step_task.cancel()
        self._step_task = self._group.create_task(self._measure(step))

    async def _measure(self, step: Step) -> None:
        self.post(StepStarted(step))

        def on_progress(progress: Progress) -> None:
            self._publish(
                {
                    "type": "progress",
                    "step": step.value,
                    "phase": progress.phase,
                    "vi": progress.vi,
                    "en": progress.en,
                    "fraction": progress.fraction,
                    "seconds_left": None
                    if progress.seconds_left is None
                    else round(progress.seconds_left),
                    "live": None if progress.live is None else str(progress.live),
                    "unit": _live_unit(step),
                }
            )
            self.post(StepProgress(step))

        try:
            measurements = await self._devices.measure(step, on_progress)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("step %s failed in the device layer", step.value)
            measurements = ()
        self.post(StepFinished(step, measurements))

    async def _start_consult(self, *, urgent: bool) -> None:
        measurements = await self._store.measurements(self.session_id)
        flags = sorted({"sos"} if self.visit.sos_raised else set())
        triage = {
            "urgency": "emergency"
            if self.visit.sos_raised
            else ("urgent" if urgent else "routine"),
            "flags": flags,
            "language": self.locale.value,
            "summary": _summary(measurements)[:500],
        }
        identity = await self._store.identity(self.session_id)

        def hello() -> dict[str, Any]:
            resident: dict[str, Any] = {"name": "—"}
            if identity is not None:
                resident = {
                    "name": identity.full_name,
                    "sex": identity.sex.value,
                    "id_masked": "•" * 8 + identity.cccd[-4:],
                    "assurance": identity.assurance.value,
                }
            return {"type": "hello", "v": 1, "resident": resident, "language": self.locale.value}

        def backlog() -> list[dict[str, Any]]:
            return [_channel_measurement(m) for m in measurements]

        self._service.set_visit_context(hello=hello, backlog=backlog)
        if not self._service.call_doctor(triage):
            logger.info("a consultation is already running")

    async def _hang_up(self) -> None:
        if self._service.call is not None:
            await self._service.call.hang_up()

    async def _results(self) -> dict[str, Any]:
        measurements = list(await self._store.measurements(self.session_id))
        bmi = _bmi(measurements)
        items = [_result_item(m) for m in [*measurements, *([bmi] if bmi else [])]]
        return {"type": "results", "items": items, "receipt_url": None}

    async def _complete(self, *, send: bool) -> None:
        outcome = self._service.outcomes[-1] if self._service.outcomes else None
        measurements, delivery = await close_visit(
            self._store,
            self.session_id,
            context=self._context,
            send=send,
            consultation=None if outcome is None else consultation_of(outcome),
        )
        await self._sessions.complete(
            self.session_id,
            CompletedVisit(
                summary=tuple(_plain(m, self.locale) for m in measurements),
                fhir_delivery=delivery,
                hospital=self._context.hospital_name,
                cabin_name=self._context.cabin.name,
                finished_at=datetime.now(UTC),
            ),
        )

    async def _wipe(self) -> None:
        self.finished.set()
        with contextlib.suppress(Exception):
            await self._sessions.wipe(self.session_id, reason=WipeReason.KIOSK_REQUEST)
        self._publish({"type": "screen", "screen": "idle"})


async def close_visit(
    store: VisitStore,
    session_id: str,
    *,
    context: VisitContext,
    send: bool,
    consultation: Consultation | None = None,
) -> tuple[list[Measurement], FhirDelivery]:
    """Build the visit's bundle from what was committed and complete it in the store (the
    bundle and the closed state in one transaction); what was measured, and where it stands.

    Used at the end of a visit and, after a crash, for a visit that cannot resume.
    """
    measurements = list(await store.measurements(session_id))
    bmi = _bmi(measurements)
    if bmi is not None:
        measurements.append(bmi)
    identity = await store.identity(session_id)
    if not (send and identity is not None and measurements):
        await store.complete(session_id, bundle_id=None, hospital=None, bundle_json=None)
        return measurements, FhirDelivery.NOT_SENT
    consent = await store.consent(session_id)
    times = [m.at.utc for m in measurements]
    record = VisitRecord(
        visit_id=session_id,
        cabin=context.cabin,
        patient=patient_identity(identity),
        started=min(times),
        ended=max([*times, *([consultation.ended] if consultation else [])]),
        measurements=tuple(measurements),
        consultation=consultation,
        consent=None if consent is None else consent_info(consent),
    )
    built = build_bundle(record)
    await store.complete(
        session_id, bundle_id=built.id, hospital=context.hospital, bundle_json=built.json
    )
    return measurements, FhirDelivery.QUEUED


async def recover_visits(store: VisitStore, *, context: VisitContext) -> list[str]:
    """After a crash or a power cut: close every visit that was still open, cleanly.

    The kiosk's session (its callback, the launch link) lived in the crashed process, so a
    visit cannot be handed back to the same resident: it is closed with everything that was
    committed (sent to the hospital if the resident consented to that), then wiped. Visits
    that had closed but were not yet wiped are wiped. Returns the closed sessions' ids.
    """
    closed: list[str] = []
    for summary in await store.active():
        try:
            await close_visit(store, summary.session_id, context=context, send=summary.consented)
        except Exception:  # a visit whose consent forbids sending, or a damaged row
            logger.exception("could not close visit %s after a restart", summary.session_id)
            await store.complete(
                summary.session_id, bundle_id=None, hospital=None, bundle_json=None
            )
        await store.wipe(summary.session_id)
        closed.append(summary.session_id)
    for summary in await store.closed():
        await store.wipe(summary.session_id)
    return closed


class HangUp_:  # noqa: N801 - an internal event, not the machine's effect of the same name
    """The resident pressed hang up on the call screen."""


@dataclass(frozen=True, slots=True)
class _ConsentAnswer:
    """The resident's consent, to record before the machine hears of it."""

    record: ConsentRecord


_STOP = HangUp_()
"""Ends the event loop (see :meth:`VisitRunner.stop`)."""


def _live_unit(step: Step) -> str | None:
    return {Step.WEIGHT: "kg", Step.BLOOD_PRESSURE: "mmHg", Step.HEIGHT: "cm"}.get(step)


def _bmi(measurements: list[Measurement]) -> Measurement | None:
    height = next((m for m in measurements if m.kind is Kind.BODY_HEIGHT and m.valid), None)
    weight = next((m for m in measurements if m.kind is Kind.BODY_WEIGHT and m.valid), None)
    if height is None or weight is None:
        return None
    return interpret(body_mass_index(height=height, weight=weight))


def _value_text(measurement: Measurement) -> str:
    if measurement.components:
        parts = [measurement.component(k) for k in (Kind.SYSTOLIC_BP, Kind.DIASTOLIC_BP)]
        if all(p is not None and p.value is not None for p in parts):
            return "/".join(str(p.value) for p in parts if p is not None)
        return "—"
    return "—" if measurement.value is None else str(measurement.value)


def _color(measurement: Measurement) -> str:
    """The band colour: HL7 interpretation N is green, L/H yellow-orange, LL/HH and urgent red."""
    if not measurement.valid:
        return "grey"
    interpretation = measurement.interpretation
    if interpretation is None:
        return "green"
    if interpretation.urgent or interpretation.code in ("LL", "HH"):
        return "red"
    return {"N": "green", "L": "yellow", "H": "orange", "A": "orange"}.get(
        interpretation.code, "orange"
    )


def _result_item(measurement: Measurement) -> dict[str, Any]:
    vi, en = LABELS.get(measurement.kind, (measurement.kind.value, measurement.kind.value))
    interpretation = measurement.interpretation
    reason = measurement.reasons[0] if measurement.reasons else None
    return {
        "kind": measurement.kind.value,
        "label_vi": vi,
        "label_en": en,
        "value": _value_text(measurement),
        "unit": UNITS.get(measurement.unit or "", measurement.unit or ""),
        "status": measurement.status.value,
        "color": _color(measurement),
        "vi": interpretation.vi if interpretation else (reason.vi if reason else ""),
        "en": interpretation.en if interpretation else (reason.en if reason else ""),
    }


def _channel_measurement(measurement: Measurement) -> dict[str, Any]:
    """A ``measurement`` message of the vitals channel (docs/consultation.md)."""
    kind = {
        Kind.BODY_TEMPERATURE: "temperature",
        Kind.BODY_WEIGHT: "weight",
        Kind.BODY_HEIGHT: "height",
        Kind.SPO2: "spo2",
        Kind.PULSE_RATE: "pulse",
        Kind.BLOOD_PRESSURE: "blood-pressure",
        Kind.BMI: "bmi",
    }.get(measurement.kind, "bmi")
    value: Any
    if measurement.components:
        sys_, dia = (measurement.component(k) for k in (Kind.SYSTOLIC_BP, Kind.DIASTOLIC_BP))
        value = (
            None
            if sys_ is None or dia is None or sys_.value is None or dia.value is None
            else {"systolic": float(sys_.value), "diastolic": float(dia.value)}
        )
    else:
        value = None if measurement.value is None else float(measurement.value)
    interpretation = measurement.interpretation
    return {
        "type": "measurement",
        "kind": kind,
        "value": value,
        "unit": measurement.unit or "",
        "status": "valid"
        if measurement.valid
        else (
            "failed" if measurement.value is None and not measurement.components else "questionable"
        ),
        "color": _color(measurement),
        "text": (interpretation.en if interpretation else "")[:500],
        "time": measurement.at.utc.isoformat(timespec="seconds"),
    }


def _summary(measurements: tuple[Measurement, ...]) -> str:
    parts = []
    for m in measurements:
        if m.valid:
            parts.append(f"{LABELS.get(m.kind, ('', m.kind.value))[1]} {_value_text(m)}")
    return "; ".join(parts)


def _plain(measurement: Measurement, locale: Locale) -> str:
    vi, en = LABELS.get(measurement.kind, (measurement.kind.value, measurement.kind.value))
    label = vi if locale is Locale.VI else en
    interpretation = measurement.interpretation
    said = ""
    if interpretation is not None:
        said = " — " + (interpretation.vi if locale is Locale.VI else interpretation.en)
    unit = UNITS.get(measurement.unit or "", measurement.unit or "")
    return f"{label}: {_value_text(measurement)} {unit}{said}".strip()
