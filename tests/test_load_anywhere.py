"""A stored campaign is read anywhere: no task code, no torch, any working directory.

The campaign is created and run where its user task lives (a module in a temporary
directory); then, from another directory where neither that module nor torch can be
imported, Python (``autotune.load``) and the CLI read it, report it and delete it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

from tests.conftest import FAST_HEARTBEAT
from tests.conftest import REPO_ROOT
from tests.conftest import run_autotune

pytestmark = pytest.mark.e2e

NAME = "anywhere"
SPEC = """\
name: anywhere
task: anywhere_task:make_task
search_space:
  name: sine
  groups:
    - name: learning_rate
      params:
        learning_rate: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}
    - name: model
      params:
        hidden_units: {type: int, low: 8, high: 32}
metric: {name: val_loss, direction: minimize}
max_train_steps: 40
eval_interval: 20
batch_size: 32
trials: 2
pruner: {type: none}
baseline: false
reevaluation: {enabled: false}
boundary: {widen: false}
"""
# Imports fail for torch and for the task's module, as on a machine without them (a None in
# sys.modules would not do: libraries such as scipy look torch up there).
BLOCKER = """\
import sys

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {"torch", "anywhere_task"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Absent())
"""
READ = """\
import json, sys
import autotune
campaign = autotune.load(sys.argv[1], storage=sys.argv[2])
trials = campaign.trials()
best = campaign.best()
print(json.dumps({"trials": len(trials), "best": None if best is None else best.value}))
"""


@pytest.fixture
def task_directory(tmp_path: Path) -> Path:
    """A directory holding the user task (the example sine task) and the spec."""
    directory = tmp_path / "project"
    directory.mkdir()
    shutil.copy(REPO_ROOT / "examples" / "sine_task.py", directory / "anywhere_task.py")
    (directory / "anywhere.yaml").write_text(SPEC, encoding="utf-8")
    return directory


def elsewhere(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """Another working directory, and an environment where torch and the task are gone."""
    directory = tmp_path / "elsewhere"
    blocker = tmp_path / "blocker"
    directory.mkdir()
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    return directory, {"PYTHONPATH": os.pathsep.join([str(blocker), str(REPO_ROOT)])}


def test_a_campaign_is_read_without_its_task_or_torch(
    storage_url: str, tmp_path: Path, task_directory: Path
) -> None:
    here = {"PYTHONPATH": str(REPO_ROOT)}  # this checkout's autotune, from any directory
    created = run_autotune(
        "create", "anywhere.yaml", "--storage", storage_url, env=here, cwd=task_directory
    )
    assert created.returncode == 0, created.stderr
    worker = run_autotune(
        "worker", NAME, "--storage", storage_url, *FAST_HEARTBEAT, env=here, cwd=task_directory
    )
    assert worker.returncode == 0, worker.stdout + worker.stderr
    directory, env = elsewhere(tmp_path)

    read = subprocess.run(
        [sys.executable, "-c", READ, NAME, storage_url],
        capture_output=True,
        text=True,
        cwd=directory,
        env={**os.environ, **env},
        timeout=300,
        check=False,
    )
    assert read.returncode == 0, read.stderr
    found = json.loads(read.stdout.splitlines()[-1])
    assert found["trials"] >= 2 and found["best"] is not None, found

    for command in (
        ("status", NAME),
        ("best", NAME),
        ("report", NAME, "--out", str(tmp_path / "report"), "--no-dashboard"),
        ("delete", NAME, "--yes"),
    ):
        result = run_autotune(*command, "--storage", storage_url, env=env, cwd=directory)
        assert result.returncode == 0, f"autotune {' '.join(command)}:\n{result.stderr}"
    assert (tmp_path / "report").is_dir()


def test_the_torch_blocker_blocks(tmp_path: Path) -> None:
    """The check above means something: torch really is unimportable there."""
    directory, env = elsewhere(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", "import torch"],
        capture_output=True,
        text=True,
        cwd=directory,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )
    assert result.returncode != 0 and "torch" in result.stderr


def test_load_from_a_directory_without_a_server_names_it_and_creates_nothing(
    tmp_path: Path,
) -> None:
    """A wrong state_dir made a 47 MB empty server and said only "existing campaigns: none"."""
    import autotune

    wrong = tmp_path / "nostate"
    with pytest.raises(
        autotune.CampaignNotFoundError, match=rf"no embedded PostgreSQL in {wrong}"
    ):
        autotune.load("tiny", state_dir=wrong)
    assert not wrong.exists()
