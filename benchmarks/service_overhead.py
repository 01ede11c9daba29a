"""Service overhead on PostgreSQL: autotune's worker path vs plain Optuna 5, side by side.

Both systems run the same trivial objective (one log-uniform learning rate, 20 steps, each
step reports a value of a fixed learning curve and asks whether to prune) on the same
PostgreSQL server, in studies that already hold 0, 1 000 or 10 000 finished trials of 20
intermediate values each, with 1, 4 and 8 concurrent worker processes.

- **plain Optuna**: ``RDBStorage(url)`` with its defaults, ``SuccessiveHalvingPruner
  (min_resource=2, reduction_factor=3)``, ``RandomSampler``; the ``study.ask`` / ``tell``
  loop that ``study.optimize`` runs.
- **autotune**: ``autotune.storage.open_storage`` (``WriteBehindStorage``: reports written
  behind, one query per trial read; heartbeats, pooling, pre-ping) and a real
  :class:`autotune.worker._worker.Worker` (advisory-locked budget check, stale-trial janitor,
  heartbeat thread, rung pruner over the PostgreSQL rung store, retries), with the trivial
  objective in place of training (``objective_factory``).
- **autotune on RDBStorage**: the same worker on Optuna's ``RDBStorage`` with the same
  settings: autotune before ``WriteBehindStorage`` (the before/after of that change).

Prefilled trials are written with SQL in bulk (Optuna's tables; for plain Optuna with the
``completed_rung_*`` system attributes its pruner reads, for autotune with the rung store's
rows), so both pruners see the same competitors. Each worker runs one untimed warm-up trial,
then all start together. Figures:

- ``report_ms``: one ``trial.report`` + ``trial.should_prune``, median over every call;
  ``report_ms_rung``: the same at the rung steps only (2, 6 and 18, where the pruner
  decides), and ``report_ms_mean`` the mean over every call (it includes autotune's
  write-behind flushes when they fall on a report).
- ``trial_ms``: one trial, create to finish: the time from one trial's start to the next's
  in a worker (tell, next-trial choice, ask, the reports), median over trials.
- ``overhead_pct``: with each step sleeping 50 ms (1-second trials), the worker's seconds
  beyond the sleeps as a share of the sleeps, median over workers.

Usage: .venv/bin/python benchmarks/service_overhead.py [--quick] [--storage URL]
[--slow-only [--slow-trials N] [--slow-workers 1 8]] (only the 1-second trials)
(default: an embedded PostgreSQL of its own in a temporary directory).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import enum
import json
import math
import multiprocessing
import os
from pathlib import Path
import platform
import statistics
import sys
import tempfile
import time
from typing import Any
import warnings

import optuna
import sqlalchemy
from sqlalchemy import text

STEPS = 20
LEARNING_RATE = optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)
MIN_STEPS, REDUCTION_FACTOR = 2, 3
RUNG_STEPS = (2, 6, 18)  # min_steps * reduction_factor**r below STEPS, in both pruners
SLOW_STEP_S = 0.05  # 20 steps of 50 ms: 1-second trials


class System(enum.Enum):
    OPTUNA = "optuna"
    AUTOTUNE = "autotune"
    AUTOTUNE_ON_RDB = "autotune-on-rdbstorage"  # before WriteBehindStorage: Optuna's RDBStorage


@dataclass(frozen=True)
class Case:
    system: System
    finished: int
    workers: int
    trials: int  # timed trials per worker
    step_sleep_s: float = 0.0

    @property
    def study_name(self) -> str:
        slow = "-slow" if self.step_sleep_s else ""
        return f"bench-{self.system.value}-{self.finished}-{self.workers}{slow}"


@dataclass(frozen=True)
class WorkerTimes:
    """What one worker process measured."""

    report_ns: tuple[int, ...]
    rung_report_ns: tuple[int, ...]
    trial_starts_ns: tuple[int, ...]
    slept_s: float
    wall_s: float


@dataclass(frozen=True)
class CaseResult:
    case: Case
    report_ms: float
    report_ms_rung: float
    report_ms_mean: float
    trial_ms: float
    overhead_pct: float
    calls: int

    def line(self) -> str:
        case = self.case
        return (
            f"{case.system.value:9s} finished={case.finished:6d} workers={case.workers} "
            f"report_ms_p50={self.report_ms:8.3f} rung={self.report_ms_rung:8.3f} "
            f"mean={self.report_ms_mean:8.3f} trial_ms_p50={self.trial_ms:8.1f} "
            f"overhead_pct={self.overhead_pct:6.2f} calls={self.calls}"
        )


def curve(learning_rate: float, step: int) -> float:
    """The trivial objective's learning curve: best near 1e-2, falling with the steps."""
    return (math.log10(learning_rate) + 2.0) ** 2 / 4 + 0.5 / step


