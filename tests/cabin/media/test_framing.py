"""The framing assist: what each face position says, steady messages, detection off the loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from cabin.media.camera import CameraSource
from cabin.media.framing import (
    FaceBox,
    FaceDetector,
    FramingAssist,
    FramingState,
    FramingUnavailable,
    Guidance,
    GuidanceSmoother,
    assess,
    guidance_for,
    haar_face_detector,
)
from cabin.media.pattern import TestPattern

SIZE = (320, 180)


def _centred(width_fraction: float) -> FaceBox:
    width = round(SIZE[0] * width_fraction)
    return FaceBox(SIZE[0] // 2 - width // 2, 70 - width // 2, width, width)


def test_no_face_asks_the_resident_to_face_the_camera() -> None:
    guidance = assess([], SIZE)
    assert guidance == Guidance(FramingState.NO_FACE, "Xin nhìn vào máy quay", "Face the camera")


def test_a_well_sized_centred_face_is_ok() -> None:
    assert assess([_centred(0.22)], SIZE).state is FramingState.OK


def test_a_small_face_is_asked_to_come_closer() -> None:
    guidance = assess([_centred(0.08)], SIZE)
    assert (guidance.state, guidance.vi, guidance.en) == (
        FramingState.TOO_FAR,
        "Xin lại gần hơn",
        "Move closer",
    )


def test_a_huge_face_is_too_close() -> None:
    assert assess([_centred(0.6)], SIZE).state is FramingState.TOO_CLOSE


@pytest.mark.parametrize(
    "box",
    [FaceBox(5, 60, 60, 60), FaceBox(255, 60, 60, 60), FaceBox(130, 120, 60, 60)],
    ids=["left", "right", "low"],
)
def test_a_face_away_from_the_middle_is_off_centre(box: FaceBox) -> None:
    guidance = assess([box], SIZE)
    assert (guidance.state, guidance.vi, guidance.en) == (
        FramingState.OFF_CENTRE,
        "Xin vào giữa khung hình",
        "Move to the centre",
    )


def test_the_largest_face_is_the_residents() -> None:
    passer_by = FaceBox(0, 0, 20, 20)
    assert assess([passer_by, _centred(0.22)], SIZE).state is FramingState.OK


def test_every_state_has_a_vietnamese_and_an_english_sentence() -> None:
    for state in FramingState:
        guidance = guidance_for(state)
        assert guidance.state is state
        assert guidance.vi
        assert guidance.en
        assert guidance.vi != guidance.en


def test_one_missed_detection_does_not_change_the_message() -> None:
    smoother = GuidanceSmoother(window=5, majority=3)
    ok, no_face = guidance_for(FramingState.OK), guidance_for(FramingState.NO_FACE)
    shown = [smoother.update(g) for g in [ok, ok, ok, no_face, ok, no_face, ok, ok]]
    assert shown[:2] == [None, None]
    assert all(g == ok for g in shown[2:])


def test_a_lasting_change_is_shown_after_a_majority() -> None:
    smoother = GuidanceSmoother(window=5, majority=3)
    ok, far = guidance_for(FramingState.OK), guidance_for(FramingState.TOO_FAR)
    shown = [smoother.update(g) for g in [ok, ok, ok, ok, ok, far, far, far, far]]
    states = [g.state if g else None for g in shown]
    assert states[5:] == [
        FramingState.OK,
        FramingState.OK,
        FramingState.TOO_FAR,
        FramingState.TOO_FAR,
    ]


class _StillSource:
    def __init__(self) -> None:
        self.widths: list[int] = []

    def latest(self, *, max_width: int = 320) -> np.ndarray | None:
        self.widths.append(max_width)
        return np.zeros((180, 320, 3), dtype=np.uint8)


def test_the_detector_runs_off_the_loop_and_never_stalls_it() -> None:
    source = _StillSource()
    threads: set[int] = set()
    published: list[Guidance] = []

    def slow_detector(grey: np.ndarray) -> Sequence[FaceBox]:
        threads.add(threading.get_ident())
        assert grey.shape == (180, 320)
        time.sleep(0.05)  # a slow detector: 50 ms per frame
        return [_centred(0.22)]

    async def scenario() -> tuple[FramingAssist, float, int]:
        assist = FramingAssist(
            source, detector=slow_detector, on_guidance=published.append, rate_hz=8
        )
        loop = asyncio.get_running_loop()
        worst = 0.0
        async with asyncio.TaskGroup() as group:
            task = group.create_task(assist.run())
            deadline = loop.time() + 1.0
            while loop.time() < deadline:
                before = loop.time()
                await asyncio.sleep(0.005)
                worst = max(worst, loop.time() - before - 0.005)
            task.cancel()
        return assist, worst, threading.get_ident()

    assist, worst_lag, loop_thread = asyncio.run(scenario())
    assert loop_thread not in threads
    assert worst_lag < 0.03, f"the loop stalled for {worst_lag * 1000:.0f} ms"
    assert 5 <= assist.analyses <= 9  # 8 per second at most
    assert assist.mean_detect_seconds >= 0.05
    assert published == [guidance_for(FramingState.OK)]
    assert assist.shown == guidance_for(FramingState.OK)
    assert set(source.widths) == {320}


def test_the_assist_samples_the_real_camera_at_analysis_size() -> None:
    sizes: list[tuple[int, ...]] = []

    def detector(grey: np.ndarray) -> Sequence[FaceBox]:
        sizes.append(grey.shape)
        return []

    async def scenario() -> Guidance | None:
        async with CameraSource("test-pattern") as camera:
            assist = FramingAssist(camera, detector=detector, rate_hz=20)
            task = asyncio.create_task(assist.run())
            await asyncio.sleep(0.6)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return assist.shown

    shown = asyncio.run(scenario())
    assert sizes
    assert set(sizes) == {(180, 320)}
    assert shown == guidance_for(FramingState.NO_FACE)


def test_a_missing_cascade_makes_the_assist_unavailable(tmp_path: Path) -> None:
    with pytest.raises(FramingUnavailable):
        haar_face_detector(cascade_path=tmp_path / "missing.xml")


def _haar() -> FaceDetector:
    try:
        return haar_face_detector()
    except FramingUnavailable as error:
        pytest.skip(f"no Haar cascade here: {error}")


def _drawn_face(centre: tuple[int, int], size: int) -> np.ndarray:
    """A grey cartoon face (light oval, dark eyes and brows, nose, mouth) the cascade accepts."""
    image = np.full((180, 320), 90, dtype=np.uint8)
    x, y = centre
    cv2.ellipse(image, (x, y), (int(size * 0.42), int(size * 0.55)), 0, 0, 360, 200, -1)
    for side in (-1, 1):
        eye = (x + side * int(size * 0.18), y - int(size * 0.12))
        cv2.ellipse(image, eye, (int(size * 0.1), int(size * 0.05)), 0, 0, 360, 40, -1)
        brow_y = y - int(size * 0.25)
        brow = ((x + side * int(size * 0.08), brow_y), (x + side * int(size * 0.3), brow_y))
        cv2.line(image, *brow, 60, max(size // 25, 1))
    nose = ((x, y - int(size * 0.05)), (x, y + int(size * 0.12)))
    cv2.line(image, *nose, 150, max(size // 20, 1))
    mouth = (x, y + int(size * 0.28))
    cv2.ellipse(image, mouth, (int(size * 0.15), int(size * 0.05)), 0, 0, 360, 70, -1)
    return np.asarray(cv2.GaussianBlur(image, (5, 5), 0), dtype=np.uint8)


def test_the_haar_detector_finds_no_face_in_the_test_pattern() -> None:
    detector = _haar()
    grey = TestPattern(width=320, height=180).frame(3)[:, :, 1].copy()
    assert list(detector(grey)) == []


@pytest.mark.parametrize(
    ("centre", "size", "state"),
    [
        ((160, 85), 80, FramingState.OK),
        ((60, 85), 80, FramingState.OFF_CENTRE),
        ((160, 85), 150, FramingState.TOO_CLOSE),
    ],
)
def test_the_haar_detector_finds_a_drawn_face_and_assess_places_it(
    centre: tuple[int, int], size: int, state: FramingState
) -> None:
    detector = _haar()
    started = time.perf_counter()
    faces = detector(_drawn_face(centre, size))
    elapsed = time.perf_counter() - started
    assert len(faces) == 1
    assert assess(faces, SIZE).state is state
    assert elapsed < 0.2  # ~15 ms on the project's 2-core machines
