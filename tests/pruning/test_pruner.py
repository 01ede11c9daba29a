"""The rung store and the Optuna pruner on a real PostgreSQL, with real studies."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
import contextlib
import math
import multiprocessing

import numpy as np
import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState
import pytest
import sqlalchemy
from sqlalchemy.pool import NullPool

from autotune.pruning import RungDecision
from autotune.pruning import decide
from autotune.pruning import keep_count
from autotune.pruning import rung_reports
from autotune.spec import Direction
from autotune.storage import engine_of
from autotune.storage import ensure_schema
from autotune.storage import forget_rung_values
from autotune.storage import rank_at_rung
from autotune.storage import record_rung_value
from autotune.storage import remove_failed_trials
from autotune.storage import remove_trial
from autotune.storage import trial_rungs
from autotune.storage._schema import KEEP_COUNT_FUNCTION
from autotune.storage._schema import RECORD_FUNCTION
from autotune.worker._pruner import RungPruner

optuna.logging.set_verbosity(optuna.logging.WARNING)

CONTINUE, PRUNE = RungDecision.CONTINUE, RungDecision.PRUNE
MIN, MAX = Direction.MINIMIZE, Direction.MAXIMIZE
NAN = float("nan")


def new_study(
    url: str, pruner: optuna.pruners.BasePruner | None = None, direction: str = "minimize"
) -> optuna.Study:
    return optuna.create_study(
        storage=RDBStorage(url), pruner=pruner, direction=direction, study_name="s"
    )


def curves(seed: int, trials: int, steps: int) -> np.ndarray:
    """Synthetic noisy decaying losses, one row per trial, one column per step."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    floor = rng.uniform(0.1, 1.0, size=(trials, 1))
    height = rng.uniform(1.0, 3.0, size=(trials, 1))
    tau = rng.uniform(3.0, 30.0, size=(trials, 1))
    return floor + height * np.exp(-t / tau) + rng.normal(0.0, 0.02, size=(trials, steps))


def curve_objective(table: np.ndarray, every: int = 1) -> optuna.trial.TrialFunction:
    def objective(trial: optuna.Trial) -> float:
        curve = table[trial.number]
        for step in range(0, len(curve), every):
            trial.report(float(curve[step]), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(curve[-1])

    return objective


@contextlib.contextmanager
def counting_statements(engine: sqlalchemy.Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))  # (conn, cursor, statement, parameters, ...)

    sqlalchemy.event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", count)


def expected_outcomes(
    table: np.ndarray, rungs: tuple[int, ...], factor: int, direction: Direction
) -> list[tuple[TrialState, int]]:
    """(state, last reported step) of sequential trials, computed with the pure math."""
    recorded: list[list[float]] = [[] for _ in rungs]
    outcomes = []
    for curve in table:
        outcome = (TrialState.COMPLETE, len(curve) - 1)
        for rung, step in enumerate(rungs):
            value = float(curve[step])
            decision = decide(value, recorded[rung], factor, direction)
            recorded[rung].append(value)
            if decision == PRUNE:
                outcome = (TrialState.PRUNED, step)
                break
        outcomes.append(outcome)
    return outcomes


def check_store_invariants(engine: sqlalchemy.Engine, study_id: int) -> None:
    """Every rung's count and cursor agree with the values recorded there."""
    with engine.connect() as connection:
        states = connection.execute(
            sqlalchemy.text(
                "SELECT rung, reduction_factor, min_keep, n, cursor_badness, cursor_trial "
                "FROM autotune_rung_state WHERE study_id = :s ORDER BY rung"
            ),
            {"s": study_id},
        ).all()
        for rung, factor, min_keep, n, cursor_badness, cursor_trial in states:
            ordered = connection.execute(
                sqlalchemy.text(
                    "SELECT badness, trial_id FROM autotune_rung_values "
                    "WHERE study_id = :s AND rung = :r ORDER BY badness, trial_id"
                ),
                {"s": study_id, "r": rung},
            ).all()
            assert n == len(ordered)
            if n == 0:
                assert cursor_trial is None
            else:
                k = keep_count(n, factor, min_keep)
                assert cursor_trial == ordered[k - 1].trial_id
                assert math.isnan(cursor_badness) or cursor_badness == ordered[k - 1].badness


