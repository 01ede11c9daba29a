"""Scale: N simulated workers on one PostgreSQL, autotune beside plain Optuna (issue 16).

Each simulated worker is a thread running a real :class:`autotune.worker._worker.Worker`
(its own storage and connection pool, heartbeat and janitor threads, advisory-locked trial
hand-out, rung pruner on the rung store, retries) whose training sleeps instead of running
torch: the real objectives (suggest, budget attributes, report + prune at every eval, result
attributes) with only ``_train`` replaced. Threads are spread over a few processes, so
hundreds of workers fit on a 2-core machine; the harness's own CPU use is printed, since a
saturated harness inflates every latency.

Per worker count N, three cases:

- **steady**, autotune: a one-round study (random sampler, successive halving), every worker
  runs ``trials`` trials of ``STEPS`` evals sleeping ``step_sleep_s`` each (± a fixed draw
  per trial, ``--length-spread``, 10% by default: real trials differ in length, and trials
  of one length keep workers that start together in lockstep; 0 gives that worst case),
  after one untimed warm-up trial, all starting together. Pruning is asked at every eval
  and ignored, so a trial sleeps its whole length (as in ``service_overhead.py``).
- **steady**, plain Optuna: the same on ``RDBStorage(url)`` with its defaults, the same
  space, ``RandomSampler`` and ``SuccessiveHalvingPruner``, the ``ask``/``tell`` loop.
- **campaign**, autotune: a whole campaign run to its end by N workers: baseline, round 1
  (2N sampled trials, rung pruning), round 2 (top-k promoted at four times the steps), the
  re-evaluation of 3 finalists; then its invariants are checked from the database.

Figures per case: trials/s (finished trials over the wall time of the timed part);
per-trial orchestration ms (hand-out + run − sleep; median, p99); ``overhead_pct`` as
``service_overhead.py`` defines it (a worker's seconds beyond its sleeps, as a share of its
sleeps, median over workers); the wait for the study's advisory lock (what each trial
records itself, ``lock_wait_ms``, as ``autotune status`` shows it); hand-out (autotune: lock,
trial read, claim, building the trial; Optuna: ``ask``), tell and report (``report`` +
``should_prune``) latencies;
the most connections the database held (``pg_stat_activity``, sampled every 0.5 s);
statements per trial (every statement the worker engines sent, heartbeats and janitors
included, over finished trials); errors (exceptions out of a worker, ERROR log records)
and warnings; lost trials (left RUNNING/WAITING, or told by a second worker); duplicate
trials (one trial run twice, or one queued trial finished twice); budget overrun (trials
that consumed budget beyond a study's).

Usage: .venv/bin/python benchmarks/scale.py [--quick] [--workers 8 32 128 512]
[--max-connections 100] [--pgbouncer POOL] [--without-optuna] [--threads-per-process K]
[--scenarios steady campaign] [--length-spread 0.1]
[--storage URL] [--json PATH].
By default the harness starts a PostgreSQL of its own (the machine's ``initdb``, run as
``postgres`` under root) on 127.0.0.1 with PostgreSQL's default ``max_connections`` of 100 and
pg_stat_statements, whose counts (transaction statements and pool pre-pings included) and
CPU it reports beside the client's; each case gets a database of its own. With
``--pgbouncer POOL`` the workers reach it through PgBouncer in transaction mode with POOL
server connections. The JSON is rewritten after every case.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
import contextlib
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
import enum
import json
import logging
import math
import multiprocessing
import os
from pathlib import Path
import queue
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any
import uuid
import warnings

import optuna
from optuna.trial import TrialState
import service_overhead
import sqlalchemy
from sqlalchemy import text
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parent.parent
SPACE = REPO_ROOT / "search_spaces" / "mlp.yaml"
STEPS = 20  # evals per steady trial: 20 x 50 ms is a 1-second trial
MIN_STEPS, REDUCTION_FACTOR = 2, 3
THREADS_PER_PROCESS = 8  # 32 made one process GIL-bound at 32 workers: latencies doubled
OUTAGE_LIMIT_S = 30.0  # a worker that cannot reach the database gives up (an error) after this
CONNECTION_POLL_S = 0.5
LENGTH_SPREAD = 0.1  # trials last 1 s ± 10% (uniform): see ``Case.step_sleep``


class System(enum.Enum):
    AUTOTUNE = "autotune"
    OPTUNA = "optuna"


class Scenario(enum.Enum):
    STEADY = "steady"  # one round, fixed-length trials: throughput and overhead
    CAMPAIGN = "campaign"  # rounds, pruning, promotion, re-evaluation: invariants


@dataclass(frozen=True)
class Case:
    system: System
    scenario: Scenario
    workers: int
    trials: int  # steady: timed trials per worker; campaign: round-1 trials
    step_sleep_s: float
    timeout_s: float
    threads_per_process: int = THREADS_PER_PROCESS
    length_spread: float = 0.0  # each trial's evals sleep step_sleep_s x (1 ± this, uniform)

    def step_sleep(self, worker: int, trial: int) -> float:
        """Seconds per eval of one worker's trial: a fixed draw around ``step_sleep_s``.

        Real trials differ in length (models, data, machines); trials of exactly one length
        keep workers that start together in step, their hand-outs and tells colliding on
        the same cores every trial, which no cluster sees. The draw depends only on the
        worker and trial number, so autotune and plain Optuna sleep alike.
        """
        if not self.length_spread:
            return self.step_sleep_s
        draw = random.Random(f"{worker}/{trial}").uniform(-1.0, 1.0)
        return self.step_sleep_s * (1.0 + self.length_spread * draw)

    @property
    def name(self) -> str:
        return f"scale-{self.scenario.value}-{self.system.value}-{self.workers}"


class Gate:
    """The start barrier, passed once per thread: a worker that failed before it still
    passes, so the others start."""

    def __init__(self, barrier: Any, timeout_s: float) -> None:
        self._barrier, self._timeout_s, self._passed = barrier, timeout_s, False

    def wait(self) -> None:
        if not self._passed:
            self._passed = True
            with contextlib.suppress(threading.BrokenBarrierError):
                self._barrier.wait(self._timeout_s)


# --- what a worker thread measures ------------------------------------------------------------


@dataclass
class Recorder:
    """One worker thread's timings (seconds), appended by the worker, objective and hooks."""

    handout: list[float] = field(default_factory=list)  # hand-outs that gave a trial
    idle_handout: list[float] = field(default_factory=list)  # ... that gave none (wait, done)
    run: list[float] = field(default_factory=list)  # a trial: objective + tell
    tell: list[float] = field(default_factory=list)
    report: list[float] = field(default_factory=list)  # report + should_prune (+ attrs)
    advance: list[float] = field(default_factory=list)  # campaign transitions (locked reads)
    slept: list[float] = field(default_factory=list)  # per trial
    started: list[tuple[str, int]] = field(default_factory=list)  # (study, trial number)
    statements: int = 0
    statement_kinds: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0
    error: str | None = None

    def reset(self) -> None:
        """Forget the warm-up."""
        fresh = Recorder()
        for name in ("handout", "idle_handout", "run", "tell", "report", "advance", "slept"):
            setattr(self, name, getattr(fresh, name))
        self.statements = 0
        self.statement_kinds = Counter()


