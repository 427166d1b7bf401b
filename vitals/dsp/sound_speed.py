"""Speed of sound in air and the range correction an ultrasonic height rod needs.

An ultrasonic rangefinder times an echo and turns the time into a distance with an assumed
speed of sound.  Sound is faster in warm air (about 0.6 m/s per °C), so a sensor that assumes
22.5 °C, in a 32 °C cabin, reports a distance about 1.6 % short: 10 mm over the 0.6 m between
the sensor and an average head, 1 cm of body height.

Method ``"ideal-gas"``: ``c(T) = 331.3 * sqrt(1 + T / 273.15)`` m/s for dry air at ``T`` °C
(the ideal-gas law, ``c`` proportional to the square root of absolute temperature, anchored at
331.3 m/s at 0 °C; humidity adds under 0.5 % and is ignored).  MaxBotix's own compensation note
writes the same law as ``20.05 * sqrt(T + 273.15)``.  A reported distance ``d`` measured with
the sensor's assumed ``c(T_ref)`` becomes ``d * c(T) / c(T_ref)``.

Which sensors need it (MaxBotix, "Pulse width" application note and the HRLV-MaxSonar-EZ
datasheet): the LV-MaxSonar and XL-MaxSonar series assume 22.5 °C and do not compensate; the
HR series (HRLV, HRXL) carry an internal temperature sensor and compensate by themselves, so a
second correction would double it.  The temperature at the sensor may still differ from the
air along the beam (warm air rises in a cabin), which no correction at the sensor can know.
"""

from __future__ import annotations

import math
from typing import Final, Literal

SPEED_AT_0C: Final = 331.3
"""m/s in dry air at 0 °C."""
ZERO_CELSIUS_K: Final = 273.15
MAXSONAR_REFERENCE_C: Final = 22.5
"""The temperature LV- and XL-MaxSonar sensors assume when they turn time into range."""


def speed_of_sound(celsius: float, *, method: Literal["ideal-gas"] = "ideal-gas") -> float:
    """Speed of sound in dry air at ``celsius`` °C, in m/s."""
    if method != "ideal-gas":
        raise ValueError(f"unknown speed-of-sound method {method!r}")
    if celsius <= -ZERO_CELSIUS_K:
        raise ValueError(f"{celsius} °C is not a temperature")
    return SPEED_AT_0C * math.sqrt(1 + celsius / ZERO_CELSIUS_K)


def compensate_range(
    distance: float, *, ambient_celsius: float, reference_celsius: float = MAXSONAR_REFERENCE_C
) -> float:
    """``distance`` as it would be with the speed of sound at ``ambient_celsius``.

    ``reference_celsius`` is the temperature the sensor assumed when it reported
    ``distance``; the unit of the result is the unit of ``distance``.
    """
    return distance * speed_of_sound(ambient_celsius) / speed_of_sound(reference_celsius)
