"""A test-pattern frame whose pixels carry a frame counter and a capture time.

The glass-to-glass latency benchmark (issue 6) needs each displayed frame to say which frame
it is and when it was captured, read back from pixels after VP8 or H.264 encoding, scaling and
decoding - in Python here and in the browser (``requestVideoFrameCallback`` + a canvas).  So the
code is drawn as big black and white cells at fixed *fractions* of the frame, each bit written
twice (the bit and its complement below it) so a reader needs no threshold and can tell an
unreadable cell from a readable one.

Layout (``W`` x ``H`` is the frame size; all coordinates are fractions of it, so the layout is
the same after any scaling)::

      x = 0      2W/36                                            34W/36     W
    y=0 +---------+-----+-----+-----+- ... -+-----+-----+-----+------+-------+
        |         |  quiet margin: the moving background shows through       |
   H/24 |         | c0  | c1  | c2  |  ...  | c29 | c30 | c31 |      |       |  row 0: counter bits
  2H/24 |         | ~c0 | ~c1 | ~c2 |  ...  | ~c29| ~c30| ~c31|      |       |  row 1: complements
  3H/24 |         | t0  | t1  | t2  |  ...  | t29 | t30 | t31 |      |       |  row 2: time bits
  4H/24 |         | ~t0 | ~t1 | ~t2 |  ...  | ~t29| ~t30| ~t31|      |       |  row 3: complements
  5H/24 +---------+-----+-----+-----+- ... -+-----+-----+-----+------+-------+
        |   moving content: scrolling colour bars, a sweeping box, the counter as text   |
      H +-------------------------------------------------------------------------------+

- Cell ``i`` (0..31) spans ``x`` from ``(2 + i) * W / 36`` to ``(3 + i) * W / 36``; row ``r``
  (0..3) spans ``y`` from ``(1 + r) * H / 24`` to ``(2 + r) * H / 24``.  At 1280x720 a cell is
  35.6 x 30 px; at 854x480 23.7 x 20 px; at 640x480 17.8 x 20 px.
  Raw pixels read back down to 72x48 (two-pixel cells); after lossy coding, keep cells of
  four pixels or more (the reader's canvas 160x90 or larger).
- Bit ``i`` is bit ``31 - i`` of the value: the most significant bit is on the left.
- A one bit is white (255) over black (0); a zero bit is black over white.
- Row 0/1: the frame counter modulo 2**32.  Row 2/3: the capture time in milliseconds since the
  Unix epoch, modulo 2**32 (``Date.now() % 2**32`` in JavaScript, the same clock on one
  machine); when the frame carries no time, rows 2 and 3 are mid grey (128).
- To read: take the mean luma (or the mean of R, G, B) over the central half of each cell
  (the middle 50 % in ``x`` and in ``y``, away from the blurred edges); the bit is 1 when the
  upper cell is brighter than the lower.  If any pair differs by less than ``min_contrast``
  (64 of 255 by default), the value is unreadable: ``None``.

The reader's JavaScript twin (for the browser)::

    function readPattern(ctx, w, h, row) {           // row 0: counter, 2: capture time
      let value = 0;
      for (let i = 0; i < 32; i++) {
        const upper = cellMean(ctx, w, h, i, row), lower = cellMean(ctx, w, h, i, row + 1);
        if (Math.abs(upper - lower) < 64) return null;
        value = value * 2 + (upper > lower ? 1 : 0);   // stays exact below 2**53
      }
      return value;
    }
    // cellMean: mean of (r + g + b) / 3 over x in [(2 + i + 0.25) W/36, (2 + i + 0.75) W/36),
    //                                          y in [(1 + row + 0.25) H/24, (1 + row + 0.75) H/24)

Below the code band the frame moves (scrolling bars, a sweeping box) so encoders never idle on
a static picture, as a real camera's noise would keep them busy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "CELLS",
    "TestPattern",
    "decode_counter",
    "decode_timestamp",
    "encode_counter",
    "paint_code",
]

CELLS = 32
"""Bits per value: one cell per bit."""

_COLUMNS = 36  # 2 margin columns each side of the 32 cells
_FIRST_COLUMN = 2
_ROWS = 24  # the band holds rows 1..4 of 24
_FIRST_ROW = 1
_COUNTER_ROW = 0
_TIME_ROW = 2
_WHITE = 255
_BLACK = 0
_GREY = 128
_MODULUS = 1 << CELLS

Image = npt.NDArray[np.uint8]


def encode_counter(frame: Image, n: int, *, timestamp_ms: int | None = None) -> Image:
    """A copy of ``frame`` with ``n`` (and the capture time, when given) drawn into its code band.

    ``frame`` is a BGR image (``H x W x 3``) or one luma plane (``H x W``; for an I420 array
    from ``VideoFrame.to_ndarray(format="yuv420p")`` pass its first ``H`` rows).  Both values
    are taken modulo 2**32.
    """
    painted = np.array(frame, dtype=np.uint8, copy=True)
    paint_code(painted, n, timestamp_ms=timestamp_ms)
    return painted


def paint_code(frame: Image, n: int, *, timestamp_ms: int | None = None) -> None:
    """Draw the code band into ``frame`` in place (the generator's fast path)."""
    _check_shape(frame)
    _paint_value(frame, _COUNTER_ROW, n % _MODULUS)
    if timestamp_ms is None:
        for row in (_TIME_ROW, _TIME_ROW + 1):
            for cell in range(CELLS):
                frame[_cell_slice(frame, cell, row, inner=False)] = _GREY
    else:
        _paint_value(frame, _TIME_ROW, timestamp_ms % _MODULUS)


def decode_counter(frame: Image, *, min_contrast: float = 64.0) -> int | None:
    """The frame counter drawn by ``encode_counter``, or ``None`` when a cell is unreadable."""
    return _read_value(frame, _COUNTER_ROW, min_contrast)


def decode_timestamp(frame: Image, *, min_contrast: float = 64.0) -> int | None:
    """The capture time in ms (mod 2**32) drawn by ``encode_counter``, or ``None``."""
    return _read_value(frame, _TIME_ROW, min_contrast)


class TestPattern:
    """Generates test-pattern frames of one size: moving content plus the code band.

    The background (colour bars and a luma ramp) is built once; each frame scrolls it, draws a
    sweeping box and the counter as text, then the code band.  About a millisecond per 720p
    frame, so it can run at 30 fps in the capture thread.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, *, width: int, height: int) -> None:
        if width < 72 or height < 48:
            raise ValueError(f"test pattern too small: {width}x{height}")
        self.width = width
        self.height = height
        self._background = _background(width, height)

    def frame(self, n: int, *, timestamp_ms: int | None = None) -> Image:
        """Frame number ``n`` (BGR, ``height x width x 3``)."""
        shift = (n * 8) % self.width
        image = np.roll(self._background, shift, axis=1)
        box = max(self.height // 8, 8)
        top = self.height * 5 // 24 + (n * 3) % max(self.height - self.height * 5 // 24 - box, 1)
        left = (n * 11) % max(self.width - box, 1)
        image[top : top + box, left : left + box] = (255, 255, 255)
        image[top + box // 4 : top + 3 * box // 4, left + box // 4 : left + 3 * box // 4] = (
            0,
            0,
            255,
        )
        _draw_digits(image, n)
        paint_code(image, n, timestamp_ms=timestamp_ms)
        return image


def _check_shape(frame: Image) -> None:
    if frame.ndim not in (2, 3) or frame.shape[0] < _ROWS or frame.shape[1] < _COLUMNS:
        raise ValueError(f"not an image the code band fits in: shape {frame.shape}")


def _cell_slice(frame: Image, cell: int, row: int, *, inner: bool) -> tuple[slice, slice]:
    height, width = frame.shape[0], frame.shape[1]
    column = _FIRST_COLUMN + cell
    band_row = _FIRST_ROW + row
    if inner:
        x0, x1 = (column + 0.25) * width / _COLUMNS, (column + 0.75) * width / _COLUMNS
        y0, y1 = (band_row + 0.25) * height / _ROWS, (band_row + 0.75) * height / _ROWS
    else:
        x0, x1 = column * width / _COLUMNS, (column + 1) * width / _COLUMNS
        y0, y1 = band_row * height / _ROWS, (band_row + 1) * height / _ROWS
    xs = slice(round(x0), max(round(x1), round(x0) + 1))
    ys = slice(round(y0), max(round(y1), round(y0) + 1))
    return ys, xs


def _paint_value(frame: Image, row: int, value: int) -> None:
    for cell in range(CELLS):
        bit = (value >> (CELLS - 1 - cell)) & 1
        upper, lower = (_WHITE, _BLACK) if bit else (_BLACK, _WHITE)
        frame[_cell_slice(frame, cell, row, inner=False)] = upper
        frame[_cell_slice(frame, cell, row + 1, inner=False)] = lower


def _read_value(frame: Image, row: int, min_contrast: float) -> int | None:
    _check_shape(frame)
    value = 0
    for cell in range(CELLS):
        upper = float(frame[_cell_slice(frame, cell, row, inner=True)].mean())
        lower = float(frame[_cell_slice(frame, cell, row + 1, inner=True)].mean())
        if abs(upper - lower) < min_contrast:
            return None
        value = (value << 1) | (1 if upper > lower else 0)
    return value


def _background(width: int, height: int) -> Image:
    """Eight colour bars over a horizontal luma ramp: texture for the encoder to work on."""
    bars = np.array(
        [
            (235, 235, 235),
            (16, 235, 235),
            (235, 235, 16),
            (16, 235, 16),
            (235, 16, 235),
            (16, 16, 235),
            (235, 16, 16),
            (16, 16, 16),
        ],
        dtype=np.float32,
    )
    columns = (np.arange(width) * len(bars) // width).astype(np.intp)
    ramp = (np.arange(height, dtype=np.float32) / max(height - 1, 1))[:, None, None]
    image = bars[columns][None, :, :] * (0.35 + 0.65 * ramp)
    return np.ascontiguousarray(image.clip(0, 255).astype(np.uint8))


_SEGMENTS = (  # seven-segment digits 0..9: which of segments a b c d e f g are lit
    "abcdef",
    "bc",
    "abdeg",
    "abcdg",
    "bcfg",
    "acdfg",
    "acdefg",
    "abc",
    "abcdefg",
    "abcdfg",
)


def _draw_digits(image: Image, n: int) -> None:
    """The counter as seven-segment digits in the lower right, for human eyes (no fonts)."""
    height, width = image.shape[0], image.shape[1]
    size = max(height // 12, 6)
    thick = max(size // 6, 1)
    text = str(n % 1_000_000).rjust(6, "0")
    y = height - 2 * size - 2 * thick
    x = width - len(text) * (size + 2 * thick) - size
    for index, digit in enumerate(text):
        left = x + index * (size + 2 * thick)
        if left < 0 or y < 0:
            return
        segments = {
            "a": (y, left, thick, size),
            "b": (y, left + size - thick, size, thick),
            "c": (y + size, left + size - thick, size, thick),
            "d": (y + 2 * size - thick, left, thick, size),
            "e": (y + size, left, size, thick),
            "f": (y, left, size, thick),
            "g": (y + size - thick // 2, left, thick, size),
        }
        for name in _SEGMENTS[int(digit)]:
            top, lft, h, w = segments[name]
            image[top : top + h, lft : lft + w] = (255, 255, 255)
