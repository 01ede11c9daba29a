"""One number for steps trained: per trial (``steps_trained``) and per campaign (status)."""

from __future__ import annotations

from pathlib import Path
import threading

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
from optuna.trial import create_trial

from autotune import load_study_spec
from autotune.campaign import Stage
from autotune.campaign import advance
from autotune.campaign import create_campaign
from autotune.campaign import load_campaign
from autotune.campaign import sweep_points
from autotune.campaign._budget import steps_trained
from autotune.campaign._trial_attrs import ATTR_CARRIED_FROM
from autotune.report._summary import budget_lines
from autotune.storage import open_storage
from autotune.worker._defaults import task_defaults
from autotune.worker._objectives import RoundSetting
from autotune.worker._objectives import make_objective
from tests.conftest import write_study

LR = FloatDistribution(1e-4, 1e-2, log=True)
LR_ONLY = """\
name: lr
groups:
  - name: learning_rate
    params:
      learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true, hard_high: 0.05}
"""


def finished(rate: float, steps_done: int, resumed: int = 0) -> optuna.trial.FrozenTrial:
    return create_trial(
        value=1.0 / rate,
        params={"learning_rate": rate},
        distributions={"learning_rate": LR},
        user_attrs={"steps_done": steps_done, "resumed_from_step": resumed},
        intermediate_values={steps_done: 1.0 / rate},
    )


def test_a_trial_counts_what_it_trained_itself() -> None:
    assert steps_trained(finished(1e-3, 600, resumed=270), 600) == 330  # resumed steps once
    carried = finished(1e-3, 600)
    carried.user_attrs = {**carried.user_attrs, ATTR_CARRIED_FROM: 4}
    assert steps_trained(carried, 600) == 0  # its original trained them
    pruned = create_trial(state=TrialState.PRUNED, intermediate_values={20: 1.0, 40: 0.9})
    assert steps_trained(pruned, 120) == 40  # from before the attribute: its last report


def test_status_shows_one_number_that_counts_carried_copies_once(
    storage_url: str, tmp_path: Path
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(LR_ONLY)
    path = write_study(tmp_path, "count", trials=8, space=space, extra="boundary: {trials: 3}\n")
    spec = load_study_spec(path)
    campaign, _ = create_campaign(spec, open_storage(storage_url), task_defaults(spec))
    study = campaign.optuna_study(campaign.current)
    rates = [1e-4, 3e-4, 6e-3, 7e-3, 8e-3, 9e-3, 9.5e-3, 1e-2]  # the best at the top: widened
    for rate in rates:
        study.add_trial(finished(rate, 120, resumed=20 if rate == 1e-2 else 0))
    advance("count", open_storage(storage_url))
    campaign = load_campaign("count", open_storage(storage_url))
    original, widened = campaign.studies
    copies = campaign.trials_of(widened)
    assert len(copies) == 8 and {t.user_attrs["steps_trained"] for t in copies} == {0}
    assert campaign.steps_spent() == 7 * 120 + 100
    assert budget_lines(campaign) == ["steps trained: 940 (no total budget set)"]


def test_a_budgeted_campaign_shows_the_same_number_against_its_budget(
    storage_url: str, tmp_path: Path
) -> None:
    path = write_study(tmp_path, "budgeted", trials=8, extra="budget: {steps: 100000}\n")
    spec = load_study_spec(path)
    campaign, _ = create_campaign(spec, open_storage(storage_url), task_defaults(spec))
    campaign.optuna_study(campaign.current).add_trial(finished(1e-3, 120, resumed=40))
    campaign = load_campaign("budgeted", open_storage(storage_url))
    assert budget_lines(campaign)[0] == "steps trained: 80 of the 100,000-step budget"


def test_sweep_trials_record_the_steps_they_trained(tmp_path: Path) -> None:
    path = write_study(tmp_path, "sweep", trials=1, extra="")
    spec = load_study_spec(path).model_copy(update={"task": "digits-mlp"})
    objective = make_objective(spec, threading.Event(), RoundSetting(Stage.STEPS_SWEEP, 60))
    study = optuna.create_study()
    study.enqueue_trial({"learning_rate": 1e-6})  # too slow to fit in 60 steps
    study.optimize(objective, n_trials=1)
    (trial,) = study.trials
    assert trial.user_attrs["steps_done"] == 60 and trial.user_attrs["steps_trained"] == 60


def test_a_sweep_rate_unfitted_when_another_has_fitted_stops_there(tmp_path: Path) -> None:
    """A rate no faster than one that fitted cannot be the fastest: it stops at that step,
    whether the faster rate is in its own study or a widening carries its steps."""
    path = write_study(tmp_path, "sweep", trials=1, extra="")
    spec = load_study_spec(path).model_copy(update={"task": "digits-mlp"})
    objective = make_objective(spec, threading.Event(), RoundSetting(Stage.STEPS_SWEEP, 120))
    own = optuna.create_study()
    fitted = {"steps_to_fit": 40, "steps_done": 40}
    own.add_trial(
        create_trial(
            value=40.0,
            params={"learning_rate": 1e-2},
            distributions={"learning_rate": LR},
            user_attrs=fitted,
        )
    )
    own.enqueue_trial({"learning_rate": 1e-6})
    widening = optuna.create_study()
    widening.enqueue_trial({"learning_rate": 1e-6}, user_attrs={"sweep_steps_to_beat": 60})
    for study, bound in ((own, 40), (widening, 60)):
        study.optimize(objective, n_trials=1)
        trial = study.trials[-1]
        assert trial.state is TrialState.PRUNED
        assert trial.user_attrs["sweep_outpaced_by"] == bound
        assert trial.user_attrs["steps_done"] == bound == max(trial.intermediate_values)
        (point,) = sweep_points([trial], 120)
        assert point.steps_to_fit is None and point.outpaced_at == bound
