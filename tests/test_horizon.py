"""Short-horizon bias acted on, end to end: a real worker runs the configurations promoted
too after the long round misranked its short parents (the decision itself is replayed in
tests/campaign/test_budget.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import TrialState
from optuna.trial import create_trial
import pytest

import autotune
from autotune.campaign import advance
from autotune.storage import open_storage
from tests.conftest import run_autotune
from tests.conftest import run_workers
from tests.conftest import write_study

ROUNDS = """\
rounds:
  - {budget_fraction: 0.5}
  - {budget_fraction: 1.0, top_k: 2}
budget: {steps: 4000}
boundary: {max_widenings: 1}
"""


def middle(distribution: BaseDistribution) -> Any:
    """A value well inside every distribution (no bound is hit), or its first choice."""
    if isinstance(distribution, CategoricalDistribution):
        return distribution.choices[0]
    assert isinstance(distribution, FloatDistribution | IntDistribution)
    low, high = distribution.low, distribution.high
    value = math.sqrt(low * high) if distribution.log else (low + high) / 2
    return round(value) if isinstance(distribution, IntDistribution) else value


def finish_round_one(study: optuna.Study, distributions: dict, step_budget: int) -> None:
    """Six short runs, ranked by their learning rate; together they spend the round."""
    for index in range(6):
        params = {name: middle(d) for name, d in distributions.items()}
        params["learning_rate"] *= 1.1**index
        study.add_trial(
            create_trial(
                params=params,
                distributions=distributions,
                value=0.1 * (index + 1),
                intermediate_values={20: 0.1 * (index + 1)},
                user_attrs={"seed": index, "steps_done": math.ceil(step_budget / 6)},
            )
        )


@pytest.mark.e2e
def test_a_worker_runs_the_configurations_promoted_too_after_a_misranking(
    storage_url: str, tmp_path: Path
) -> None:
    path = write_study(tmp_path, "horizon", trials=6, max_train_steps=40, extra=ROUNDS)
    assert run_autotune("create", str(path), "--storage", storage_url).returncode == 0
    storage = open_storage(storage_url)
    first = autotune.load("horizon", storage=storage_url).current
    round_one = optuna.load_study(study_name=first.name, storage=storage)
    assert first.plan.step_budget is not None
    finish_round_one(round_one, first.distributions, first.plan.step_budget)
    assert advance("horizon", storage).kind.value == "promote"

    second = autotune.load("horizon", storage=storage_url).current
    round_two = optuna.load_study(study_name=second.name, storage=storage)
    for _ in range(2):  # the long runs reverse the short ranking: #2 of 2 is best
        trial = round_two.ask()
        trial.set_user_attr("steps_done", 40)
        parent_value = trial.user_attrs["parent_value"]
        round_two.tell(trial, 1.0 - parent_value)

    run_workers("horizon", storage_url, count=1)  # advances, then runs the promoted-too

    campaign = autotune.load("horizon", storage=storage_url)
    study = next(s for s in campaign.studies if s.name == second.name)
    trials = campaign.trials_of(study)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert sorted(t.user_attrs["parent_trial"] for t in trials) == [0, 1, 2, 3]
    horizon = study.facts.horizon
    assert horizon is not None and horizon.misranked and horizon.more_promoted == 2
    assert campaign.recommendation() is not None
    assert campaign.steps_spent() <= 4000
