"""core.engine.pipeline.choose_sides: of a hand fitted as both sides, the better fit is kept."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.engine.pipeline import choose_sides


def test_the_lower_energy_side_is_kept_with_its_probability():
    # detections 0, 1, 2; detection 1 (unsure) was also fitted as the other side, as hand 3
    energy = np.array([0.5, 2.0, 0.1, 1.0])
    chosen, confidence = choose_sides(3, [1], energy, [0.99, 0.55, 0.9, 0.55])
    assert chosen == [0, 3, 2]                                     # the other side explains hand 1 better
    assert confidence[0] == 0.99 and confidence[2] == 0.9          # sure hands keep the detector's score
    assert confidence[1] == pytest.approx(math.exp(-1.0) / (math.exp(-1.0) + math.exp(-2.0)))


def test_the_detectors_side_stays_when_it_fits_better():
    chosen, confidence = choose_sides(1, [0], np.array([0.2, 0.9]), [0.6, 0.6])
    assert chosen == [0]
    assert confidence[0] == pytest.approx(1 / (1 + math.exp(-0.7)))
