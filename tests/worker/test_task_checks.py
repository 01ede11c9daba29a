"""A step larger than the task's training data is refused at create and at worker start
(batch_size 1e9 or 100000 accumulated micro-batches once hung the worker, its trial RUNNING)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from autotune.campaign import create_campaign
from autotune.spec import load_study_spec
from autotune.storage import HeartbeatSettings
from autotune.storage import open_storage
from autotune.worker._defaults import task_defaults
from autotune.worker._task_checks import task_facts
from autotune.worker._task_checks import training_rows
from tests.conftest import FAST_HEARTBEAT
from tests.conftest import run_autotune
from tests.conftest import write_study

ROWS = training_rows("digits-mlp")
TOO_BIG = [
    ("batch_size: 1000000000\n", f"batch_size: 1000000000 is more than the {ROWS} training"),
    (
        "gradient_accumulation_steps: 100000\n",
        f"gradient_accumulation_steps: 100000 micro-batches of batch_size 32 take 3200000 rows "
        f"per step, more than the {ROWS} training rows of task 'digits-mlp'; allowed: 1 to "
        f"{ROWS // 32} with batch_size 32",
    ),
]


def spec_with(directory: Path, line: str) -> Path:
    path = write_study(directory, "huge", trials=2)
    text = path.read_text(encoding="utf-8")
    if line.startswith("batch_size"):
        text = text.replace("batch_size: 32\n", line)
    else:
        text += line
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.e2e  # `autotune create` in a subprocess
@pytest.mark.parametrize(("line", "message"), TOO_BIG)
def test_create_refuses_a_step_larger_than_the_training_rows(
    storage_url: str, tmp_path: Path, line: str, message: str
) -> None:
    created = run_autotune("create", str(spec_with(tmp_path, line)), "--storage", storage_url)
    assert created.returncode == 2, created.stderr
    assert message in created.stderr
    assert "Traceback" not in created.stderr
    assert optuna.get_all_study_names(storage_url) == []


def test_the_whole_training_set_in_one_step_is_allowed(tmp_path: Path) -> None:
    from autotune.worker._task_checks import load_checked_study_spec

    spec = load_checked_study_spec(spec_with(tmp_path, f"batch_size: {ROWS}\n"))
    assert spec.batch_size == ROWS


@pytest.mark.e2e  # `autotune worker` in a subprocess
@pytest.mark.parametrize(("line", "message"), TOO_BIG)
def test_a_worker_refuses_a_stored_campaign_whose_step_exceeds_the_data(
    storage_url: str, tmp_path: Path, line: str, message: str
) -> None:
    """A campaign stored before the check (or by the library): the worker exits 2 at once
    and leaves no trial RUNNING."""
    spec = load_study_spec(spec_with(tmp_path, line), task_facts)  # without the data check
    storage = open_storage(storage_url, HeartbeatSettings(1, 3))
    create_campaign(spec, storage, task_defaults(spec))
    worker = run_autotune("worker", "huge", "--storage", storage_url, *FAST_HEARTBEAT, timeout=60)
    assert worker.returncode == 2, worker.stderr
    assert message in worker.stderr and "Traceback" not in worker.stderr
    trials = optuna.load_study(study_name="huge/joint/1", storage=storage_url).get_trials()
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
