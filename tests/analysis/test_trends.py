"""Grid stages: per-value trends over the trials that used each value."""

from __future__ import annotations

from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState
from optuna.trial import create_trial

from autotune.analysis import grid_trends
from autotune.spec import Direction


def trial(value: float | None, choice: str, state: TrialState = TrialState.COMPLETE):  # noqa: ANN201
    return create_trial(
        state=state,
        value=value,
        params={"optimizer": choice},
        distributions={"optimizer": CategoricalDistribution(["adamw", "sgd"])},
    )


def test_each_value_gets_its_count_median_and_best() -> None:
    trials = [
        trial(0.3, "adamw"),
        trial(0.1, "adamw"),
        trial(0.2, "adamw"),
        trial(0.9, "sgd"),
        trial(0.5, "sgd"),
        trial(None, "sgd", TrialState.PRUNED),
    ]
    adamw, sgd = grid_trends(trials, "optimizer", Direction.MINIMIZE)
    assert (adamw.value, adamw.trials, adamw.median, adamw.best) == ("adamw", 3, 0.2, 0.1)
    assert (sgd.value, sgd.trials, sgd.median, sgd.best) == ("sgd", 2, 0.7, 0.5)
    maximized = grid_trends(trials, "optimizer", Direction.MAXIMIZE)
    assert [t.best for t in maximized] == [0.3, 0.9]
    assert grid_trends(trials, "absent", Direction.MINIMIZE) == ()
