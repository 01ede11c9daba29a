"""Database outages as the README describes them, on a PostgreSQL of the test's own: a
worker started while the database is down waits up to --outage-limit like a running one;
one that gives up exits 1 naming the trial it leaves, which the next worker retries from
its checkpoint."""

from __future__ import annotations

from pathlib import Path
import subprocess
import time

from optuna.trial import TrialState
import pytest

from autotune.campaign._trial_attrs import ATTR_RECOVERY
from autotune.worker._objectives import ATTR_RESUMED_FROM
from tests.conftest import REPO_ROOT
from tests.conftest import autotune_command
from tests.conftest import run_autotune
from tests.conftest import write_study
from tests.test_chaos import HEARTBEAT
from tests.test_chaos import RestartableServer
from tests.test_chaos import all_trials
from tests.test_chaos import restartable_server  # noqa: F401 (the fixture)
from tests.test_chaos import retry_of
from tests.test_chaos import wait_until

pytestmark = pytest.mark.e2e


def worker_with_limit(name: str, url: str, limit_s: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        autotune_command(
            "worker", name, "--storage", url, *HEARTBEAT, "--outage-limit", str(limit_s)
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO_ROOT,
    )


def small_campaign(directory: Path, name: str, url: str, steps: int = 60) -> None:
    spec = write_study(
        directory,
        name,
        trials=2,
        max_train_steps=steps,
        sampler="{type: random}",
        pruner_min_steps=steps,
        extra="checkpoint_interval: 40\n",
    )
    created = run_autotune("create", str(spec), "--storage", url)
    assert created.returncode == 0, created.stderr


def test_a_worker_started_while_the_database_is_down_waits_for_it(
    restartable_server: RestartableServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = restartable_server.url
    small_campaign(tmp_path, "late", url)
    restartable_server.stop()
    worker = worker_with_limit("late", url, 120)
    assert worker.stdout is not None
    line = worker.stdout.readline()  # its first word: it waits (it exited 2 at once)
    assert "database unreachable (" in line, line + worker.communicate()[0]
    assert "), retrying in" in line, line  # with the cause: a refused connection
    restartable_server.start()
    output = line + worker.communicate(timeout=180)[0]
    assert worker.returncode == 0, output
    trials = all_trials("late", url)["late/joint/1"]
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2


def test_a_worker_past_the_outage_limit_exits_1_and_its_trial_is_retried(
    restartable_server: RestartableServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = restartable_server.url
    small_campaign(tmp_path, "gone", url, steps=2000)
    worker = worker_with_limit("gone", url, 3)

    def checkpointed() -> bool:
        trials = all_trials("gone", url).get("gone/joint/1", [])
        return any(t.state == TrialState.RUNNING and ATTR_RECOVERY in t.user_attrs for t in trials)

    wait_until(checkpointed, 90, "a running trial with a recovery checkpoint")
    restartable_server.stop()
    output = worker.communicate(timeout=90)[0]
    assert worker.returncode == 1, output
    assert "gives up" in output and "stays RUNNING until the database is back" in output
    assert "Traceback" not in output
    restartable_server.start()
    (left,) = [t for t in all_trials("gone", url)["gone/joint/1"] if t.state == TrialState.RUNNING]
    time.sleep(int(HEARTBEAT[-1]) + 1)  # its heartbeat is past the grace period
    after = worker_with_limit("gone", url, 60)
    output = after.communicate(timeout=300)[0]
    assert after.returncode == 0, output
    study = all_trials("gone", url)["gone/joint/1"]
    assert not [t for t in study if not t.state.is_finished()]
    (failed,) = [t for t in study if t.number == left.number]
    assert failed.state == TrialState.FAIL
    (retry,) = retry_of(failed, study)
    assert retry.state == TrialState.COMPLETE and retry.user_attrs[ATTR_RESUMED_FROM] > 0
