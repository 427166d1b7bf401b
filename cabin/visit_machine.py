"""The cabin visit as a pure state machine: an event and the time in, a new state and effects out.

:meth:`VisitMachine.apply` takes a :class:`Visit` (frozen), one event and ``now`` (seconds on
the shell's clock) and returns the next :class:`Visit` and the effects the shell carries out,
in order (persist the stage, start a measuring step, show a screen, speak, alert…).  Nothing
here reads a clock, touches a device, a socket or a file::

    launched ─Launched─▶ consent ─ConsentGiven─▶ measuring ─last step ends─▶ results
                            │                    each step: StartStep → StepStarted → StepFinished
                            │                      ok: CommitMeasurements, the next step
                            │                      failed: reason → RetakeRequested | StepSkipped
                            │ ConsentGiven (video only)                      │ ConsultRequested
                            └──────────────────────────────┐                 │
                                                           ▼                 ▼
                       in_consult ◀─CallStarted─ consult_queued ◀────────────┘
                            │ CallEnded                    ▲
                            ▼                              │ ConsultRequested (again)
                       consult_ended ──────────────────────┘
                            │ ResultsSeen
                            ▼
    results ─ResultsSeen─▶ completed ◀─ConsentRefused (or a consent allowing nothing)─ consent
                            │ goodbye_s elapsed, or CardRemoved
                            ▼
                          wiped        accepts nothing more (its one Wipe effect is out)

    any live phase ─Withdrawn──▶ withdrawn ─goodbye_s / CardRemoved─▶ wiped
    any live phase ─inactivity─▶ expired   ─goodbye_s / CardRemoved─▶ wiped
                                 (on results and consult_ended inactivity completes instead:
                                  the resident consented and was measured, so the bundle goes)
    any phase ─CardRemoved─▶ wiped   (a running step is aborted, a call hung up first)

Overlays (the phase does not change underneath):

* **SOS** (``SosPressed``, from every phase but wiped): always ``RaiseSos`` and the ``sos``
  screen with the emergency number.  When a consult is possible (the service includes it and
  the resident consented to video) the visit goes to ``consult_queued`` with
  ``StartConsult(urgent=True)`` (a running step is aborted first); a queued consult becomes
  urgent; in a call the doctor is already there.  ``OverlayClosed`` returns to the screen
  underneath.  While the SOS screen is up no inactivity countdown runs.
* **Urgent vitals** (a finished step's interpretation says ``urgent``, or ``UrgentVitals``):
  the ``urgent-offer`` screen offers the SOS path (``SosPressed``) or to go on
  (``OverlayClosed``).

Inactivity (live phases with a countdown: consent, a failed step, an urgent offer, results,
consult_ended; none while a step runs, while queued or in a call): at ``deadline -
warning_before_s`` a ``ShowWarning``; a ``Touch`` or ``ExtendRequested`` while it shows
extends the visit (at most ``max_extensions`` times; any other touch or step resets the
countdown without counting).  A tick that arrives late still shows the warning first and
moves the deadline so the resident always gets ``warning_before_s`` seconds.

Persistence: every phase maps to a :class:`cabin.visits.VisitStage` (:func:`stage_of`).
``PersistStage`` is ``VisitStore.set_state``; ``completed`` is reached through
``CompleteVisit`` (``VisitStore.complete``) and ``withdrawn`` through ``WithdrawVisit``.
A step's measurements are committed once, when the step ends (``CommitMeasurements``): the
accepted attempt, or the last failed attempt of a skipped step (its record says why the value
is missing).  :meth:`VisitMachine.recover` decides, after a crash, from what was persisted.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Final, TypeAlias

from cabin.visits import AuditOutcome, VisitStage
from kiosk_bridge.consent import ConsentChoices
from kiosk_bridge.events import EventType
from kiosk_bridge.sessions import Service
from vitals.measurement import Interpretation, Measurement, Reason
from vitals.model import Kind

MIN_WARNING_S: Final = 20.0
"""The inactivity warning comes at least this long before the visit expires (issue 8)."""
MIN_EXTENSIONS: Final = 10
"""The resident can extend the visit at least this many times (issue 8)."""
EMERGENCY_NUMBER: Final = "115"
"""Vietnam's emergency medical number."""


class Step(StrEnum):
    """A measuring step: one procedure (BMI is derived from height and weight, not a step)."""

    TEMPERATURE = "temperature"
    WEIGHT = "weight"
    HEIGHT = "height"
    SPO2 = "spo2"
    """Pulse oximetry: SpO2 and the pulse rate."""
    BLOOD_PRESSURE = "blood-pressure"

    @property
    def kinds(self) -> frozenset[Kind]:
        """The measurement kinds the step's procedure produces."""
        return _STEP_KINDS[self]


_STEP_KINDS: Final = MappingProxyType(
    {
        Step.TEMPERATURE: frozenset({Kind.BODY_TEMPERATURE}),
        Step.WEIGHT: frozenset({Kind.BODY_WEIGHT}),
        Step.HEIGHT: frozenset({Kind.BODY_HEIGHT}),
        Step.SPO2: frozenset({Kind.SPO2, Kind.PULSE_RATE}),
        Step.BLOOD_PRESSURE: frozenset({Kind.BLOOD_PRESSURE}),
    }
)
DEFAULT_STEPS: Final = (Step.TEMPERATURE, Step.WEIGHT, Step.HEIGHT, Step.SPO2, Step.BLOOD_PRESSURE)


def steps_committed(measurements: Iterable[Measurement]) -> frozenset[Step]:
    """The steps that have a committed measurement among ``measurements`` (for :meth:`recover`).

    A step counts once any of its kinds is committed (oximetry commits SpO2 and pulse one by
    one: measuring again after a crash between the two would duplicate the SpO2).
    """
    kinds = {m.kind for m in measurements}
    return frozenset(step for step in Step if step.kinds & kinds)


