"""A seeded campaign run twice by one worker samples the same trials and gets the same values."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotune.campaign import load_campaign
from autotune.storage import open_storage
from tests.conftest import FAST_HEARTBEAT
from tests.conftest import run_autotune
from tests.conftest import write_study

pytestmark = pytest.mark.e2e


def run_once(spec: Path, storage_url: str) -> list[tuple[str, int, str, dict, float | None]]:
    """Create the campaign, run it with one worker, read its trials back, delete it."""
    created = run_autotune("create", str(spec), "--storage", storage_url)
    assert created.returncode == 0, created.stderr
    worker = run_autotune("worker", "again", "--storage", storage_url, *FAST_HEARTBEAT)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    campaign = load_campaign("again", open_storage(storage_url))
    trials = [(t.study, t.number, t.state.name, t.params, t.value) for t in campaign.trials()]
    deleted = run_autotune("delete", "again", "--yes", "--storage", storage_url)
    assert deleted.returncode == 0, deleted.stderr
    return trials


def test_one_worker_reproduces_a_seeded_campaign(storage_url: str, tmp_path: Path) -> None:
    # TPE after 3 random trials, and a pruned round 1: sampling, pruning and training
    # all have to repeat for the trials to.
    spec = write_study(
        tmp_path,
        "again",
        trials=7,
        max_train_steps=60,
        sampler="{type: tpe, n_startup_trials: 3}",
    )
    first = run_once(spec, storage_url)
    assert len(first) == 7 and len({str(t[3]) for t in first}) == 7
    assert run_once(spec, storage_url) == first