# --- the trivial objective, shared by both systems --------------------------------------------


@dataclass
class Recorder:
    """Timings collected inside one worker process."""

    step_sleep_s: float
    report_ns: list[int]
    trial_starts_ns: list[int]
    rung_report_ns: list[int] = field(default_factory=list)
    slept_s: float = 0.0

    def objective(self, trial: optuna.Trial, learning_rate: float) -> float:
        self.trial_starts_ns.append(time.perf_counter_ns())
        value = math.nan
        for step in range(1, STEPS + 1):
            if self.step_sleep_s:
                time.sleep(self.step_sleep_s)
                self.slept_s += self.step_sleep_s
            value = curve(learning_rate, step)
            started = time.perf_counter_ns()
            trial.report(value, step)
            pruned = trial.should_prune()
            self.report_ns.append(time.perf_counter_ns() - started)
            if step in RUNG_STEPS:
                self.rung_report_ns.append(self.report_ns[-1])
            if pruned and not self.step_sleep_s:  # 1-second trials always run 1 second
                raise optuna.TrialPruned()
        return value

    def reset(self) -> None:
        """Forget the warm-up."""
        self.report_ns.clear()
        self.rung_report_ns.clear()
        self.trial_starts_ns.clear()
        self.slept_s = 0.0

    def times(self, wall_s: float) -> WorkerTimes:
        return WorkerTimes(
            tuple(self.report_ns),
            tuple(self.rung_report_ns),
            tuple(self.trial_starts_ns),
            self.slept_s,
            wall_s,
        )


def run_optuna_worker(url: str, case: Case, seed: int, start: Any) -> WorkerTimes:
    """Plain Optuna: default RDBStorage, successive halving, the ask/tell loop."""
    study = optuna.load_study(
        study_name=case.study_name,
        storage=optuna.storages.RDBStorage(url),
        sampler=optuna.samplers.RandomSampler(seed=seed),
        pruner=optuna.pruners.SuccessiveHalvingPruner(
            min_resource=MIN_STEPS, reduction_factor=REDUCTION_FACTOR
        ),
    )
    recorder = Recorder(case.step_sleep_s, [], [])

    def one_trial() -> None:
        trial = study.ask()
        learning_rate = trial.suggest_float("learning_rate", 1e-4, 1.0, log=True)
        try:
            study.tell(trial, recorder.objective(trial, learning_rate))
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)

    one_trial()  # warm-up: imports, connections, the first read of the finished trials
    recorder.reset()
    start.wait()
    started = time.perf_counter()
    for _ in range(case.trials + 1):  # the extra trial's start closes the last cycle
        one_trial()
    return recorder.times(time.perf_counter() - started)


def run_autotune_worker(url: str, case: Case, seed: int, start: Any) -> WorkerTimes:
    """autotune: a real Worker around the trivial objective."""
    from autotune.campaign import load_campaign
    from autotune.storage import open_storage
    from autotune.worker._objectives import suggest_from
    from autotune.worker._worker import Worker
    from autotune.worker._worker import WorkerOptions

    storage = open_storage(url)
    if case.system is System.AUTOTUNE_ON_RDB:  # the same settings on Optuna's RDBStorage
        storage.engine.dispose()
        storage = optuna.storages.RDBStorage(
            url,
            engine_kwargs=storage.engine_kwargs,
            heartbeat_interval=storage.heartbeat_interval,
            grace_period=storage.grace_period,
            heartbeat_stale_trial_callback=storage.heartbeat_stale_trial_callback,
        )
    recorder = Recorder(case.step_sleep_s, [], [])

    def factory(spec: Any, stop: Any, setting: Any, checkpoints: Any) -> Callable:
        def objective(trial: optuna.Trial) -> float:
            params = suggest_from(trial, setting.distributions)
            return recorder.objective(trial, params["learning_rate"])

        return objective

    def worker(trials: int) -> Worker:
        options = WorkerOptions(worker_id=f"bench-{seed}", max_trials=trials, seed=seed)
        campaign = load_campaign(case.study_name, storage)
        return Worker(campaign, storage, options, objective_factory=factory)

    worker(1).run()  # warm-up
    recorder.reset()
    timed = worker(case.trials + 1)  # the extra trial's start closes the last cycle
    start.wait()
    started = time.perf_counter()
    timed.run()
    return recorder.times(time.perf_counter() - started)


