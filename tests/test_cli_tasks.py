"""Every shipped study runs through `autotune run` on the embedded PostgreSQL; task commands."""

from __future__ import annotations

from pathlib import Path

from optuna.trial import TrialState
import pytest
import yaml

import autotune
from autotune.campaign import TUNING_PERIOD
from autotune.campaign import Stage
from autotune.campaign._trial_attrs import ATTR_PERIOD_INDEX
from tests.conftest import FAST_HEARTBEAT
from tests.conftest import REPO_ROOT
from tests.conftest import run_autotune

pytestmark = pytest.mark.e2e  # every test here runs the `autotune` command in a subprocess

SHIPPED_STUDIES = [
    "quickstart.yaml",
    "digits_cnn.yaml",
    "co2_lstm.yaml",
    "cancer.yaml",
    "user_task_example.yaml",
]


def shrink_study(path: Path, directory: Path) -> Path:
    """A copy of a shipped study with a tiny budget (search-space names made absolute)."""
    spec = yaml.safe_load(path.read_text())
    if isinstance(spec["search_space"], str):
        spec["search_space"] = str(REPO_ROOT / "search_spaces" / f"{spec['search_space']}.yaml")
    spec |= {"trials": 4, "eval_interval": 30}
    if spec["max_train_steps"] == "auto":  # a sweep of 3 rates, each fitting within 300 steps
        spec["steps_sweep"] |= {"count": 3, "steps": 300}
    else:
        spec["max_train_steps"] = 90
    spec["pruner"] = {**spec.get("pruner", {}), "min_steps": 30}
    small = directory / path.name
    small.write_text(yaml.safe_dump(spec))
    return small


@pytest.mark.parametrize("study", SHIPPED_STUDIES)
def test_shipped_study_runs_on_the_embedded_server(study: str, tmp_path: Path) -> None:
    spec = shrink_study(REPO_ROOT / "studies" / study, tmp_path)
    state_dir = tmp_path / "state"
    result = run_autotune(
        "run",
        str(spec),
        "--state-dir",
        str(state_dir),
        *FAST_HEARTBEAT,
        env={"AUTOTUNE_STORAGE": ""},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    name = yaml.safe_load(spec.read_text())["name"]
    campaign = autotune.load(name, state_dir=state_dir)
    sweeps = campaign.stage_studies(Stage.STEPS_SWEEP)
    assert bool(sweeps) == (campaign.spec.max_train_steps == "auto")
    baseline = campaign.studies[len(sweeps)]
    joint = campaign.stage_studies(Stage.JOINT)
    rounds = [s for s in joint if not s.plan.widening]
    assert baseline.stage is Stage.BASELINE
    assert baseline.facts.baseline.passed, baseline.facts.baseline
    assert "steps: the baseline beats the trivial predictor" in result.stdout
    first = campaign.progress(rounds[0])
    assert first.complete >= 1 and first.complete + first.pruned == 4
    assert len(rounds) == len(campaign.spec.rounds)
    if len(rounds) > 1:
        last = campaign.progress(rounds[-1])
        assert last.complete == last.budget  # promoted trials run to the end, unpruned
    complete = campaign.progress(joint[-1]).complete
    if complete >= 2:
        (reevaluation,) = campaign.stage_studies(Stage.REEVALUATION)
        finalists = reevaluation.facts.design.finalists
        runs = campaign.trials_of(reevaluation)
        defaults = campaign.spec.reevaluation_candidates - campaign.spec.reevaluation.finalists
        # the defaults also run on the tuning period, where the finalists' own runs count
        on_tuning = [t for t in runs if t.user_attrs[ATTR_PERIOD_INDEX] == TUNING_PERIOD]
        counted = defaults and all(f.tuning_run for f in finalists[:-1])
        assert [t.state for t in on_tuning] == [TrialState.COMPLETE] * counted
        assert len(runs) - counted == (min(complete, 3) + defaults) * 12 == len(finalists) * 12
        assert campaign.significance() is not None
    else:  # pruning left a single complete trial: nothing to compare it with
        assert "re-evaluation skipped: 1 complete trial(s)" in result.stdout
    assert (state_dir / "reports" / name / "report.html").is_file()
    best = campaign.best()
    assert best is not None and best.user_attrs["evaluated_model"] == "raw"
    steps = campaign.max_train_steps
    assert 0 < best.user_attrs["best_step"] <= best.user_attrs["steps_done"] <= steps <= 300


def test_tasks_lists_builtins_with_metrics_and_span() -> None:
    result = run_autotune("tasks")
    assert result.returncode == 0, result.stderr
    for name in ("digits-mlp", "digits-cnn", "co2-lstm", "cancer-mlp"):
        assert f"{name}:" in result.stdout
    assert "val_accuracy (maximize)" in result.stdout
    assert "date span: 1958-03-29 .. 2001-12-29" in result.stdout
    assert "package.module:factory" in result.stdout


def test_tasks_describes_a_user_task() -> None:
    result = run_autotune("tasks", "examples.sine_task:make_task")
    assert result.returncode == 0, result.stderr
    assert "val_loss (minimize)" in result.stdout


def test_unknown_task_is_a_clear_error() -> None:
    result = run_autotune("tasks", "nosuch.module:factory")
    assert result.returncode == 2
    assert "nosuch" in result.stderr and "Traceback" not in result.stderr


def test_probe_batch_prints_the_table_and_the_choice() -> None:
    result = run_autotune("probe-batch", "digits-mlp", "--max-batch-size", "32", "--steps", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["batch", "size"]
    assert [line.split()[0] for line in lines[2:5]] == ["8", "16", "32"]
    assert lines[-1].startswith("choice: batch size ")


def test_probe_batch_bad_hyperparameter_exits_2() -> None:
    result = run_autotune("probe-batch", "digits-mlp", "--hparams", "hidden_units=-3")
    assert result.returncode == 2
    assert "hidden_units=-3" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("import sys\nsys.exit(0)\n", "(SystemExit: sys.exit(0) was called)"),
        ("raise SystemExit('no config')\n", "(SystemExit: sys.exit('no config') was called)"),
        ("def make_task():\n    raise SystemExit(3)\n", "raised SystemExit: sys.exit(3) was"),
    ],
    ids=["exit-0-at-import", "exit-message-at-import", "exit-in-factory"],
)
@pytest.mark.parametrize("command", ["tasks", "create"])
def test_a_user_module_that_exits_is_an_import_failure(
    tmp_path: Path, body: str, said: str, command: str
) -> None:
    """sys.exit at import (or in the factory) made create and tasks exit 0 with no output
    (issue 17 item 9): it is reported like any other failure, exit 2."""
    (tmp_path / "exiting_task.py").write_text(body, encoding="utf-8")
    task = "exiting_task:make_task"
    spec = tmp_path / "study.yaml"
    spec.write_text(
        f"name: exiting\ntask: {task}\nsearch_space: {REPO_ROOT / 'search_spaces' / 'mlp.yaml'}\n"
        "metric: {name: val_loss, direction: minimize}\nmax_train_steps: 100\n"
        "eval_interval: 10\nbatch_size: 8\ntrials: 2\n",
        encoding="utf-8",
    )
    argv = ["tasks", task] if command == "tasks" else ["create", str(spec)]
    unreachable = {"AUTOTUNE_STORAGE": "postgresql://u@127.0.0.1:1/x"}
    result = run_autotune(*argv, cwd=tmp_path, env=unreachable)
    assert result.returncode == 2, result.stdout + result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr
    assert "exiting_task" in result.stderr
