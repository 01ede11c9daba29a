from __future__ import annotations

from collections.abc import Sequence

from optuna.trial import FrozenTrial
from optuna.trial import TrialState
from optuna.trial import create_trial
import pytest

from autotune.analysis import top_k
from autotune.spec import Direction


def trial(
    number: int, value: float | None, state: TrialState = TrialState.COMPLETE
) -> FrozenTrial:
    made = create_trial(state=state, value=value)
    made.number = number
    return made


def numbers(trials: Sequence[FrozenTrial]) -> list[int]:
    return [t.number for t in trials]


def test_best_first_minimize() -> None:
    trials = [trial(0, 0.5), trial(1, 0.1), trial(2, 0.3), trial(3, 0.9)]
    assert numbers(top_k(trials, 2, Direction.MINIMIZE)) == [1, 2]


def test_maximize() -> None:
    trials = [trial(0, 0.5), trial(1, 0.1), trial(2, 0.3), trial(3, 0.9)]
    assert numbers(top_k(trials, 3, Direction.MAXIMIZE)) == [3, 0, 2]


def test_ties_go_to_the_earlier_trial() -> None:
    trials = [trial(4, 0.2), trial(2, 0.2), trial(7, 0.1), trial(3, 0.2)]
    assert numbers(top_k(trials, 3, Direction.MINIMIZE)) == [7, 2, 3]
    assert numbers(top_k(trials, 2, Direction.MAXIMIZE)) == [2, 3]


def test_only_complete_trials_with_finite_values() -> None:
    trials = [
        trial(0, None, TrialState.PRUNED),
        trial(1, None, TrialState.FAIL),
        trial(2, float("inf")),
        trial(3, float("-inf")),
        trial(4, 1.0),
        trial(5, None, TrialState.RUNNING),
    ]
    assert numbers(top_k(trials, 3, Direction.MINIMIZE)) == [4]
    assert numbers(top_k(trials, 3, Direction.MAXIMIZE)) == [4]


def test_all_pruned_gives_none() -> None:
    trials = [trial(n, None, TrialState.PRUNED) for n in range(4)]
    assert top_k(trials, 2, Direction.MINIMIZE) == []
    assert top_k([], 1, Direction.MINIMIZE) == []


def test_fewer_than_k_gives_all() -> None:
    trials = [trial(0, 3.0), trial(1, 1.0)]
    assert numbers(top_k(trials, 5, Direction.MINIMIZE)) == [1, 0]


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "2"])
def test_invalid_k(k: object) -> None:
    with pytest.raises(ValueError, match=r"top_k k=.* is invalid; allowed: an int >= 1"):
        top_k([trial(0, 1.0)], k, Direction.MINIMIZE)  # type: ignore[arg-type]


def test_direction_must_be_the_enum() -> None:
    with pytest.raises(ValueError, match=r"direction='minimize' is invalid"):
        top_k([trial(0, 1.0)], 1, "minimize")  # type: ignore[arg-type]


def test_multi_objective_is_refused() -> None:
    made = create_trial(values=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"2 objective values"):
        top_k([made], 1, Direction.MINIMIZE)
