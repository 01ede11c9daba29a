"""Does the initial configuration beat a trivial predictor? (docs/method.md §4)"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import replace
import enum
import math

import numpy as np

from autotune.analysis._significance import TEST_LABELS
from autotune.analysis._significance import favours_reference
from autotune.analysis._significance import min_pairs_to_reach
from autotune.analysis._significance import p_values_of
from autotune.spec import Direction
from autotune.spec import PairedTestKind as PairedTest


@dataclass(frozen=True)
class BaselineVerdict:
    """The baseline against the trivial predictor; `margin` > 0 means the baseline is better."""

    baseline_value: float
    trivial_value: float
    beats_trivial: bool
    margin: float
    message: str


def compare_to_trivial(
    baseline_value: float,
    trivial_value: float,
    direction: Direction,
    min_relative_margin: float = 0.0,
    *,
    metric: str = "the metric",
) -> BaselineVerdict:
    """Whether the baseline is better than the trivial value by more than the margin.

    It must be strictly better, and by at least `min_relative_margin` x |trivial_value|. A
    non-finite baseline value never beats it.
    """
    if not isinstance(direction, Direction):
        raise ValueError(f"direction={direction!r} is invalid; allowed: a Direction")
    if not math.isfinite(trivial_value):
        raise ValueError(f"trivial_value={trivial_value!r} is invalid; allowed: a finite float")
    if not (math.isfinite(min_relative_margin) and min_relative_margin >= 0):
        raise ValueError(
            f"min_relative_margin={min_relative_margin!r} is invalid; allowed: a float >= 0"
        )
    sign = 1.0 if direction is Direction.MINIMIZE else -1.0
    margin = sign * (trivial_value - baseline_value)
    needed = min_relative_margin * abs(trivial_value)
    beats = math.isfinite(baseline_value) and margin > 0 and margin >= needed
    values = f"{metric} {baseline_value:g} vs {trivial_value:g} for the trivial predictor"
    if beats:
        message = f"the baseline beats the trivial predictor: {values} (margin {margin:g})"
    else:
        better = "lower" if direction is Direction.MINIMIZE else "higher"
        by = "" if needed == 0 else f" by at least {needed:g}"
        message = (
            f"the baseline does NOT beat the trivial predictor: {values} (it must be "
            f"{better}{by}). The training pipeline or the data is broken; fix it before "
            "tuning, since tuning would hide the problem"
        )
    return BaselineVerdict(baseline_value, trivial_value, beats, margin, message)


class TrivialOutcome(enum.Enum):
    """How the answer's runs compare with the trivial predictor's on the same periods."""

    BETTER = "better"
    NOT_DISTINGUISHABLE = "not distinguishable"
    WORSE = "worse"
    TOO_FEW_RUNS = "too few runs to tell"  # the test could not reach alpha whatever they gave


@dataclass(frozen=True)
class TrivialComparison:
    """The answer against the trivial predictor, paired on the periods both were scored on.

    The baseline check (`compare_to_trivial`) asks whether training works at all, on the
    tuning period; this asks whether the answer beats a trivial predictor where it was
    re-evaluated, which a user needs before trusting it (a forecaster of a random walk
    ties yesterday's value however well it is tuned).
    """

    outcome: TrivialOutcome
    runs: int
    answer_mean: float
    trivial_mean: float
    wins: int  # runs where the answer is better
    losses: int
    test: PairedTest
    p_value: float
    alpha: float
    min_runs: int  # the fewest runs with which the test can reach alpha at all
    sentence: str


def compare_with_trivial(
    answer: Mapping[tuple[str, int], float],
    trivial: Mapping[tuple[str, int], float],
    direction: Direction,
    alpha: float = 0.05,
    test: PairedTest = PairedTest.WILCOXON,
    *,
    metric: str = "the metric",
) -> TrivialComparison | None:
    """The answer's runs against the trivial predictor's values on the same (period,
    replicate) keys; None with fewer than 2 shared keys (nothing to pair)."""
    keys = sorted(set(answer) & set(trivial))
    if len(keys) < 2:
        return None
    sign = 1.0 if direction is Direction.MINIMIZE else -1.0
    diffs = np.asarray([sign * (trivial[k] - answer[k]) for k in keys], dtype=float)
    p_value = float(p_values_of(diffs[None, :], test)[0])
    favours_answer = bool(favours_reference(diffs[None, :], test)[0])
    min_runs = min_pairs_to_reach(alpha, test)
    if p_value < alpha:
        outcome = TrivialOutcome.BETTER if favours_answer else TrivialOutcome.WORSE
    elif len(keys) < min_runs:
        outcome = TrivialOutcome.TOO_FEW_RUNS
    else:
        outcome = TrivialOutcome.NOT_DISTINGUISHABLE
    draft = TrivialComparison(
        outcome,
        len(keys),
        float(np.mean([answer[k] for k in keys])),
        float(np.mean([trivial[k] for k in keys])),
        int(np.sum(diffs > 0)),
        int(np.sum(diffs < 0)),
        test,
        p_value,
        alpha,
        min_runs,
        sentence="",
    )
    return replace(draft, sentence=_trivial_sentence(draft, metric))


_HEADLINE = {
    TrivialOutcome.BETTER: "better than the trivial predictor",
    TrivialOutcome.NOT_DISTINGUISHABLE: "NOT distinguishable from the trivial predictor",
    TrivialOutcome.WORSE: "WORSE than the trivial predictor",
    TrivialOutcome.TOO_FEW_RUNS: "against the trivial predictor",
}
_CONSEQUENCE = {
    TrivialOutcome.BETTER: "",
    TrivialOutcome.NOT_DISTINGUISHABLE: (
        ": the answer may have learned little that the trivial predictor does not know"
    ),
    TrivialOutcome.WORSE: (
        ": do not use it; the training pipeline or the data is broken, or the task has "
        "nothing to learn from its inputs"
    ),
}


def _trivial_sentence(c: TrivialComparison, metric: str) -> str:
    ties = c.runs - c.wins - c.losses
    tied = f", tied in {ties}" if ties else ""
    record = (
        f"{_HEADLINE[c.outcome]} on the same {c.runs} runs: {metric} {c.answer_mean:.5g} vs "
        f"{c.trivial_mean:.5g}, better in {c.wins} of {c.runs} runs{tied}"
    )
    test = TEST_LABELS[c.test]
    if c.outcome is TrivialOutcome.TOO_FEW_RUNS:
        return f"{record}; too few runs for the {test} test to tell (it needs {c.min_runs})"
    return f"{record}; {test} p={c.p_value:.3g} at alpha={c.alpha:g}{_CONSEQUENCE[c.outcome]}"
