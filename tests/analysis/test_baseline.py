from __future__ import annotations

import math

import pytest

from autotune.analysis import BaselineVerdict
from autotune.analysis import compare_to_trivial
from autotune.spec import Direction

BROKEN = "The training pipeline or the data is broken"


def test_minimized_baseline_beats_trivial() -> None:
    verdict = compare_to_trivial(0.1, 2.3, Direction.MINIMIZE, metric="val_loss")
    assert verdict.beats_trivial and verdict.margin == pytest.approx(2.2)
    assert (verdict.baseline_value, verdict.trivial_value) == (0.1, 2.3)
    assert "beats the trivial predictor" in verdict.message and "val_loss" in verdict.message
    assert BROKEN not in verdict.message


def test_maximized_baseline_beats_trivial() -> None:
    verdict = compare_to_trivial(0.95, 0.1, Direction.MAXIMIZE, metric="val_accuracy")
    assert verdict.beats_trivial and verdict.margin == pytest.approx(0.85)


def test_failure_says_the_pipeline_is_broken() -> None:
    verdict = compare_to_trivial(0.05, 0.03, Direction.MINIMIZE, metric="val_mse")
    assert not verdict.beats_trivial and verdict.margin == pytest.approx(-0.02)
    assert "does NOT beat the trivial predictor" in verdict.message
    assert BROKEN in verdict.message and "tuning would hide" in verdict.message
    assert "must be lower" in verdict.message
    maximized = compare_to_trivial(0.1, 0.1, Direction.MAXIMIZE)
    assert not maximized.beats_trivial and "must be higher" in maximized.message


def test_equal_is_not_better() -> None:
    assert not compare_to_trivial(1.0, 1.0, Direction.MINIMIZE).beats_trivial


def test_relative_margin() -> None:
    assert compare_to_trivial(0.89, 1.0, Direction.MINIMIZE, 0.1).beats_trivial
    verdict = compare_to_trivial(0.95, 1.0, Direction.MINIMIZE, 0.1)
    assert not verdict.beats_trivial and "by at least 0.1" in verdict.message
    assert compare_to_trivial(-0.89, -1.0, Direction.MAXIMIZE, 0.1).beats_trivial
    assert not compare_to_trivial(-0.95, -1.0, Direction.MAXIMIZE, 0.1).beats_trivial


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_baseline_never_beats(value: float) -> None:
    verdict = compare_to_trivial(value, 2.3, Direction.MINIMIZE)
    assert isinstance(verdict, BaselineVerdict) and not verdict.beats_trivial
    assert BROKEN in verdict.message
    assert not compare_to_trivial(-math.inf, 2.3, Direction.MINIMIZE).beats_trivial
    assert not compare_to_trivial(math.nan, 0.1, Direction.MAXIMIZE).beats_trivial


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"trivial_value": math.nan}, r"trivial_value=nan is invalid"),
        ({"min_relative_margin": -0.1}, r"min_relative_margin=-0.1 is invalid"),
        ({"min_relative_margin": math.inf}, r"min_relative_margin=inf is invalid"),
        ({"direction": "minimize"}, r"direction='minimize' is invalid"),
    ],
)
def test_invalid_arguments(kwargs: dict, pattern: str) -> None:
    arguments = {"baseline_value": 0.1, "trivial_value": 1.0, "direction": Direction.MINIMIZE}
    with pytest.raises(ValueError, match=pattern):
        compare_to_trivial(**{**arguments, **kwargs})
