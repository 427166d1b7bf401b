"""The framing assist: tells the resident to move closer, to the centre, or to face the camera.

Three layers:

- ``assess(faces, frame_size) -> Guidance`` (pure): from the face boxes a detector found,
  one of ``ok`` / ``too-far`` / ``too-close`` / ``off-centre`` / ``no-face`` with the sentence
  to show, Vietnamese first.  The largest face is the resident's.
- ``GuidanceSmoother`` (pure state): a new state replaces the shown one only when it holds a
  majority of the last few results, so one missed detection does not make the message flicker.
- ``FramingAssist`` (shell): a few times a second takes ``CameraSource.latest()`` (a copy
  already downscaled to ``analysis_width``, 320 px), converts it to grey and runs the detector in
  a worker thread, smooths, and publishes the shown ``Guidance`` to a callback.  It never touches
  the video tracks, so it cannot slow the call: a slow detector only lowers its own rate.

The detector is a function ``grey image -> face boxes``.  ``haar_face_detector()`` loads
OpenCV's frontal-face Haar cascade (Viola-Jones, ``haarcascade_frontalface_default.xml``) from
``cv2.data.haarcascades`` (the opencv-python 4.x wheels ship it) or Debian's ``opencv-data``
(``/usr/share/opencv4/haarcascades``).  OpenCV 5 removed ``CascadeClassifier`` from the main
modules and its wheels ship no cascades: there ``haar_face_detector`` raises
``FramingUnavailable`` and the cabin runs without the assist.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

__all__ = [
    "HAAR_FRONTAL_FACE",
    "FaceBox",
    "FaceDetector",
    "FramingAssist",
    "FramingOptions",
    "FramingState",
    "FramingUnavailable",
    "Guidance",
    "GuidanceSmoother",
    "assess",
    "guidance_for",
    "haar_face_detector",
]

logger = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]

HAAR_FRONTAL_FACE = "haarcascade_frontalface_default.xml"
CASCADE_DIRECTORIES = (
    Path("/usr/share/opencv4/haarcascades"),  # Debian's opencv-data
    Path("/usr/share/opencv/haarcascades"),
)


class FramingUnavailable(Exception):
    """No face detector can run here (no cascade file, or an OpenCV without Haar cascades)."""


class FramingState(StrEnum):
    """How the face is framed; the values are the ``framing`` message's ``state`` (docs)."""

    OK = "ok"
    TOO_FAR = "too-far"
    TOO_CLOSE = "too-close"
    OFF_CENTRE = "off-centre"
    NO_FACE = "no-face"


@dataclass(frozen=True, slots=True)
class Guidance:
    """A framing state and what the resident screen says about it (Vietnamese first)."""

    state: FramingState
    vi: str
    en: str


def guidance_for(state: FramingState) -> Guidance:
    """The sentences shown for ``state``."""
    match state:
        case FramingState.OK:
            return Guidance(state, "Khung hình tốt", "Well framed")
        case FramingState.TOO_FAR:
            return Guidance(state, "Xin lại gần hơn", "Move closer")
        case FramingState.TOO_CLOSE:
            return Guidance(state, "Xin lùi lại một chút", "Move back a little")
        case FramingState.OFF_CENTRE:
            return Guidance(state, "Xin vào giữa khung hình", "Move to the centre")
        case _:
            return Guidance(state, "Xin nhìn vào máy quay", "Face the camera")


