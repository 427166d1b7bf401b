"""Speed of sound and the ultrasonic range correction."""

from __future__ import annotations

import pytest

from vitals.dsp.sound_speed import compensate_range, speed_of_sound


def test_speed_of_sound_at_reference_points() -> None:
    assert speed_of_sound(0.0) == pytest.approx(331.3)
    assert speed_of_sound(20.0) == pytest.approx(343.2, abs=0.1)
    # MaxBotix writes the same law as 20.05 * sqrt(T + 273.15)
    assert speed_of_sound(30.0) == pytest.approx(20.05 * (30.0 + 273.15) ** 0.5, rel=1e-3)


def test_sound_gains_about_0_6_m_s_per_degree() -> None:
    assert speed_of_sound(1.0) - speed_of_sound(0.0) == pytest.approx(0.6, abs=0.01)
    assert speed_of_sound(31.0) - speed_of_sound(30.0) == pytest.approx(0.6, abs=0.03)


def test_a_warm_cabin_lengthens_the_true_range() -> None:
    # 620 mm reported by a sensor assuming 22.5 °C, in a 32 °C cabin: about 1.6 % more
    assert compensate_range(620.0, ambient_celsius=32.0) == pytest.approx(629.9, abs=0.1)
    assert compensate_range(620.0, ambient_celsius=22.5) == pytest.approx(620.0)


def test_absolute_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="not a temperature"):
        speed_of_sound(-300.0)