@dataclass(frozen=True)
class WorkerTimes:
    """What one worker thread measured, sent back to the parent (plain data)."""

    handout: tuple[float, ...]
    idle_handout: tuple[float, ...]
    run: tuple[float, ...]
    tell: tuple[float, ...]
    report: tuple[float, ...]
    advance: tuple[float, ...]
    slept: tuple[float, ...]
    started: tuple[tuple[str, int], ...]
    statements: int
    statement_kinds: dict[str, int]
    wall_s: float
    error: str | None

    @classmethod
    def of(cls, recorder: Recorder) -> WorkerTimes:
        return cls(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in vars(recorder).items()}
        )


def statement_kind(statement: str) -> str:
    """A statement's verb and table (or function): what the per-trial counts are made of."""
    words = statement.split()
    verb = words[0].upper() if words else "?"
    tables = [w for i, w in enumerate(words[1:], 1) if words[i - 1].upper() in _TABLE_WORDS]
    called = [w.split("(")[0] for w in words if "(" in w and w.split("(")[0].isidentifier()]
    return " ".join([verb, *(tables[:1] or called[:1])]).strip('"')


_TABLE_WORDS = {"FROM", "INTO", "UPDATE", "JOIN"}


def count_statements(engine: sqlalchemy.Engine, recorder: Recorder) -> None:
    """Count every statement the engine sends (the lock waits are the trials' own record).

    The hooks run in whichever thread executes (heartbeat and janitor included): each
    engine belongs to one simulated worker, so its recorder is that worker's.
    """
    guard = threading.Lock()

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        with guard:
            recorder.statements += 1
            recorder.statement_kinds[statement_kind(statement)] += 1

    sqlalchemy.event.listen(engine, "after_cursor_execute", after)