@dataclass(frozen=True, slots=True)
class FaceBox:
    """A face found by the detector, in pixels of the analysed image."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FramingOptions:
    """When a face counts as too far, too close or off centre (fractions of the frame).

    A face 15-20 cm wide seen by a ~70 degree camera from the cabin's 60-80 cm seat is about
    0.15-0.25 of the frame's width; a doctor wants the head and shoulders, so below 0.12 is too
    far and above 0.45 too close.  The face's centre should sit within 0.18 of the width from
    the middle, and its vertical centre between 0.20 and 0.65 of the height (a head sits a
    little above the middle of a head-and-shoulders picture).
    """

    min_width_fraction: float = 0.12
    max_width_fraction: float = 0.45
    max_horizontal_offset: float = 0.18
    min_vertical_centre: float = 0.20
    max_vertical_centre: float = 0.65


def assess(
    faces: Sequence[FaceBox],
    frame_size: tuple[int, int],
    *,
    options: FramingOptions | None = None,
) -> Guidance:
    """How well the largest of ``faces`` is framed in a ``(width, height)`` frame (pure)."""
    options = options or FramingOptions()
    width, height = frame_size
    if not faces:
        return guidance_for(FramingState.NO_FACE)
    face = max(faces, key=lambda box: box.width * box.height)
    centre_x = (face.x + face.width / 2) / width
    centre_y = (face.y + face.height / 2) / height
    size = face.width / width
    if size > options.max_width_fraction:
        return guidance_for(FramingState.TOO_CLOSE)
    off_horizontally = abs(centre_x - 0.5) > options.max_horizontal_offset
    off_vertically = not options.min_vertical_centre <= centre_y <= options.max_vertical_centre
    if off_horizontally or off_vertically:
        return guidance_for(FramingState.OFF_CENTRE)
    if size < options.min_width_fraction:
        return guidance_for(FramingState.TOO_FAR)
    return guidance_for(FramingState.OK)


class GuidanceSmoother:
    """Shows a new state only once it holds ``majority`` of the last ``window`` results."""

    def __init__(self, *, window: int = 5, majority: int = 3) -> None:
        if not 0 < majority <= window:
            raise ValueError("majority must be within 1..window")
        self._recent: deque[FramingState] = deque(maxlen=window)
        self._majority = majority
        self.shown: Guidance | None = None

    def update(self, guidance: Guidance) -> Guidance | None:
        """Add one result; returns the shown guidance (``None`` until one state has won)."""
        self._recent.append(guidance.state)
        state, count = Counter(self._recent).most_common(1)[0]
        if count >= self._majority and (self.shown is None or self.shown.state != state):
            self.shown = guidance_for(state)
        return self.shown


FaceDetector = Callable[[Image], Sequence[FaceBox]]
"""A function from a grey image to the faces in it (blocking; runs in a worker thread)."""


def haar_face_detector(
    *,
    cascade_path: Path | None = None,
    scale_factor: float = 1.1,
    min_neighbors: int = 5,
    min_size: int = 24,
) -> FaceDetector:
    """OpenCV's Viola-Jones frontal-face cascade, ready to call on grey images.

    ``min_size`` (px, in the analysed image; the cascade's own window is 24) bounds the
    smallest face searched for.  Raises ``FramingUnavailable`` when it cannot run here.
    """
    classifier_class = getattr(cv2, "CascadeClassifier", None)
    if classifier_class is None:
        raise FramingUnavailable(
            f"OpenCV {cv2.__version__} has no CascadeClassifier (removed in OpenCV 5)"
        )
    path = cascade_path or _find_cascade(HAAR_FRONTAL_FACE)
    classifier = classifier_class(str(path))
    if classifier.empty():
        raise FramingUnavailable(f"cannot load the face cascade {path}")

    def detect(grey: Image) -> list[FaceBox]:
        found = classifier.detectMultiScale(
            grey,
            scaleFactor=scale_factor,
            minNeighbors=min_neighbors,
            minSize=(min_size, min_size),
        )
        return [FaceBox(int(x), int(y), int(w), int(h)) for x, y, w, h in found]

    return detect


def _find_cascade(name: str) -> Path:
    directories: list[Path] = []
    data = getattr(cv2, "data", None)
    bundled = getattr(data, "haarcascades", None)
    if isinstance(bundled, str) and bundled:
        directories.append(Path(bundled))
    directories.extend(CASCADE_DIRECTORIES)
    for directory in directories:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(directory) for directory in directories)
    raise FramingUnavailable(f"no {name} in {searched}")


class FrameSource(Protocol):
    """Where frames come from: ``CameraSource`` (its ``latest`` is thread-safe)."""

    def latest(self, *, max_width: int = 320) -> Image | None: ...


@dataclass(frozen=True, slots=True)
class Analysis:
    """One detector run: the raw guidance and how long the detection took."""

    guidance: Guidance
    faces: tuple[FaceBox, ...]
    detect_seconds: float


class FramingAssist:
    """Samples the camera ``rate_hz`` times a second and publishes smoothed ``Guidance``.

    ``on_guidance`` is called on the event loop each time the shown guidance changes; the
    newest is also in ``shown``.  Run it with ``await assist.run()`` inside the call's (or the
    visit's) ``TaskGroup``; cancel to stop.
    """

    def __init__(
        self,
        source: FrameSource,
        *,
        detector: FaceDetector,
        on_guidance: Callable[[Guidance], None] | None = None,
        rate_hz: float = 4.0,
        analysis_width: int = 320,
        options: FramingOptions | None = None,
        smoother: GuidanceSmoother | None = None,
    ) -> None:
        if rate_hz <= 0:
            raise ValueError("rate_hz must be positive")
        self._source = source
        self._detector = detector
        self._on_guidance = on_guidance
        self._period = 1.0 / rate_hz
        self._analysis_width = analysis_width
        self._options = options or FramingOptions()
        self._smoother = smoother or GuidanceSmoother()
        self.analyses = 0
        self.detect_seconds_total = 0.0
        self.detect_seconds_max = 0.0

    @property
    def shown(self) -> Guidance | None:
        return self._smoother.shown

    @property
    def mean_detect_seconds(self) -> float:
        return self.detect_seconds_total / self.analyses if self.analyses else 0.0

    def analyse(self) -> Analysis | None:
        """One blocking analysis of the newest frame (call from a worker thread)."""
        image = self._source.latest(max_width=self._analysis_width)
        if image is None:
            return None
        grey: Image = image
        if image.ndim == 3:
            grey = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
        started = time.perf_counter()
        faces = tuple(self._detector(grey))
        elapsed = time.perf_counter() - started
        size = (grey.shape[1], grey.shape[0])
        return Analysis(assess(faces, size, options=self._options), faces, elapsed)

    async def run(self) -> None:
        """Analyse until cancelled, never more often than ``rate_hz``."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            analysis = await asyncio.to_thread(self.analyse)
            if analysis is not None:
                self._record(analysis)
            await asyncio.sleep(max(self._period - (loop.time() - started), 0.0))

    def _record(self, analysis: Analysis) -> None:
        self.analyses += 1
        self.detect_seconds_total += analysis.detect_seconds
        self.detect_seconds_max = max(self.detect_seconds_max, analysis.detect_seconds)
        before = self._smoother.shown
        shown = self._smoother.update(analysis.guidance)
        if shown is not None and shown != before:
            logger.debug("framing: %s", shown.state)
            if self._on_guidance is not None:
                self._on_guidance(shown)
