"""Workers survive training errors, NaN losses, SIGTERM and the death of other workers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
import signal
import subprocess
import time
from typing import Any

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from autotune.campaign import load_campaign
from autotune.campaign._trial_attrs import ATTR_RECOVERY
from autotune.storage import CheckpointRef
from autotune.storage import CheckpointStore
from autotune.storage import open_artifact_store
from autotune.storage import open_storage
from autotune.worker._objectives import ATTR_RESUME_ERROR
from autotune.worker._objectives import ATTR_RESUMED_FROM
from autotune.worker._objectives import make_objective
from autotune.worker._outcome import TrialOutcome
from autotune.worker._worker import Worker
from autotune.worker._worker import WorkerOptions
from tests.conftest import FAST_HEARTBEAT
from tests.conftest import REPO_ROOT
from tests.conftest import autotune_command
from tests.conftest import run_autotune
from tests.conftest import write_study

pytestmark = pytest.mark.e2e

RECOVERY_INTERVAL = 100
STABLE_LEARNING_RATE = "{type: float, low: 1.0e-3, high: 2.0e-3, log: true}"  # never diverges


def write_space(directory: Path, name: str, learning_rate: str, extra_params: str = "") -> Path:
    path = directory / f"space-{name}.yaml"
    path.write_text(
        f"name: {name}\n"
        "groups:\n"
        "  - name: learning_rate\n"
        "    params:\n"
        f"      learning_rate: {learning_rate}\n" + extra_params,
        encoding="utf-8",
    )
    return str(path)


def start_worker(name: str, storage_url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        autotune_command("worker", name, "--storage", storage_url, *FAST_HEARTBEAT, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO_ROOT,
    )


def trials_of(name: str, storage_url: str) -> list[FrozenTrial]:
    return optuna.load_study(study_name=f"{name}/joint/1", storage=storage_url).get_trials()


def wait_for_running_trial(name: str, storage_url: str, timeout_s: float = 120) -> FrozenTrial:
    """Block until some trial is RUNNING, has reported an evaluation and shows its seed.

    Both arrive in one transaction, but Optuna's RDBStorage reads a trial's parts in
    separate statements, so one read can see the reports and not yet the seed.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for trial in trials_of(name, storage_url):
            started = trial.intermediate_values and "seed" in trial.user_attrs
            if trial.state == TrialState.RUNNING and started:
                return trial
        time.sleep(0.2)
    raise AssertionError(f"no trial of {name} started reporting within {timeout_s} s")


def create(spec: Path, storage_url: str) -> None:
    result = run_autotune("create", str(spec), "--storage", storage_url)
    assert result.returncode == 0, result.stderr


def test_training_exception_fails_the_trial_and_the_worker_goes_on(
    storage_url: str, tmp_path: Path
) -> None:
    space = write_space(
        tmp_path,
        "broken",
        "{type: float, low: 1.0e-3, high: 1.0e-2, log: true}",
        "  - name: model\n    params:\n"
        "      activation: {type: categorical, choices: [relu, swish]}\n",
    )
    spec = write_study(tmp_path, "broken", trials=12, space=space, sampler="{type: random}")
    # A user task's model hyperparameters are its own business: this task's model builds
    # with "swish" (create checks that) and raises when a trial trains it.
    spec.write_text(
        spec.read_text().replace(
            "task: digits-mlp", "task: tests.tasks.broken:swish_fails_in_training"
        )
    )
    create(spec, storage_url)

    result = run_autotune("worker", "broken", "--storage", storage_url, *FAST_HEARTBEAT)
    assert result.returncode == 0, result.stdout + result.stderr

    trials = trials_of("broken", storage_url)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(trials) == 12 and failed and finished, [t.params for t in trials]
    for trial in failed:
        assert trial.params["activation"] == "swish"
        assert "activation" in trial.user_attrs["error"] and "swish" in trial.user_attrs["error"]
    assert all(t.params["activation"] == "relu" for t in finished)


def test_nan_loss_prunes_the_trial_with_its_reason(storage_url: str, tmp_path: Path) -> None:
    space = write_space(
        tmp_path,
        "explode",
        "{type: float, low: 1.0e+4, high: 1.0e+6, log: true}",
    )
    spec = write_study(
        tmp_path, "explode", trials=3, space=space, fixed="{optimizer: sgd_nesterov}"
    )
    create(spec, storage_url)

    result = run_autotune("worker", "explode", "--storage", storage_url, *FAST_HEARTBEAT)
    # Every trial diverged: the campaign stops, saying why, and the worker says so too.
    assert result.returncode == 3, result.stdout + result.stderr
    assert "campaign stopped: no trial of explode/joint/1 completed: " in result.stderr
    assert "became nan" in result.stderr and "Traceback" not in result.stderr
    trials = trials_of("explode", storage_url)
    assert [t.state for t in trials] == [TrialState.PRUNED] * 3
    for trial in trials:
        reason = trial.user_attrs["pruned_reason"]
        assert "nan" in reason or "inf" in reason, reason


