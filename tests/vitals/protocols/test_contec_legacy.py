"""Contec CMS50D+ legacy 5-byte live frames."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.vitals.framer_checks import (
    assert_frames_any_split,
    assert_is_subsequence,
    assert_recovers_after_every_truncation,
)
from vitals.errors import FrameError
from vitals.protocols import contec_legacy as proto
from vitals.protocols.contec_legacy import LiveFrame

# Recorded-style fixtures: a normal frame (PR 72, SpO2 97, pleth 0x3C, beep),
# a frame with PR 130 (bit 7 of the rate in byte 2), and a finger-out frame with sentinels.
NORMAL = bytes.fromhex("c7 3c 08 48 61")
FAST_PULSE = bytes.fromhex("86 20 44 02 5f")
FINGER_OUT = bytes.fromhex("90 00 40 7f 7f")

NORMAL_FRAME = LiveFrame(
    signal_strength=7, pleth=0x3C, bar_graph=8, pulse_rate=72, spo2=97, pulse_beep=True
)
FAST_FRAME = LiveFrame(signal_strength=6, pleth=0x20, bar_graph=4, pulse_rate=130, spo2=95)
FINGER_OUT_FRAME = LiveFrame(
    signal_strength=0, pleth=0, bar_graph=0, pulse_rate=255, spo2=127, finger_out=True
)
STREAM = NORMAL + FAST_PULSE + FINGER_OUT
FRAMES = [NORMAL_FRAME, FAST_FRAME, FINGER_OUT_FRAME]


def test_fixtures_parse_to_their_fields() -> None:
    assert LiveFrame.parse(NORMAL) == NORMAL_FRAME
    assert LiveFrame.parse(FAST_PULSE) == FAST_FRAME
    assert LiveFrame.parse(FINGER_OUT) == FINGER_OUT_FRAME


def test_pulse_rate_uses_bit_7_from_byte_2() -> None:
    assert LiveFrame.parse(FAST_PULSE).pulse_rate == 130


def test_sentinels_are_not_values() -> None:
    frame = LiveFrame.parse(FINGER_OUT)
    assert not frame.has_pulse_rate
    assert not frame.has_spo2


def test_spo2_above_100_is_not_a_value() -> None:
    assert not LiveFrame.parse(bytes.fromhex("87 3c 08 48 65")).has_spo2


@pytest.mark.parametrize("frame", FRAMES)
def test_round_trip(frame: LiveFrame) -> None:
    assert LiveFrame.parse(bytes(frame)) == frame


def test_frames_any_split() -> None:
    assert_frames_any_split(proto.framer, STREAM * 3, FRAMES * 3)


def test_recovers_after_every_truncation() -> None:
    assert_recovers_after_every_truncation(proto.framer, NORMAL, FAST_PULSE, FAST_FRAME)


def test_garbage_is_counted_and_skipped() -> None:
    framer = proto.framer()
    frames = framer.feed(b"\x01\x02\x03" + NORMAL + b"\x7f" + FAST_PULSE)
    assert frames == [NORMAL_FRAME, FAST_FRAME]
    assert framer.stats.discarded_bytes == 4
    assert framer.stats.discards == {"no sync": 4}
    assert framer.stats.frames == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (NORMAL[:4], "a legacy frame is 5 bytes, not 4"),
        (NORMAL[1:] + NORMAL[:1], "sync bit missing in byte 0"),
        (bytes.fromhex("c7 3c 88 48 61"), "sync bit set in byte 2"),
    ],
)
def test_parse_rejects_non_frames_with_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        LiveFrame.parse(data)


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    framer = proto.framer()
    for frame in framer.feed(data):
        assert LiveFrame.parse(bytes(frame)) == frame
    assert framer.pending < proto.FRAME_SIZE
    assert framer.stats.discarded_bytes + framer.pending + 5 * framer.stats.frames == len(data)


@given(st.lists(st.tuples(st.sampled_from(FRAMES), st.binary(max_size=12)), max_size=30))
def test_frames_embedded_in_noise_are_all_recovered(
    parts: list[tuple[LiveFrame, bytes]],
) -> None:
    stream = b"".join(noise + bytes(frame) for frame, noise in parts)
    assert_is_subsequence(proto.framer().feed(stream), [frame for frame, _ in parts])
