"""The test pattern's frame counter and capture time survive VP8/H.264, scaling and decoding."""

from __future__ import annotations

import fractions
import logging
from typing import cast

import av
import cv2
import numpy as np
import pytest
from av.video.codeccontext import VideoCodecContext
from hypothesis import given, settings
from hypothesis import strategies as st

from cabin.media.pattern import TestPattern, decode_counter, decode_timestamp, encode_counter

logger = logging.getLogger(__name__)


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (854, 480), (640, 480), (320, 180)])
def test_counter_and_time_round_trip_in_raw_pixels(width: int, height: int) -> None:
    frame = TestPattern(width=width, height=height).frame(123_456, timestamp_ms=1_700_000_000_123)
    assert decode_counter(frame) == 123_456
    assert decode_timestamp(frame) == 1_700_000_000_123 % 2**32


def test_a_frame_without_a_time_reads_as_none() -> None:
    frame = TestPattern(width=640, height=360).frame(7)
    assert decode_counter(frame) == 7
    assert decode_timestamp(frame) is None


def test_a_plain_grey_frame_is_unreadable() -> None:
    assert decode_counter(np.full((480, 640, 3), 128, dtype=np.uint8)) is None


def test_encode_counter_leaves_its_input_alone_and_works_on_a_luma_plane() -> None:
    luma = np.full((360, 640), 90, dtype=np.uint8)
    painted = encode_counter(luma, 2**32 + 5, timestamp_ms=42)
    assert (luma == 90).all()
    assert decode_counter(painted) == 5
    assert decode_timestamp(painted) == 42


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=0, max_value=2**32 - 1),
    width=st.integers(min_value=72, max_value=1920),
    height=st.integers(min_value=48, max_value=1080),
)
def test_any_32_bit_counter_round_trips_at_any_size(n: int, width: int, height: int) -> None:
    frame = encode_counter(np.zeros((height, width, 3), dtype=np.uint8), n)
    assert decode_counter(frame) == n


def _through_codec(
    width: int, height: int, *, codec: str, bitrate: int, frames: int
) -> list[np.ndarray]:
    """Encode ``frames`` pattern frames (counters 1000...) and return the decoded BGR images.

    The VP8 settings are aiortc's own (aiortc/codecs/vpx.py: realtime, CBR, cpu-used -6).
    """
    encoder = cast(VideoCodecContext, av.CodecContext.create(codec, "w"))
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.bit_rate = bitrate
    encoder.time_base = fractions.Fraction(1, 30)
    encoder.framerate = fractions.Fraction(30, 1)
    if codec == "libvpx":
        encoder.options = {
            "deadline": "realtime",
            "cpu-used": "-6",
            "lag-in-frames": "0",
            "minrate": str(bitrate),
            "maxrate": str(bitrate),
            "bufsize": str(bitrate),
        }
        decoder = av.CodecContext.create("vp8", "r")
    else:
        encoder.options = {"preset": "ultrafast", "tune": "zerolatency"}
        decoder = av.CodecContext.create("h264", "r")
    pattern = TestPattern(width=width, height=height)
    decoded: list[np.ndarray] = []
    for index in range(frames):
        image = pattern.frame(1000 + index, timestamp_ms=5_000 + 33 * index)
        frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
        frame.pts = index
        for packet in encoder.encode(frame):
            decoded.extend(d.to_ndarray(format="bgr24") for d in decoder.decode(packet))
    for packet in encoder.encode(None):
        decoded.extend(d.to_ndarray(format="bgr24") for d in decoder.decode(packet))
    return decoded


def _read_all(images: list[np.ndarray]) -> tuple[list[int | None], list[int | None]]:
    return [decode_counter(i) for i in images], [decode_timestamp(i) for i in images]


@pytest.mark.parametrize(
    ("width", "height", "bitrate"),
    [(1280, 720, 500_000), (854, 480, 300_000), (640, 480, 250_000)],
)
def test_the_code_survives_vp8_at_aiortcs_starting_bitrate(
    width: int, height: int, bitrate: int
) -> None:
    frames = 8
    decoded = _through_codec(width, height, codec="libvpx", bitrate=bitrate, frames=frames)
    counters, times = _read_all(decoded)
    logger.info("VP8 %dx%d @ %d kbps: %s", width, height, bitrate // 1000, counters)
    assert counters == list(range(1000, 1000 + frames))
    assert times == [5_000 + 33 * i for i in range(frames)]

    # the browser reads from a canvas that may be smaller than the video
    small = [cv2.resize(i, (320, 180), interpolation=cv2.INTER_AREA) for i in decoded]
    assert _read_all(small)[0] == list(range(1000, 1000 + frames))
    smaller = [cv2.resize(i, (160, 90), interpolation=cv2.INTER_LINEAR) for i in decoded]
    assert _read_all(smaller)[0] == list(range(1000, 1000 + frames))


def test_the_code_survives_h264() -> None:
    decoded = _through_codec(1280, 720, codec="libx264", bitrate=800_000, frames=6)
    assert _read_all(decoded)[0] == list(range(1000, 1006))
