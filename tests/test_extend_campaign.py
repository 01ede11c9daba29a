"""A finished campaign takes more trials when its spec grows only ``trials``."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotune.campaign import load_campaign
from autotune.storage import open_storage
from tests.conftest import FAST_HEARTBEAT
from tests.conftest import run_autotune
from tests.conftest import write_study

pytestmark = pytest.mark.e2e


def test_more_trials_extend_a_finished_campaign(storage_url: str, tmp_path: Path) -> None:
    spec = write_study(tmp_path, "more", trials=4, max_train_steps=40, sampler="{type: random}")
    assert run_autotune("create", str(spec), "--storage", storage_url).returncode == 0
    first = run_autotune("worker", "more", "--storage", storage_url, *FAST_HEARTBEAT)
    assert first.returncode == 0, first.stdout + first.stderr
    campaign = load_campaign("more", open_storage(storage_url))
    assert campaign.recommendation() is not None and len(campaign.trials()) == 4

    spec.write_text(spec.read_text().replace("trials: 4\n", "trials: 6\n"))
    extended = run_autotune("create", str(spec), "--storage", storage_url)
    assert extended.returncode == 0, extended.stderr
    assert (
        "extended campaign 'more' (trials: 4 -> 6): more/joint/1 runs on to its new size"
        in extended.stdout
    )
    second = run_autotune("worker", "more", "--storage", storage_url, *FAST_HEARTBEAT)
    assert second.returncode == 0, second.stdout + second.stderr
    campaign = load_campaign("more", open_storage(storage_url))
    assert campaign.spec.trials == 6 and len(campaign.trials()) == 6
    assert [s.name for s in campaign.studies] == ["more/joint/1"]
    assert campaign.recommendation() is not None  # decided again over the 6 trials

    again = run_autotune("create", str(spec), "--storage", storage_url)
    assert "exists (same spec): campaign 'more'" in again.stdout
    assert (
        "the campaign has finished: " in again.stdout and " status more --storage" in again.stdout
    )
    assert "start workers with" not in again.stdout  # they would find nothing to do
