"""Automatic mode for any task: without a fit_threshold the sweep measures the plateau."""

from __future__ import annotations

from pathlib import Path
import threading

import pytest

from autotune import load_study_spec
from autotune.campaign import Stage
from autotune.campaign import advance
from autotune.campaign import create_campaign
from autotune.campaign import load_campaign
from autotune.report._report import write_report
from autotune.report._summary import study_progress
from autotune.storage import open_storage
from autotune.worker._defaults import task_defaults
from autotune.worker._objectives import RoundSetting
from autotune.worker._objectives import make_objective
from autotune.worker._task_checks import task_facts

NO_THRESHOLD = """from types import SimpleNamespace

from autotune.training._task import TASK_MEMBERS
from examples.sine_task import SineTask


def make():
    full = SineTask()  # everything but the optional fit_threshold
    return SimpleNamespace(**{name: getattr(full, name) for name in TASK_MEMBERS})
"""


@pytest.mark.e2e  # a real sweep: about 2 minutes
def test_automatic_mode_measures_max_train_steps_of_a_task_without_threshold(
    storage_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "at_no_threshold.py").write_text(NO_THRESHOLD)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "auto.yaml"
    path.write_text("task: at_no_threshold:make\n", encoding="utf-8")  # automatic mode
    assert not task_facts("at_no_threshold:make").has_fit_threshold
    spec = load_study_spec(path)  # checked against the task, as create does
    assert spec.max_train_steps == "auto"
    campaign, _ = create_campaign(spec, open_storage(storage_url), task_defaults(spec))
    sweep = campaign.current
    assert sweep.stage is Stage.STEPS_SWEEP
    setting = RoundSetting(Stage.STEPS_SWEEP, sweep.max_train_steps)
    objective = make_objective(spec, threading.Event(), setting)
    campaign.optuna_study(sweep).optimize(objective, n_trials=spec.steps_sweep.count)
    advance(spec.name, open_storage(storage_url))
    campaign = load_campaign(spec.name, open_storage(storage_url))
    decision = campaign.studies[0].facts.sweep
    assert decision is not None and decision.max_train_steps is not None, campaign.stopped
    assert 100 <= decision.max_train_steps < sweep.max_train_steps
    assert "stopped improving" in decision.reason
    trials = campaign.trials_of(sweep)
    assert all("sweep_lowest_loss" in t.user_attrs for t in trials)
    for trial in trials:  # a rate stops once it has levelled off, its plateau then known
        fitted, trained = trial.user_attrs["steps_to_fit"], trial.user_attrs["steps_trained"]
        assert fitted is None or fitted < trained < sweep.max_train_steps
        assert fitted is not None or trained == sweep.max_train_steps
    # the status's best is the rate the decision took, not the fewest steps of any rate
    chosen = next(t for t in trials if t.params["learning_rate"] == decision.fastest_learning_rate)
    shown = study_progress(campaign, campaign.studies[0])
    assert (shown.best_value, shown.best_number) == (chosen.value, chosen.number)
    assert f"fastest stable learning rate {decision.fastest_learning_rate:g}" in decision.reason
    assert f"after {int(chosen.value)} steps" in decision.reason
    report = write_report(campaign, tmp_path / "report")
    assert "steps-sweep-curves.png" in report.markdown
    assert (tmp_path / "report" / "steps-sweep-curves.png").stat().st_size > 0
