"""A campaign on a real PostgreSQL, run by real worker processes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import optuna
from optuna.trial import TrialState
import pytest

import autotune
from tests.conftest import FAST_HEARTBEAT
from tests.conftest import run_autotune
from tests.conftest import run_workers
from tests.conftest import space_without_early_stopping
from tests.conftest import write_study

pytestmark = pytest.mark.e2e

METRIC_ATTRS = (
    "best_val_loss",
    "best_val_accuracy",
    "final_val_loss",
    "final_val_accuracy",
    "best_step",
    "wall_time_s",
    "examples_per_s",
)


def test_four_workers_finish_the_budget(storage_url: str, tmp_path: Path) -> None:
    spec = write_study(tmp_path, "four", trials=14)
    created = run_autotune("create", str(spec), "--storage", storage_url)
    assert created.returncode == 0, created.stderr

    run_workers("four", storage_url, count=4)

    study = optuna.load_study(study_name="four/joint/1", storage=storage_url)
    trials = study.get_trials()
    states = [t.state for t in trials]
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 14
    assert states.count(TrialState.FAIL) == 0
    assert len({t.number for t in trials}) == len(trials)
    assert len({t.user_attrs["worker"] for t in trials}) >= 2
    for trial in trials:
        if trial.state == TrialState.COMPLETE:
            assert all(key in trial.user_attrs for key in METRIC_ATTRS), trial.user_attrs
            assert trial.value == trial.user_attrs["best_val_loss"]
            assert trial.value == min(trial.intermediate_values.values())

    campaign = autotune.load("four", storage=storage_url)
    records = campaign.trials()
    assert [(r.number, r.state, r.params, r.value) for r in records] == [
        (t.number, t.state, t.params, t.value) for t in trials
    ]
    assert [r.intermediate_values for r in records] == [t.intermediate_values for t in trials]
    best = campaign.best()
    assert best is not None and best.value == study.best_value
    assert best.trial_number == study.best_trial.number

    csv_path = campaign.to_csv(tmp_path / "trials.csv")
    with csv_path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(trials) and "params_learning_rate" in rows[0]

    best_json = run_autotune("best", "four", "--storage", storage_url)
    assert best_json.returncode == 0, best_json.stderr
    answer = json.loads(best_json.stdout)
    assert answer["finalist"] == f"four/joint/1 #{study.best_trial.number}"
    assert not answer["verified"] and "unverified" in answer["verdict"]  # no re-evaluation
    recipe = answer["recipe"]
    assert recipe["hyperparameters"]["learning_rate"] == study.best_params["learning_rate"]
    assert recipe["stop_at_step"] == study.best_trial.user_attrs["best_step"]
    exported = run_autotune("export", "four", "--format", "json", "--storage", storage_url)
    assert exported.returncode == 0 and json.loads(exported.stdout) == recipe

    status = run_autotune("status", "four", "--storage", storage_url)
    assert status.returncode == 0, status.stderr
    assert "four/joint/1" in status.stdout and "14/14" in status.stdout


def test_worker_max_trials_and_recreate_is_idempotent(storage_url: str, tmp_path: Path) -> None:
    spec = write_study(tmp_path, "capped", trials=10)
    assert run_autotune("create", str(spec), "--storage", storage_url).returncode == 0
    again = run_autotune("create", str(spec), "--storage", storage_url)
    assert again.returncode == 0 and "exists" in again.stdout

    result = run_autotune(
        "worker", "capped", "--max-trials", "2", env={"AUTOTUNE_STORAGE": storage_url}
    )
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="capped/joint/1", storage=storage_url)
    assert len(study.trials) == 2

    changed = write_study(tmp_path, "capped", trials=10, max_train_steps=180)
    clash = run_autotune("create", str(changed), "--storage", storage_url)
    assert clash.returncode == 2 and "different spec" in clash.stderr
    assert len(optuna.load_study(study_name="capped/joint/1", storage=storage_url).trials) == 2

    more = write_study(tmp_path, "capped", trials=11)  # only a size grows: it extends
    extended = run_autotune("create", str(more), "--storage", storage_url)
    assert extended.returncode == 0 and "(trials: 10 -> 11)" in extended.stdout


def test_unknown_campaign_lists_existing(storage_url: str, tmp_path: Path) -> None:
    spec = write_study(tmp_path, "known", trials=1)
    assert run_autotune("create", str(spec), "--storage", storage_url).returncode == 0
    result = run_autotune("best", "unknown", "--storage", storage_url)
    assert result.returncode == 2
    assert "no campaign 'unknown'" in result.stderr and "known" in result.stderr


def test_run_on_the_embedded_server_prints_progress_and_summary(tmp_path: Path) -> None:
    spec = write_study(tmp_path, "local", trials=6)
    state_dir = tmp_path / "state"
    result = run_autotune(
        "run",
        str(spec),
        "--workers",
        "2",
        "--state-dir",
        str(state_dir),
        *FAST_HEARTBEAT,
        env={"AUTOTUNE_STORAGE": ""},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "created campaign 'local'" in result.stdout
    assert "round 1 · " in result.stdout and " trials · " in result.stdout  # live line
    assert "campaign local:" in result.stdout and "best val_loss" in result.stdout
    assert "answer: local/joint/1 #" in result.stdout and "hyperparameters: " in result.stdout
    assert f"autotune dashboard --state-dir {state_dir}" in result.stdout
    # the hints say where the campaign is: without it, "train it" found no campaign
    assert f"train local --state-dir {state_dir}; export it:" in result.stdout
    assert (state_dir / "pgdata" / "PG_VERSION").is_file()
    logs = sorted((state_dir / "logs").glob("local-worker-*.log"))
    assert len(logs) == 2

    campaign = autotune.load("local", state_dir=state_dir)
    progress = campaign.progress()
    assert progress.complete + progress.pruned == 6 and progress.running == 0


def test_four_workers_run_a_two_round_campaign(storage_url: str, tmp_path: Path) -> None:
    # Without early stopping: every trial must run its whole budget, which is what is checked.
    space = space_without_early_stopping(tmp_path)
    spec = write_study(tmp_path, "tworounds", trials=10, space=space)
    spec.write_text(spec.read_text() + "rounds:\n  - {budget_fraction: 0.5}\n  - {top_k: 3}\n")
    assert run_autotune("create", str(spec), "--storage", storage_url).returncode == 0
    run_workers("tworounds", storage_url, count=4)

    names = sorted(s for s in optuna.get_all_study_names(storage_url) if s.startswith("two"))
    assert names == ["tworounds/joint/1", "tworounds/joint/2"]
    first = {
        t.number: t for t in optuna.load_study(study_name=names[0], storage=storage_url).trials
    }
    second = optuna.load_study(study_name=names[1], storage=storage_url).trials
    ranked = sorted(
        (t for t in first.values() if t.state == TrialState.COMPLETE),
        key=lambda t: (t.value, t.number),
    )
    assert sorted(t.user_attrs["parent_trial"] for t in second) == sorted(
        t.number for t in ranked[:3]
    )
    for trial in second:
        parent = first[trial.user_attrs["parent_trial"]]
        assert trial.state == TrialState.COMPLETE
        assert trial.params == parent.params
        assert trial.user_attrs["parent_study"] == names[0]
        assert trial.user_attrs["parent_budget"] == parent.user_attrs["steps_done"] == 60
        assert trial.user_attrs["steps_done"] == 120
        assert trial.user_attrs["seed"] == parent.user_attrs["seed"]
        assert max(trial.intermediate_values) == 120

    campaign = autotune.load("tworounds", storage=storage_url)
    assert campaign.best().study == names[1]
