"""The visit state machine: every transition, inactivity, SOS, consent, faults, crash recovery."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from cabin.visit_machine import (
    DEFAULT_STEPS,
    NO_RESULT,
    PROMPTS,
    SKIPPED_BY_RESIDENT,
    STEP_INTERRUPTED,
    STEP_PROMPTS,
    AbortStep,
    CallEnded,
    CallStarted,
    CardRemoved,
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
    Overlay,
    OverlayClosed,
    PersistStage,
    Phase,
    RaiseSos,
    RecoveryDecision,
    ResultsSeen,
    RetakeRequested,
    Screen,
    SendKioskEvent,
    ShowScreen,
    ShowWarning,
    SosCause,
    SosPressed,
    Speak,
    StartConsult,
    StartStep,
    Step,
    StepFinished,
    StepOutcome,
    StepProgress,
    StepSkipped,
    StepStarted,
    StepStatus,
    Tick,
    Touch,
    UrgentVitals,
    Visit,
    VisitEffect,
    VisitEvent,
    VisitMachine,
    VisitPlan,
    Wipe,
    WipeCause,
    Withdrawn,
    WithdrawVisit,
    stage_of,
    step_failure,
    steps_committed,
    urgent_findings,
)
from cabin.visits import AuditOutcome, VisitStage
from kiosk_bridge.consent import ConsentChoices
from kiosk_bridge.events import EventType
from kiosk_bridge.sessions import Service
from vitals.clock import Instant
from vitals.interpretation import interpret
from vitals.measurement import Component, Measurement, Method, Reason
from vitals.model import Kind, Status
from vitals.procedures.blood_pressure_reasons import LOOSE_CUFF
from vitals.procedures.oximetry import NO_FINGER
from vitals.procedures.weight import OVERLOAD, UNSTABLE

T0 = 1_000.0
AT = Instant(0, datetime(2026, 11, 2, 8, 0, tzinfo=UTC))
EVERYTHING = ConsentChoices(measuring=True, hospital=True, video_consultation=True)
NO_VIDEO = ConsentChoices(measuring=True, hospital=True, video_consultation=False)
NOT_SENT = ConsentChoices(measuring=True, hospital=False, video_consultation=True)
ONLY_VIDEO = ConsentChoices(measuring=False, hospital=True, video_consultation=True)
NOTHING = ConsentChoices(measuring=False, hospital=False, video_consultation=False)
E = TypeVar("E")


# Measurements, as the procedures and the interpretation leave them.

_METHODS = {
    Kind.BODY_TEMPERATURE: Method.INFRARED_FOREHEAD,
    Kind.BODY_WEIGHT: Method.PLATFORM_SCALE,
    Kind.BODY_HEIGHT: Method.ULTRASONIC,
    Kind.SPO2: Method.PULSE_OXIMETRY,
    Kind.PULSE_RATE: Method.PULSE_OXIMETRY,
    Kind.BLOOD_PRESSURE: Method.OSCILLOMETRY,
}


def valid(kind: Kind, value: str) -> Measurement:
    return interpret(Measurement(kind, Decimal(value), kind.unit, AT, Status.VALID, _METHODS[kind]))


def pressure(systolic: int, diastolic: int) -> Measurement:
    components = (
        Component(Kind.SYSTOLIC_BP, Decimal(systolic), "mm[Hg]"),
        Component(Kind.DIASTOLIC_BP, Decimal(diastolic), "mm[Hg]"),
    )
    panel = Measurement(
        Kind.BLOOD_PRESSURE, None, "mm[Hg]", AT, Status.VALID, Method.OSCILLOMETRY,
        components=components,
    )  # fmt: skip
    return interpret(panel)


def failed(kind: Kind, reason: Reason, status: Status = Status.NOT_AVAILABLE) -> Measurement:
    value = Decimal(80) if status is Status.INVALID else None
    return Measurement(kind, value, kind.unit, AT, status, _METHODS[kind], reasons=(reason,))


GOOD: dict[Step, tuple[Measurement, ...]] = {
    Step.TEMPERATURE: (valid(Kind.BODY_TEMPERATURE, "36.6"),),
    Step.WEIGHT: (valid(Kind.BODY_WEIGHT, "58.2"),),
    Step.HEIGHT: (valid(Kind.BODY_HEIGHT, "156.0"),),
    Step.SPO2: (valid(Kind.SPO2, "97"), valid(Kind.PULSE_RATE, "72")),
    Step.BLOOD_PRESSURE: (pressure(118, 76),),
}
FINGER_OUT = (failed(Kind.SPO2, NO_FINGER), failed(Kind.PULSE_RATE, NO_FINGER))
SCALE_UNSTABLE = (failed(Kind.BODY_WEIGHT, UNSTABLE, Status.INVALID),)
SCALE_OVERLOAD = (failed(Kind.BODY_WEIGHT, OVERLOAD, Status.INVALID),)
CUFF_ERROR = (
    Measurement(
        Kind.BLOOD_PRESSURE, None, "mm[Hg]", AT, Status.NOT_AVAILABLE, Method.OSCILLOMETRY,
        reasons=(LOOSE_CUFF,),
        components=(
            Component(Kind.SYSTOLIC_BP, None, "mm[Hg]", Status.NOT_AVAILABLE, (LOOSE_CUFF,)),
            Component(Kind.DIASTOLIC_BP, None, "mm[Hg]", Status.NOT_AVAILABLE, (LOOSE_CUFF,)),
        ),
    ),
)  # fmt: skip
LOW_SPO2 = (valid(Kind.SPO2, "87"), valid(Kind.PULSE_RATE, "96"))
CRISIS_BP = (pressure(185, 122),)
HIGH_FEVER = (valid(Kind.BODY_TEMPERATURE, "40.2"),)


class Drive:
    """One visit driven through the machine, the clock advanced by hand."""

    def __init__(self, plan: VisitPlan | None = None, *, now: float = T0) -> None:
        self.machine = VisitMachine(plan or VisitPlan())
        self.now = now
        self.visit = self.machine.new(now=now)
        self.log: list[VisitEffect] = []

    def __call__(self, event: VisitEvent, *, after: float = 0.0) -> list[VisitEffect]:
        self.now += after
        self.visit, effects = self.machine.apply(self.visit, event, self.now)
        self.log += effects
        return effects

    def at(self, moment: float) -> list[VisitEffect]:
        """A tick at ``moment``."""
        assert moment >= self.now
        return self(Tick(), after=moment - self.now)

    def measure(self, step: Step, measurements: tuple[Measurement, ...]) -> list[VisitEffect]:
        assert self.visit.step is step, (self.visit.step, step)
        self(StepStarted(step))
        return self(StepFinished(step, measurements), after=5.0)

    def state(self) -> Visit:
        """The visit now (a call, so a type checker does not carry narrowing across events)."""
        return self.visit

    def phase(self) -> Phase:
        return self.visit.phase


def consented(plan: VisitPlan | None = None, choices: ConsentChoices = EVERYTHING) -> Drive:
    drive = Drive(plan)
    drive(Launched())
    drive(ConsentGiven(choices=choices), after=10.0)
    return drive


def at_results(plan: VisitPlan | None = None, choices: ConsentChoices = EVERYTHING) -> Drive:
    drive = consented(plan, choices)
    for step in drive.machine.plan.steps:
        drive.measure(step, GOOD[step])
    assert drive.phase() is Phase.RESULTS
    return drive


def of(kind: type[E], effects: list[VisitEffect]) -> list[E]:
    """The effects of one type, in order."""
    return [effect for effect in effects if isinstance(effect, kind)]


def screens(effects: list[VisitEffect]) -> list[ShowScreen]:
    return [effect for effect in effects if isinstance(effect, ShowScreen)]


# The plan.


def test_default_plan_measures_five_steps_then_offers_a_doctor() -> None:
    plan = VisitPlan()
    assert plan.steps == DEFAULT_STEPS == (
        Step.TEMPERATURE, Step.WEIGHT, Step.HEIGHT, Step.SPO2, Step.BLOOD_PRESSURE,
    )  # fmt: skip
    assert (plan.inactivity_s, plan.warning_before_s, plan.max_extensions) == (90.0, 25.0, 10)
    assert plan.service is Service.BOTH
    assert plan.measures
    assert plan.consults


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"warning_before_s": 19.9}, "warning needs >= 20 s"),
        ({"max_extensions": 9}, "extend >= 10 times"),
        ({"steps": (Step.SPO2, Step.SPO2)}, "once"),
        ({"inactivity_s": 25.0}, "inactivity_s must be longer than warning_before_s"),
        ({"results_s": 10.0}, "results_s must be longer"),
        ({"goodbye_s": 0.0}, "goodbye_s > 0"),
        ({"emergency_number": " "}, "emergency number"),
    ],
)
def test_plan_rejects_what_issue_8_forbids(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VisitPlan(**options)  # type: ignore[arg-type]


def test_every_phase_but_wiped_is_a_persisted_stage() -> None:
    for phase in Phase:
        stage = stage_of(phase)
        if phase is Phase.WIPED:
            assert stage is None
        else:
            assert stage is not None
            assert stage.value == phase.value
            assert stage.terminal == phase.closed


def test_steps_name_the_kinds_their_procedures_produce() -> None:
    assert Step.SPO2.kinds == {Kind.SPO2, Kind.PULSE_RATE}
    assert steps_committed([*GOOD[Step.SPO2], *GOOD[Step.WEIGHT]]) == {Step.SPO2, Step.WEIGHT}
    assert steps_committed([GOOD[Step.SPO2][0]]) == {Step.SPO2}
    assert steps_committed([]) == frozenset()


def test_step_failure_is_the_first_reason_of_the_first_invalid_measurement() -> None:
    assert step_failure(GOOD[Step.SPO2]) is None
    assert step_failure(FINGER_OUT) is NO_FINGER
    assert step_failure((GOOD[Step.SPO2][0], FINGER_OUT[1])) is NO_FINGER
    assert step_failure(CUFF_ERROR) is LOOSE_CUFF
    assert step_failure(()) is NO_RESULT


def test_urgent_findings_come_from_the_interpretation() -> None:
    assert urgent_findings(GOOD[Step.SPO2]) == ()
    (low,) = urgent_findings(LOW_SPO2)
    assert low.code == "LL"
    (crisis,) = urgent_findings(CRISIS_BP)
    assert crisis.urgent
    assert len(urgent_findings(HIGH_FEVER)) == 1
    assert urgent_findings((valid(Kind.BODY_TEMPERATURE, "39.5"),)) == ()  # fever, not urgent


# The whole visit.


def test_launch_shows_the_consent_and_persists_it() -> None:
    drive = Drive()
    assert drive.phase() is Phase.LAUNCHED
    assert drive.state().deadline == T0 + VisitPlan().consent_s
    assert drive(Launched()) == [
        PersistStage(VisitStage.CONSENT),
        ShowScreen(screen=Screen.CONSENT),
        Speak("welcome"),
        Speak("consent"),
    ]
    assert drive.phase() is Phase.CONSENT
    assert drive(Launched()) == []


def test_consent_starts_the_first_step_without_a_countdown() -> None:
    drive = Drive()
    drive(Launched())
    effects = drive(ConsentGiven(choices=EVERYTHING))
    assert effects == [
        PersistStage(VisitStage.MEASURING, Step.TEMPERATURE),
        ShowScreen(screen=Screen.STEP, step=Step.TEMPERATURE),
        Speak("measuring-start"),
        Speak("temperature"),
        StartStep(Step.TEMPERATURE, 1),
    ]
    assert drive.state().step_status is StepStatus.STARTING
    assert drive.state().deadline is None
    assert drive(StepStarted(Step.TEMPERATURE)) == []
    assert drive.state().step_status is StepStatus.RUNNING


def test_a_finished_step_is_committed_reported_and_followed_by_the_next() -> None:
    drive = consented()
    effects = drive.measure(Step.TEMPERATURE, GOOD[Step.TEMPERATURE])
    assert effects == [
        CommitMeasurements(Step.TEMPERATURE, GOOD[Step.TEMPERATURE]),
        SendKioskEvent(
            EventType.MEASUREMENT_COMPLETED,
            (("measurement", "temperature"), ("outcome", "measured"), ("done", 1), ("total", 5)),
        ),
        Speak("measurement-done"),
        PersistStage(VisitStage.MEASURING, Step.WEIGHT),
        ShowScreen(screen=Screen.STEP, step=Step.WEIGHT),
        Speak("weight-stand"),
        StartStep(Step.WEIGHT, 1),
    ]
    assert drive.state().records[0].outcome is StepOutcome.MEASURED


def test_progress_and_events_for_another_step_change_nothing() -> None:
    drive = consented()
    before = drive.visit
    assert drive(StepProgress(Step.TEMPERATURE), after=1.0) == []
    assert drive(StepFinished(Step.WEIGHT, GOOD[Step.WEIGHT])) == []
    assert drive(RetakeRequested(Step.WEIGHT)) == []
    assert drive(StepSkipped(Step.WEIGHT)) == []
    assert drive.visit == before


def test_full_visit_measures_consults_completes_and_wipes() -> None:
    drive = at_results()
    assert drive.log[-3:] == [
        PersistStage(VisitStage.RESULTS),
        ShowScreen(screen=Screen.RESULTS, consult=True),
        Speak("result-ready"),
    ]
    assert drive(ConsultRequested(), after=20.0) == [
        PersistStage(VisitStage.CONSULT_QUEUED),
        StartConsult(urgent=False),
        ShowScreen(screen=Screen.QUEUE, consult=True),
        Speak("doctor-connecting"),
    ]
    assert drive.state().deadline is None
    assert drive(ConsultQueued(position=2)) == [
        SendKioskEvent(EventType.CONSULT_QUEUED, (("urgent", False), ("position", 2)))
    ]
    assert drive(CallStarted(), after=300.0) == [
        PersistStage(VisitStage.IN_CONSULT),
        SendKioskEvent(EventType.CONSULT_STARTED, (("urgent", False),)),
        ShowScreen(screen=Screen.CALL, consult=True),
        Speak("doctor-joined"),
    ]
    assert drive(CallEnded(), after=600.0) == [
        PersistStage(VisitStage.CONSULT_ENDED),
        SendKioskEvent(EventType.CONSULT_ENDED, (("connected", True),)),
        ShowScreen(screen=Screen.CALL_ENDED, consult=True),
        Speak("call-ended"),
    ]
    assert drive(ResultsSeen(), after=30.0) == [
        CompleteVisit(send_to_hospital=True),
        ShowScreen(screen=Screen.COMPLETED),
        Speak("goodbye"),
    ]
    assert drive.phase() is Phase.COMPLETED
    assert drive.state().closed_as is AuditOutcome.COMPLETED
    assert drive(Touch()) == []
    assert drive.at(drive.now + 14.0) == []
    assert drive.at(drive.now + 1.0) == [Wipe(WipeCause.CLOSED), ShowScreen(screen=Screen.IDLE)]
    assert drive.phase() is Phase.WIPED
    persisted = [e for e in drive.log if isinstance(e, PersistStage)]
    assert [(p.stage.value, p.step) for p in persisted] == [
        ("consent", None),
        *(("measuring", step) for step in DEFAULT_STEPS),
        ("results", None),
        ("consult_queued", None),
        ("in_consult", None),
        ("consult_ended", None),
    ]


def test_results_without_a_doctor_complete_on_finish() -> None:
    drive = at_results(VisitPlan(service=Service.HEALTH_CHECK))
    assert screens(drive.log)[-1] == ShowScreen(screen=Screen.RESULTS, consult=False)
    assert drive(ConsultRequested()) == []
    assert of(CompleteVisit, drive(ResultsSeen())) == [CompleteVisit(send_to_hospital=True)]


def test_step_order_comes_from_the_plan() -> None:
    drive = consented(VisitPlan(steps=(Step.BLOOD_PRESSURE, Step.SPO2)))
    assert drive.state().step is Step.BLOOD_PRESSURE
    drive.measure(Step.BLOOD_PRESSURE, GOOD[Step.BLOOD_PRESSURE])
    assert drive.state().step is Step.SPO2
    drive.measure(Step.SPO2, GOOD[Step.SPO2])
    assert drive.phase() is Phase.RESULTS
    assert [s.step for s in of(StartStep, drive.log)] == [Step.BLOOD_PRESSURE, Step.SPO2]


def test_a_consult_only_visit_queues_right_after_consent() -> None:
    drive = Drive(VisitPlan(service=Service.CONSULT))
    drive(Launched())
    effects = drive(ConsentGiven(choices=EVERYTHING))
    assert of(StartConsult, effects) == [StartConsult(urgent=False)]
    assert of(StartStep, effects) == []
    assert drive.phase() is Phase.CONSULT_QUEUED


def test_no_doctor_answering_ends_the_consult_unconnected() -> None:
    drive = at_results()
    drive(ConsultRequested())
    effects = drive(CallEnded(), after=600.0)
    assert SendKioskEvent(EventType.CONSULT_ENDED, (("connected", False),)) in effects
    assert drive.phase() is Phase.CONSULT_ENDED
    assert of(StartConsult, drive(ConsultRequested())) == [StartConsult(urgent=False)]


# Consent.


def test_refused_consent_completes_with_nothing_sent() -> None:
    drive = Drive()
    drive(Launched())
    assert drive(ConsentRefused()) == [
        CompleteVisit(send_to_hospital=False),
        ShowScreen(screen=Screen.CONSENT_DECLINED),
        Speak("consent-declined"),
    ]
    assert drive.phase() is Phase.COMPLETED


@pytest.mark.parametrize(
    ("service", "choices"),
    [
        (Service.HEALTH_CHECK, ONLY_VIDEO),
        (Service.HEALTH_CHECK, NOTHING),
        (Service.CONSULT, NO_VIDEO),
        (Service.BOTH, NOTHING),
    ],
)
def test_consent_that_allows_nothing_of_the_service_ends_the_visit(
    service: Service, choices: ConsentChoices
) -> None:
    drive = consented(VisitPlan(service=service), choices)
    assert drive.phase() is Phase.COMPLETED
    assert of(StartStep, drive.log) == []
    assert of(StartConsult, drive.log) == []
    assert of(CompleteVisit, drive.log) == [CompleteVisit(send_to_hospital=False)]
    assert screens(drive.log)[-1] == ShowScreen(screen=Screen.CONSENT_DECLINED)


def test_no_measuring_consent_but_video_goes_straight_to_the_doctor() -> None:
    drive = consented(VisitPlan(service=Service.BOTH), ONLY_VIDEO)
    assert drive.phase() is Phase.CONSULT_QUEUED
    assert of(StartStep, drive.log) == []


def test_no_video_consent_means_no_doctor_is_offered_or_called() -> None:
    drive = at_results(choices=NO_VIDEO)
    assert screens(drive.log)[-1].consult is False
    assert drive(ConsultRequested()) == []
    assert drive.phase() is Phase.RESULTS


def test_no_hospital_consent_means_the_bundle_is_not_sent() -> None:
    drive = at_results(choices=NOT_SENT)
    assert of(CompleteVisit, drive(ResultsSeen())) == [CompleteVisit(send_to_hospital=False)]


def test_nothing_is_measured_before_consent() -> None:
    drive = Drive()
    drive(Launched())
    for event in (
        StepStarted(Step.TEMPERATURE),
        StepFinished(Step.TEMPERATURE, GOOD[Step.TEMPERATURE]),
        RetakeRequested(Step.TEMPERATURE),
        StepSkipped(Step.TEMPERATURE),
        ResultsSeen(),
        ConsultRequested(),
        CallStarted(),
        UrgentVitals(urgent_findings(LOW_SPO2)[0]),
    ):
        assert drive(event) == [], event
    assert drive.phase() is Phase.CONSENT
    assert drive.state().records == ()


# Faults: a failed step shows its reason, offers a retake or a skip, and the visit goes on.


def test_finger_out_shows_the_reason_and_a_retake_measures_again() -> None:
    drive = consented(VisitPlan(steps=(Step.SPO2,)))
    effects = drive.measure(Step.SPO2, FINGER_OUT)
    assert effects == [
        ShowScreen(screen=Screen.STEP_FAILED, step=Step.SPO2, reason=NO_FINGER, retake=True),
        Speak("retake"),
    ]
    assert of(CommitMeasurements, effects) == []
    assert drive.state().deadline == drive.now + 90.0
    assert drive(RetakeRequested(Step.SPO2), after=3.0) == [
        ShowScreen(screen=Screen.STEP, step=Step.SPO2),
        StartStep(Step.SPO2, 2),
    ]
    assert drive.state().deadline is None
    drive.measure(Step.SPO2, GOOD[Step.SPO2])
    assert drive.phase() is Phase.RESULTS
    assert of(CommitMeasurements, drive.log) == [CommitMeasurements(Step.SPO2, GOOD[Step.SPO2])]
    (record,) = drive.state().records
    assert (record.outcome, record.attempts) == (StepOutcome.MEASURED, 2)


def test_an_unstable_scale_skipped_commits_its_failed_record_and_goes_on() -> None:
    drive = consented(VisitPlan(steps=(Step.WEIGHT, Step.HEIGHT)))
    drive.measure(Step.WEIGHT, SCALE_UNSTABLE)
    effects = drive(StepSkipped(Step.WEIGHT), after=4.0)
    assert effects[:3] == [
        CommitMeasurements(Step.WEIGHT, SCALE_UNSTABLE),
        SendKioskEvent(
            EventType.MEASUREMENT_COMPLETED,
            (("measurement", "weight"), ("outcome", "skipped"), ("done", 1), ("total", 2)),
        ),
        Speak("step-skipped"),
    ]
    assert StartStep(Step.HEIGHT, 1) in effects
    (record,) = drive.state().records
    assert (record.outcome, record.reason, record.committed) == (
        StepOutcome.SKIPPED,
        UNSTABLE,
        True,
    )


def test_retakes_stop_after_the_plans_limit() -> None:
    drive = consented(VisitPlan(steps=(Step.BLOOD_PRESSURE,), max_retakes=2))
    for attempt in (1, 2):
        effects = drive.measure(Step.BLOOD_PRESSURE, CUFF_ERROR)
        assert screens(effects)[0].retake
        assert drive(RetakeRequested(Step.BLOOD_PRESSURE)) == [
            ShowScreen(screen=Screen.STEP, step=Step.BLOOD_PRESSURE),
            StartStep(Step.BLOOD_PRESSURE, attempt + 1),
        ]
    effects = drive.measure(Step.BLOOD_PRESSURE, CUFF_ERROR)
    assert screens(effects)[0] == ShowScreen(
        screen=Screen.STEP_FAILED, step=Step.BLOOD_PRESSURE, reason=LOOSE_CUFF, retake=False
    )
    assert drive(RetakeRequested(Step.BLOOD_PRESSURE)) == []
    drive(StepSkipped(Step.BLOOD_PRESSURE))
    assert drive.state().records[0].attempts == 3


def test_a_failure_a_retake_cannot_help_offers_only_the_skip() -> None:
    drive = consented(VisitPlan(steps=(Step.WEIGHT,)))
    effects = drive.measure(Step.WEIGHT, SCALE_OVERLOAD)
    assert screens(effects)[0].retake is False
    assert drive(RetakeRequested(Step.WEIGHT)) == []
    drive(StepSkipped(Step.WEIGHT))
    assert drive.phase() is Phase.RESULTS


def test_skipping_a_running_step_aborts_it_and_commits_nothing() -> None:
    drive = consented()
    drive(StepStarted(Step.TEMPERATURE))
    effects = drive(StepSkipped(Step.TEMPERATURE))
    assert effects[0] == AbortStep(Step.TEMPERATURE)
    assert of(CommitMeasurements, effects) == []
    (record,) = drive.state().records
    assert (record.reason, record.committed) == (SKIPPED_BY_RESIDENT, False)
    assert drive.state().step is Step.WEIGHT


def test_the_shell_skips_a_step_whose_device_failed_with_its_reason() -> None:
    drive = consented()
    offline = Reason("device-offline", "The thermometer is out of order.", "Nhiệt kế đang hỏng.")
    drive(StepSkipped(Step.TEMPERATURE, offline))
    assert drive.state().records[0].reason is offline


def test_a_visit_with_three_faults_still_completes_with_the_rest() -> None:
    drive = consented()
    drive.measure(Step.TEMPERATURE, GOOD[Step.TEMPERATURE])
    drive.measure(Step.WEIGHT, SCALE_UNSTABLE)
    drive(RetakeRequested(Step.WEIGHT))
    drive.measure(Step.WEIGHT, SCALE_UNSTABLE)
    drive(StepSkipped(Step.WEIGHT))
    drive.measure(Step.HEIGHT, GOOD[Step.HEIGHT])
    drive.measure(Step.SPO2, FINGER_OUT)
    drive(RetakeRequested(Step.SPO2))
    drive.measure(Step.SPO2, GOOD[Step.SPO2])
    drive.measure(Step.BLOOD_PRESSURE, CUFF_ERROR)
    drive(StepSkipped(Step.BLOOD_PRESSURE))
    assert drive.phase() is Phase.RESULTS
    drive(ResultsSeen())
    assert drive.phase() is Phase.COMPLETED
    assert [(r.step, r.outcome, r.reason) for r in drive.state().records] == [
        (Step.TEMPERATURE, StepOutcome.MEASURED, None),
        (Step.WEIGHT, StepOutcome.SKIPPED, UNSTABLE),
        (Step.HEIGHT, StepOutcome.MEASURED, None),
        (Step.SPO2, StepOutcome.MEASURED, None),
        (Step.BLOOD_PRESSURE, StepOutcome.SKIPPED, LOOSE_CUFF),
    ]
    committed = [e.step for e in drive.log if isinstance(e, CommitMeasurements)]
    assert committed == list(DEFAULT_STEPS)
    assert of(CompleteVisit, drive.log) == [CompleteVisit(send_to_hospital=True)]


# Inactivity.


def test_the_warning_comes_at_least_20_s_before_expiry() -> None:
    drive = Drive()
    drive(Launched())
    drive(ConsentGiven(choices=EVERYTHING))
    drive.measure(Step.TEMPERATURE, (failed(Kind.BODY_TEMPERATURE, NO_RESULT),))
    deadline = drive.state().deadline
    assert deadline == drive.now + 90.0
    assert drive.at(deadline - 25.001) == []
    assert drive.at(deadline - 25.0) == [
        ShowWarning(seconds_left=25.0, extensions_left=10),
        Speak("inactivity-warning"),
    ]
    assert drive.at(deadline - 0.001) == []
    assert drive.at(deadline) == [
        PersistStage(VisitStage.EXPIRED),
        ShowScreen(screen=Screen.EXPIRED),
        Speak("session-ended"),
    ]
    assert drive.phase() is Phase.EXPIRED
    assert drive.state().closed_as is AuditOutcome.EXPIRED
    assert drive.at(drive.now + 15.0) == [Wipe(WipeCause.CLOSED), ShowScreen(screen=Screen.IDLE)]


def test_a_late_tick_still_warns_before_the_visit_expires() -> None:
    drive = Drive()
    drive(Launched())
    deadline = drive.state().deadline
    assert deadline is not None
    effects = drive.at(deadline + 100.0)
    assert effects == [
        ShowWarning(seconds_left=25.0, extensions_left=10),
        Speak("inactivity-warning"),
    ]
    assert drive.state().deadline == drive.now + 25.0
    assert drive.phase() is Phase.CONSENT


def test_a_touch_on_the_warning_extends_at_least_ten_times_then_the_visit_expires() -> None:
    drive = Drive()
    drive(Launched())
    for used in range(10):
        deadline = drive.state().deadline
        assert deadline is not None
        warning = drive.at(deadline - 25.0)
        assert warning[0] == ShowWarning(seconds_left=25.0, extensions_left=10 - used)
        event = Touch() if used % 2 else ExtendRequested()
        assert drive(event, after=10.0) == [HideWarning()]
        assert drive.state().extensions_used == used + 1
        assert drive.state().deadline == drive.now + VisitPlan().consent_s
    deadline = drive.state().deadline
    assert deadline is not None
    assert drive.at(deadline - 25.0)[0] == ShowWarning(seconds_left=25.0, extensions_left=0)
    assert drive(ExtendRequested(), after=1.0) == []
    assert drive(Touch(), after=1.0) == []
    assert of(PersistStage, drive.at(deadline)) == [PersistStage(VisitStage.EXPIRED)]


def test_ordinary_activity_resets_the_countdown_without_using_an_extension() -> None:
    drive = Drive()
    drive(Launched())
    drive(Touch(), after=100.0)
    assert drive.state().deadline == drive.now + VisitPlan().consent_s
    assert drive.state().extensions_used == 0


def test_answering_on_the_warning_hides_it() -> None:
    drive = Drive()
    drive(Launched())
    deadline = drive.state().deadline
    assert deadline is not None
    drive.at(deadline - 20.0)
    effects = drive(ConsentGiven(choices=EVERYTHING))
    assert effects[0] == HideWarning()
    assert drive.state().warned_at is None
    assert drive.state().extensions_used == 0


def test_no_countdown_runs_while_a_step_measures_or_a_doctor_is_awaited() -> None:
    drive = consented()
    drive(StepStarted(Step.TEMPERATURE))
    assert drive.at(drive.now + 3600.0) == []
    assert drive.phase() is Phase.MEASURING
    drive(StepFinished(Step.TEMPERATURE, GOOD[Step.TEMPERATURE]))
    drive = at_results()
    drive(ConsultRequested())
    assert drive.at(drive.now + 3600.0) == []
    drive(CallStarted())
    assert drive.at(drive.now + 3600.0) == []
    assert drive.phase() is Phase.IN_CONSULT


@pytest.mark.parametrize("after_call", [False, True])
def test_walking_away_from_the_results_completes_the_visit(after_call: bool) -> None:
    drive = at_results()
    if after_call:
        drive(ConsultRequested())
        drive(CallStarted())
        drive(CallEnded())
    deadline = drive.state().deadline
    assert deadline == drive.now + VisitPlan().results_s
    drive.at(deadline - 25.0)
    effects = drive.at(deadline)
    assert of(CompleteVisit, effects) == [CompleteVisit(send_to_hospital=True)]
    assert drive.state().closed_as is AuditOutcome.COMPLETED


# SOS from every state.


def _launched() -> Drive:
    return Drive()


def _consent() -> Drive:
    drive = Drive()
    drive(Launched())
    return drive


def _measuring_running() -> Drive:
    drive = consented()
    drive(StepStarted(Step.TEMPERATURE))
    return drive


def _measuring_failed() -> Drive:
    drive = consented()
    drive.measure(Step.TEMPERATURE, (failed(Kind.BODY_TEMPERATURE, NO_RESULT),))
    return drive


def _results() -> Drive:
    return at_results()


def _queued() -> Drive:
    drive = at_results()
    drive(ConsultRequested())
    return drive


def _in_call() -> Drive:
    drive = _queued()
    drive(CallStarted())
    return drive


def _call_ended() -> Drive:
    drive = _in_call()
    drive(CallEnded())
    return drive


def _completed() -> Drive:
    drive = at_results()
    drive(ResultsSeen())
    return drive


def _withdrawn() -> Drive:
    drive = consented()
    drive(Withdrawn())
    return drive


def _expired() -> Drive:
    drive = _consent()
    deadline = drive.state().deadline
    assert deadline is not None
    drive.at(deadline - 25.0)
    drive.at(deadline)
    return drive


def _wiped() -> Drive:
    drive = consented()
    drive(CardRemoved())
    return drive


EVERY_STATE: dict[str, Callable[[], Drive]] = {
    "launched": _launched,
    "consent": _consent,
    "measuring-running": _measuring_running,
    "measuring-failed": _measuring_failed,
    "results": _results,
    "consult-queued": _queued,
    "in-consult": _in_call,
    "consult-ended": _call_ended,
    "completed": _completed,
    "withdrawn": _withdrawn,
    "expired": _expired,
    "wiped": _wiped,
}
CONSULTS_ON_SOS = {"measuring-running", "measuring-failed", "results", "consult-ended"}


@pytest.mark.parametrize("state", sorted(EVERY_STATE))
def test_sos_from_every_state(state: str) -> None:
    drive = EVERY_STATE[state]()
    before = drive.visit
    effects = drive(SosPressed())
    if state == "wiped":
        assert effects == []
        assert drive.visit is before
        return
    sos = ShowScreen(
        screen=Screen.SOS,
        consult=state in CONSULTS_ON_SOS | {"consult-queued", "in-consult"},
        emergency_number="115",
    )
    assert effects[-2:] == [sos, Speak("sos")]
    assert of(RaiseSos, effects) == [RaiseSos(cause=SosCause.BUTTON, consult=sos.consult)]
    assert drive.state().overlay is Overlay.SOS
    assert drive.state().sos_raised
    if state in CONSULTS_ON_SOS:
        assert of(StartConsult, effects) == [StartConsult(urgent=True)]
        assert PersistStage(VisitStage.CONSULT_QUEUED) in effects
        assert drive.phase() is Phase.CONSULT_QUEUED
    elif state == "consult-queued":
        assert of(StartConsult, effects) == [StartConsult(urgent=True)]  # now triaged urgent
        assert drive.phase() is Phase.CONSULT_QUEUED
    else:
        assert of(StartConsult, effects) == []
        assert drive.phase() is before.phase
    if state == "measuring-running":
        assert effects[0] == AbortStep(Step.TEMPERATURE)
    if drive.phase().live:
        assert drive.state().deadline is None  # no countdown over the SOS screen


def test_sos_before_consent_shows_the_number_then_returns_to_the_consent() -> None:
    drive = _consent()
    drive(SosPressed(), after=5.0)
    assert drive.at(drive.now + 3600.0) == []
    assert drive(OverlayClosed()) == [ShowScreen(screen=Screen.CONSENT)]
    assert drive.state().deadline == drive.now + VisitPlan().consent_s


def test_sos_without_video_consent_stops_the_step_and_offers_a_retake_after() -> None:
    drive = consented(choices=NO_VIDEO)
    drive(StepStarted(Step.TEMPERATURE))
    effects = drive(SosPressed())
    assert effects[:2] == [
        AbortStep(Step.TEMPERATURE),
        RaiseSos(cause=SosCause.BUTTON, consult=False),
    ]
    assert drive.phase() is Phase.MEASURING
    assert drive(StepFinished(Step.TEMPERATURE, GOOD[Step.TEMPERATURE])) == []  # aborted
    assert drive(OverlayClosed()) == [
        ShowScreen(
            screen=Screen.STEP_FAILED, step=Step.TEMPERATURE, reason=STEP_INTERRUPTED, retake=True
        )
    ]
    assert of(StartStep, drive(RetakeRequested(Step.TEMPERATURE))) == [
        StartStep(Step.TEMPERATURE, 2)
    ]


def test_the_call_replaces_the_sos_screen_when_a_doctor_answers() -> None:
    drive = _results()
    drive(SosPressed())
    drive(ConsultQueued())
    assert drive.log[-1] == SendKioskEvent(EventType.CONSULT_QUEUED, (("urgent", True),))
    drive(CallStarted())
    assert drive.state().overlay is None
    assert screens(drive.log)[-1] == ShowScreen(screen=Screen.CALL, consult=True)


def test_a_later_consult_after_sos_is_triaged_urgent() -> None:
    drive = at_results(choices=NO_VIDEO)
    drive(SosPressed())
    drive(OverlayClosed())
    assert drive.state().urgent


# Urgent vitals.


@pytest.mark.parametrize(
    ("step", "measurements"),
    [
        (Step.SPO2, LOW_SPO2),
        (Step.BLOOD_PRESSURE, CRISIS_BP),
        (Step.TEMPERATURE, HIGH_FEVER),
    ],
)
def test_urgent_vitals_are_committed_then_offered_the_sos_path(
    step: Step, measurements: tuple[Measurement, ...]
) -> None:
    drive = consented(VisitPlan(steps=(step, Step.HEIGHT)))
    effects = drive.measure(step, measurements)
    (finding,) = urgent_findings(measurements)
    assert effects[0] == CommitMeasurements(step, measurements)
    assert effects[-2:] == [
        ShowScreen(
            screen=Screen.URGENT_OFFER,
            step=step,
            finding=finding,
            consult=True,
            emergency_number="115",
        ),
        Speak("result-urgent"),
    ]
    assert of(StartStep, effects) == []
    assert drive.state().overlay is Overlay.URGENT_OFFER
    accepted = drive(SosPressed())
    assert of(RaiseSos, accepted) == [RaiseSos(cause=SosCause.URGENT_VITALS, consult=True)]
    assert of(StartConsult, accepted) == [StartConsult(urgent=True)]


def test_declining_the_urgent_offer_goes_on_with_the_next_step() -> None:
    drive = consented(VisitPlan(steps=(Step.SPO2, Step.HEIGHT)))
    drive.measure(Step.SPO2, LOW_SPO2)
    assert drive(ResultsSeen()) == []  # the screen underneath takes no input
    effects = drive(OverlayClosed())
    assert StartStep(Step.HEIGHT, 1) in effects
    drive.measure(Step.HEIGHT, GOOD[Step.HEIGHT])
    assert screens(drive.log)[-1] == ShowScreen(
        screen=Screen.RESULTS, consult=True, emergency_number="115"
    )
    assert of(StartConsult, drive(ConsultRequested())) == [StartConsult(urgent=True)]


def test_urgent_vitals_during_a_step_are_offered_when_it_ends() -> None:
    drive = consented(VisitPlan(steps=(Step.SPO2, Step.HEIGHT)))
    drive(StepStarted(Step.SPO2))
    finding = urgent_findings(LOW_SPO2)[0]
    assert drive(UrgentVitals(finding)) == []
    effects = drive(StepFinished(Step.SPO2, FINGER_OUT))
    assert screens(effects) == [
        ShowScreen(
            screen=Screen.URGENT_OFFER,
            step=Step.SPO2,
            finding=finding,
            consult=True,
            emergency_number="115",
        )
    ]
    assert screens(drive(OverlayClosed()))[0].screen is Screen.STEP_FAILED


def test_urgent_vitals_in_the_queue_make_the_consult_urgent() -> None:
    drive = _queued()
    finding = urgent_findings(CRISIS_BP)[0]
    assert drive(UrgentVitals(finding)) == [StartConsult(urgent=True)]
    assert drive(UrgentVitals(finding)) == []


# Card removal, withdrawal.


@pytest.mark.parametrize("state", sorted(set(EVERY_STATE) - {"wiped"}))
def test_card_removal_wipes_from_every_state(state: str) -> None:
    drive = EVERY_STATE[state]()
    before = drive.visit
    effects = drive(CardRemoved())
    assert effects[-2:] == [Wipe(WipeCause.CARD_REMOVED), ShowScreen(screen=Screen.IDLE)]
    stops: list[VisitEffect] = []
    if before.step_active and before.step is not None:
        stops.append(AbortStep(before.step))
    if before.phase in (Phase.CONSULT_QUEUED, Phase.IN_CONSULT):
        stops.append(HangUp())
    assert effects[:-2] == stops
    assert drive.phase() is Phase.WIPED
    assert drive.state().closed_as is (before.closed_as or AuditOutcome.ABANDONED)


@pytest.mark.parametrize(
    "event",
    [
        Launched(),
        ConsentGiven(choices=EVERYTHING),
        StepFinished(Step.TEMPERATURE, GOOD[Step.TEMPERATURE]),
        Tick(),
        Touch(),
        SosPressed(),
        CardRemoved(),
        Withdrawn(),
        ResultsSeen(),
    ],
)
def test_a_wiped_visit_accepts_nothing(event: VisitEvent) -> None:
    drive = _wiped()
    before = drive.visit
    assert drive(event, after=1000.0) == []
    assert drive.visit is before


def test_withdrawal_stops_the_step_and_withdraws_the_visit() -> None:
    drive = _measuring_running()
    assert drive(Withdrawn()) == [
        AbortStep(Step.TEMPERATURE),
        WithdrawVisit(),
        ShowScreen(screen=Screen.WITHDRAWN),
        Speak("session-ended"),
    ]
    assert drive.state().closed_as is AuditOutcome.WITHDRAWN
    assert drive(Withdrawn()) == []


def test_withdrawal_through_the_kiosk_hangs_up_and_is_not_repeated() -> None:
    drive = _in_call()
    assert of(HangUp, drive(Withdrawn(recorded=True))) == [HangUp()]
    assert of(WithdrawVisit, drive.log) == []


def test_withdrawal_after_completion_still_withdraws() -> None:
    drive = _completed()
    assert of(WithdrawVisit, drive(Withdrawn())) == [WithdrawVisit()]
    assert drive.phase() is Phase.WITHDRAWN


def test_withdrawal_before_any_consent_is_a_refusal() -> None:
    drive = _consent()
    assert of(CompleteVisit, drive(Withdrawn())) == [CompleteVisit(send_to_hospital=False)]


# Crash recovery.


def _recover(
    stage: VisitStage,
    committed: set[Step] | frozenset[Step] = frozenset(),
    *,
    consent: ConsentChoices | None = EVERYTHING,
    updated_at: float | None = T0 - 10.0,
    plan: VisitPlan | None = None,
) -> tuple[RecoveryDecision, Visit, list[VisitEffect]]:
    recovery = VisitMachine(plan or VisitPlan()).recover(
        stage, committed, T0, consent=consent, updated_at=updated_at
    )
    return recovery.decision, recovery.visit, list(recovery.effects)


def test_recovery_resumes_measuring_with_the_next_uncommitted_step() -> None:
    decision, visit, effects = _recover(
        VisitStage.MEASURING, {Step.TEMPERATURE, Step.WEIGHT, Step.SPO2}
    )
    assert decision is RecoveryDecision.RESUME
    assert effects == [
        PersistStage(VisitStage.MEASURING, Step.HEIGHT),
        ShowScreen(screen=Screen.STEP, step=Step.HEIGHT),
        Speak("height"),
        StartStep(Step.HEIGHT, 1),
    ]
    assert [r.outcome for r in visit.records] == [StepOutcome.RECOVERED] * 3
    drive = Drive()
    drive.visit, drive.machine = visit, VisitMachine(VisitPlan())
    drive.measure(Step.HEIGHT, GOOD[Step.HEIGHT])
    assert drive.state().step is Step.BLOOD_PRESSURE


def test_recovery_with_every_step_committed_goes_to_the_results() -> None:
    decision, visit, effects = _recover(VisitStage.MEASURING, set(DEFAULT_STEPS))
    assert decision is RecoveryDecision.RESUME
    assert visit.phase is Phase.RESULTS
    assert effects[0] == PersistStage(VisitStage.RESULTS)


@pytest.mark.parametrize(
    "stage", [VisitStage.CONSULT_QUEUED, VisitStage.IN_CONSULT, VisitStage.CONSULT_ENDED]
)
def test_recovery_from_a_consult_returns_to_the_results_the_call_being_gone(
    stage: VisitStage,
) -> None:
    decision, visit, effects = _recover(stage, set(DEFAULT_STEPS))
    assert decision is RecoveryDecision.RESUME
    assert visit.phase is Phase.RESULTS
    assert effects[:2] == [
        SendKioskEvent(EventType.CONSULT_ENDED, (("connected", False), ("interrupted", True))),
        PersistStage(VisitStage.RESULTS),
    ]
    assert ShowScreen(screen=Screen.RESULTS, consult=True) in effects
    assert of(StartConsult, effects) == []


def test_recovery_before_consent_shows_the_consent_again() -> None:
    for stage in (VisitStage.LAUNCHED, VisitStage.CONSENT):
        decision, visit, effects = _recover(stage, consent=None)
        assert decision is RecoveryDecision.RESUME
        assert visit.phase is Phase.CONSENT
        assert effects[0] == PersistStage(VisitStage.CONSENT)


def test_recovery_after_consent_starts_measuring() -> None:
    decision, visit, effects = _recover(VisitStage.CONSENTED)
    assert decision is RecoveryDecision.RESUME
    assert StartStep(Step.TEMPERATURE, 1) in effects
    assert visit.consent == EVERYTHING


@pytest.mark.parametrize(
    ("stage", "outcome"),
    [
        (VisitStage.COMPLETED, AuditOutcome.COMPLETED),
        (VisitStage.WITHDRAWN, AuditOutcome.WITHDRAWN),
        (VisitStage.EXPIRED, AuditOutcome.EXPIRED),
        (VisitStage.INTERRUPTED, AuditOutcome.INTERRUPTED),
    ],
)
def test_recovery_wipes_visits_that_had_ended(stage: VisitStage, outcome: AuditOutcome) -> None:
    decision, visit, effects = _recover(stage)
    assert decision is RecoveryDecision.CLOSE
    assert effects == [Wipe(WipeCause.RECOVERY)]
    assert (visit.phase, visit.closed_as) == (Phase.WIPED, outcome)


def test_recovery_closes_a_stale_measuring_visit_as_interrupted() -> None:
    decision, visit, effects = _recover(
        VisitStage.MEASURING, {Step.TEMPERATURE}, updated_at=T0 - 301.0
    )
    assert decision is RecoveryDecision.CLOSE
    assert effects == [PersistStage(VisitStage.INTERRUPTED), Wipe(WipeCause.RECOVERY)]
    assert visit.closed_as is AuditOutcome.INTERRUPTED


def test_recovery_completes_a_stale_visit_that_reached_its_results() -> None:
    _, visit, effects = _recover(VisitStage.IN_CONSULT, set(DEFAULT_STEPS), updated_at=T0 - 3600.0)
    assert effects == [CompleteVisit(send_to_hospital=True), Wipe(WipeCause.RECOVERY)]
    assert visit.closed_as is AuditOutcome.COMPLETED


def test_recovery_without_a_consent_in_force_closes() -> None:
    decision, _, effects = _recover(VisitStage.MEASURING, consent=None)
    assert decision is RecoveryDecision.CLOSE
    assert effects[0] == PersistStage(VisitStage.INTERRUPTED)
    decision, _, _ = _recover(VisitStage.MEASURING, consent=ONLY_VIDEO)
    assert decision is RecoveryDecision.CLOSE


def test_every_prompt_the_machine_speaks_is_in_the_voice_catalog() -> None:
    voice = pytest.importorskip("cabin.voice")
    assert set(STEP_PROMPTS) == set(Step)
    assert set(voice.CATALOG) >= PROMPTS


# Invariants over random event sequences.

_RESIDENT_EVENTS: list[VisitEvent] = [
    Launched(),
    ConsentGiven(choices=EVERYTHING),
    ConsentGiven(choices=NO_VIDEO),
    ConsentGiven(choices=ONLY_VIDEO),
    ConsentRefused(),
    ResultsSeen(),
    ConsultRequested(),
    ConsultQueued(position=1),
    CallStarted(),
    CallEnded(),
    Touch(),
    ExtendRequested(),
    SosPressed(),
    OverlayClosed(),
    UrgentVitals(urgent_findings(LOW_SPO2)[0]),
    Withdrawn(),
    Withdrawn(recorded=True),
]
_STEP_RESULTS = [
    GOOD,
    GOOD,
    dict.fromkeys(Step, FINGER_OUT),
    dict.fromkeys(Step, SCALE_OVERLOAD),
    {**GOOD, Step.SPO2: LOW_SPO2, Step.BLOOD_PRESSURE: CRISIS_BP},
]


class VisitRun(RuleBasedStateMachine):
    """Random visits: the rules of issue 8 hold after every event."""

    def __init__(self) -> None:
        super().__init__()
        self.machine = VisitMachine(VisitPlan())
        self.now = T0
        self.visit = self.machine.new(now=T0)
        self.warned_at: float | None = None
        self.wipes = 0

    @initialize(service=st.sampled_from(Service))
    def plan(self, service: Service) -> None:
        self.machine = VisitMachine(VisitPlan(service=service))

    def _apply(self, event: VisitEvent, dt: float) -> None:
        self.now += dt
        before = self.visit
        after, effects = self.machine.apply(before, event, self.now)
        self.visit = after
        if before.phase is Phase.WIPED:
            assert after is before
            assert effects == []
            return
        for effect in effects:
            match effect:
                case PersistStage(stage=stage):
                    assert stage not in (VisitStage.COMPLETED, VisitStage.WITHDRAWN)
                    if stage is VisitStage.EXPIRED:
                        self._check_warned()
                case StartStep() | CommitMeasurements():
                    assert after.consent is not None
                    assert after.consent.measuring
                case StartConsult():
                    assert self.machine.consult_possible(after)
                case ShowWarning():
                    self.warned_at = self.now
                case HideWarning():
                    self.warned_at = None
                case CompleteVisit() if isinstance(event, Tick):
                    self._check_warned()
                case Wipe():
                    self.wipes += 1
                case _:
                    pass
        if isinstance(event, SosPressed):
            assert ShowScreen in {type(e) for e in effects}
            assert any(isinstance(e, RaiseSos) for e in effects)
            sos = [s for s in screens(effects) if s.screen is Screen.SOS]
            assert sos
            assert sos[0].emergency_number == "115"

    def _check_warned(self) -> None:
        """The visit times out only after a warning at least 20 s earlier."""
        assert self.warned_at is not None
        assert self.now - self.warned_at >= self.machine.plan.warning_before_s >= 20.0

    @rule(event=st.sampled_from(_RESIDENT_EVENTS), dt=st.floats(0.0, 30.0))
    def resident(self, event: VisitEvent, dt: float) -> None:
        self._apply(event, dt)

    @rule(
        action=st.sampled_from(["started", "progress", "finished", "retake", "skip"]),
        results=st.sampled_from(_STEP_RESULTS),
        dt=st.floats(0.0, 30.0),
    )
    def step(self, action: str, results: dict[Step, tuple[Measurement, ...]], dt: float) -> None:
        step = self.visit.step or Step.TEMPERATURE
        by_action: dict[str, VisitEvent] = {
            "started": StepStarted(step),
            "progress": StepProgress(step),
            "finished": StepFinished(step, results[step]),
            "retake": RetakeRequested(step),
            "skip": StepSkipped(step),
        }
        self._apply(by_action[action], dt)

    @rule(
        choices=st.sampled_from([EVERYTHING, NO_VIDEO, ONLY_VIDEO, NOT_SENT]),
        results=st.sampled_from(_STEP_RESULTS),
        finish=st.booleans(),
        dt=st.floats(0.0, 10.0),
    )
    def forward(
        self,
        choices: ConsentChoices,
        results: dict[Step, tuple[Measurement, ...]],
        finish: bool,
        dt: float,
    ) -> None:
        """What a resident and the devices would do next (so runs get past the consent)."""
        v = self.visit
        step = v.step or Step.TEMPERATURE
        by_phase: dict[Phase, VisitEvent] = {
            Phase.LAUNCHED: Launched(),
            Phase.CONSENT: ConsentGiven(choices=choices),
            Phase.RESULTS: ResultsSeen() if finish else ConsultRequested(),
            Phase.CONSULT_QUEUED: CallStarted() if finish else ConsultQueued(),
            Phase.IN_CONSULT: CallEnded(),
            Phase.CONSULT_ENDED: ResultsSeen() if finish else ConsultRequested(),
        }
        event = by_phase.get(v.phase, Tick())
        if v.overlay is not None:
            event = SosPressed() if finish else OverlayClosed()
        elif v.phase is Phase.MEASURING:
            if v.step_status is StepStatus.STARTING:
                event = StepStarted(step)
            elif v.step_status is StepStatus.RUNNING:
                event = StepFinished(step, results[step])
            else:
                event = RetakeRequested(step) if finish else StepSkipped(step)
        self._apply(event, dt)

    @rule(dt=st.floats(0.0, 200.0))
    def tick(self, dt: float) -> None:
        self._apply(Tick(), dt)

    @invariant()
    def consistent(self) -> None:
        v = self.visit
        if v.phase is Phase.MEASURING:
            assert v.consent is not None
            assert v.consent.measuring
            assert v.step is not None
        if v.step_active:
            assert v.deadline is None
        assert (v.closed_as is None) == v.phase.live
        if v.phase.closed:
            assert v.closed_as == AuditOutcome(v.phase.value)
        assert v.extensions_used <= self.machine.plan.max_extensions
        steps = [record.step for record in v.records]
        assert len(steps) == len(set(steps))
        assert set(steps) <= set(self.machine.plan.steps)
        assert self.wipes == (1 if v.phase is Phase.WIPED else 0)

    def teardown(self) -> None:
        self._apply(CardRemoved(), 1.0)
        ended = {Phase.COMPLETED, Phase.WITHDRAWN, Phase.EXPIRED, Phase.WIPED}
        assert [phase for phase in ended if phase is self.visit.phase] == [Phase.WIPED]
        assert self.visit.closed_as in set(AuditOutcome)
        assert self.wipes == 1


TestVisitRun = VisitRun.TestCase
TestVisitRun.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_dataclasses_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Visit().phase = Phase.WIPED  # type: ignore[misc]
