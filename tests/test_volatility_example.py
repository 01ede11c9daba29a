"""The weak-signal example (examples/volatility_task.py, studies/volatility.yaml): targets that
never peek into validation, a trivial predictor that is hard to beat, a spec that loads."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pytest
import torch

from autotune._errors import SpecError
from autotune.campaign._budget import least_budget_with_sweep
from autotune.spec import study_spec_from_dict
from autotune.training import Budget
from autotune.training import Period
from autotune.training import Task
from autotune.training import train
from autotune.worker._defaults import task_defaults
from autotune.worker._periods import seeded_periods
from autotune.worker._periods import validates_on_dates_of
from autotune.worker._task_checks import check_spec_task
from autotune.worker._task_checks import load_checked_study_spec
from examples.volatility_task import CONTEXT_DAYS
from examples.volatility_task import HORIZON_DAYS
from examples.volatility_task import VolatilityTask
from tests.conftest import REPO_ROOT

STUDY = REPO_ROOT / "studies" / "volatility.yaml"


@pytest.fixture(scope="module")
def task() -> VolatilityTask:
    torch.set_num_threads(1)
    return VolatilityTask()


def test_the_example_is_a_task_on_the_daily_prices_shipped_with_matplotlib(
    task: VolatilityTask,
) -> None:
    assert isinstance(task, Task)
    assert task.describe().span == (datetime.date(2004, 8, 20), datetime.date(2008, 10, 14))
    assert len(task.dates) == len(task.returns) == 1046
    assert np.all(np.diff(task.dates.astype(int)) > 0)


def test_training_targets_end_before_validation_begins(task: VolatilityTask) -> None:
    """A target is the mean absolute return of the next five days: the last training targets
    would average validation days, so they are left out."""
    period = task.default_period()
    data = task.data(period)
    train_days = np.flatnonzero(
        (task.dates >= np.datetime64("2004-08-20")) & (task.dates <= np.datetime64("2007-12-31"))
    )
    assert len(data.train_y) == len(train_days) - CONTEXT_DAYS - HORIZON_DAYS + 1
    assert len(data.val_y) == 125  # the trading days of 2008-H1
    assert data.train_x.shape[1:] == (CONTEXT_DAYS, 2)


def test_the_trivial_predictor_is_the_training_mean(task: VolatilityTask) -> None:
    data = task.data()
    assert abs(float(data.train_y.mean())) < 1e-5  # standardised with the training targets
    trivial = task.trivial_metrics()
    std = data.statistics["std"]
    assert trivial["val_mse_pct2"] == pytest.approx(float(data.val_y.pow(2).mean()) * std**2)


def test_a_short_run_learns_something_but_not_much(task: VolatilityTask) -> None:
    """The weak signal the example exists for: a short run's best eval beats the trivial
    predictor, by less than half."""
    budget = Budget(max_train_steps=200, eval_interval=20, batch_size=32, seed=1)
    hparams = {**task.default_hyperparameters(), "learning_rate": 1e-2}
    result = train(hparams, task, budget, lambda _: None, "val_mse_pct2")
    trivial = task.trivial_metrics()["val_mse_pct2"]
    assert 0.5 * trivial < result.best.metrics["val_mse_pct2"] < trivial


def test_the_study_loads_and_its_periods_fit_the_data(task: VolatilityTask) -> None:
    spec = load_checked_study_spec(STUDY)
    assert spec.task == "examples.volatility_task:make_task"
    periods = task.periods(6, 0)
    assert all(len(task.data(p).val_y) == 60 for p in periods)
    starts = [p.validation_start for p in periods]
    assert starts == sorted(starts)


def test_a_period_before_the_context_is_refused(task: VolatilityTask) -> None:
    too_early = Period.date_range(
        datetime.date(2004, 8, 20),
        datetime.date(2004, 9, 1),
        datetime.date(2004, 9, 2),
        datetime.date(2004, 9, 10),
    )
    with pytest.raises(ValueError, match="leaves no day to forecast"):
        task.data(too_early)


def test_more_reevaluation_periods_than_the_task_gives_is_a_spec_error(tmp_path: Path) -> None:
    """Every re-evaluation run failed at the campaign's end: the task gave 9 quarters (6
    that do not validate on the tuning half-year)."""
    text = STUDY.read_text().replace("reevaluation: {periods: 6}", "reevaluation: {periods: 12}")
    path = tmp_path / "volatility.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=r"reevaluation.periods: 12 is invalid .* at most 6"):
        load_checked_study_spec(path)
    default = tmp_path / "default.yaml"  # the default 12: capped at what the task gives
    default.write_text(text.replace("reevaluation: {periods: 12}", ""))
    spec = load_checked_study_spec(default)
    assert spec.reevaluation.periods == 12 and task_defaults(spec).most_periods == 6
    stored = study_spec_from_dict(spec.to_json_dict(), "campaign 'v'")  # as a worker reads it
    check_spec_task(stored, "campaign 'v'")  # its default reads as set: a worker refused it
    budgeted = tmp_path / "budgeted.yaml"  # a budget may ask for 3 x 6: the task gives 6
    budgeted.write_text(STUDY.read_text() + "budget: {steps: 200000}\n")
    assert task_defaults(load_checked_study_spec(budgeted)).most_periods == 6
    assert task_defaults(load_checked_study_spec(STUDY)).most_periods == 6  # 3 x 6 asked


def test_a_budget_that_cannot_pay_for_the_sweep_is_refused_with_the_least_it_needs(
    tmp_path: Path,
) -> None:
    """Without a fit_threshold every sweep rate trains its whole horizon: a 300-step budget
    in automatic mode used to spend 3,850 steps on the sweep and then stop."""
    path = tmp_path / "auto.yaml"
    path.write_text("task: examples.volatility_task:make_task\nbudget: {steps: 100000}\n")
    least = least_budget_with_sweep(load_checked_study_spec(path))
    assert least > 5 * 1000  # the sweep's five rates x 1,000 steps, and the pipeline after
    path.write_text(f"task: examples.volatility_task:make_task\nbudget: {{steps: {least}}}\n")
    assert load_checked_study_spec(path).budget.steps == least
    path.write_text(f"task: examples.volatility_task:make_task\nbudget: {{steps: {least - 1}}}\n")
    with pytest.raises(SpecError, match=rf"cannot pay for the learning-rate sweep .* {least:,}"):
        load_checked_study_spec(path)


def test_no_reevaluation_period_validates_on_the_tuning_half_year(task: VolatilityTask) -> None:
    """3 of the task's 9 rolling quarters validated inside 2008-H1, where the finalists
    had been chosen: their wins there are no evidence."""
    tuning = task.default_period()
    assert any(validates_on_dates_of(p, tuning) for p in task.periods(9, 0))
    periods = seeded_periods(None, task, 6, 202612)
    assert len(periods) == 6 and len(set(periods)) == 6
    assert not any(validates_on_dates_of(p, tuning) for p in periods)
    assert validates_on_dates_of(tuning, tuning)
    fold = Period.kfold(0, 5, 0)
    assert not validates_on_dates_of(fold, tuning)  # folds have no dates to compare