def step_failure(measurements: Sequence[Measurement]) -> Reason | None:
    """Why a step's result cannot be accepted (the first reason), or None if all are valid."""
    if not measurements:
        return NO_RESULT
    for measurement in measurements:
        if not measurement.valid:
            return measurement.reasons[0] if measurement.reasons else NO_RESULT
    return None


def urgent_findings(measurements: Iterable[Measurement]) -> tuple[Interpretation, ...]:
    """The urgent interpretations among ``measurements`` (a panel's own, else its components')."""
    found: list[Interpretation] = []
    for measurement in measurements:
        own = measurement.interpretation
        if own is not None and own.urgent:
            found.append(own)
            continue
        found += [
            c.interpretation
            for c in measurement.components
            if c.interpretation is not None and c.interpretation.urgent
        ]
    return tuple(dict.fromkeys(found))


NO_RESULT: Final = Reason(
    "step-no-result",
    "The measurement gave no result. Please try again.",
    "Lần đo không có kết quả. Xin vui lòng đo lại.",
)
STEP_INTERRUPTED: Final = Reason(
    "step-interrupted",
    "The measurement was stopped. You can measure again or skip it.",
    "Lần đo đã bị dừng. Ông bà có thể đo lại hoặc bỏ qua.",
)
SKIPPED_BY_RESIDENT: Final = Reason(
    "step-skipped",
    "You chose to skip this measurement.",
    "Ông bà đã chọn bỏ qua phép đo này.",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class VisitPlan:
    """What a visit does and how long it waits: one per session, from the cabin's config."""

    service: Service = Service.BOTH
    steps: tuple[Step, ...] = DEFAULT_STEPS
    """The measuring steps in order (ignored by a consult-only service)."""
    inactivity_s: float = 90.0
    """Countdown on a failed step or an urgent offer."""
    consent_s: float = 180.0
    """Countdown on the consent screen (there is a text to read)."""
    results_s: float = 180.0
    """Countdown on the results page and after a call."""
    warning_before_s: float = 25.0
    max_extensions: int = 10
    goodbye_s: float = 15.0
    """How long a closed visit's last screen stays before the visit is wiped."""
    max_retakes: int = 2
    """Retakes offered per step (when the failure's reason says a retake can help)."""
    resume_within_s: float = 300.0
    """After a crash, a visit persisted longer ago than this is closed, not resumed."""
    emergency_number: str = EMERGENCY_NUMBER

    def __post_init__(self) -> None:
        if len(set(self.steps)) != len(self.steps):
            raise ValueError("each measuring step can be in the plan once")
        if self.warning_before_s < MIN_WARNING_S:
            raise ValueError(f"the inactivity warning needs >= {MIN_WARNING_S:g} s")
        if self.max_extensions < MIN_EXTENSIONS:
            raise ValueError(f"the resident must be able to extend >= {MIN_EXTENSIONS} times")
        for name in ("inactivity_s", "consent_s", "results_s"):
            if getattr(self, name) <= self.warning_before_s:
                raise ValueError(f"{name} must be longer than warning_before_s")
        if self.goodbye_s <= 0 or self.resume_within_s <= 0 or self.max_retakes < 0:
            raise ValueError("need goodbye_s > 0, resume_within_s > 0 and max_retakes >= 0")
        if not self.emergency_number.strip():
            raise ValueError("the emergency number must not be blank")

    @property
    def measures(self) -> bool:
        """The service includes the health check."""
        return self.service in (Service.HEALTH_CHECK, Service.BOTH)

    @property
    def consults(self) -> bool:
        """The service includes a video consultation."""
        return self.service in (Service.CONSULT, Service.BOTH)


class Phase(StrEnum):
    """Where the visit stands (values match :class:`cabin.visits.VisitStage` where shared)."""

    LAUNCHED = "launched"
    CONSENT = "consent"
    MEASURING = "measuring"
    RESULTS = "results"
    CONSULT_QUEUED = "consult_queued"
    IN_CONSULT = "in_consult"
    CONSULT_ENDED = "consult_ended"
    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    WIPED = "wiped"

    @property
    def live(self) -> bool:
        """The visit has not ended."""
        return self not in _ENDED

    @property
    def closed(self) -> bool:
        """The visit has ended and waits to be wiped."""
        return self in _CLOSED


_CLOSED: Final = frozenset({Phase.COMPLETED, Phase.WITHDRAWN, Phase.EXPIRED})
_ENDED: Final = _CLOSED | {Phase.WIPED}
_CONSULTING: Final = frozenset({Phase.CONSULT_QUEUED, Phase.IN_CONSULT})
_STAGES: Final[Mapping[Phase, VisitStage]] = MappingProxyType(
    {phase: VisitStage(phase.value) for phase in Phase if phase is not Phase.WIPED}
)


def stage_of(phase: Phase) -> VisitStage | None:
    """The persisted stage of ``phase`` (None for wiped: a wiped visit has no row)."""
    return _STAGES.get(phase)


class StepStatus(StrEnum):
    """Where the current measuring step stands."""

    STARTING = "starting"
    """``StartStep`` was emitted; the procedure is being started."""
    RUNNING = "running"
    FAILED = "failed"
    """Finished without an acceptable result: retake or skip."""
    DONE = "done"
    """Accepted and committed; an urgent offer is shown before the next step."""


class Overlay(StrEnum):
    """A screen shown over the phase's own."""

    SOS = "sos"
    URGENT_OFFER = "urgent-offer"


class StepOutcome(StrEnum):
    MEASURED = "measured"
    SKIPPED = "skipped"
    RECOVERED = "recovered"
    """Committed before a crash (measured, or skipped with its failed record)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRecord:
    """How a finished step ended."""

    step: Step
    outcome: StepOutcome
    reason: Reason | None = None
    """Why a skipped step has no value (the last failure's reason, or the resident's choice)."""
    attempts: int = 1
    committed: bool = True
    """Measurements of the step were committed (a step skipped before any result has none)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Visit:
    """The state of one visit: everything :meth:`VisitMachine.apply` decides from."""

    phase: Phase = Phase.LAUNCHED
    consent: ConsentChoices | None = None
    step: Step | None = None
    """The measuring step in progress (measuring only)."""
    step_status: StepStatus | None = None
    attempt: int = 0
    """Attempts of the current step so far (1 is the first)."""
    failure: Reason | None = None
    failed_attempt: tuple[Measurement, ...] = ()
    """The last failed attempt of the current step, committed if the step is skipped."""
    records: tuple[StepRecord, ...] = ()
    overlay: Overlay | None = None
    findings: tuple[Interpretation, ...] = ()
    """Urgent interpretations found so far."""
    pending_offer: Interpretation | None = None
    """Urgent vitals reported while a step ran: offered when it ends."""
    sos_raised: bool = False
    urgent_consult: bool = False
    """The consult in progress was queued as urgent."""
    call_connected: bool = False
    """A doctor answered (the current or last consult)."""
    extensions_used: int = 0
    deadline: float | None = None
    """When the countdown runs out (None: no countdown)."""
    warned_at: float | None = None
    """When the inactivity warning was shown (None: not showing)."""
    closed_as: AuditOutcome | None = None
    """How the visit ended (``abandoned``: wiped while live)."""

    @property
    def recorded_steps(self) -> frozenset[Step]:
        return frozenset(record.step for record in self.records)

    @property
    def urgent(self) -> bool:
        """SOS was pressed or urgent vitals were found: a consult is triaged urgent."""
        return self.sos_raised or bool(self.findings)

    @property
    def step_active(self) -> bool:
        """A procedure is (being) started and must be aborted if the visit leaves the step."""
        return self.step_status in (StepStatus.STARTING, StepStatus.RUNNING)


# Events.


@dataclass(frozen=True, slots=True)
class Launched:
    """The resident's screen opened the visit (the kiosk's launch)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentGiven:
    """The resident answered the consent (the shell has recorded it)."""

    choices: ConsentChoices


@dataclass(frozen=True, slots=True)
class ConsentRefused:
    """The resident declined the consent as a whole."""


@dataclass(frozen=True, slots=True)
class StepStarted:
    """The shell started the step's procedure."""

    step: Step


@dataclass(frozen=True, slots=True)
class StepProgress:
    """A procedure reported progress (the screen shows it; the machine only notes activity)."""

    step: Step


@dataclass(frozen=True, slots=True)
class StepFinished:
    """A procedure ended; ``measurements`` as :func:`vitals.interpretation.interpret` left them."""

    step: Step
    measurements: tuple[Measurement, ...]


@dataclass(frozen=True, slots=True)
class RetakeRequested:
    step: Step


@dataclass(frozen=True, slots=True)
class StepSkipped:
    """The resident skipped the step, or the shell did (its device failed the self-test)."""

    step: Step
    reason: Reason | None = None


@dataclass(frozen=True, slots=True)
class ResultsSeen:
    """The resident pressed Finish on the results or the after-call screen."""


@dataclass(frozen=True, slots=True)
class ConsultRequested:
    """The resident asked to talk to a doctor."""


@dataclass(frozen=True, slots=True)
class ConsultQueued:
    """The signaling service put the resident in the doctors' queue."""

    position: int | None = None


@dataclass(frozen=True, slots=True)
class CallStarted:
    """A doctor answered."""


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The consultation ended (hung up, or no doctor / the connection lost before a call)."""


@dataclass(frozen=True, slots=True)
class Touch:
    """Any resident activity on the screen."""


@dataclass(frozen=True, slots=True)
class ExtendRequested:
    """The resident pressed "more time" on the inactivity warning."""


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed (``apply``'s ``now`` says how much)."""


@dataclass(frozen=True, slots=True)
class SosPressed:
    """The SOS button (on every screen; also "talk to a doctor now" on an urgent offer)."""


@dataclass(frozen=True, slots=True)
class UrgentVitals:
    """A value asking for the emergency path (usually found by the machine in StepFinished)."""

    finding: Interpretation


@dataclass(frozen=True, slots=True)
class OverlayClosed:
    """The resident closed the SOS screen or declined the urgent offer."""


@dataclass(frozen=True, slots=True)
class CardRemoved:
    """The kiosk ended the session (the bridge's DELETE): wipe within 1 s."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Withdrawn:
    """The resident withdrew consent; ``recorded``: the bridge already withdrew the visit."""

    recorded: bool = False


VisitEvent: TypeAlias = (
    Launched
    | ConsentGiven
    | ConsentRefused
    | StepStarted
    | StepProgress
    | StepFinished
    | RetakeRequested
    | StepSkipped
    | ResultsSeen
    | ConsultRequested
    | ConsultQueued
    | CallStarted
    | CallEnded
    | Touch
    | ExtendRequested
    | Tick
    | SosPressed
    | UrgentVitals
    | OverlayClosed
    | CardRemoved
    | Withdrawn
)


# Effects.


class Screen(StrEnum):
    """What the resident's screen shows."""

    CONSENT = "consent"
    STEP = "step"
    STEP_FAILED = "step-failed"
    URGENT_OFFER = "urgent-offer"
    SOS = "sos"
    RESULTS = "results"
    QUEUE = "queue"
    CALL = "call"
    CALL_ENDED = "call-ended"
    COMPLETED = "completed"
    CONSENT_DECLINED = "consent-declined"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    IDLE = "idle"
    """Nothing about anyone: the visit is wiped."""


class SosCause(StrEnum):
    BUTTON = "button"
    URGENT_VITALS = "urgent-vitals"


class WipeCause(StrEnum):
    CARD_REMOVED = "card-removed"
    CLOSED = "closed"
    """The closed visit's last screen has been shown long enough."""
    RECOVERY = "recovery"
    """Closed at start-up after a crash."""


@dataclass(frozen=True, slots=True)
class PersistStage:
    """``VisitStore.set_state(session, stage, step=step)``."""

    stage: VisitStage
    step: Step | None = None


@dataclass(frozen=True, slots=True)
class StartStep:
    """Run the step's procedure; report StepStarted, StepProgress, then StepFinished."""

    step: Step
    attempt: int


@dataclass(frozen=True, slots=True)
class AbortStep:
    """Stop the step's procedure now (deflate the cuff); its result is not wanted."""

    step: Step


@dataclass(frozen=True, slots=True)
class CommitMeasurements:
    """``VisitStore.commit_measurement`` each one, in order, before the next effect."""

    step: Step
    measurements: tuple[Measurement, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ShowScreen:
    screen: Screen
    step: Step | None = None
    reason: Reason | None = None
    """Why the step failed (``step-failed``)."""
    finding: Interpretation | None = None
    """What is urgent (``urgent-offer``)."""
    retake: bool = False
    """Offer a retake (``step-failed``; skipping is always offered)."""
    consult: bool = False
    """Offer (or, on ``sos``, announce) a doctor."""
    emergency_number: str | None = None


@dataclass(frozen=True, slots=True)
class Speak:
    """Play a voice prompt (an id of :data:`cabin.voice.CATALOG`; see :data:`PROMPTS`)."""

    prompt_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ShowWarning:
    seconds_left: float
    extensions_left: int


@dataclass(frozen=True, slots=True)
class HideWarning:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class StartConsult:
    """Queue for a doctor with the triage summary (again, if queued: the consult became urgent)."""

    urgent: bool


@dataclass(frozen=True, slots=True)
class HangUp:
    """End the consultation (queued or in a call)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RaiseSos:
    """Publish ``sos.raised`` to the kiosk (and tell the doctor, in a call)."""

    cause: SosCause
    consult: bool
    """A doctor is (being) called."""


KioskValue: TypeAlias = str | int | bool


@dataclass(frozen=True, slots=True)
class SendKioskEvent:
    """``KioskSessions.publish(session, type, data)`` (no personal data in ``data``)."""

    type: EventType
    data: tuple[tuple[str, KioskValue], ...] = ()

    def as_dict(self) -> dict[str, KioskValue]:
        return dict(self.data)


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteVisit:
    """Build the bundle and ``VisitStore.complete`` it (queued only if ``send_to_hospital``),
    then ``KioskSessions.complete`` (``session.completed`` with the receipt)."""

    send_to_hospital: bool


@dataclass(frozen=True, slots=True)
class WithdrawVisit:
    """``KioskSessions.withdraw``: record the withdrawal, delete what was not delivered."""


@dataclass(frozen=True, slots=True)
class Wipe:
    """``KioskSessions.wipe`` / ``VisitStore.wipe`` (idempotent): forget the resident."""

    cause: WipeCause


VisitEffect: TypeAlias = (
    PersistStage
    | StartStep
    | AbortStep
    | CommitMeasurements
    | ShowScreen
    | Speak
    | ShowWarning
    | HideWarning
    | StartConsult
    | HangUp
    | RaiseSos
    | SendKioskEvent
    | CompleteVisit
    | WithdrawVisit
    | Wipe
)

STEP_PROMPTS: Final = MappingProxyType(
    {
        Step.TEMPERATURE: "temperature",
        Step.WEIGHT: "weight-stand",
        Step.HEIGHT: "height",
        Step.SPO2: "spo2-finger",
        Step.BLOOD_PRESSURE: "bp-cuff",
    }
)
PROMPTS: Final = frozenset(
    {
        "welcome",
        "consent",
        "consent-declined",
        "measuring-start",
        "measurement-done",
        "retake",
        "step-skipped",
        "result-ready",
        "result-urgent",
        "doctor-connecting",
        "doctor-joined",
        "call-ended",
        "sos",
        "inactivity-warning",
        "session-ended",
        "goodbye",
        *STEP_PROMPTS.values(),
    }
)
"""Every prompt id the machine speaks."""


class RecoveryDecision(StrEnum):
    RESUME = "resume"
    """The visit goes on (a measuring step again, the results, the consent)."""
    CLOSE = "close"
    """The visit is closed (if it was not already) and wiped."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Recovery:
    decision: RecoveryDecision
    visit: Visit
    effects: tuple[VisitEffect, ...]


_Result: TypeAlias = tuple[Visit, list[VisitEffect]]


class VisitMachine:
    """The rules of a visit under one :class:`VisitPlan` (the machine holds no visit state)."""

    def __init__(self, plan: VisitPlan) -> None:
        self.plan = plan

    def new(self, *, now: float) -> Visit:
        """A visit just opened by the kiosk (``launched``, persisted by ``VisitStore.open``)."""
        return Visit(deadline=now + self.plan.consent_s)

    def consult_possible(self, visit: Visit) -> bool:
        """The service includes a consult and the resident consented to video."""
        consent = visit.consent
        return self.plan.consults and consent is not None and consent.video_consultation

    def apply(self, visit: Visit, event: VisitEvent, now: float) -> tuple[Visit, list[VisitEffect]]:
        """The visit after ``event`` at ``now``, and the effects to carry out in order.

        Events that do not apply where the visit stands (a late progress report, a touch on a
        screen that is gone) change nothing.  A wiped visit accepts nothing.
        """
        if visit.phase is Phase.WIPED:
            return visit, []
        after, effects = self._dispatch(visit, event, now)
        if visit.warned_at is not None and after.warned_at is None and after.phase.live:
            effects.insert(0, HideWarning())  # the visit goes on: the warning goes
        return after, effects

    def recover(
        self,
        stage: VisitStage,
        committed_steps: Collection[Step],
        now: float,
        *,
        consent: ConsentChoices | None,
        updated_at: float | None = None,
    ) -> Recovery:
        """After a crash: resume the visit persisted at ``stage``, or close it.

        ``committed_steps`` are the steps with committed measurements (:func:`steps_committed`),
        ``consent`` the consent in force (None if none or withdrawn), ``updated_at`` when the
        visit was last persisted, on the clock of ``now``.  Closed visits are wiped; a visit
        older than ``resume_within_s`` is closed (completed from results on: the resident was
        measured and consented; interrupted before); otherwise measuring resumes with the next
        step without a committed measurement, results stay results, and a consult, whose call
        is gone, comes back to the results.
        """
        records = tuple(
            StepRecord(step=step, outcome=StepOutcome.RECOVERED, attempts=0, committed=True)
            for step in self.plan.steps
            if step in committed_steps
        )
        base = Visit(consent=consent, records=records)
        if stage.terminal:
            wiped = replace(base, phase=Phase.WIPED, closed_as=AuditOutcome(stage.value))
            return Recovery(
                decision=RecoveryDecision.CLOSE,
                visit=wiped,
                effects=(Wipe(WipeCause.RECOVERY),),
            )
        after_results = stage in (
            VisitStage.RESULTS,
            VisitStage.CONSULT_QUEUED,
            VisitStage.IN_CONSULT,
            VisitStage.CONSULT_ENDED,
        )
        stale = updated_at is not None and now - updated_at > self.plan.resume_within_s
        needs_consent = stage not in (VisitStage.LAUNCHED, VisitStage.CONSENT)
        if stale or (needs_consent and consent is None):
            return self._close_at_recovery(base, completed=after_results and consent is not None)
        visit: Visit
        effects: list[VisitEffect]
        if stage in (VisitStage.LAUNCHED, VisitStage.CONSENT):
            visit, effects = self._enter_consent(base, now)
        elif stage is VisitStage.CONSENTED:
            visit, effects = self._after_consent(base, now)
        elif stage is VisitStage.MEASURING:
            if consent is None or not consent.measuring or not self.plan.measures:
                return self._close_at_recovery(base, completed=False)
            visit, effects = self._next_step(base, now)
        else:
            visit, effects = self._enter_results(base, now)
            if stage is not VisitStage.RESULTS:
                lost = SendKioskEvent(
                    EventType.CONSULT_ENDED, (("connected", False), ("interrupted", True))
                )
                effects.insert(0, lost)
        return Recovery(decision=RecoveryDecision.RESUME, visit=visit, effects=tuple(effects))

    # Dispatch.

    def _dispatch(self, v: Visit, event: VisitEvent, now: float) -> _Result:
        match event:
            case Launched():
                if v.phase is Phase.LAUNCHED and v.overlay is None:
                    v, effects = self._enter_consent(v, now)
                    return v, [*effects[:2], Speak("welcome"), *effects[2:]]
            case ConsentGiven(choices=choices):
                if v.phase in (Phase.LAUNCHED, Phase.CONSENT) and v.overlay is None:
                    return self._after_consent(replace(v, consent=choices), now)
            case ConsentRefused():
                if v.phase in (Phase.LAUNCHED, Phase.CONSENT) and v.overlay is None:
                    return self._complete(v, now, declined=True)
            case StepStarted(step=step):
                if self._on_step(v, step) and v.step_status is StepStatus.STARTING:
                    return replace(v, step_status=StepStatus.RUNNING), []
            case StepProgress():
                return self._activity(v, now)
            case StepFinished(step=step, measurements=measurements):
                if self._on_step(v, step) and v.step_active:
                    return self._step_finished(v, measurements, now)
            case RetakeRequested(step=step):
                if self._on_step(v, step) and v.overlay is None:
                    return self._retake(v)
            case StepSkipped(step=step, reason=reason):
                if self._on_step(v, step) and v.overlay is None:
                    return self._skip(v, reason, now)
            case ResultsSeen():
                if v.phase in (Phase.RESULTS, Phase.CONSULT_ENDED) and v.overlay is None:
                    return self._complete(v, now, declined=False)
            case ConsultRequested():
                if (
                    v.phase in (Phase.RESULTS, Phase.CONSULT_ENDED)
                    and v.overlay is None
                    and self.consult_possible(v)
                ):
                    return self._start_consult(v, now, urgent=v.urgent)
            case ConsultQueued(position=position):
                if v.phase is Phase.CONSULT_QUEUED:
                    data: tuple[tuple[str, KioskValue], ...] = (("urgent", v.urgent_consult),)
                    if position is not None:
                        data += (("position", position),)
                    return v, [SendKioskEvent(EventType.CONSULT_QUEUED, data)]
            case CallStarted():
                if v.phase is Phase.CONSULT_QUEUED:
                    return self._call_started(v)
            case CallEnded():
                if v.phase in _CONSULTING:
                    return self._call_ended(v, now)
            case Touch() | ExtendRequested():
                return self._activity(v, now)
            case Tick():
                return self._tick(v, now)
            case SosPressed():
                return self._sos(v, now)
            case UrgentVitals(finding=finding):
                return self._urgent_vitals(v, finding, now)
            case OverlayClosed():
                if v.overlay is not None:
                    return self._close_overlay(v, now)
            case CardRemoved():
                return self._wipe(v, WipeCause.CARD_REMOVED)
            case Withdrawn(recorded=recorded):
                if v.consent is None and v.phase in (Phase.LAUNCHED, Phase.CONSENT):
                    return self._complete(v, now, declined=True)  # nothing to withdraw yet
                if v.phase is not Phase.WITHDRAWN:
                    return self._withdraw(v, now, recorded=recorded)
        return v, []

    def _on_step(self, v: Visit, step: Step) -> bool:
        return v.phase is Phase.MEASURING and v.step is step

    # Consent and measuring.

    def _enter_consent(self, v: Visit, now: float) -> _Result:
        v = replace(v, phase=Phase.CONSENT, deadline=now + self.plan.consent_s, warned_at=None)
        return v, [
            PersistStage(VisitStage.CONSENT),
            ShowScreen(screen=Screen.CONSENT),
            Speak("consent"),
        ]

    def _after_consent(self, v: Visit, now: float) -> _Result:
        consent = v.consent
        if consent is not None and consent.measuring and self.plan.measures:
            v, effects = self._next_step(v, now)
            if v.phase is Phase.MEASURING and not v.records:
                effects.insert(2, Speak("measuring-start"))
            return v, effects
        if self.consult_possible(v):
            return self._start_consult(v, now, urgent=v.urgent)
        return self._complete(v, now, declined=True)

    def _next_step(self, v: Visit, now: float) -> _Result:
        done = v.recorded_steps
        step = next((s for s in self.plan.steps if s not in done), None)
        if step is None:
            return self._enter_results(v, now)
        v = replace(
            v,
            phase=Phase.MEASURING,
            step=step,
            step_status=StepStatus.STARTING,
            attempt=1,
            failure=None,
            failed_attempt=(),
            overlay=None,
            deadline=None,
            warned_at=None,
        )
        return v, [
            PersistStage(VisitStage.MEASURING, step),
            ShowScreen(screen=Screen.STEP, step=step),
            Speak(STEP_PROMPTS[step]),
            StartStep(step, 1),
        ]

    def _step_finished(self, v: Visit, measurements: Sequence[Measurement], now: float) -> _Result:
        step = v.step
        assert step is not None
        measurements = tuple(measurements)
        reason = step_failure(measurements)
        offer = v.pending_offer
        if reason is not None:
            v = replace(
                v,
                step_status=StepStatus.FAILED,
                failure=reason,
                failed_attempt=measurements,
                pending_offer=None,
                deadline=now + self.plan.inactivity_s,
            )
            if offer is not None:
                return self._offer(v, offer, now)
            return v, [self._failed_screen(v), Speak("retake")]
        findings = urgent_findings(measurements)
        v = replace(
            v,
            step_status=StepStatus.DONE,
            records=(
                *v.records,
                StepRecord(step=step, outcome=StepOutcome.MEASURED, attempts=v.attempt),
            ),
            findings=tuple(dict.fromkeys((*v.findings, *findings))),
            pending_offer=None,
        )
        effects: list[VisitEffect] = [
            CommitMeasurements(step, measurements),
            self._step_event(v, step, StepOutcome.MEASURED),
            Speak("measurement-done"),
        ]
        offer = findings[0] if findings else offer
        if offer is not None:
            v, shown = self._offer(v, offer, now)
        else:
            v, shown = self._next_step(v, now)
        return v, effects + shown

    def _failed_screen(self, v: Visit) -> ShowScreen:
        return ShowScreen(
            screen=Screen.STEP_FAILED, step=v.step, reason=v.failure, retake=self._can_retake(v)
        )

    def _can_retake(self, v: Visit) -> bool:
        if v.step_status is not StepStatus.FAILED or v.attempt > self.plan.max_retakes:
            return False
        if v.failed_attempt:
            return any(m.retake_advised for m in v.failed_attempt)
        return v.failure is not None and v.failure.retake

    def _retake(self, v: Visit) -> _Result:
        if not self._can_retake(v):
            return v, []
        step = v.step
        assert step is not None
        v = replace(
            v,
            step_status=StepStatus.STARTING,
            attempt=v.attempt + 1,
            failure=None,
            failed_attempt=(),
            deadline=None,
            warned_at=None,
        )
        return v, [ShowScreen(screen=Screen.STEP, step=step), StartStep(step, v.attempt)]

    def _skip(self, v: Visit, reason: Reason | None, now: float) -> _Result:
        step = v.step
        if step is None or v.step_status is StepStatus.DONE:
            return v, []
        effects: list[VisitEffect] = []
        if v.step_active:
            effects.append(AbortStep(step))
        if v.failed_attempt:
            effects.append(CommitMeasurements(step, v.failed_attempt))
        record = StepRecord(
            step=step,
            outcome=StepOutcome.SKIPPED,
            reason=reason or v.failure or SKIPPED_BY_RESIDENT,
            attempts=v.attempt if v.failed_attempt else v.attempt - 1,
            committed=bool(v.failed_attempt),
        )
        v = replace(v, records=(*v.records, record), failed_attempt=())
        effects += [self._step_event(v, step, StepOutcome.SKIPPED), Speak("step-skipped")]
        v, shown = self._next_step(v, now)
        return v, effects + shown

    def _step_event(self, v: Visit, step: Step, outcome: StepOutcome) -> SendKioskEvent:
        return SendKioskEvent(
            EventType.MEASUREMENT_COMPLETED,
            (
                ("measurement", step.value),
                ("outcome", outcome.value),
                ("done", len(v.records)),
                ("total", len(self.plan.steps)),
            ),
        )

    def _enter_results(self, v: Visit, now: float) -> _Result:
        v = replace(
            v,
            phase=Phase.RESULTS,
            step=None,
            step_status=None,
            failure=None,
            failed_attempt=(),
            overlay=None,
            deadline=now + self.plan.results_s,
            warned_at=None,
        )
        return v, [
            PersistStage(VisitStage.RESULTS),
            self._screen(v),
            Speak("result-urgent" if v.findings else "result-ready"),
        ]

    # Consultation.

    def _start_consult(self, v: Visit, now: float, *, urgent: bool) -> _Result:
        v = replace(
            v,
            phase=Phase.CONSULT_QUEUED,
            step=None,
            step_status=None,
            failure=None,
            failed_attempt=(),
            overlay=None,
            urgent_consult=urgent,
            call_connected=False,
            deadline=None,
            warned_at=None,
        )
        return v, [
            PersistStage(VisitStage.CONSULT_QUEUED),
            StartConsult(urgent=urgent),
            self._screen(v),
            Speak("doctor-connecting"),
        ]

    def _call_started(self, v: Visit) -> _Result:
        v = replace(v, phase=Phase.IN_CONSULT, call_connected=True, overlay=None)
        return v, [
            PersistStage(VisitStage.IN_CONSULT),
            SendKioskEvent(EventType.CONSULT_STARTED, (("urgent", v.urgent_consult),)),
            self._screen(v),
            Speak("doctor-joined"),
        ]

    def _call_ended(self, v: Visit, now: float) -> _Result:
        v = replace(
            v,
            phase=Phase.CONSULT_ENDED,
            overlay=None,
            deadline=now + self.plan.results_s,
            warned_at=None,
        )
        return v, [
            PersistStage(VisitStage.CONSULT_ENDED),
            SendKioskEvent(EventType.CONSULT_ENDED, (("connected", v.call_connected),)),
            self._screen(v),
            Speak("call-ended"),
        ]

    # SOS and urgent vitals.

    def _sos(self, v: Visit, now: float) -> _Result:
        cause = SosCause.URGENT_VITALS if v.overlay is Overlay.URGENT_OFFER else SosCause.BUTTON
        v = replace(v, sos_raised=True)
        number = self.plan.emergency_number
        effects: list[VisitEffect] = []
        consult = self.consult_possible(v) and v.phase.live
        if consult and v.phase in (Phase.MEASURING, Phase.RESULTS, Phase.CONSULT_ENDED):
            if v.step_active and v.step is not None:
                effects.append(AbortStep(v.step))
            effects.append(RaiseSos(cause=cause, consult=True))
            v, started = self._start_consult(v, now, urgent=True)
            effects += [e for e in started if not isinstance(e, ShowScreen | Speak)]
        elif consult and v.phase is Phase.CONSULT_QUEUED:
            effects.append(RaiseSos(cause=cause, consult=True))
            if not v.urgent_consult:
                effects.append(StartConsult(urgent=True))
                v = replace(v, urgent_consult=True)
        else:
            consult = v.phase is Phase.IN_CONSULT
            if v.step_active and v.step is not None:
                effects.append(AbortStep(v.step))
                v = replace(
                    v, step_status=StepStatus.FAILED, failure=STEP_INTERRUPTED, failed_attempt=()
                )
            effects.append(RaiseSos(cause=cause, consult=consult))
        if v.phase.live:
            v = replace(v, deadline=None, warned_at=None)
        else:  # a closed visit: give the resident time to read the number before the wipe
            v = replace(v, deadline=now + self.plan.inactivity_s)
        v = replace(v, overlay=Overlay.SOS)
        effects += [
            ShowScreen(screen=Screen.SOS, consult=consult, emergency_number=number),
            Speak("sos"),
        ]
        return v, effects

    def _urgent_vitals(self, v: Visit, finding: Interpretation, now: float) -> _Result:
        if not v.phase.live or v.phase in (Phase.LAUNCHED, Phase.CONSENT):
            return v, []
        v = replace(v, findings=tuple(dict.fromkeys((*v.findings, finding))))
        if v.phase in _CONSULTING:
            if v.phase is Phase.CONSULT_QUEUED and not v.urgent_consult:
                return replace(v, urgent_consult=True), [StartConsult(urgent=True)]
            return v, []
        if v.step_active:
            return replace(v, pending_offer=finding), []
        if v.overlay is not None:
            return v, []
        return self._offer(v, finding, now)

    def _offer(self, v: Visit, finding: Interpretation, now: float) -> _Result:
        v = replace(
            v,
            overlay=Overlay.URGENT_OFFER,
            deadline=now + self.plan.inactivity_s,
            warned_at=None,
        )
        return v, [
            ShowScreen(
                screen=Screen.URGENT_OFFER,
                step=v.step,
                finding=finding,
                consult=self.consult_possible(v),
                emergency_number=self.plan.emergency_number,
            ),
            Speak("result-urgent"),
        ]

    def _close_overlay(self, v: Visit, now: float) -> _Result:
        v = replace(v, overlay=None)
        if v.phase is Phase.MEASURING and v.step_status is StepStatus.DONE:
            return self._next_step(v, now)
        if v.phase.live:
            v = replace(v, deadline=self._countdown(v, now), warned_at=None)
        return v, [self._screen(v)]

    # Inactivity.

    def _timeout(self, v: Visit) -> float | None:
        """The countdown of the screen the visit shows (None: no countdown)."""
        if v.overlay is Overlay.SOS:
            return None
        if v.overlay is Overlay.URGENT_OFFER:
            return self.plan.inactivity_s
        if v.phase in (Phase.LAUNCHED, Phase.CONSENT):
            return self.plan.consent_s
        if v.phase is Phase.MEASURING:
            return None if v.step_active else self.plan.inactivity_s
        if v.phase in (Phase.RESULTS, Phase.CONSULT_ENDED):
            return self.plan.results_s
        return None

    def _countdown(self, v: Visit, now: float) -> float | None:
        timeout = self._timeout(v)
        return None if timeout is None else now + timeout

    def _activity(self, v: Visit, now: float) -> _Result:
        """A touch resets a running countdown; while the warning shows, it is an extension
        (none left: the touch changes nothing and the visit expires at the deadline)."""
        if not v.phase.live or v.deadline is None:
            return v, []
        if v.warned_at is not None:
            if v.extensions_used >= self.plan.max_extensions:
                return v, []
            v = replace(v, extensions_used=v.extensions_used + 1)
        return replace(v, deadline=self._countdown(v, now), warned_at=None), []

    def _tick(self, v: Visit, now: float) -> _Result:
        deadline = v.deadline
        if deadline is None:
            return v, []
        if v.phase.closed:
            return self._wipe(v, WipeCause.CLOSED) if now >= deadline else (v, [])
        warning = self.plan.warning_before_s
        if v.warned_at is None:
            if now < deadline - warning:
                return v, []
            deadline = max(deadline, now + warning)
            v = replace(v, deadline=deadline, warned_at=now)
            left = self.plan.max_extensions - v.extensions_used
            return v, [
                ShowWarning(seconds_left=deadline - now, extensions_left=left),
                Speak("inactivity-warning"),
            ]
        if now < deadline:
            return v, []
        if v.phase in (Phase.RESULTS, Phase.CONSULT_ENDED):
            return self._complete(v, now, declined=False)
        return self._expire(v, now)

    # Closing.

    def _close(self, v: Visit, phase: Phase, outcome: AuditOutcome, now: float) -> Visit:
        return replace(
            v,
            phase=phase,
            closed_as=outcome,
            step=None,
            step_status=None,
            failure=None,
            failed_attempt=(),
            pending_offer=None,
            overlay=None,
            deadline=now + self.plan.goodbye_s,
            warned_at=None,
        )

    def _stop(self, v: Visit) -> list[VisitEffect]:
        """Stop what runs: the step's procedure, the consultation."""
        effects: list[VisitEffect] = []
        if v.step_active and v.step is not None:
            effects.append(AbortStep(v.step))
        if v.phase in _CONSULTING:
            effects.append(HangUp())
        return effects

    def _complete(self, v: Visit, now: float, *, declined: bool) -> _Result:
        consent = v.consent
        committed = any(record.committed for record in v.records)
        send = consent is not None and consent.hospital and (committed or v.call_connected)
        effects = self._stop(v)
        v = self._close(v, Phase.COMPLETED, AuditOutcome.COMPLETED, now)
        screen = Screen.CONSENT_DECLINED if declined else Screen.COMPLETED
        return v, [
            *effects,
            CompleteVisit(send_to_hospital=send),
            ShowScreen(screen=screen),
            Speak("consent-declined" if declined else "goodbye"),
        ]

    def _expire(self, v: Visit, now: float) -> _Result:
        effects = self._stop(v)
        v = self._close(v, Phase.EXPIRED, AuditOutcome.EXPIRED, now)
        return v, [
            *effects,
            PersistStage(VisitStage.EXPIRED),
            ShowScreen(screen=Screen.EXPIRED),
            Speak("session-ended"),
        ]

    def _withdraw(self, v: Visit, now: float, *, recorded: bool) -> _Result:
        effects = self._stop(v)
        if not recorded:
            effects.append(WithdrawVisit())
        v = self._close(v, Phase.WITHDRAWN, AuditOutcome.WITHDRAWN, now)
        return v, [*effects, ShowScreen(screen=Screen.WITHDRAWN), Speak("session-ended")]

    def _wipe(self, v: Visit, cause: WipeCause) -> _Result:
        effects = self._stop(v)
        v = replace(
            v,
            phase=Phase.WIPED,
            closed_as=v.closed_as or AuditOutcome.ABANDONED,
            step=None,
            step_status=None,
            failed_attempt=(),
            pending_offer=None,
            overlay=None,
            deadline=None,
            warned_at=None,
        )
        return v, [*effects, Wipe(cause), ShowScreen(screen=Screen.IDLE)]

    def _close_at_recovery(self, v: Visit, *, completed: bool) -> Recovery:
        consent = v.consent
        effects: list[VisitEffect]
        if completed:
            send = consent is not None and consent.hospital and bool(v.records)
            effects = [CompleteVisit(send_to_hospital=send)]
            outcome = AuditOutcome.COMPLETED
        else:
            effects = [PersistStage(VisitStage.INTERRUPTED)]
            outcome = AuditOutcome.INTERRUPTED
        wiped = replace(v, phase=Phase.WIPED, closed_as=outcome)
        return Recovery(
            decision=RecoveryDecision.CLOSE,
            visit=wiped,
            effects=(*effects, Wipe(WipeCause.RECOVERY)),
        )

    # Screens.

    def _screen(self, v: Visit) -> ShowScreen:
        """The screen of the phase (under any overlay)."""
        consult = self.consult_possible(v)
        number = self.plan.emergency_number if v.urgent else None
        match v.phase:
            case Phase.LAUNCHED | Phase.CONSENT:
                return ShowScreen(screen=Screen.CONSENT)
            case Phase.MEASURING:
                if v.step_status is StepStatus.FAILED:
                    return self._failed_screen(v)
                return ShowScreen(screen=Screen.STEP, step=v.step)
            case Phase.RESULTS:
                return ShowScreen(screen=Screen.RESULTS, consult=consult, emergency_number=number)
            case Phase.CONSULT_QUEUED:
                return ShowScreen(screen=Screen.QUEUE, consult=True, emergency_number=number)
            case Phase.IN_CONSULT:
                return ShowScreen(screen=Screen.CALL, consult=True)
            case Phase.CONSULT_ENDED:
                return ShowScreen(
                    screen=Screen.CALL_ENDED, consult=consult, emergency_number=number
                )
            case Phase.COMPLETED:
                return ShowScreen(screen=Screen.COMPLETED)
            case Phase.WITHDRAWN:
                return ShowScreen(screen=Screen.WITHDRAWN)
            case Phase.EXPIRED:
                return ShowScreen(screen=Screen.EXPIRED)
            case Phase.WIPED:
                return ShowScreen(screen=Screen.IDLE)
