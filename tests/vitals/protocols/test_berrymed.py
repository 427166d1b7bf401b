"""BerryMed BCI 5-byte frames, and how they differ from the Contec legacy look-alike."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.vitals.framer_checks import (
    assert_frames_any_split,
    assert_recovers_after_every_truncation,
    round_trip,
)
from vitals.errors import FrameError
from vitals.protocols import berrymed as proto
from vitals.protocols import contec_7d, contec_legacy
from vitals.protocols.berrymed import LiveFrame

# Written from the BCI protocol: a normal frame (signal 5, pleth 60, bar 6, PR 72, SpO2 97),
NORMAL = bytes.fromhex("85 3c 06 48 61")
# a beat with PR 130 (bit 7 of the rate is byte 2 bit 6) and pleth at its top, 100,
FAST_PULSE = bytes.fromhex("c9 64 4a 02 5f")
# no finger (byte 2 bit 4) with both sentinels (PR 255 = byte 2 bit 6 + 7f), signal 15,
NO_FINGER = bytes.fromhex("8f 00 50 7f 7f")
# probe unplugged (byte 0 bit 5) and no signal (byte 0 bit 4),
UNPLUGGED = bytes.fromhex("b0 00 40 7f 7f")
# and searching ("pulse research", byte 2 bit 5) with the waveform already drawn.
SEARCHING = bytes.fromhex("83 28 63 7f 7f")

NORMAL_FRAME = LiveFrame(signal_strength=5, pleth=60, bar_graph=6, pulse_rate=72, spo2=97)
FAST_FRAME = LiveFrame(
    signal_strength=9, pleth=100, bar_graph=10, pulse_rate=130, spo2=95, pulse_beep=True
)
NO_FINGER_FRAME = LiveFrame(
    signal_strength=15, pleth=0, bar_graph=0, pulse_rate=255, spo2=127, no_finger=True
)
UNPLUGGED_FRAME = LiveFrame(
    signal_strength=0,
    pleth=0,
    bar_graph=0,
    pulse_rate=255,
    spo2=127,
    no_signal=True,
    probe_unplugged=True,
)
SEARCHING_FRAME = LiveFrame(
    signal_strength=3, pleth=40, bar_graph=3, pulse_rate=255, spo2=127, searching=True
)
FIXTURES = [
    (NORMAL, NORMAL_FRAME),
    (FAST_PULSE, FAST_FRAME),
    (NO_FINGER, NO_FINGER_FRAME),
    (UNPLUGGED, UNPLUGGED_FRAME),
    (SEARCHING, SEARCHING_FRAME),
]
STREAM = b"".join(data for data, _ in FIXTURES)
FRAMES = [frame for _, frame in FIXTURES]


@pytest.mark.parametrize(("data", "frame"), FIXTURES)
def test_fixtures_parse_to_their_fields(data: bytes, frame: LiveFrame) -> None:
    assert LiveFrame.parse(data) == frame


@pytest.mark.parametrize(("data", "frame"), FIXTURES)
def test_frames_give_back_their_bytes(data: bytes, frame: LiveFrame) -> None:
    assert bytes(frame) == data


def test_pulse_rate_uses_bit_6_of_byte_2() -> None:
    assert LiveFrame.parse(FAST_PULSE).pulse_rate == 130


def test_sentinels_are_not_values() -> None:
    for data in (NO_FINGER, UNPLUGGED, SEARCHING):
        frame = LiveFrame.parse(data)
        assert not frame.has_pulse_rate
        assert not frame.has_spo2
    assert LiveFrame.parse(NORMAL).has_spo2
    assert LiveFrame.parse(NORMAL).has_pulse_rate


@pytest.mark.parametrize("spo2", [0, 101, 126, 127])
def test_spo2_outside_1_to_100_is_not_a_value(spo2: int) -> None:
    frame = LiveFrame(signal_strength=5, pleth=0, bar_graph=0, pulse_rate=72, spo2=spo2)
    assert not frame.has_spo2


def test_round_trip_every_field() -> None:
    everything = LiveFrame(
        signal_strength=15,
        pleth=100,
        bar_graph=15,
        pulse_rate=254,
        spo2=100,
        no_signal=True,
        probe_unplugged=True,
        pulse_beep=True,
        no_finger=True,
        searching=True,
    )
    round_trip([everything, *FRAMES], LiveFrame.parse)


def test_frames_any_split() -> None:
    assert_frames_any_split(proto.framer, STREAM * 2, FRAMES * 2)


def test_recovers_after_every_truncation() -> None:
    assert_recovers_after_every_truncation(proto.framer, NORMAL, FAST_PULSE, FAST_FRAME)


def test_garbage_is_counted_and_skipped() -> None:
    framer = proto.framer()
    frames = framer.feed(b"\x01\x02\x7f" + NORMAL + NORMAL[:2] + FAST_PULSE + b"\x00")
    assert frames == [NORMAL_FRAME, FAST_FRAME]
    assert framer.stats.discards == {"no sync": 4, "truncated frame": 2}
    assert framer.stats.frames == 2


def test_pleth_above_100_is_not_a_bci_frame() -> None:
    framer = proto.framer()
    assert framer.feed(bytes.fromhex("85 78 06 48 61") + NORMAL) == [NORMAL_FRAME]
    assert framer.stats.discards == {"pleth 120 outside 0..100": 5}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (NORMAL[:4], "a BCI frame is 5 bytes, not 4"),
        (NORMAL[1:] + NORMAL[:1], "sync bit missing in byte 0"),
        (bytes.fromhex("85 3c 06 c8 61"), "sync bit set in byte 3"),
        (bytes.fromhex("85 65 06 48 61"), "pleth 101 outside 0..100"),
    ],
)
def test_parse_rejects_non_frames_with_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        LiveFrame.parse(data)


# --- telling it from its look-alikes --------------------------------------------------------


def test_same_bits_mean_different_things_than_in_the_contec_legacy_layout() -> None:
    legacy = contec_legacy.LiveFrame.parse(UNPLUGGED)
    assert legacy.finger_out  # byte 0 bit 4: BCI "no signal"
    assert legacy.spo2_dropping  # byte 0 bit 5: BCI "probe unplugged"
    assert contec_legacy.LiveFrame.parse(NO_FINGER).probe_error  # byte 2 bit 4: BCI "no finger"
    assert proto.LINK != contec_legacy.LINK
    assert (proto.SAMPLE_RATE_HZ, contec_legacy.SAMPLE_RATE_HZ) == (100, 60)


def test_a_contec_legacy_stream_with_tall_pleth_is_rejected() -> None:
    tall = contec_legacy.LiveFrame(
        signal_strength=7, pleth=120, bar_graph=8, pulse_rate=72, spo2=97
    )
    framer = proto.framer()
    assert framer.feed(bytes(tall) * 10) == []
    assert framer.stats.discarded_bytes == 50


def test_the_contec_7d_stream_yields_no_bci_frames() -> None:
    live = bytes.fromhex("01 e0 85 b3 96 c1 e1 ff ff") * 20
    framer = proto.framer()
    assert framer.feed(live) == []
    assert contec_7d.framer().feed(bytes(NORMAL_FRAME) * 20) == []


# --- properties ----------------------------------------------------------------------------


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    framer = proto.framer()
    for frame in framer.feed(data):
        assert LiveFrame.parse(bytes(frame)) == frame
    assert framer.pending < proto.FRAME_SIZE
    assert framer.stats.discarded_bytes + framer.pending + 5 * framer.stats.frames == len(data)


# Noise bytes all have bit 7 clear: only a byte with bit 7 set starts a frame, so noise can
# neither forge a frame nor cut one short (a frame's own sync byte ends the noise's run).
_NOISE = st.binary(max_size=12).map(lambda noise: bytes(b & 0x7F for b in noise))


@given(st.lists(st.tuples(st.sampled_from(FRAMES), _NOISE), max_size=30))
def test_frames_embedded_in_noise_are_all_recovered(parts: list[tuple[LiveFrame, bytes]]) -> None:
    stream = b"".join(noise + bytes(frame) for frame, noise in parts)
    assert proto.framer().feed(stream) == [frame for frame, _ in parts]