def _worker_main(system: System, url: str, case: Case, seed: int, start: Any, out: Any) -> None:
    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run = run_optuna_worker if system is System.OPTUNA else run_autotune_worker
    out.put(run(url, case, seed, start))


# --- prefilling studies with finished trials ------------------------------------------------


def _prefill_trials(connection: sqlalchemy.Connection, study_id: int, count: int) -> None:
    """``count`` COMPLETE trials, 20 intermediate values each, into Optuna's tables."""
    distribution = optuna.distributions.distribution_to_json(LEARNING_RATE)
    connection.execute(
        text(
            "CREATE TEMP TABLE prefill ON COMMIT DROP AS "
            "WITH made AS (INSERT INTO trials (number, study_id, state, datetime_start, "
            "datetime_complete) SELECT g, :study, 'COMPLETE', now(), now() "
            "FROM generate_series(0, :count - 1) g RETURNING trial_id, number) "
            "SELECT trial_id, number, power(10, -4 + 4 * ((number * 0.6180339887) "
            "- floor(number * 0.6180339887))) AS lr FROM made"
        ),
        {"study": study_id, "count": count},
    )
    curve_sql = "(power(log(lr) + 2, 2) / 4 + 0.5 / {step})"
    statements = (
        "INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) "
        "SELECT trial_id, 'learning_rate', lr, :distribution FROM prefill",
        "INSERT INTO trial_intermediate_values (trial_id, step, intermediate_value, "
        f"intermediate_value_type) SELECT trial_id, s, {curve_sql.format(step='s')}, 'FINITE' "
        f"FROM prefill, generate_series(1, {STEPS}) s",
        "INSERT INTO trial_values (trial_id, objective, value, value_type) "
        f"SELECT trial_id, 0, {curve_sql.format(step=STEPS)}, 'FINITE' FROM prefill",
    )
    for statement in statements:
        connection.execute(text(statement), {"distribution": distribution})


def _prefill_optuna_rungs(connection: sqlalchemy.Connection) -> None:
    """The ``completed_rung_<r>`` system attributes Optuna's successive halving reads."""
    for rung, step in enumerate(RUNG_STEPS):
        connection.execute(
            text(
                "INSERT INTO trial_system_attributes (trial_id, key, value_json) "
                f"SELECT trial_id, 'completed_rung_{rung}', "
                f"(power(log(lr) + 2, 2) / 4 + 0.5 / {step})::text FROM prefill"
            )
        )


def _prefill_autotune_rungs(connection: sqlalchemy.Connection, study_id: int) -> None:
    """The rung store's values and, per rung, its count and cursor on the k-th best."""
    from autotune.pruning import keep_count
    from autotune.storage import STATE_TABLE
    from autotune.storage import VALUES_TABLE

    for rung, step in enumerate(RUNG_STEPS):
        value = f"(power(log(lr) + 2, 2) / 4 + 0.5 / {step})"
        connection.execute(
            text(
                f"INSERT INTO {VALUES_TABLE} (study_id, rung, trial_id, value, badness) "
                f"SELECT :study, {rung}, trial_id, {value}, {value} FROM prefill"
            ),
            {"study": study_id},
        )
        n = connection.execute(text("SELECT count(*) FROM prefill")).scalar_one()
        cursor = connection.execute(
            text(
                f"SELECT badness, trial_id FROM {VALUES_TABLE} WHERE study_id = :study "
                "AND rung = :rung ORDER BY badness, trial_id OFFSET :k - 1 LIMIT 1"
            ),
            {"study": study_id, "rung": rung, "k": keep_count(n, REDUCTION_FACTOR)},
        ).one()
        connection.execute(
            text(
                f"INSERT INTO {STATE_TABLE} (study_id, rung, direction, reduction_factor, n, "
                "cursor_badness, cursor_trial) VALUES (:study, :rung, 'minimize', :factor, "
                ":n, :badness, :trial)"
            ),
            {
                "study": study_id,
                "rung": rung,
                "factor": REDUCTION_FACTOR,
                "n": n,
                "badness": cursor.badness,
                "trial": cursor.trial_id,
            },
        )