def test_sequential_trials_are_pruned_as_the_pure_math_says(storage_url: str) -> None:
    pruner = RungPruner(min_steps=2, reduction_factor=3, max_train_steps=30, direction=MIN)
    assert pruner.rungs == (2, 6, 18)
    table = curves(seed=7, trials=40, steps=30)
    study = new_study(storage_url, pruner)
    study.optimize(curve_objective(table), n_trials=len(table))
    trials = study.get_trials()
    actual = [(t.state, max(t.intermediate_values)) for t in trials]
    assert actual == expected_outcomes(table, pruner.rungs, 3, MIN)
    assert {TrialState.PRUNED, TrialState.COMPLETE} <= {state for state, _ in actual}
    check_store_invariants(engine_of(study._storage), study._study_id)


def test_maximize_and_sparse_reports(storage_url: str) -> None:
    """Reports every 5 steps: a rung is judged at the first report at or past its step."""
    pruner = RungPruner(min_steps=4, reduction_factor=2, max_train_steps=40, direction=MAX)
    assert pruner.rungs == (4, 8, 16, 32)
    reported = {step: 0.0 for step in range(0, 40, 5)}
    assert [r.step for r in rung_reports(reported, pruner.rungs)] == [5, 10, 20, 35]
    table = -curves(seed=3, trials=30, steps=40)
    study = new_study(storage_url, pruner, direction="maximize")
    study.optimize(curve_objective(table, every=5), n_trials=len(table))
    actual = [(t.state, max(t.intermediate_values) // 5) for t in study.get_trials()]
    assert actual == expected_outcomes(table[:, ::5], (1, 2, 4, 7), 2, MAX)
    assert TrialState.PRUNED in {state for state, _ in actual}


def test_no_query_unless_a_rung_is_crossed(storage_url: str) -> None:
    pruner = RungPruner(min_steps=10, reduction_factor=3, max_train_steps=100, direction=MIN)
    study = new_study(storage_url, pruner)
    trial = study.ask()
    engine = engine_of(study._storage)
    counts = []
    for step in (0, 5, 10, 15, 29, 30, 31, 95):
        trial.report(1.0, step)
        with counting_statements(engine) as statements:
            assert not trial.should_prune()
        counts.append(len(statements))
    assert [c > 0 for c in counts] == [False, False, True, False, False, True, False, True]


def test_a_pruned_trial_stays_pruned_without_a_query(storage_url: str) -> None:
    pruner = RungPruner(min_steps=1, reduction_factor=2, max_train_steps=10, direction=MIN)
    study = new_study(storage_url, pruner)
    engine = engine_of(study._storage)
    good, bad = study.ask(), study.ask()
    good.report(1.0, 1)
    assert not good.should_prune()
    bad.report(2.0, 1)
    assert bad.should_prune()
    with counting_statements(engine) as statements:
        assert bad.should_prune()
    assert statements == []


def test_a_new_pruner_does_not_judge_recorded_rungs_again(storage_url: str) -> None:
    """E.g. a pruner re-created mid-trial: the store tells which rungs were judged."""
    settings = {"min_steps": 1, "reduction_factor": 2, "max_train_steps": 10, "direction": MIN}
    study = new_study(storage_url, RungPruner(**settings))
    engine, study_id = engine_of(study._storage), study._study_id
    first, second = study.ask(), study.ask()
    for step, value in ((1, 1.0), (2, 1.0)):
        first.report(value, step)
        assert not first.should_prune()
    second.report(0.5, 1)
    assert not second.should_prune()
    second.report(0.5, 2)  # rung 1 (step 2) is now judged against first's 1.0
    assert not second.should_prune()
    study.pruner = RungPruner(**settings)
    first.report(1.0, 3)  # rung 0 and 1 already recorded, rung 2 (step 4) not reached
    with counting_statements(engine) as statements:
        assert not first.should_prune()
    assert len(statements) == 1  # the recorded-rungs probe, no new decision
    assert rank_at_rung(engine, study_id, 1, 1.0, MIN) == (1, 2)
    first.report(3.0, 4)  # rung 2: first at its rung, continues
    assert not first.should_prune()
    assert rank_at_rung(engine, study_id, 2, 3.0, MIN) == (0, 1)


def test_store_agrees_with_the_pure_math_through_ties_nan_and_removals(storage_url: str) -> None:
    rng = np.random.default_rng(11)
    study = new_study(storage_url)
    engine, study_id = engine_of(study._storage), study._study_id
    trials = [study.ask()._trial_id for _ in range(60)]
    choices = [0.1, 0.2, 0.3, 0.4, 0.5, math.inf, -math.inf, NAN]
    settings = [(MIN, 3, 1), (MAX, 2, 5), (MIN, 4, 12)]  # (direction, factor, min_keep)
    recorded: list[dict[int, float]] = [{} for _ in settings]
    for rung, (direction, factor, min_keep) in enumerate(settings):
        # Two passes: the second re-records most trials with a new value (an upsert).
        for trial_id in [*rng.permutation(trials).tolist(), *rng.permutation(trials).tolist()]:
            value = float(rng.choice(choices))
            others = [v for t, v in recorded[rung].items() if t != trial_id]
            expected = decide(value, others, factor, direction, min_keep)
            decision = record_rung_value(
                engine, study_id, rung, trial_id, value, factor, direction, min_keep
            )
            assert decision == expected
            recorded[rung][trial_id] = value
            better, total = rank_at_rung(engine, study_id, rung, value, direction)
            assert total == len(recorded[rung])
            assert (better < keep_count(total, factor, min_keep)) == (expected == CONTINUE)
            if rng.random() < 0.2:  # drop a random trial from every rung, maybe this one
                gone = int(rng.choice(list(recorded[rung])))
                holding = [r for r in recorded if gone in r]
                assert remove_trial(engine, study_id, gone) == len(holding)
                for r in holding:
                    r.pop(gone)
            check_store_invariants(engine, study_id)


def test_a_failed_trials_values_do_not_prune_its_retry(storage_url: str) -> None:
    study = new_study(storage_url)
    engine, study_id = engine_of(study._storage), study._study_id
    other, failed = study.ask(), study.ask()
    assert record_rung_value(engine, study_id, 0, other._trial_id, 1.0, 2, MIN) == CONTINUE
    assert record_rung_value(engine, study_id, 0, failed._trial_id, 0.5, 2, MIN) == CONTINUE
    study.tell(failed, state=TrialState.FAIL)
    assert remove_trial(engine, study_id, failed._trial_id) == 1
    retry = study.ask()  # same configuration, slightly worse this time
    assert record_rung_value(engine, study_id, 0, retry._trial_id, 0.6, 2, MIN) == CONTINUE
    assert decide(0.6, [1.0, 0.5], 2, MIN) == PRUNE  # what the failed value would have done


def test_a_trials_rungs_are_reached_through_optunas_public_objects(storage_url: str) -> None:
    study = new_study(storage_url)
    cached = optuna.load_study(study_name="s", storage=storage_url)  # behind Optuna's cache
    trial = study.ask()
    rungs = trial_rungs(cached, cached.trials[0])
    assert rungs.record(0, 1.0, 2, MIN) == CONTINUE
    assert rungs.record(1, 0.5, 2, MIN) == CONTINUE
    assert trial_rungs(study, study.trials[0]).recorded(3) == (0, 1)
    study.tell(trial, state=TrialState.FAIL)
    forget_rung_values(study, study.trials[0])
    assert rungs.recorded(3) == ()
    in_memory = optuna.create_study()
    in_memory.ask()
    with pytest.raises(TypeError, match="RDBStorage"):
        trial_rungs(in_memory, in_memory.trials[0])
    forget_rung_values(in_memory, in_memory.trials[0])  # no rung store: nothing to forget


def test_a_trial_that_is_no_longer_running_records_nothing(storage_url: str) -> None:
    study = new_study(storage_url)
    engine, study_id = engine_of(study._storage), study._study_id
    good, zombie = study.ask(), study.ask()
    record_rung_value(engine, study_id, 0, good._trial_id, 1.0, 3, MIN)
    study.tell(zombie, state=TrialState.FAIL)  # e.g. marked stale by another worker's janitor
    assert record_rung_value(engine, study_id, 0, zombie._trial_id, 9.0, 3, MIN) == CONTINUE
    assert rank_at_rung(engine, study_id, 0, 9.0, MIN) == (1, 1)


def test_remove_failed_trials_sweeps_what_the_worker_missed(storage_url: str) -> None:
    study = new_study(storage_url)
    engine, study_id = engine_of(study._storage), study._study_id
    trials = [study.ask() for _ in range(6)]
    for rung in range(2):
        for i, trial in enumerate(trials):
            record_rung_value(engine, study_id, rung, trial._trial_id, float(i), 3, MIN)
    study.tell(trials[0], state=TrialState.FAIL)
    study.tell(trials[1], state=TrialState.FAIL)
    study.tell(trials[2], 2.0)
    study.tell(trials[3], state=TrialState.PRUNED)
    assert remove_failed_trials(engine, study_id) == 4
    assert remove_failed_trials(engine, study_id) == 0
    assert rank_at_rung(engine, study_id, 1, 2.5, MIN) == (1, 4)  # completed, pruned, running
    check_store_invariants(engine, study_id)


def test_functions_work_on_a_database_without_the_tables(storage_url: str) -> None:
    study = new_study(storage_url)
    engine, study_id = engine_of(study._storage), study._study_id
    assert rank_at_rung(engine, study_id, 0, 1.0, MIN) == (0, 0)
    assert remove_trial(engine, study_id, 1) == 0
    assert remove_failed_trials(engine, study_id) == 0
    trial = study.ask()
    assert record_rung_value(engine, study_id, 0, trial._trial_id, 1.0, 3, MIN) == CONTINUE


def test_schema_creation_is_safe_when_many_workers_start_at_once(storage_url: str) -> None:
    engines = [sqlalchemy.create_engine(storage_url) for _ in range(8)]
    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            list(pool.map(ensure_schema, engines))
        ensure_schema(engines[0])
    finally:
        for engine in engines:
            engine.dispose()


def test_a_rung_keeps_its_direction_and_reduction_factor(storage_url: str) -> None:
    study = new_study(storage_url)
    engine, study_id = engine_of(study._storage), study._study_id
    trial = study.ask()
    record_rung_value(engine, study_id, 0, trial._trial_id, 1.0, 3, MIN)
    with pytest.raises(ValueError, match="reduction_factor 3"):
        record_rung_value(engine, study_id, 0, trial._trial_id, 1.0, 2, MIN)
    with pytest.raises(ValueError, match="minimize"):
        record_rung_value(engine, study_id, 0, trial._trial_id, 1.0, 3, MAX)
    with pytest.raises(ValueError, match="min_keep 1"):
        record_rung_value(engine, study_id, 0, trial._trial_id, 1.0, 3, MIN, min_keep=4)


@pytest.mark.parametrize(
    "drop",
    [
        "ALTER TABLE autotune_rung_state DROP COLUMN min_keep",  # made before min_keep
        f"DROP FUNCTION {RECORD_FUNCTION}",  # made before the decision function
    ],
)
def test_a_store_made_by_an_earlier_version_gains_what_it_lacks(
    storage_url: str, drop: str
) -> None:
    study = new_study(storage_url)
    engine, study_id = engine_of(study._storage), study._study_id
    first, second = study.ask(), study.ask()
    record_rung_value(engine, study_id, 0, first._trial_id, 1.0, 3, MIN)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(drop))
    assert record_rung_value(engine, study_id, 0, second._trial_id, 2.0, 3, MIN) == PRUNE
    check_store_invariants(engine, study_id)


def test_the_pruner_needs_postgresql() -> None:
    study = optuna.create_study(pruner=RungPruner(1, 3, 100, MIN))
    trial = study.ask()
    trial.report(1.0, 1)
    with pytest.raises(TypeError, match="RDBStorage"):
        trial.should_prune()
    with pytest.raises(TypeError, match="Direction"):
        RungPruner(1, 3, 100, "minimize")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reduction_factor"):
        RungPruner(1, 1, 100, MIN)


def test_no_rungs_below_the_budget_never_prunes(storage_url: str) -> None:
    study = new_study(storage_url, RungPruner(50, 3, 40, MIN))
    study.optimize(curve_objective(curves(seed=5, trials=5, steps=40)), n_trials=5)
    assert all(t.state == TrialState.COMPLETE for t in study.get_trials())


def test_optimize_a_toy_objective(storage_url: str) -> None:
    """Minimise (x - 2)^2 learned over 27 steps; bad x are pruned early, the best completes."""
    sampler = optuna.samplers.RandomSampler(seed=0)
    pruner = RungPruner(min_steps=1, reduction_factor=3, max_train_steps=27, direction=MIN)
    study = optuna.create_study(storage=RDBStorage(storage_url), sampler=sampler, pruner=pruner)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -10.0, 10.0)
        for step in range(27):
            loss = (x - 2.0) ** 2 + 10.0 / (step + 1)
            trial.report(loss, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return loss

    study.optimize(objective, n_trials=30)  # one thread: the order, so the counts, are fixed
    states = [t.state for t in study.trials]
    assert states.count(TrialState.PRUNED) >= 15
    assert states.count(TrialState.COMPLETE) >= 2
    best = study.best_trial
    assert abs(best.params["x"] - 2.0) == min(
        abs(t.params["x"] - 2.0) for t in study.trials if t.state == TrialState.COMPLETE
    )
    check_store_invariants(engine_of(study._storage), study._study_id)


def _run_worker(url: str, seed: int, n_trials: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = RungPruner(min_steps=1, reduction_factor=2, max_train_steps=16, direction=MIN)
    study = optuna.load_study(study_name="s", storage=url, pruner=pruner)
    table = curves(seed=seed, trials=1000, steps=16)
    study.optimize(curve_objective(table[seed * 500 :]), n_trials=n_trials)


@pytest.mark.e2e
def test_two_processes_deciding_concurrently_keep_the_store_consistent(storage_url: str) -> None:
    study = new_study(storage_url)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_run_worker, args=(storage_url, s, 40)) for s in (0, 1)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=240)
    assert [w.exitcode for w in workers] == [0, 0]
    trials = study.get_trials()
    assert len(trials) == 80
    assert {t.state for t in trials} == {TrialState.PRUNED, TrialState.COMPLETE}
    engine, study_id = engine_of(study._storage), study._study_id
    check_store_invariants(engine, study_id)
    with engine.connect() as connection:
        rows = connection.execute(
            sqlalchemy.text(
                "SELECT rung, trial_id, value FROM autotune_rung_values WHERE study_id = :s"
            ),
            {"s": study_id},
        ).all()
    by_id = {t._trial_id: t for t in trials}
    rungs = (1, 2, 4, 8)
    for rung, trial_id, value in rows:  # every value is the trial's report at that rung
        assert by_id[trial_id].intermediate_values[rungs[rung]] == value
    for trial in trials:  # and every trial recorded each rung it reached
        reached = [r for r, step in enumerate(rungs) if step <= max(trial.intermediate_values)]
        assert sorted(r for r, t, _ in rows if t == trial._trial_id) == reached


