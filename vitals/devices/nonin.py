"""Driver for a Nonin OEM III module streaming serial data format #2 (9600 8N1, 75 frames/s).

The module streams as soon as it is powered; it takes no host commands (the output format is
chosen in hardware), so the driver only listens.  Two framing levels: the frame framer finds
5-byte frames and drops bad ones, the packet assembler groups 25 frames from a SYNC frame and
drops a packet that lost a frame.

What is reported, and why:

* pleth: every frame, 75 Hz, as it arrives;
* SpO2 and pulse rate: the **E-SpO2 and E-HR** of each complete packet, i.e. the 8-beat
  extended averages formatted for recording.  Recording-formatted values switch to the
  missing-data marker as soon as the signal is lost, whereas the display (``-D``) values hold
  the last reading for 10 s after the finger leaves - a stale number a spot check must never
  publish.  Of the recording values the 8-beat average is the steadier, which suits a resting
  spot check (Nonin's 4-beat values are meant for faster-changing monitoring).
* flags: those of the latest complete packet - any frame's SNSD, ARTF, OOT, SNSA - plus the
  perfusion class of the latest pulse (the perfusion bits light only for ~160 ms per pulse,
  so they are remembered until the next pulse says otherwise).  The onset of each perfusion
  indication marks a detected pulse and is reported as a pulse beep on that pleth sample.
* the software revision becomes the device's firmware in :class:`~vitals.model.DeviceInfo`.

Nonin sets SNSA ("sensor alarm: unusable data") when the finger is taken out, so the shared
reporter counts SNSA as no contact, not as a device fault.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from vitals.clock import Instant
from vitals.devices.driver import DeviceSpec
from vitals.devices.oximetry import OximeterDriver, OximeterSample
from vitals.model import Flag, Reading
from vitals.protocols import nonin as proto
from vitals.protocols.framing import Framer

_PERFUSION_FLAGS = MappingProxyType(
    {
        proto.Perfusion.NONE: frozenset[Flag](),
        proto.Perfusion.GREEN: frozenset[Flag](),
        proto.Perfusion.YELLOW: frozenset({Flag.MARGINAL_PERFUSION}),
        proto.Perfusion.RED: frozenset({Flag.LOW_PERFUSION}),
    }
)


class NoninOem3Driver(OximeterDriver[proto.Frame]):
    """Nonin OEM III module, serial data format #2."""

    spec = DeviceSpec(
        name="nonin-oem3",
        model="Nonin OEM III module (serial data format #2)",
        link=proto.LINK,
        silence_timeout=2.0,
        frame_rate=proto.FRAME_RATE_HZ,
    )

    def __init__(self, *, port: str) -> None:
        super().__init__(port=port)
        self._packets = proto.PacketAssembler()
        self._spo2: int | None = None
        self._pulse_rate: int | None = None
        self._flags: frozenset[Flag] = frozenset()
        self._packet_flags: set[Flag] = set()
        self._perfusion = proto.Perfusion.NONE
        self._previous_perfusion = proto.Perfusion.NONE

    def _new_framer(self) -> Framer[proto.Frame]:
        return proto.framer()

    @property
    def packet_stats(self) -> proto.PacketStats:
        """Packets assembled, dropped for a missing frame, and frames seen before a SYNC."""
        return self._packets.stats

    def connect(self, at: Instant) -> None:
        super().connect(at)
        self._packets.reset()
        self._spo2 = self._pulse_rate = None
        self._flags = frozenset()
        self._packet_flags = set()
        self._perfusion = self._previous_perfusion = proto.Perfusion.NONE

    def _on_frame(self, frame: proto.Frame, at: Instant) -> list[Reading]:
        if frame.sync:
            self._packet_flags = set()
        self._packet_flags |= frame_flags(frame)
        if frame.sensor_alarm or frame.sensor_disconnected:
            self._perfusion = proto.Perfusion.NONE
        elif frame.perfusion is not proto.Perfusion.NONE:
            self._perfusion = frame.perfusion
        beep = (
            frame.perfusion is not proto.Perfusion.NONE
            and self._previous_perfusion is proto.Perfusion.NONE
        )
        self._previous_perfusion = frame.perfusion
        packet = self._packets.add(frame)
        if packet is not None:
            self._on_packet(packet)
        sample = OximeterSample(
            spo2=self._spo2,
            pulse_rate=self._pulse_rate,
            pleth=frame.pleth,
            flags=self._flags,
            pulse_beep=beep,
        )
        return self._reporter.readings(sample, at)

    def _on_packet(self, packet: proto.Packet) -> None:
        values = packet.values
        self._spo2 = proto.reported_spo2(values.extended_spo2)
        self._pulse_rate = proto.reported_heart_rate(values.extended_heart_rate)
        self._flags = frozenset(self._packet_flags) | _PERFUSION_FLAGS[self._perfusion]
        if values.low_battery:
            self._flags |= {Flag.LOW_BATTERY}
        firmware = f"revision {values.software_revision}"
        if self.device.firmware != firmware:
            self.device = replace(self.device, firmware=firmware)


def frame_flags(frame: proto.Frame) -> frozenset[Flag]:
    """The conditions one frame's status byte reports (perfusion aside)."""
    flags: set[Flag] = set()
    if frame.sensor_disconnected:
        flags.add(Flag.SENSOR_DISCONNECTED)
    if frame.artifact:
        flags.add(Flag.ARTIFACT)
    if frame.out_of_track:
        flags.add(Flag.OUT_OF_TRACK)
    if frame.sensor_alarm:
        flags.add(Flag.SENSOR_ALARM)
    return frozenset(flags)