def autotune_spec(case: Case, directory: Path) -> Path:
    """A one-round campaign on the trivial space: its budget covers prefill + every worker."""
    space = directory / "space.yaml"
    space.write_text(
        "name: bench\ngroups:\n  - name: learning_rate\n    params:\n"
        "      learning_rate: {type: float, low: 1.0e-4, high: 1.0, log: true}\n"
    )
    spec = directory / f"{case.study_name}.yaml"
    trials = case.finished + case.workers * (case.trials + 2)
    spec.write_text(
        f"name: {case.study_name}\ntask: digits-mlp\nsearch_space: {space}\n"
        f"metric: {{name: val_loss, direction: minimize}}\nmax_train_steps: {STEPS}\n"
        f"eval_interval: 1\nbatch_size: 32\ntrials: {trials}\nsampler: {{type: random}}\n"
        f"pruner: {{type: successive_halving, min_steps: {MIN_STEPS}, "
        f"reduction_factor: {REDUCTION_FACTOR}}}\nseed: 0\nbaseline: false\n"
        "reevaluation: {enabled: false}\n"
    )
    return spec


def create_study(url: str, case: Case, directory: Path) -> None:
    """The case's study with its finished trials."""
    if case.system is System.OPTUNA:
        storage = optuna.storages.RDBStorage(url)
        study = optuna.create_study(study_name=case.study_name, storage=storage)
        study_id = study._study_id
    else:
        from autotune.campaign import create_campaign
        from autotune.spec import load_study_spec
        from autotune.storage import ensure_schema
        from autotune.storage import open_storage
        from autotune.worker._defaults import task_defaults

        storage = open_storage(url)
        spec = load_study_spec(autotune_spec(case, directory))
        campaign, _ = create_campaign(spec, storage, task_defaults(spec))
        study_id = campaign.current.study_id
        ensure_schema(storage.engine)
    if case.finished:
        with storage.engine.begin() as connection:
            _prefill_trials(connection, study_id, case.finished)
            if case.system is System.OPTUNA:
                _prefill_optuna_rungs(connection)
            else:
                _prefill_autotune_rungs(connection, study_id)
    storage.engine.dispose()


# --- running a case ---------------------------------------------------------------------------