def test_ensuring_a_complete_schema_locks_no_table(storage_url: str) -> None:
    """A worker that found the tables missing and waited for another to make them must not
    run DDL once they exist: ALTER TABLE would wait on the deciding worker (a deadlock)."""
    engine = engine_of(new_study(storage_url)._storage)
    ensure_schema(engine)
    impatient = sqlalchemy.create_engine(
        engine.url, connect_args={"options": "-c lock_timeout=2000"}, poolclass=NullPool
    )
    with engine.connect() as deciding:  # holds what a decision holds on the rung tables
        deciding.execute(sqlalchemy.text("LOCK TABLE autotune_rung_state IN ROW SHARE MODE"))
        deciding.execute(sqlalchemy.text("LOCK TABLE autotune_rung_values IN ROW EXCLUSIVE MODE"))
        ensure_schema(impatient)  # DDL here would wait for the lock, and time out


def test_the_stores_keep_count_in_sql_is_the_pure_one(storage_url: str) -> None:
    engine = engine_of(new_study(storage_url)._storage)
    ensure_schema(engine)
    grid = [(n, f, k) for n in range(0, 40) for f in (2, 3, 4, 7) for k in (1, 2, 5)]
    with engine.connect() as connection:
        in_sql = connection.execute(
            sqlalchemy.text(
                f"SELECT {KEEP_COUNT_FUNCTION}(n, f, k) FROM unnest(:n, :f, :k) AS g(n, f, k)"
            ),
            {"n": [g[0] for g in grid], "f": [g[1] for g in grid], "k": [g[2] for g in grid]},
        ).scalars()
        assert list(in_sql) == [keep_count(*g) for g in grid]