@pytest.fixture
def long_trial_spec(tmp_path: Path) -> Path:
    """One trial long enough to be interrupted (thousands of steps, frequent evals)."""
    space = write_space(tmp_path, "slow", STABLE_LEARNING_RATE)
    return write_study(
        tmp_path,
        "slow",
        trials=1,
        max_train_steps=4000,
        eval_interval=20,
        space=space,
        extra=f"checkpoint_interval: {RECOVERY_INTERVAL}\n",
    )


def assert_retried_and_completed(trials: list[FrozenTrial], original: FrozenTrial) -> FrozenTrial:
    """The original trial FAIL, its one retry COMPLETE with the same configuration: the retry."""
    by_number = {t.number: t for t in trials}
    assert by_number[original.number].state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == original.number]
    assert len(retries) == 1
    assert retries[0].state == TrialState.COMPLETE
    assert retries[0].params == original.params
    assert retries[0].user_attrs["seed"] == original.user_attrs["seed"]
    assert all(t.state != TrialState.RUNNING for t in trials)
    return retries[0]


def assert_resumed_from_last_checkpoint(failed: FrozenTrial, retry: FrozenTrial) -> int:
    """The retry resumed at the failed run's last recovery checkpoint; the steps re-done."""
    checkpoint = failed.user_attrs[ATTR_RECOVERY]
    assert checkpoint["trial"] == failed.number
    assert retry.user_attrs[ATTR_RESUMED_FROM] == checkpoint["step"] > 0
    assert retry.user_attrs["steps_done"] == 4000
    for step, value in failed.intermediate_values.items():  # the curve is whole
        if step <= checkpoint["step"]:
            assert retry.intermediate_values[step] == value
    redone = max(failed.intermediate_values) - checkpoint["step"]
    assert 0 <= redone <= RECOVERY_INTERVAL
    return redone


