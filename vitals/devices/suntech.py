"""Driver for the SunTech Advantage 2.0 OEM blood-pressure module (9600 8N1).

The module only answers; the driver keeps one request in flight at a time and sends the next
when the answer (or its timeout) comes::

    connect       79 10 03 status word (0 = healthy, else ERROR), 79 02 40 return string
                  (firmware text, kept in ``device.firmware``); with ``repeat_every``, 20 start
    idle          79 05 00 once a second: a cheap poll, so a silent module is noticed
    start         20 -> 'O': a cycle runs (MEASURING)
    cycle         79 05 00 at ``pressure_poll_hz``: CUFF_PRESSURE readings flagged INFLATING,
                  then DEFLATING once the pressure is 5 mmHg below its peak
    'K'           sent unprompted when the cycle ends -> 79 03 00 BP data -> SYSTOLIC_BP,
                  DIASTOLIC_BP, MEAN_BP, PULSE_RATE (READY), or, for an error code, those four
                  with no value, the code, a plain-English note and CUFF_ERROR (ERROR)
    abort         79 01 00 -> 'A'; the module dumps the cuff and sends 'K' (no result asked)

A refusal ('N', 'D', 'E', or 'B' busy), a reply of the wrong kind (a garbled or stray packet)
or no reply within ``REPLY_TIMEOUT_S`` makes the driver send the same command once more; a
second failure gives up on it and reports what it was for with no value and a note: the cuff
pressure during a cycle, the four BP kinds for a start or a result.  Should the 'K' be lost,
a deflating cuff that stays at or below 5 mmHg for 2 s is taken as the end of the cycle, and
so is a cycle still running after ``MAX_CYCLE_S``.

Readings that time alone produces (a request given up after its second timeout) come out of
``tick``; those that replies complete, out of ``receive``.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, replace
from enum import Enum
from typing import Final

from vitals.clock import Instant
from vitals.devices.driver import Condition, DeviceDriver, DeviceSpec
from vitals.model import Flag, Kind, Reading
from vitals.protocols import suntech as proto
from vitals.protocols.framing import FramerStats

log = logging.getLogger(__name__)

BP_KINDS: Final = (Kind.SYSTOLIC_BP, Kind.DIASTOLIC_BP, Kind.MEAN_BP, Kind.PULSE_RATE)
REPLY_TIMEOUT_S: Final = 0.5
IDLE_POLL_S: Final = 1.0
DEFLATING_DROP_MMHG: Final = 5
EMPTY_CUFF_MMHG: Final = 5
EMPTY_CUFF_S: Final = 2.0
MAX_CYCLE_S: Final = 200.0
"""IEC 80601-2-30 lets an adult cuff stay inflated at most 180 s; past this, the cycle is over."""
REFUSALS: Final = frozenset(
    {
        proto.AckCode.NOT_ACKNOWLEDGED,
        proto.AckCode.UNRECOGNISED,
        proto.AckCode.ERROR,
        proto.AckCode.BUSY,
    }
)
_EXTRA_FLAGS: Final = {2: Flag.MOTION, 3: Flag.OUT_OF_RANGE}


class _Ask(Enum):
    """What a request is for; its value names it in notes."""

    STATUS = "status"
    IDENTITY = "return-string"
    PRESSURE = "cuff-pressure"
    START = "start"
    ABORT = "abort"
    RESULT = "BP-data"

    @property
    def command(self) -> proto.Command:
        return _COMMANDS[self]

    def answered_by(self, packet: proto.ModulePacket) -> bool:
        match self:
            case _Ask.STATUS | _Ask.PRESSURE:
                return isinstance(packet, proto.WordReply)
            case _Ask.IDENTITY:
                return isinstance(packet, proto.ReturnString)
            case _Ask.RESULT:
                return isinstance(packet, proto.BpData)
            case _Ask.START:
                return packet == proto.Ack(proto.AckCode.RECEIVED)
            case _Ask.ABORT:
                return packet == proto.Ack(proto.AckCode.ABORTED)


_COMMANDS: Final = {
    _Ask.STATUS: proto.GET_STATUS,
    _Ask.IDENTITY: proto.GET_RETURN_STRING,
    _Ask.PRESSURE: proto.GET_CUFF_PRESSURE,
    _Ask.START: proto.START_BP,
    _Ask.ABORT: proto.ABORT,
    _Ask.RESULT: proto.GET_BP_DATA,
}


@dataclass(slots=True)
class _InFlight:
    ask: _Ask
    deadline_ns: int
    retried: bool = False


class SunTechDriver(DeviceDriver):
    """SunTech Advantage 2.0 OEM NIBP module."""

    spec = DeviceSpec(
        name="suntech-advantage",
        model="SunTech Advantage 2.0 OEM BP module",
        link=proto.LINK,
        silence_timeout=3.0,
        tick_interval=0.02,
    )

    def __init__(
        self, *, port: str, repeat_every: float | None = None, pressure_poll_hz: float = 25.0
    ) -> None:
        super().__init__(port=port)
        if repeat_every is not None and repeat_every <= 0:
            raise ValueError(f"repeat_every must be positive, not {repeat_every}")
        fastest = 1.0 / self.spec.tick_interval
        if not 0 < pressure_poll_hz <= fastest:
            raise ValueError(
                f"pressure_poll_hz must be in (0, {fastest:g}], not {pressure_poll_hz}"
            )
        self.repeat_every = repeat_every
        self._poll_ns = round(1e9 / pressure_poll_hz)
        self._slack_ns = round(self.spec.tick_interval * 1e9 / 2)
        self._framer = proto.framer()
        self._queue: deque[_Ask] = deque()
        self._in_flight: _InFlight | None = None
        self._backlog: list[Reading] = []
        self._measuring = False
        self._aborting = False
        self._deflating = False
        self._peak = 0
        self._empty_since: int | None = None
        self._cycle_start_ns = 0
        self._next_poll_ns = 0
        self._next_start_ns: int | None = None

    @property
    def stats(self) -> FramerStats:
        return self._framer.stats

    @property
    def measuring(self) -> bool:
        """True from the module's 'O' to its 'K'."""
        return self._measuring

    def connect(self, at: Instant) -> None:
        super().connect(at)
        self._framer.reset()
        self._queue.clear()
        self._queue.extend((_Ask.STATUS, _Ask.IDENTITY))
        self._in_flight = None
        self._backlog.clear()
        self._measuring = self._aborting = False
        self._next_poll_ns = at.monotonic_ns + round(IDLE_POLL_S * 1e9)
        self._next_start_ns = at.monotonic_ns if self.repeat_every is not None else None
        self._send_next(at)

    def start_measurement(self, at: Instant) -> None:
        """Ask the module to run a BP cycle (ignored while one runs or is already asked for)."""
        if self._measuring or self._asked(_Ask.START):
            return
        self._queue.append(_Ask.START)
        self._send_next(at)

    def abort(self, at: Instant) -> None:
        """Ask the module to stop the cycle and dump the cuff, ahead of anything queued."""
        if _Ask.START in self._queue:
            self._queue.remove(_Ask.START)
        self._queue.appendleft(_Ask.ABORT)
        self._send_next(at)

    def tick(self, at: Instant) -> list[Reading]:
        now = at.monotonic_ns
        flight = self._in_flight
        if flight is not None and now >= flight.deadline_ns:
            self._failed(at, f"no reply within {REPLY_TIMEOUT_S:g} s")
        if self._measuring and now - self._cycle_start_ns > MAX_CYCLE_S * 1e9:
            log.warning("%s: no end of cycle after %g s", self.device.port, MAX_CYCLE_S)
            self._cycle_ended(at)
        due = self._next_start_ns
        if due is not None and now >= due and not self._measuring and not self._asked(_Ask.START):
            self._next_start_ns = None
            self._queue.append(_Ask.START)
        self._send_next(at)
        readings, self._backlog = self._backlog, []
        return readings

    def receive(self, data: bytes, at: Instant) -> list[Reading]:
        for packet in self._framer.feed(data):
            if packet == proto.Ack(proto.AckCode.COMPLETED):
                self._cycle_ended(at)
            else:
                self._answer(packet, at)
        self._send_next(at)
        readings, self._backlog = self._backlog, []
        return readings

    # --- the conversation -------------------------------------------------------------------

    def _asked(self, ask: _Ask) -> bool:
        return ask in self._queue or (self._in_flight is not None and self._in_flight.ask is ask)

    def _send_next(self, at: Instant) -> None:
        if self._in_flight is not None:
            return
        now = at.monotonic_ns
        if self._queue:
            ask = self._queue.popleft()
        elif now >= self._next_poll_ns - self._slack_ns:
            ask = _Ask.PRESSURE
            period = self._poll_ns if self._measuring else round(IDLE_POLL_S * 1e9)
            self._next_poll_ns += period
            if self._next_poll_ns <= now:
                self._next_poll_ns = now + period
        else:
            return
        self._in_flight = _InFlight(ask, now + round(REPLY_TIMEOUT_S * 1e9))
        self._send(bytes(ask.command))

    def _answer(self, packet: proto.ModulePacket, at: Instant) -> None:
        flight = self._in_flight
        if flight is None:
            log.debug("%s: unsolicited %r ignored", self.device.port, packet)
            return
        if isinstance(packet, proto.Ack) and packet.code in REFUSALS:
            self._failed(at, f"the module answered {chr(packet.code)!r} ({packet.code.name})")
            return
        if not flight.ask.answered_by(packet):
            self._failed(at, f"unexpected reply {packet!r}")
            return
        self._in_flight = None
        if self.condition is Condition.WAITING:
            self.condition = Condition.READY
        match packet:
            case proto.WordReply() if flight.ask is _Ask.STATUS:
                if packet.value & 0xFF:
                    log.warning("%s: module status word 0x%04X", self.device.port, packet.value)
                    self.condition = Condition.ERROR
            case proto.WordReply():
                self._cuff_pressure(packet, at)
            case proto.ReturnString():
                self.device = replace(self.device, firmware="-".join(packet.fields) or None)
            case proto.BpData():
                self._result(packet, at)
            case proto.Ack() if flight.ask is _Ask.START:
                self._measuring, self._deflating, self._peak = True, False, 0
                self._empty_since = None
                self._cycle_start_ns = self._next_poll_ns = at.monotonic_ns
                self.condition = Condition.MEASURING
            case proto.Ack():
                self._aborting = self._measuring

    def _cuff_pressure(self, packet: proto.WordReply, at: Instant) -> None:
        if not self._measuring:
            return  # an idle poll only proves the module is there
        if not packet.has_pressure:
            note = "The module had no cuff pressure to report."
            self._backlog.append(self.reading(Kind.CUFF_PRESSURE, None, at, note=note))
            return
        value = packet.value
        self._peak = max(self._peak, value)
        if not self._deflating and value <= self._peak - DEFLATING_DROP_MMHG:
            self._deflating = True
        flag = Flag.DEFLATING if self._deflating else Flag.INFLATING
        self._backlog.append(self.reading(Kind.CUFF_PRESSURE, value, at, flags=frozenset({flag})))
        if not self._deflating or value > EMPTY_CUFF_MMHG:
            self._empty_since = None
        elif self._empty_since is None:
            self._empty_since = at.monotonic_ns
        elif at.monotonic_ns - self._empty_since >= EMPTY_CUFF_S * 1e9:
            log.info("%s: cuff empty without 'K'; asking for the result", self.device.port)
            self._cycle_ended(at)

    def _cycle_ended(self, at: Instant) -> None:
        aborted = self._aborting
        self._measuring = self._aborting = self._deflating = False
        self._next_poll_ns = at.monotonic_ns + round(IDLE_POLL_S * 1e9)
        if aborted:
            self.condition = Condition.READY
            self._schedule_repeat(at)
        elif not self._asked(_Ask.RESULT):
            self._queue.appendleft(_Ask.RESULT)

    def _result(self, data: proto.BpData, at: Instant) -> None:
        self._schedule_repeat(at)
        values = (data.systolic, data.diastolic, data.mean, data.heart_rate)
        if data.error_code:
            code = data.error_code
            flags = frozenset(
                {Flag.CUFF_ERROR} | ({_EXTRA_FLAGS[code]} if code in _EXTRA_FLAGS else set())
            )
            note = proto.describe_error(code)
            self._backlog += [
                self.reading(kind, None, at, flags=flags, error_code=code, note=note)
                for kind in BP_KINDS
            ]
            self.condition = Condition.ERROR
            return
        for kind, value in zip(BP_KINDS, values, strict=True):
            if value:
                self._backlog.append(self.reading(kind, value, at))
            else:
                note = "The module reported no value."
                self._backlog.append(self.reading(kind, None, at, note=note))
        self.condition = Condition.READY

    def _failed(self, at: Instant, why: str) -> None:
        flight = self._in_flight
        if flight is None:
            return
        if not flight.retried:
            log.info(
                "%s: %s request failed (%s); sending it again",
                self.device.port,
                flight.ask.value,
                why,
            )
            flight.retried = True
            flight.deadline_ns = at.monotonic_ns + round(REPLY_TIMEOUT_S * 1e9)
            self._send(bytes(flight.ask.command))
            return
        self._in_flight = None
        note = f"No valid answer to the {flight.ask.value} request, sent twice: {why}."
        log.warning("%s: %s", self.device.port, note)
        if flight.ask is _Ask.PRESSURE and self._measuring:
            self._backlog.append(self.reading(Kind.CUFF_PRESSURE, None, at, note=note))
        elif flight.ask in (_Ask.START, _Ask.RESULT):
            self._backlog += [self.reading(kind, None, at, note=note) for kind in BP_KINDS]
            if flight.ask is _Ask.RESULT:
                self.condition = Condition.ERROR
            self._schedule_repeat(at)

    def _schedule_repeat(self, at: Instant) -> None:
        if self.repeat_every is not None:
            self._next_start_ns = at.monotonic_ns + round(self.repeat_every * 1e9)