def run_case(url: str, case: Case, directory: Path) -> CaseResult:
    create_study(url, case, directory)
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(case.workers), context.Queue()
    processes = [
        context.Process(
            target=_worker_main, args=(case.system, url, case, seed, start, out), daemon=True
        )
        for seed in range(case.workers)
    ]
    for process in processes:
        process.start()
    times = [out.get(timeout=1800) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        if process.exitcode != 0:
            raise RuntimeError(f"{case.study_name}: a worker exited with {process.exitcode}")
    return summarize(case, times)


def summarize(case: Case, times: Sequence[WorkerTimes]) -> CaseResult:
    reports = [ns / 1e6 for t in times for ns in t.report_ns]
    cycles = [
        (b - a) / 1e6
        for t in times
        for a, b in zip(t.trial_starts_ns, t.trial_starts_ns[1:], strict=False)
    ]
    overheads = [100 * (t.wall_s - t.slept_s) / t.slept_s for t in times if t.slept_s]
    rung_reports = [ns / 1e6 for t in times for ns in t.rung_report_ns]
    return CaseResult(
        case,
        statistics.median(reports),
        statistics.median(rung_reports) if rung_reports else math.nan,
        statistics.mean(reports),
        statistics.median(cycles),
        statistics.median(overheads) if overheads else math.nan,
        len(reports),
    )


def embedded_server(directory: Path) -> str:
    from autotune.storage import embedded_url

    return embedded_url(directory / "state")


def describe_machine(url: str) -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as connection:
        server = connection.execute(text("SHOW server_version")).scalar_one()
    engine.dispose()
    return (
        f"nproc={os.cpu_count()} cpu={cpu!r} python={platform.python_version()} "
        f"optuna={optuna.__version__} sqlalchemy={sqlalchemy.__version__} "
        f"postgresql={server} load={os.getloadavg()[0]:.2f}"
    )


def cases(
    quick: bool,
    slow_only: bool = False,
    slow_trials: int | None = None,
    slow_workers: Sequence[int] = (8,),
) -> list[Case]:
    if slow_only:  # the overhead on 1-second trials alone, every system
        return [
            Case(system, 0, workers, slow_trials or 12, SLOW_STEP_S)
            for workers in slow_workers
            for system in System
        ]
    sizes = (0, 1000) if quick else (0, 1000, 10000)
    workers = (1, 4) if quick else (1, 4, 8)
    trials = 4 if quick else 12
    per_call = [
        Case(system, size, count, trials)
        for size in sizes
        for count in workers
        for system in System
    ]
    slow_workers = 4 if quick else 8
    slow_trials = 2 if quick else 4
    slow = [Case(system, 0, slow_workers, slow_trials, SLOW_STEP_S) for system in System]
    return per_call + slow


def headline(results: Sequence[CaseResult]) -> dict[str, float]:
    def pick(system: System, finished: int, workers: int, slow: bool = False) -> CaseResult:
        return next(
            r
            for r in results
            if r.case.system is system
            and r.case.finished == finished
            and r.case.workers == workers
            and bool(r.case.step_sleep_s) == slow
        )

    slow = {}
    for workers in sorted({r.case.workers for r in results if r.case.step_sleep_s}):
        for system, prefix in (
            (System.AUTOTUNE, ""),
            (System.AUTOTUNE_ON_RDB, "rdbstorage_"),
            (System.OPTUNA, "optuna_"),
        ):
            run = pick(system, 0, workers, slow=True)
            slow[f"{prefix}overhead_pct_1s_{workers}w"] = run.overhead_pct
    per_call = [r for r in results if not r.case.step_sleep_s]
    if not per_call:  # --slow-only
        return slow
    largest = max(r.case.finished for r in per_call)
    most = max(r.case.workers for r in per_call)
    size = f"{largest // 1000}k" if largest % 1000 == 0 else str(largest)
    auto_big, auto_empty = pick(System.AUTOTUNE, largest, most), pick(System.AUTOTUNE, 0, most)
    opt_big = pick(System.OPTUNA, largest, most)
    return {
        f"report_ms_p50_{size}_{most}w": auto_big.report_ms,
        f"report_ms_growth_0_to_{size}_{most}w": auto_big.report_ms / auto_empty.report_ms,
        f"rdbstorage_report_ms_p50_{size}_{most}w": pick(
            System.AUTOTUNE_ON_RDB, largest, most
        ).report_ms,
        f"optuna_report_ms_p50_{size}_{most}w": opt_big.report_ms,
        f"report_speedup_vs_optuna_{size}_{most}w": opt_big.report_ms / auto_big.report_ms,
        f"report_ms_rung_p50_{size}_{most}w": auto_big.report_ms_rung,
        f"optuna_report_ms_rung_p50_{size}_{most}w": opt_big.report_ms_rung,
        f"report_ms_mean_{size}_{most}w": auto_big.report_ms_mean,
        f"optuna_report_ms_mean_{size}_{most}w": opt_big.report_ms_mean,
        f"trial_ms_p50_{size}_{most}w": auto_big.trial_ms,
        f"optuna_trial_ms_p50_{size}_{most}w": opt_big.trial_ms,
        **slow,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes, workers, trials")
    parser.add_argument("--storage", help="PostgreSQL URL (default: an embedded server)")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument(
        "--slow-only", action="store_true", help="only the 1-second trials (see --slow-workers)"
    )
    parser.add_argument("--slow-trials", type=int, help="timed 1-second trials per worker")
    parser.add_argument(
        "--slow-workers", type=int, nargs="+", default=[8], help="worker counts (--slow-only)"
    )
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="autotune-overhead-") as scratch:
        directory = Path(scratch)
        url = args.storage or embedded_server(directory)
        if args.storage:
            from autotune.storage import normalize_url

            url = normalize_url(args.storage)
        print(describe_machine(url), flush=True)
        results = []
        for case in cases(args.quick, args.slow_only, args.slow_trials, args.slow_workers):
            result = run_case(url, case, directory)
            print(result.line(), flush=True)
            results.append(result)
    figures = headline(results)
    if args.json:
        rows = [
            {**r.__dict__, "case": {**r.case.__dict__, "system": r.case.system.value}}
            for r in results
        ]
        args.json.write_text(json.dumps({"results": rows, "headline": figures}, indent=1))
    for name, value in figures.items():
        print(f"RESULT {name}={value:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
