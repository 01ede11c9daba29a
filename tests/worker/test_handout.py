"""Every trial a worker is handed records how long that took, and `status` shows it while
workers run: a real Worker training digits-mlp on a real PostgreSQL, in this process."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import time

from optuna.trial import TrialState
import pytest

from autotune.campaign import create_campaign
from autotune.campaign import load_campaign
from autotune.campaign._trial_attrs import ATTR_HANDOUT_MS
from autotune.campaign._trial_attrs import ATTR_LOCK_WAIT_MS
from autotune.report._summary import status_lines
from autotune.spec import load_study_spec
from autotune.storage import open_storage
from autotune.storage import round_trip_ms
from autotune.worker._defaults import task_defaults
from autotune.worker._worker import Worker
from autotune.worker._worker import WorkerOptions
from tests.conftest import write_study


@pytest.mark.e2e  # trains digits-mlp for a few seconds
def test_trials_record_their_hand_out_and_status_shows_it_while_one_runs(
    storage_url: str, tmp_path: Path
) -> None:
    spec = load_study_spec(write_study(tmp_path, "handout", trials=4, max_train_steps=40))
    storage = open_storage(storage_url)
    create_campaign(spec, storage, task_defaults(spec))
    options = WorkerOptions(worker_id="w", max_trials=2)
    Worker(load_campaign("handout", storage), storage, options).run()

    campaign = load_campaign("handout", storage)
    ran = campaign.trials_of(campaign.current)
    assert len(ran) == 2
    for trial in ran:
        handout, wait = trial.user_attrs[ATTR_HANDOUT_MS], trial.user_attrs[ATTR_LOCK_WAIT_MS]
        assert 0 <= wait <= handout, trial.user_attrs
    finished_status = "\n".join(status_lines(campaign, round_trip_ms=round_trip_ms(storage)))
    assert "hand-out" not in finished_status  # no worker is running: nothing to show

    running = campaign.optuna_study(campaign.current).ask()  # a worker mid-trial
    assert running.number == 2
    campaign = load_campaign("handout", storage)
    assert campaign.trials_of(campaign.current)[-1].state is TrialState.RUNNING
    status = "\n".join(status_lines(campaign, round_trip_ms=round_trip_ms(storage)))
    assert "workers: a trial's hand-out takes" in status
    assert "last 2 trials of handout/joint/1" in status and "storage round trip" in status


def _sleeping_objective(_spec, _stop, _setting, _checkpoints):  # noqa: ANN001, ANN202
    """A worker objective that trains nothing: each trial takes 20 ms, value 1."""

    def objective(_trial) -> float:  # noqa: ANN001
        time.sleep(0.02)
        return 1.0

    return objective


@pytest.mark.e2e  # six workers racing for ten trials, in threads
def test_workers_racing_without_the_lock_make_the_budget_and_no_more(
    storage_url: str, tmp_path: Path
) -> None:
    spec = load_study_spec(write_study(tmp_path, "race", trials=10, max_train_steps=40))
    create_campaign(spec, open_storage(storage_url), task_defaults(spec))

    def work(index: int) -> int:
        storage = open_storage(storage_url)
        options = WorkerOptions(worker_id=f"w{index}", max_trials=10)
        worker = Worker(
            load_campaign("race", storage), storage, options, objective_factory=_sleeping_objective
        )
        try:
            return worker.run().trials_run
        finally:
            storage.engine.dispose()

    with ThreadPoolExecutor(6) as pool:
        ran = sum(pool.map(work, range(6)))
    campaign = load_campaign("race", open_storage(storage_url))
    trials = campaign.trials_of(campaign.studies[0])
    assert ran == len(trials) == 10
    assert sorted(t.number for t in trials) == list(range(10))
    waits = [t.user_attrs[ATTR_LOCK_WAIT_MS] for t in trials]
    assert waits.count(0.0) >= 1, waits  # made without the lock