class ErrorLog(logging.Handler):
    """Counts the autotune and Optuna log records of a process: errors and warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()
        self.samples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.levelname] += 1
        if len(self.samples) < 5:
            self.samples.append(f"{record.levelname} {record.name}: {record.getMessage()[:200]}")


def curve(learning_rate: float, step: int, seed: int) -> float:
    """A made-up learning curve: best near lr 1e-2, falling with the evals, seed-noisy."""
    noise = ((seed * 2654435761) % 1000) / 1e4
    return (math.log10(learning_rate) + 2.0) ** 2 / 4 + 0.5 / step + noise


# --- autotune: real objectives whose training sleeps ----------------------------------------


def sleeping_objective_factory(
    recorder: Recorder, step_sleep: Callable[[int], float], full_length: bool
):
    """The worker's objective factory: the real objective of the round, sleeping to train
    ``step_sleep(trial number)`` seconds per eval.

    ``full_length``: a pruning decision is recorded but the trial sleeps to its end (the
    steady case's trials run their whole length, as in ``service_overhead.py``).
    """
    from autotune import training
    from autotune.campaign import Stage
    from autotune.worker import _objectives as objectives

    class SleepingTraining:
        """Replaces ``_Objective._train``: sleep per eval and report a made-up curve."""

        spec: Any

        def _train(self, trial, hparams, budget, on_eval, period, settings, resume):  # noqa: ANN001, ANN202
            metric, best, final = self.spec.metric.name, None, None
            seconds = step_sleep(trial.number)
            for step in budget.eval_steps():
                time.sleep(seconds)
                recorder.slept[-1] += seconds
                value = curve(float(hparams.get("learning_rate", 1e-2)), step, budget.seed)
                final = training.EvalResult(step, {metric: value})
                if best is None or value < best.metrics[metric]:
                    best = final
                started = time.perf_counter()
                try:
                    on_eval(final)
                except optuna.TrialPruned:
                    if not full_length:  # steady trials ignore the decision (recorded)
                        raise
                finally:
                    recorder.report.append(time.perf_counter() - started)
            return training.TrainResult(final, best, metric, budget.last_step, 0.0, 0.0)

    kinds = {
        Stage.JOINT: objectives._TuningObjective,
        Stage.BASELINE: objectives._BaselineObjective,
        Stage.REEVALUATION: objectives._ReevaluationObjective,
    }

    def factory(spec, stop, setting, checkpoints):  # noqa: ANN001, ANN202
        base = kinds[setting.stage]
        sleeping = type(f"Sleeping{base.__name__}", (SleepingTraining, base), {})
        inner = sleeping(spec, stop, setting, checkpoints)

        def objective(trial: optuna.Trial) -> float:
            recorder.started.append((trial.study.study_name, trial.number))
            recorder.slept.append(0.0)
            try:
                return inner(trial)
            finally:
                recorder.tell.append(-time.perf_counter())  # closed by the worker after tell

        return objective

    return factory


def timed_worker_class():
    """``Worker`` timing its hand-outs and trials (the real methods, wrapped)."""
    from autotune.worker._worker import Worker

    class TimedWorker(Worker):
        recorder: Recorder

        def _next_trial(self):  # noqa: ANN202
            started = time.perf_counter()
            trial, step = super()._next_trial()
            took = time.perf_counter() - started
            (self.recorder.handout if trial is not None else self.recorder.idle_handout).append(
                took
            )
            return trial, step

        def _advance(self) -> bool:
            started = time.perf_counter()
            try:
                return super()._advance()
            finally:
                self.recorder.advance.append(time.perf_counter() - started)

        def _train_and_tell(self, trial):  # noqa: ANN001, ANN202
            started = time.perf_counter()
            result = super()._train_and_tell(trial)
            ended = time.perf_counter()
            self.recorder.run.append(ended - started)
            if self.recorder.tell and self.recorder.tell[-1] < 0:
                self.recorder.tell[-1] += ended
            return result

    return TimedWorker


@contextlib.contextmanager
def disposing(engine: sqlalchemy.Engine) -> Iterator[None]:
    """Close the engine's connections at the end, also on an error: a worker process that
    fails exits and frees them (a failed thread's would hold a slot of max_connections)."""
    try:
        yield
    finally:
        engine.dispose()


def run_autotune_worker(url: str, case: Case, index: int, start: Any, recorder: Recorder) -> None:
    """One simulated autotune worker: its own storage, a real Worker, sleeping training."""
    from autotune.campaign import load_campaign
    from autotune.campaign._trial_attrs import INHERITED_BY_RETRIES
    from autotune.storage import HeartbeatSettings
    from autotune.storage import open_storage
    from autotune.worker._worker import WorkerOptions

    heartbeat = HeartbeatSettings(retry_inherits=INHERITED_BY_RETRIES)
    storage = open_storage(url, heartbeat)
    count_statements(storage.engine, recorder)
    with disposing(storage.engine):  # a worker that fails frees its connections
        steady = case.scenario is Scenario.STEADY
        factory = sleeping_objective_factory(
            recorder, lambda number: case.step_sleep(index, number), full_length=steady
        )
        worker_class = timed_worker_class()

        def worker(max_trials: int | None) -> Any:
            options = WorkerOptions(
                worker_id=f"w{index}",
                max_trials=max_trials,
                janitor_interval_s=float(heartbeat.interval_s),
                seed=index,
                outage_limit_s=OUTAGE_LIMIT_S,
            )
            campaign = load_campaign(case.name, storage)
            built = worker_class(campaign, storage, options, objective_factory=factory)
            built.recorder = recorder
            return built

        if steady:
            worker(1).run()  # warm-up
            recorder.reset()
        timed = worker(case.trials if steady else None)
        start.wait()
        started = time.perf_counter()
        try:
            timed.run()
        finally:
            recorder.wall_s = time.perf_counter() - started


# --- plain Optuna -----------------------------------------------------------------------------


def optuna_distributions() -> dict[str, optuna.distributions.BaseDistribution]:
    from autotune.campaign import space_distributions
    from autotune.spec import load_search_space

    return dict(space_distributions(load_search_space(SPACE).params))


def run_optuna_worker(url: str, case: Case, index: int, start: Any, recorder: Recorder) -> None:
    """Plain Optuna: default RDBStorage, random sampler, successive halving, ask/tell.

    Its schema check is skipped (the harness created the study): behind PgBouncer it reads
    the version on a second connection inside a transaction on the first, and workers that
    start together stall the pool (autotune checks it one connection at a time).
    """
    storage = optuna.storages.RDBStorage(url, skip_compatibility_check=True)
    count_statements(storage.engine, recorder)
    with disposing(storage.engine):
        study = optuna.load_study(
            study_name=case.name,
            storage=storage,
            sampler=optuna.samplers.RandomSampler(seed=index),
            pruner=optuna.pruners.SuccessiveHalvingPruner(
                min_resource=MIN_STEPS, reduction_factor=REDUCTION_FACTOR
            ),
        )
        distributions = optuna_distributions()

        def one_trial() -> None:
            started = time.perf_counter()
            trial = study.ask(distributions)
            recorder.handout.append(time.perf_counter() - started)
            recorder.started.append((case.name, trial.number))
            recorder.slept.append(0.0)
            run_started = time.perf_counter()
            value, seconds = math.nan, case.step_sleep(index, trial.number)
            for step in range(1, STEPS + 1):
                time.sleep(seconds)
                recorder.slept[-1] += seconds
                value = curve(trial.params["learning_rate"], step, trial.number)
                report_started = time.perf_counter()
                trial.report(value, step)
                trial.should_prune()  # asked and ignored: every trial lasts as long
                recorder.report.append(time.perf_counter() - report_started)
            tell_started = time.perf_counter()
            study.tell(trial, value)
            ended = time.perf_counter()
            recorder.tell.append(ended - tell_started)
            recorder.run.append(ended - run_started)

        one_trial()  # warm-up
        recorder.reset()
        start.wait()
        started = time.perf_counter()
        try:
            for _ in range(case.trials):
                one_trial()
        finally:
            recorder.wall_s = time.perf_counter() - started


# --- a process of worker threads --------------------------------------------------------------


def _thread_main(url: str, case: Case, index: int, barrier: Any, recorder: Recorder) -> None:
    run = run_optuna_worker if case.system is System.OPTUNA else run_autotune_worker
    start = Gate(barrier, case.timeout_s)
    try:
        run(url, case, index, start, recorder)
    except BaseException as error:  # noqa: BLE001 (counted, and the case goes on)
        recorder.error = f"{type(error).__name__}: {(str(error) or '-').splitlines()[0][:300]}"
    finally:
        start.wait()


def _process_main(url: str, case: Case, indices: Sequence[int], start: Any, out: Any) -> None:
    """Run the worker threads ``indices`` of one case; send back their times and log counts."""
    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    errors = ErrorLog()
    for name in ("autotune", "optuna"):
        logging.getLogger(name).addHandler(errors)
    cpu_started = time.process_time()
    recorders = [Recorder() for _ in indices]
    threads = [
        threading.Thread(target=_thread_main, args=(url, case, i, start, r), daemon=True)
        for i, r in zip(indices, recorders, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put(
        (
            [WorkerTimes.of(r) for r in recorders],
            dict(errors.counts),
            errors.samples,
            time.process_time() - cpu_started,
        )
    )


# --- a PostgreSQL of the harness's own, on loopback ----------------------------------------


def pg_bin() -> Path:
    """The machine's PostgreSQL programs: ``pg_config --bindir``, else Debian's newest."""
    if shutil.which("pg_config"):
        bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if bindir.returncode == 0 and (Path(bindir.stdout.strip()) / "initdb").exists():
            return Path(bindir.stdout.strip())
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise SystemExit("no PostgreSQL programs (initdb) here: give --storage URL")
    return found[-1].parent


WATCH_TAG = "/* scale-watch */"  # the harness's own polling, left out of the server's counts


@dataclass(frozen=True)
class Server:
    """A throw-away PostgreSQL on 127.0.0.1 with pg_stat_statements (run as ``postgres``
    when the harness runs as root, as initdb requires)."""

    directory: Path
    port: int
    max_connections: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*user, *args], check=True, capture_output=True, timeout=120)

    @contextlib.contextmanager
    def running(self) -> Iterator[Server]:
        self.directory.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        data, bin_dir = str(self.directory / "data"), pg_bin()
        self._run(str(bin_dir / "initdb"), "-D", data, "--auth=trust", "-U", "postgres")
        options = (
            f"-c port={self.port} -c listen_addresses=127.0.0.1 -k {self.directory} "
            f"-c max_connections={self.max_connections} "
            "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.max=10000"
        )
        log = str(self.directory / "log")
        self._run(str(bin_dir / "pg_ctl"), "-D", data, "-o", options, "-l", log, "-w", "start")
        try:
            yield self
        finally:
            self._run(str(bin_dir / "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop")

    def cpu_s(self) -> float:
        """CPU seconds of the server's processes so far (exited backends: the postmaster's
        children time)."""
        pid = int((self.directory / "data" / "postmaster.pid").read_text().split()[0])
        tick = os.sysconf("SC_CLK_TCK")
        total = _process_ticks(pid, children=True)
        for child in _children(pid):
            total += _process_ticks(child, children=False)
        return total / tick


@dataclass(frozen=True)
class Bouncer:
    """PgBouncer in transaction mode in front of the harness's server (``--pgbouncer``):
    the workers connect through it, everything else (creating, watching, checking) directly.
    Any database name is forwarded, so each case's database needs no entry of its own."""

    directory: Path
    port: int
    server_port: int
    pool_size: int

    def route(self, url: str) -> str:
        """The same database, through PgBouncer."""
        return str(sqlalchemy.engine.make_url(url).set(port=self.port))

    @contextlib.contextmanager
    def running(self) -> Iterator[Bouncer]:
        self.directory.mkdir(parents=True)
        users = self.directory / "userlist.txt"
        users.write_text('"postgres" ""\n', encoding="utf-8")
        ini = self.directory / "pgbouncer.ini"
        ini.write_text(
            f"[databases]\n* = host=127.0.0.1 port={self.server_port}\n[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {users}\npool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\nmax_client_conn = 10000\n",
            encoding="utf-8",
        )
        as_root = ["-u", "nobody"] if os.geteuid() == 0 else []  # it refuses to run as root
        log = (self.directory / "log").open("wb")
        process = subprocess.Popen(
            ["/usr/sbin/pgbouncer", *as_root, str(ini)], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_for_port(self.port, process)
            yield self
        finally:
            process.terminate()
            process.wait(timeout=30)
            log.close()


def _wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise SystemExit(f"pgbouncer did not start (exit {process.poll()}); see its log")


def _process_ticks(pid: int, children: bool) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return utime + stime + (cutime + cstime if children else 0)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_statements(url: str) -> dict[str, int]:
    """Calls per statement the server saw in this database (pg_stat_statements), the
    harness's own polling left out; empty where the extension is not loaded."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    f"{WATCH_TAG} SELECT query, calls FROM pg_stat_statements "
                    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = "
                    "current_database()) AND query NOT LIKE :tag ORDER BY calls DESC"
                ),
                {"tag": f"%{WATCH_TAG}%"},
            ).all()
    except sqlalchemy.exc.SQLAlchemyError:
        return {}
    finally:
        engine.dispose()
    calls: Counter[str] = Counter()
    for row in rows:  # one kind has many entries: IN lists of every length
        calls[statement_kind(row.query)] += row.calls
    return dict(calls.most_common())


# --- studies and campaigns --------------------------------------------------------------------


def steady_spec(case: Case, directory: Path) -> Path:
    """One round: every worker's warm-up and timed trials fit the budget."""
    spec = directory / f"{case.name}.yaml"
    trials = case.workers * (case.trials + 2)
    spec.write_text(
        f"name: {case.name}\ntask: digits-mlp\nsearch_space: {SPACE}\n"
        f"metric: {{name: val_loss, direction: minimize}}\nmax_train_steps: {STEPS}\n"
        f"eval_interval: 1\nbatch_size: 32\ntrials: {trials}\nsampler: {{type: random}}\n"
        f"pruner: {{type: successive_halving, min_steps: {MIN_STEPS}, "
        f"reduction_factor: {REDUCTION_FACTOR}}}\nseed: 0\nbaseline: false\n"
        "reevaluation: {enabled: false}\nboundary: {widen: false}\n"
    )
    return spec


def campaign_spec(case: Case, directory: Path) -> Path:
    """Baseline, round 1 (pruned), round 2 (top-k promoted), re-evaluation of 3 finalists."""
    spec = directory / f"{case.name}.yaml"
    top_k = max(4, case.trials // 16)
    spec.write_text(
        f"name: {case.name}\ntask: digits-mlp\nsearch_space: {SPACE}\n"
        "metric: {name: val_loss, direction: minimize}\nmax_train_steps: 400\n"
        f"eval_interval: 20\nbatch_size: 32\ntrials: {case.trials}\n"
        f"rounds:\n  - {{budget_fraction: 0.25}}\n  - {{budget_fraction: 1.0, top_k: {top_k}}}\n"
        "sampler: {type: random}\n"
        "pruner: {type: successive_halving, min_steps: 20, reduction_factor: 3}\n"
        "seed: 0\nbaseline: true\nboundary: {widen: false}\n"
        "reevaluation: {enabled: true, finalists: 3, periods: 4, period_seed: 0}\n"
    )
    return spec


def create_case(url: str, case: Case, directory: Path) -> None:
    if case.system is System.OPTUNA:
        storage = optuna.storages.RDBStorage(url)
        optuna.create_study(study_name=case.name, storage=storage)
        storage.engine.dispose()
        return
    from autotune.campaign import create_campaign
    from autotune.spec import load_study_spec
    from autotune.storage import ensure_schema
    from autotune.storage import open_storage
    from autotune.worker._defaults import task_defaults

    storage = open_storage(url)
    write = steady_spec if case.scenario is Scenario.STEADY else campaign_spec
    spec = load_study_spec(write(case, directory))
    create_campaign(spec, storage, task_defaults(spec))
    ensure_schema(storage.engine)
    storage.engine.dispose()


# --- watching a case from the parent ----------------------------------------------------------


@dataclass
class Watch:
    """Connections the server holds and trials finished, polled while a case runs."""

    url: str
    total: int
    max_connections: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    @contextlib.contextmanager
    def watching(self, label: str) -> Iterator[None]:
        thread = threading.Thread(target=self._poll, args=(label,), daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join()

    def _poll(self, label: str) -> None:
        engine = sqlalchemy.create_engine(self.url, poolclass=sqlalchemy.pool.NullPool)
        with tqdm(total=self.total, desc=label, unit="trial", leave=False) as bar:
            while not self._stop.wait(CONNECTION_POLL_S):
                with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError):
                    self._sample(engine, bar)
        engine.dispose()

    def _sample(self, engine: sqlalchemy.Engine, bar: tqdm) -> None:
        with engine.connect() as connection:
            row = connection.execute(
                text(
                    f"{WATCH_TAG} SELECT count(*) AS held "
                    "FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            ).one()
            done = connection.execute(
                text(
                    f"{WATCH_TAG} SELECT count(*) FROM trials "
                    "WHERE state IN ('COMPLETE', 'PRUNED', 'FAIL')"
                )
            ).scalar_one()
        self.max_connections = max(self.max_connections, row.held)
        bar.update(done - bar.n)


# --- the case's outcome -----------------------------------------------------------------------


@dataclass(frozen=True)
class Integrity:
    """What the database says about a finished case."""

    finished_trials: int
    lost_trials: int
    duplicate_trials: int
    budget_overrun: int
    campaign_finished: bool | None  # None: not a campaign case
    lock_waits_ms: tuple[float, ...] = ()  # the trials' own record (autotune only)


def check_integrity(url: str, case: Case, times: Sequence[WorkerTimes]) -> Integrity:
    """Lost, duplicate and over-budget trials, from the database and the workers' starts."""
    starts = Counter(s for t in times for s in t.started)
    run_twice = sum(n - 1 for n in starts.values() if n > 1)
    if case.system is System.OPTUNA:
        storage = optuna.storages.RDBStorage(url)
        trials = optuna.load_study(study_name=case.name, storage=storage).get_trials()
        storage.engine.dispose()
        open_left = sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)
        done = sum(t.state.is_finished() for t in trials)
        return Integrity(done, open_left, run_twice, 0, None)
    return _campaign_integrity(url, case, run_twice, set(starts))


def _campaign_integrity(
    url: str, case: Case, run_twice: int, ran: set[tuple[str, int]]
) -> Integrity:
    from autotune.campaign import load_campaign
    from autotune.campaign._trial_attrs import ATTR_LOCK_WAIT_MS
    from autotune.campaign._trial_attrs import ATTR_QUEUED_AS
    from autotune.storage import consumes_budget
    from autotune.storage import open_storage

    storage = open_storage(url)
    campaign = load_campaign(case.name, storage)
    lost = duplicates = overrun = done = 0
    waits = []
    for study in campaign.studies:
        trials = campaign.trials_of(study)
        waits += [
            float(t.user_attrs[ATTR_LOCK_WAIT_MS])
            for t in trials
            if (study.name, t.number) in ran and ATTR_LOCK_WAIT_MS in t.user_attrs
        ]
        done += sum(t.state.is_finished() for t in trials)
        lost += sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)
        queued = Counter(
            t.user_attrs[ATTR_QUEUED_AS]
            for t in trials
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            and ATTR_QUEUED_AS in t.user_attrs
        )
        duplicates += sum(n - 1 for n in queued.values() if n > 1)
        if study.samples:
            overrun += max(0, sum(consumes_budget(t) for t in trials) - study.trial_budget)
    finished = None
    if case.scenario is Scenario.CAMPAIGN:
        finished = campaign.recommendation() is not None or campaign.stopped is not None
    storage.engine.dispose()
    return Integrity(done, lost, duplicates + run_twice, overrun, finished, tuple(waits))


def _quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(frozen=True)
class CaseResult:
    case: Case
    wall_s: float
    trials_per_s: float
    orchestration_ms_p50: float
    orchestration_ms_p99: float
    overhead_pct: float
    lock_wait_ms_p50: float
    lock_wait_ms_p99: float
    handout_ms_p50: float
    handout_ms_p99: float
    tell_ms_p50: float
    tell_ms_p99: float
    report_ms_p50: float
    report_ms_p99: float
    advance_ms_p50: float  # a campaign transition: its lock, snapshot read, decision
    advance_ms_p99: float
    advances: int
    connections_max: int
    statements_per_trial: float
    statements_by_kind: dict[str, float]  # per finished trial, most first
    errors: int
    warnings: int
    error_samples: tuple[str, ...]
    server_statements_per_trial: float  # pg_stat_statements (own server only)
    server_statements_by_kind: dict[str, float]
    harness_cpu_pct: float  # the harness processes' CPU over the case, of all cores
    server_cpu_pct: float  # the PostgreSQL server's (own server only)
    integrity: Integrity

    def line(self) -> str:
        case, i = self.case, self.integrity
        return (
            f"{case.scenario.value:8s} {case.system.value:8s} workers={case.workers:4d} "
            f"trials/s={self.trials_per_s:7.2f} orch_ms p50={self.orchestration_ms_p50:7.1f} "
            f"p99={self.orchestration_ms_p99:7.1f} overhead%={self.overhead_pct:6.2f} "
            f"lock_ms p50={self.lock_wait_ms_p50:6.1f} p99={self.lock_wait_ms_p99:7.1f} "
            f"handout_ms p50={self.handout_ms_p50:6.1f} p99={self.handout_ms_p99:7.1f} "
            f"tell_ms p50={self.tell_ms_p50:6.1f} report_ms p50={self.report_ms_p50:5.2f} "
            f"p99={self.report_ms_p99:6.1f} advance_ms p50={self.advance_ms_p50:6.1f} "
            f"p99={self.advance_ms_p99:7.1f} n={self.advances} conns={self.connections_max:4d} "
            f"stmts/trial={self.statements_per_trial:6.1f} errors={self.errors} "
            f"warnings={self.warnings} lost={i.lost_trials} dup={i.duplicate_trials} "
            f"overrun={i.budget_overrun} done={i.finished_trials} "
            f"finished={i.campaign_finished} cpu%={self.harness_cpu_pct:5.1f} "
            f"pg_cpu%={self.server_cpu_pct:5.1f} "
            f"wall_s={self.wall_s:6.1f}"
        )


def per_trial_kinds(times: Sequence[WorkerTimes], trials: int) -> dict[str, float]:
    kinds: Counter[str] = Counter()
    for t in times:
        kinds.update(t.statement_kinds)
    return {k: round(n / max(1, trials), 2) for k, n in kinds.most_common()}


def summarize(case: Case, ran: Ran, observed: Observed, integrity: Integrity) -> CaseResult:
    times = ran.times
    good = [t for t in times if t.error is None]
    trials = sum(len(t.run) for t in good)
    orchestration = [
        h + r - s for t in good for h, r, s in zip(t.handout, t.run, t.slept, strict=False)
    ]
    overheads = [100 * (t.wall_s - sum(t.slept)) / sum(t.slept) for t in good if sum(t.slept)]
    timed_wall = max((t.wall_s for t in good), default=math.nan)
    wall_s, cores = observed.wall_s, os.cpu_count() or 1

    def ms(name: str, q: float) -> float:
        return 1e3 * _quantile([v for t in good for v in getattr(t, name)], q)

    errors = [t.error for t in times if t.error is not None]
    server_calls = sum(observed.server_statements.values())
    every_trial = max(1, integrity.finished_trials)  # the server's count has the warm-ups
    return CaseResult(
        case=case,
        wall_s=wall_s,
        trials_per_s=trials / timed_wall if trials else 0.0,
        orchestration_ms_p50=1e3 * _quantile(orchestration, 0.5),
        orchestration_ms_p99=1e3 * _quantile(orchestration, 0.99),
        overhead_pct=statistics.median(overheads) if overheads else math.nan,
        lock_wait_ms_p50=_quantile(integrity.lock_waits_ms, 0.5),
        lock_wait_ms_p99=_quantile(integrity.lock_waits_ms, 0.99),
        handout_ms_p50=ms("handout", 0.5),
        handout_ms_p99=ms("handout", 0.99),
        tell_ms_p50=ms("tell", 0.5),
        tell_ms_p99=ms("tell", 0.99),
        report_ms_p50=ms("report", 0.5),
        report_ms_p99=ms("report", 0.99),
        advance_ms_p50=ms("advance", 0.5),
        advance_ms_p99=ms("advance", 0.99),
        advances=sum(len(t.advance) for t in good),
        connections_max=observed.watch.max_connections,
        statements_per_trial=sum(t.statements for t in times) / trials if trials else math.nan,
        statements_by_kind=per_trial_kinds(times, trials),
        server_statements_per_trial=server_calls / every_trial,
        server_statements_by_kind={
            k: round(n / every_trial, 2) for k, n in observed.server_statements.items()
        },
        errors=len(errors) + ran.logs.get("ERROR", 0) + ran.logs.get("CRITICAL", 0),
        warnings=ran.logs.get("WARNING", 0),
        error_samples=tuple([*errors[:5], *ran.samples]),
        harness_cpu_pct=100 * ran.cpu_s / (wall_s * cores),
        server_cpu_pct=100 * observed.server_cpu_s / (wall_s * cores),
        integrity=integrity,
    )


# --- running a case ---------------------------------------------------------------------------


def _progress_total(case: Case) -> int:
    if case.scenario is Scenario.STEADY:
        return case.workers * (case.trials + 1)
    return case.trials + max(4, case.trials // 16) + 3 * 4 + 2


@contextlib.contextmanager
def case_database(server_url: str, case: Case) -> Iterator[str]:
    """A database of the case's own on the server (its connections and trials counted
    alone), dropped afterwards."""
    name = f"{case.name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"  # concurrent runs apart
    admin = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = sqlalchemy.engine.make_url(server_url).set(database=name)
    url = url.render_as_string(hide_password=False)
    statements = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError), statements.connect() as connection:
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
    statements.dispose()
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_case(
    server_url: str,
    case: Case,
    directory: Path,
    server: Server | None = None,
    bouncer: Bouncer | None = None,
) -> CaseResult:
    """The case in a database of its own: create its study, run its workers (through
    ``bouncer`` if given), summarize."""
    with case_database(server_url, case) as url:
        create_case(url, case, directory)
        setup = Counter(server_statements(url))  # creating the study is no trial's
        watch = Watch(url, _progress_total(case))
        server_cpu = server.cpu_s() if server else math.nan
        started = time.perf_counter()
        with watch.watching(f"{case.scenario.value} {case.system.value} {case.workers}w"):
            ran = launch(bouncer.route(url) if bouncer else url, case)
        wall_s = time.perf_counter() - started
        server_cpu = (server.cpu_s() - server_cpu) if server else math.nan
        statements = dict((Counter(server_statements(url)) - setup).most_common())
        integrity = check_integrity(url, case, ran.times)
    observed = Observed(watch, wall_s, server_cpu, statements)
    return summarize(case, ran, observed, integrity)


@dataclass
class Ran:
    """What the worker processes sent back."""

    times: list[WorkerTimes] = field(default_factory=list)
    logs: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    cpu_s: float = 0.0  # the worker processes' CPU seconds


@dataclass(frozen=True)
class Observed:
    """What the parent saw of a case: connections, wall time, the server's side."""

    watch: Watch
    wall_s: float
    server_cpu_s: float
    server_statements: dict[str, int]


def launch(url: str, case: Case) -> Ran:
    """The case's workers, ``case.threads_per_process`` threads to a process, until they
    end or the case's time is up."""
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(case.workers), context.Queue()
    groups = [
        range(first, min(case.workers, first + case.threads_per_process))
        for first in range(0, case.workers, case.threads_per_process)
    ]
    processes = [
        context.Process(target=_process_main, args=(url, case, g, start, out), daemon=True)
        for g in groups
    ]
    for process in processes:
        process.start()
    ran, deadline = Ran(), time.perf_counter() + case.timeout_s
    for _ in processes:
        try:
            got, counts, logged, cpu = out.get(timeout=max(1.0, deadline - time.perf_counter()))
        except queue.Empty:
            ran.samples.append(f"case timed out after {case.timeout_s:.0f} s")
            ran.logs["ERROR"] += 1
            break
        ran.times += got
        ran.logs.update(counts)
        ran.samples += logged
        ran.cpu_s += cpu
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
    return ran


# --- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What a run measures."""

    workers: tuple[int, ...]
    steady_trials: int
    step_sleep_s: float  # steady: 20 evals of this
    campaign_trials_per_worker: int
    campaign_step_sleep_s: float
    systems: tuple[System, ...] = tuple(System)  # steady cases: plain Optuna beside or not
    threads_per_process: int = THREADS_PER_PROCESS  # 1: a process per worker, as deployed
    scenarios: tuple[Scenario, ...] = tuple(Scenario)
    length_spread: float = LENGTH_SPREAD

    def cases(self) -> list[Case]:
        cases = []
        for n in self.workers:
            timeout = 90 + n
            for system in self.systems if Scenario.STEADY in self.scenarios else ():
                cases.append(
                    Case(
                        system,
                        Scenario.STEADY,
                        n,
                        self.steady_trials,
                        self.step_sleep_s,
                        timeout,
                        self.threads_per_process,
                        self.length_spread,
                    )
                )
            if Scenario.CAMPAIGN not in self.scenarios:
                continue
            trials = max(self.campaign_trials_per_worker * n, MIN_CAMPAIGN_TRIALS)
            cases.append(
                Case(
                    System.AUTOTUNE,
                    Scenario.CAMPAIGN,
                    n,
                    trials,
                    self.campaign_step_sleep_s,
                    timeout * 2,
                    self.threads_per_process,
                    self.length_spread,
                )
            )
        return cases


MIN_CAMPAIGN_TRIALS = 8  # round 2 promotes at least 4 (``campaign_spec``)
QUICK = Plan((8, 32, 128), 3, 0.05, 2, 0.02)
FULL = Plan((8, 32, 128, 512), 6, 0.05, 2, 0.05)


def headline(results: Sequence[CaseResult]) -> dict[str, float]:
    """The RESULT lines."""
    figures: dict[str, float] = {}
    for r in results:
        if r.case.scenario is Scenario.STEADY:
            prefix = "" if r.case.system is System.AUTOTUNE else "optuna_"
            figures[f"{prefix}trials_per_s_{r.case.workers}w"] = r.trials_per_s
    for r in results:
        one_second = math.isclose(r.case.step_sleep_s * STEPS, 1.0)
        steady = r.case.scenario is Scenario.STEADY and r.case.system is System.AUTOTUNE
        if steady and one_second:
            figures[f"overhead_pct_1s_{r.case.workers}w"] = r.overhead_pct
    ours = [r for r in results if r.case.system is System.AUTOTUNE]  # plain Optuna: beside
    clean = {r.case.workers for r in ours} - {r.case.workers for r in ours if not _clean(r)}
    figures["max_workers_without_error"] = float(max(clean, default=0))
    figures["lost_trials"] = float(sum(r.integrity.lost_trials for r in ours))
    figures["duplicate_trials"] = float(sum(r.integrity.duplicate_trials for r in ours))
    figures["budget_overrun"] = float(sum(r.integrity.budget_overrun for r in ours))
    return figures


def _clean(result: CaseResult) -> bool:
    i = result.integrity
    finished = i.campaign_finished is not False
    quiet = result.errors == 0 and result.warnings == 0  # no fault injected: a warning is one
    return quiet and not i.lost_trials and not i.duplicate_trials and finished


def _statements_cell(result: CaseResult) -> str:
    return f"{result.statements_per_trial:.0f} / {result.server_statements_per_trial:.0f}"


def _integrity_cell(result: CaseResult) -> str:
    i = result.integrity
    return f"{i.lost_trials} / {i.duplicate_trials} / {i.budget_overrun}"


TABLE_COLUMNS = (
    ("case", lambda r: f"{r.case.scenario.value} {r.case.system.value}"),
    ("workers", lambda r: str(r.case.workers)),
    ("trials/s", lambda r: f"{r.trials_per_s:.1f}"),
    (
        "orch. ms p50 / p99",
        lambda r: f"{r.orchestration_ms_p50:.0f} / {r.orchestration_ms_p99:.0f}",
    ),
    ("overhead %", lambda r: f"{r.overhead_pct:.1f}"),
    ("lock wait ms p50 / p99", lambda r: f"{r.lock_wait_ms_p50:.1f} / {r.lock_wait_ms_p99:.0f}"),
    ("hand-out ms p50 / p99", lambda r: f"{r.handout_ms_p50:.0f} / {r.handout_ms_p99:.0f}"),
    ("tell ms p50", lambda r: f"{r.tell_ms_p50:.0f}"),
    ("report ms p50 / p99", lambda r: f"{r.report_ms_p50:.2f} / {r.report_ms_p99:.0f}"),
    ("connections", lambda r: str(r.connections_max)),
    ("statements/trial client / server", _statements_cell),
    ("errors / warnings", lambda r: f"{r.errors} / {r.warnings}"),
    ("lost / dup / overrun", _integrity_cell),
    ("harness / pg CPU %", lambda r: f"{r.harness_cpu_pct:.0f} / {r.server_cpu_pct:.0f}"),
)


def markdown_table(results: Sequence[CaseResult]) -> str:
    """The results as the Markdown table BENCHMARKS.md shows."""
    header = "| " + " | ".join(name for name, _ in TABLE_COLUMNS) + " |"
    rule = "|" + "---|" * len(TABLE_COLUMNS)
    rows = ["| " + " | ".join(cell(r) for _, cell in TABLE_COLUMNS) + " |" for r in results]
    return "\n".join([header, rule, *rows])


def describe_machine(url: str) -> str:
    """service_overhead's machine line, and the server's connection limit (where N stops)."""
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as connection:
        limit = connection.execute(text("SHOW max_connections")).scalar_one()
    engine.dispose()
    return f"{service_overhead.describe_machine(url)} max_connections={limit}"


def to_json(results: Sequence[CaseResult], figures: dict[str, float], machine: str) -> str:
    def row(result: CaseResult) -> dict[str, Any]:
        data = asdict(result)
        data["case"] = {**asdict(result.case), "system": result.case.system.value}
        data["case"]["scenario"] = result.case.scenario.value
        return data

    return json.dumps(
        {"machine": machine, "results": [row(r) for r in results], "headline": figures},
        indent=1,
        default=str,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8/32/128 workers, 3 trials each")
    parser.add_argument("--workers", type=int, nargs="+", help="worker counts to run")
    parser.add_argument("--trials", type=int, help="steady trials per worker")
    parser.add_argument("--step-sleep", type=float, help="steady: seconds per eval (of 20)")
    parser.add_argument(
        "--length-spread",
        type=float,
        default=LENGTH_SPREAD,
        help=f"trials last step-sleep x 20 x (1 ± this, uniform; default {LENGTH_SPREAD}); 0: "
        "every trial as long, the lockstep worst case",
    )
    parser.add_argument("--storage", help="PostgreSQL URL (default: a server of its own)")
    parser.add_argument(
        "--max-connections", type=int, default=100, help="its own server's (default 100)"
    )
    parser.add_argument(
        "--pgbouncer",
        type=int,
        metavar="POOL",
        help="workers connect through PgBouncer (transaction mode) with this many server "
        "connections (needs /usr/sbin/pgbouncer and the harness's own server)",
    )
    parser.add_argument(
        "--without-optuna",
        action="store_true",
        help="leave out plain Optuna (at hundreds of workers it takes the case's whole time)",
    )
    parser.add_argument(
        "--threads-per-process",
        type=int,
        default=THREADS_PER_PROCESS,
        help=f"simulated workers per harness process (default {THREADS_PER_PROCESS}; 1 runs "
        "each worker in a process of its own, as deployed, without a shared GIL)",
    )
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=[scenario.value for scenario in Scenario],
        default=[scenario.value for scenario in Scenario],
        help="which cases to run per worker count (default: all)",
    )
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    if not 0.0 <= args.length_spread < 1.0:
        parser.error(f"--length-spread must be in [0, 1), got {args.length_spread}")
    if args.threads_per_process < 1:
        parser.error(f"--threads-per-process must be at least 1, got {args.threads_per_process}")
    if args.pgbouncer is not None and args.storage is not None:
        parser.error("--pgbouncer runs in front of the harness's own server: leave out --storage")
    plan = QUICK if args.quick else FULL
    plan = replace(
        plan,
        workers=tuple(args.workers or plan.workers),
        steady_trials=args.trials or plan.steady_trials,
        step_sleep_s=plan.step_sleep_s if args.step_sleep is None else args.step_sleep,
        systems=(System.AUTOTUNE,) if args.without_optuna else plan.systems,
        threads_per_process=args.threads_per_process,
        scenarios=tuple(Scenario(value) for value in args.scenarios),
        length_spread=args.length_spread,
    )
    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="autotune-scale-") as scratch:
        directory = Path(scratch)
        directory.chmod(0o755)  # the server's own directory inside is the postgres user's
        with contextlib.ExitStack() as stack:
            server = bouncer = None
            if args.storage is None:
                own = Server(directory / "pg", free_port(), args.max_connections)
                server = stack.enter_context(own.running())
            if args.pgbouncer is not None:
                pooled = Bouncer(directory / "pgbouncer", free_port(), own.port, args.pgbouncer)
                bouncer = stack.enter_context(pooled.running())
            results, _ = run_plan(plan, args.storage, server, directory, args.json, bouncer)
    figures = headline(results)
    print(markdown_table(results), flush=True)
    for name, value in figures.items():
        print(f"RESULT {name}={value:.3f}", flush=True)
    return 0


def run_plan(
    plan: Plan,
    storage: str | None,
    server: Server | None,
    directory: Path,
    json_path: Path | None = None,
    bouncer: Bouncer | None = None,
) -> tuple[list[CaseResult], str]:
    """Every case of the plan, one after the other, each line printed (and the JSON
    rewritten) as it ends: a run cut short keeps what it measured."""
    from autotune.storage import normalize_url

    url = normalize_url(storage) if storage else server.url
    machine = describe_machine(url)
    machine += f" trial_length_spread={plan.length_spread}"
    if bouncer is not None:
        machine += f" pgbouncer=transaction,pool={bouncer.pool_size}"
    print(machine, flush=True)
    results = []
    for case in tqdm(plan.cases(), desc="cases", unit="case"):
        result = run_case(url, case, directory, server, bouncer)
        tqdm.write(result.line())
        for sample in result.error_samples:
            tqdm.write(f"  {sample}")
        results.append(result)
        if json_path is not None:
            json_path.write_text(to_json(results, headline(results), machine))
    return results, machine


if __name__ == "__main__":
    sys.exit(main())
