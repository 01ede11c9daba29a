"""Automatic mode on the sine example with its optional fit_threshold deleted (autotune run)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import autotune
from autotune.campaign import Stage
from tests.conftest import FAST_HEARTBEAT
from tests.conftest import REPO_ROOT
from tests.conftest import run_autotune

THRESHOLD_LINE = "    fit_threshold = 0.02\n"


@pytest.mark.e2e  # autotune run with two workers: about a minute
def test_automatic_mode_runs_on_the_sine_example_without_a_fit_threshold(
    storage_url: str, tmp_path: Path
) -> None:
    source = (REPO_ROOT / "examples" / "sine_task.py").read_text()
    assert source.count(THRESHOLD_LINE) == 1
    (tmp_path / "my_sine.py").write_text(source.replace(THRESHOLD_LINE, ""))
    spec = yaml.safe_load((REPO_ROOT / "studies" / "user_task_example.yaml").read_text())
    spec |= {
        "task": "my_sine:make_task",
        "max_train_steps": "auto",
        "steps_sweep": {"count": 3, "steps": 1000},
        "eval_interval": 20,
        "trials": 4,
        "pruner": {"min_steps": 20},
        "reevaluation": {"enabled": False},
    }
    path = tmp_path / "auto.yaml"
    path.write_text(yaml.safe_dump(spec))
    state = ("--state-dir", str(tmp_path / "state"))
    result = run_autotune(
        "run", str(path), "--storage", storage_url, *state, *FAST_HEARTBEAT, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    campaign = autotune.load(spec["name"], storage_url)
    decision = campaign.studies[0].facts.sweep
    assert decision is not None and decision.max_train_steps is not None, campaign.stopped
    assert "stopped improving" in decision.reason  # measured without a threshold
    (sweep,) = campaign.stage_studies(Stage.STEPS_SWEEP)
    assert all("sweep_lowest_loss" in t.user_attrs for t in campaign.trials_of(sweep))
    assert campaign.best() is not None
