"""Driver for a Masimo Rad-8 / Radical-7 printing its ASCII 1 serial output (9600 8N1, 1 line/s).

The oximeter prints a line each second and accepts nothing from the host, so the driver only
listens.  Each line becomes one :class:`~vitals.devices.oximetry.OximeterSample` (no pleth:
ASCII 1 carries none).  Dashes are "no value" and never become values.  The EXC exception bits
become flags; when any bit other than "full Masimo SET" (normal) or the SpCO/SpMET confidence
bits is set, the line's SpO2, pulse rate and PI readings carry the EXC value as their
``error_code`` and the exceptions in plain words as their ``note``.  Of the ALARM bits only low
battery is reported: the limit alarms reflect limits set on the oximeter, not the cabin's.
The serial number the device prints becomes :attr:`DeviceInfo.serial_number`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from vitals.clock import Instant
from vitals.devices.driver import DeviceSpec
from vitals.devices.oximetry import OximeterDriver, OximeterSample
from vitals.model import Flag, Kind, Reading
from vitals.protocols import masimo as proto
from vitals.protocols.framing import Framer

_EXC = proto.ExceptionCode
_EXCEPTION_FLAGS: Mapping[proto.ExceptionCode, Flag] = MappingProxyType(
    {
        _EXC.NO_SENSOR: Flag.SENSOR_DISCONNECTED,
        _EXC.NO_CABLE: Flag.SENSOR_DISCONNECTED,
        _EXC.SENSOR_OFF: Flag.FINGER_OUT,
        _EXC.DEFECTIVE_SENSOR: Flag.PROBE_ERROR,
        _EXC.UNRECOGNIZED_SENSOR: Flag.PROBE_ERROR,
        _EXC.INCOMPATIBLE_SENSOR: Flag.PROBE_ERROR,
        _EXC.CABLE_EXPIRED: Flag.PROBE_ERROR,
        _EXC.INCOMPATIBLE_CABLE: Flag.PROBE_ERROR,
        _EXC.UNRECOGNIZED_CABLE: Flag.PROBE_ERROR,
        _EXC.DEFECTIVE_CABLE: Flag.PROBE_ERROR,
        _EXC.SENSOR_EXPIRED: Flag.PROBE_ERROR,
        _EXC.EMITTER_TEMPERATURE: Flag.PROBE_ERROR,
        _EXC.SENSOR_CURRENT_LIMIT: Flag.PROBE_ERROR,
        _EXC.PULSE_SEARCH: Flag.SEARCHING,
        _EXC.SENSOR_CALIBRATING: Flag.SEARCHING,
        _EXC.LOW_PERFUSION: Flag.LOW_PERFUSION,
        _EXC.INTERFERENCE: Flag.INTERFERENCE,
        _EXC.AMBIENT_LIGHT: Flag.AMBIENT_LIGHT,
        _EXC.LOW_SIGNAL_IQ: Flag.LOW_SIGNAL_QUALITY,
    }
)
INFORMATIONAL = _EXC.MASIMO_SET | _EXC.SPCO_LOW_CONFIDENCE | _EXC.SPMET_LOW_CONFIDENCE
"""Exception bits that say nothing about SpO2, pulse rate or PI."""
_NUMBERS = frozenset({Kind.SPO2, Kind.PULSE_RATE, Kind.PERFUSION_INDEX})


class MasimoDriver(OximeterDriver[proto.AsciiRecord]):
    """Masimo Rad-8 / Radical-7, ASCII 1 serial output."""

    spec = DeviceSpec(
        name="masimo-ascii1",
        model="Masimo Rad-8 / Radical-7 (ASCII 1 serial output)",
        link=proto.LINK,
        silence_timeout=3.0,
        frame_rate=proto.LINE_RATE_HZ,
    )

    def _new_framer(self) -> Framer[proto.AsciiRecord]:
        return proto.framer()

    def _on_frame(self, record: proto.AsciiRecord, at: Instant) -> list[Reading]:
        serial = record.serial_number
        if serial is not None and self.device.serial_number != serial:
            self.device = replace(self.device, serial_number=serial)
        readings = self._reporter.readings(sample_of(record), at)
        problems = record.exceptions & ~INFORMATIONAL
        if not problems:
            return readings
        note = f"Masimo exception {int(problems):06X}: {proto.describe(problems)}"
        return [
            replace(reading, error_code=int(problems), note=note)
            if reading.kind in _NUMBERS
            else reading
            for reading in readings
        ]


def sample_of(record: proto.AsciiRecord) -> OximeterSample:
    """The device-neutral content of one ASCII 1 line."""
    exceptions = record.exceptions
    flags = {flag for bit, flag in _EXCEPTION_FLAGS.items() if exceptions & bit}
    if record.alarm & proto.AlarmCode.LOW_BATTERY:
        flags.add(Flag.LOW_BATTERY)
    return OximeterSample(
        spo2=record.spo2,
        pulse_rate=record.pulse_rate,
        perfusion_index=record.perfusion_index,
        flags=frozenset(flags),
    )
