from __future__ import annotations

import math

import pytest

from autotune.analysis import BaselineVerdict
from autotune.analysis import TrivialOutcome
from autotune.analysis import compare_to_trivial
from autotune.analysis import compare_with_trivial
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


# --- the answer against the trivial predictor on the re-evaluation's runs ------------------


def _runs(values: list[float]) -> dict[tuple[str, int], float]:
    return {(str(period), 0): value for period, value in enumerate(values)}


def test_an_answer_better_on_every_period_is_better() -> None:
    answer = _runs([1.0 + 0.01 * p for p in range(8)])
    trivial = _runs([1.5 + 0.02 * p for p in range(8)])
    c = compare_with_trivial(answer, trivial, Direction.MINIMIZE, metric="val_loss")
    assert c is not None and c.outcome is TrivialOutcome.BETTER
    assert (c.runs, c.wins, c.losses) == (8, 8, 0) and c.p_value < 0.05
    assert c.answer_mean == pytest.approx(1.035) and c.trivial_mean == pytest.approx(1.57)
    assert c.sentence.startswith("better than the trivial predictor on the same 8 runs")
    assert "val_loss 1.035 vs 1.57, better in 8 of 8 runs" in c.sentence


def test_an_answer_that_ties_the_trivial_predictor_says_so() -> None:
    trivial = _runs([5.0 + 0.3 * p for p in range(10)])
    answer = {k: v + (0.01 if int(k[0]) % 2 else -0.01) for k, v in trivial.items()}
    c = compare_with_trivial(answer, trivial, Direction.MINIMIZE, metric="val_mse")
    assert c is not None and c.outcome is TrivialOutcome.NOT_DISTINGUISHABLE
    assert (c.wins, c.losses) == (5, 5) and c.p_value > 0.05
    assert c.sentence.startswith("NOT distinguishable from the trivial predictor")
    assert "learned little" in c.sentence


def test_an_answer_worse_than_the_trivial_predictor_says_not_to_use_it() -> None:
    answer = _runs([0.6 - 0.01 * p for p in range(7)])  # accuracy: higher is better
    trivial = _runs([0.7 - 0.01 * p for p in range(7)])
    c = compare_with_trivial(answer, trivial, Direction.MAXIMIZE, metric="val_accuracy")
    assert c is not None and c.outcome is TrivialOutcome.WORSE
    assert (c.wins, c.losses) == (0, 7)
    assert c.sentence.startswith("WORSE than the trivial predictor")
    assert "do not use it" in c.sentence


def test_too_few_runs_to_test_are_named_as_such() -> None:
    answer, trivial = _runs([1.0] * 5), _runs([2.0] * 5)  # 5 wins: Wilcoxon p = 0.0625 at best
    c = compare_with_trivial(answer, trivial, Direction.MINIMIZE)
    assert c is not None and c.outcome is TrivialOutcome.TOO_FEW_RUNS and c.min_runs == 6
    assert "better in 5 of 5 runs; too few runs for the Wilcoxon test to tell" in c.sentence


def test_only_shared_runs_pair_and_fewer_than_two_give_nothing() -> None:
    answer = {("0", 0): 1.0, ("tuning", 0): 0.9, ("1", 0): 1.1}
    assert compare_with_trivial(answer, {("0", 0): 2.0}, Direction.MINIMIZE) is None
    c = compare_with_trivial(answer, {("0", 0): 2.0, ("1", 0): 2.0}, Direction.MINIMIZE)
    assert c is not None and c.runs == 2 and c.answer_mean == pytest.approx(1.05)