def wait_for_recovery_checkpoint(name: str, storage_url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not any(ATTR_RECOVERY in t.user_attrs for t in trials_of(name, storage_url)):
        assert time.monotonic() < deadline, f"no recovery checkpoint of {name} in {timeout_s} s"
        time.sleep(0.1)


def test_sigterm_stops_within_an_eval_and_the_trial_is_retried(
    storage_url: str, long_trial_spec: Path
) -> None:
    create(long_trial_spec, storage_url)
    first = start_worker("slow", storage_url)
    running = wait_for_running_trial("slow", storage_url)
    first.send_signal(signal.SIGTERM)
    output = first.communicate(timeout=30)[0]
    assert first.returncode == 0, output

    interrupted = {t.number: t for t in trials_of("slow", storage_url)}[running.number]
    assert interrupted.state == TrialState.FAIL
    assert "stop requested" in interrupted.user_attrs["interrupted"]
    assert max(interrupted.intermediate_values) < 4000

    second = run_autotune("worker", "slow", "--storage", storage_url, *FAST_HEARTBEAT)
    assert second.returncode == 0, second.stdout + second.stderr
    retry = assert_retried_and_completed(trials_of("slow", storage_url), running)
    # It checkpointed at the eval where it stopped: the retry re-does nothing.
    assert assert_resumed_from_last_checkpoint(interrupted, retry) == 0


def test_sigkilled_worker_trial_is_failed_as_stale_and_retried(
    storage_url: str, long_trial_spec: Path, artifact_directory: Path
) -> None:
    create(long_trial_spec, storage_url)
    doomed = start_worker("slow", storage_url)
    running = wait_for_running_trial("slow", storage_url)
    wait_for_recovery_checkpoint("slow", storage_url)
    doomed.kill()
    doomed.wait(timeout=10)
    assert trials_of("slow", storage_url)[0].state == TrialState.RUNNING

    survivor = run_autotune("worker", "slow", "--storage", storage_url, *FAST_HEARTBEAT)
    assert survivor.returncode == 0, survivor.stdout + survivor.stderr
    trials = trials_of("slow", storage_url)
    retry = assert_retried_and_completed(trials, running)
    assert "interrupted" not in trials[0].user_attrs
    assert_resumed_from_last_checkpoint(trials[0], retry)
    for trial in (trials[0], retry):  # superseded, then removed once the retry was told
        assert not (artifact_directory / trial.user_attrs[ATTR_RECOVERY]["artifact_id"]).exists()


def test_the_last_recovery_checkpoint_is_kept_until_the_trial_is_told(
    storage_url: str, tmp_path: Path, artifact_directory: Path
) -> None:
    """A worker killed after training, before ``tell``, leaves a RUNNING trial whose retry
    resumes from its last recovery checkpoint: it must outlive the objective. (The chaos
    test caught a retry that restarted from scratch because it did not.)"""
    space = write_space(tmp_path, "told", STABLE_LEARNING_RATE)
    spec = write_study(
        tmp_path,
        "told",
        trials=1,
        max_train_steps=400,
        eval_interval=20,
        space=space,
        extra="checkpoint_interval: 100\n",
    )
    create(spec, storage_url)
    after_training: list[bool] = []

    def checking_objective(*args: Any) -> Callable[[optuna.Trial], float]:
        objective = make_objective(*args)

        def run(trial: optuna.Trial) -> float:
            value = objective(trial)
            ref = CheckpointRef.from_attr(trial.user_attrs[ATTR_RECOVERY])
            assert ref is not None
            after_training.append((artifact_directory / ref.artifact_id).exists())
            return value

        return run

    storage = open_storage(storage_url)
    checkpoints = CheckpointStore(open_artifact_store(str(artifact_directory)))
    worker = Worker(
        load_campaign("told", storage),
        storage,
        WorkerOptions(worker_id="told", max_trials=1),
        checkpoints,
        objective_factory=checking_objective,
    )
    assert worker.run().states == {TrialOutcome.COMPLETE: 1}
    assert after_training == [True]
    (trial,) = trials_of("told", storage_url)
    assert trial.user_attrs[ATTR_RECOVERY]["step"] == 300
    assert not (artifact_directory / trial.user_attrs[ATTR_RECOVERY]["artifact_id"]).exists()


def test_a_failed_trial_whose_retry_was_never_queued_is_retried(
    storage_url: str, long_trial_spec: Path
) -> None:
    """The janitor fails a stale trial, then queues its retry: two transactions. Its worker
    killed in between leaves a FAIL without a retry; the next worker queues the retry."""
    create(long_trial_spec, storage_url)
    doomed = start_worker("slow", storage_url)
    running = wait_for_running_trial("slow", storage_url)
    wait_for_recovery_checkpoint("slow", storage_url)
    doomed.kill()
    doomed.wait(timeout=10)
    storage = optuna.storages.RDBStorage(storage_url)
    assert storage.set_trial_state_values(running._trial_id, TrialState.FAIL)  # no retry

    survivor = run_autotune("worker", "slow", "--storage", storage_url, *FAST_HEARTBEAT)
    assert survivor.returncode == 0, survivor.stdout + survivor.stderr
    trials = trials_of("slow", storage_url)
    retry = assert_retried_and_completed(trials, running)
    assert_resumed_from_last_checkpoint(trials[0], retry)


def test_corrupt_checkpoint_restarts_the_retry_from_scratch(
    storage_url: str, long_trial_spec: Path, artifact_directory: Path
) -> None:
    create(long_trial_spec, storage_url)
    doomed = start_worker("slow", storage_url)
    running = wait_for_running_trial("slow", storage_url)
    wait_for_recovery_checkpoint("slow", storage_url)
    doomed.kill()
    doomed.wait(timeout=10)
    checkpoint = trials_of("slow", storage_url)[0].user_attrs[ATTR_RECOVERY]
    path = artifact_directory / checkpoint["artifact_id"]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated

    survivor = run_autotune("worker", "slow", "--storage", storage_url, *FAST_HEARTBEAT)
    assert survivor.returncode == 0, survivor.stdout + survivor.stderr
    assert "restarts from scratch" in survivor.stderr and "Traceback" not in survivor.stderr
    retry = assert_retried_and_completed(trials_of("slow", storage_url), running)
    assert "unusable" in retry.user_attrs[ATTR_RESUME_ERROR]
    assert retry.user_attrs[ATTR_RESUMED_FROM] == 0
    assert retry.user_attrs["steps_done"] == 4000


def test_worker_whose_trial_was_failed_as_stale_carries_on(
    storage_url: str, long_trial_spec: Path
) -> None:
    create(long_trial_spec, storage_url)
    paused = start_worker("slow", storage_url, "--verbose")
    running = wait_for_running_trial("slow", storage_url)
    paused.send_signal(signal.SIGSTOP)  # heartbeats stop: the trial goes stale
    try:
        survivor = run_autotune("worker", "slow", "--storage", storage_url, *FAST_HEARTBEAT)
    finally:
        paused.send_signal(signal.SIGCONT)
    output = paused.communicate(timeout=60)[0]
    assert survivor.returncode == 0, survivor.stdout + survivor.stderr
    assert paused.returncode == 0, output
    # Stopped outside a transaction, it finds its trial finished by the survivor; stopped
    # inside one (a report or heartbeat), the server ends that session after its abandoned-
    # transaction timeout and the worker sees the connection lost. Either way it carries on,
    # and the trial is retried exactly once, elsewhere.
    seen = ("finished by another worker", "interrupted (database connection lost)")
    assert any(text in output for text in seen), output
    assert "Should not reach" not in output and "Traceback" not in output
    assert_retried_and_completed(trials_of("slow", storage_url), running)