def test_a_decision_is_one_round_trip_and_its_own_transaction(storage_url: str) -> None:
    study = new_study(storage_url)
    engine, study_id = engine_of(study._storage), study._study_id
    first, second = study.ask(), study.ask()
    record_rung_value(engine, study_id, 0, first._trial_id, 1.0, 2, MIN)
    autocommit: list[bool] = []

    def note_autocommit(conn: sqlalchemy.Connection, *_: object) -> None:
        autocommit.append(conn.connection.dbapi_connection.autocommit)

    sqlalchemy.event.listen(engine, "before_cursor_execute", note_autocommit)
    try:
        with counting_statements(engine) as statements:
            assert record_rung_value(engine, study_id, 0, second._trial_id, 2.0, 2, MIN) == PRUNE
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", note_autocommit)
    assert len(statements) == 1
    assert autocommit == [True]  # psycopg2 sends no BEGIN, and no COMMIT after it
    with engine.connect() as connection:  # the pool's connection is back to transactions
        assert connection.connection.dbapi_connection.autocommit is False
    with engine.connect() as connection:  # committed: another connection sees it
        assert (
            connection.execute(
                sqlalchemy.text("SELECT count(*) FROM autotune_rung_values WHERE study_id = :s"),
                {"s": study_id},
            ).scalar()
            == 2
        )
