"""Storage calls: wall and CPU time of the per-trial storage calls a worker makes (issue 16).

One process, one connection pool, no concurrency: what a call costs by itself, so that a
change to one call shows without the noise of a whole worker run (``service_overhead.py``,
``scale.py``). Calls timed, each ``--calls`` times on one study:

- ``create_trial``: a new RUNNING trial (``WriteBehindStorage.create_new_trial``), as the
  worker's hand-out makes one (capped at the budget's room, or under the study's lock);
- ``rung_decision``: a value recorded at a rung and ASHA's decision
  (``record_rung_value``), at rungs that already hold values, as most decisions are;
- ``get_trial``: one trial read back from the database;
- ``tell``: a trial's end written with its buffered writes (``finish_trial``, as the worker's
  ``tell`` makes it): ``REPORTS`` buffered reports, its value and its finished state.

Usage: .venv/bin/python benchmarks/storage_calls.py [--quick] [--calls 300] [--rounds 3]
[--storage URL] (default: an embedded PostgreSQL of its own in a temporary directory).
Prints per call and round ``wall_ms`` and ``cpu_ms`` (this process's CPU: the client's
share), then RESULT lines with the median over rounds.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
import random
import statistics
import sys
import tempfile
import time
import uuid
import warnings

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune.spec import Direction
from autotune.storage import WriteBehindStorage
from autotune.storage import embedded_url
from autotune.storage import engine_of
from autotune.storage import normalize_url
from autotune.storage import record_rung_value

WARM_UP_RUNGS = 2  # rungs filled before timing: a decision's rung holds values already
REPORTS = 20  # buffered reports per trial at its tell, as a scale.py trial makes them
REDUCTION_FACTOR = 3


def timed(call: Callable[[int], object], calls: int) -> tuple[float, float]:
    """(wall ms, CPU ms) per call of ``call(i)`` for i in range(calls)."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(calls):
        call(i)
    return (
        (time.perf_counter() - wall) * 1000 / calls,
        (time.process_time() - cpu) * 1000 / calls,
    )


def one_round(url: str, calls: int, seed: int) -> dict[str, tuple[float, float]]:
    """Every call timed once on a fresh study; the study is deleted after."""
    storage = WriteBehindStorage(url, flush_interval_s=3600)
    name = f"storage-calls-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(study_name=name, storage=storage)
    engine, study_id, rng = engine_of(storage), study._study_id, random.Random(seed)
    try:
        created = [storage._create_new_trial(study_id) for _ in range(calls)]  # warm
        trials = [trial._trial_id for trial in created]
        for rung in range(WARM_UP_RUNGS):
            for trial_id in trials:
                record_rung_value(
                    engine,
                    study_id,
                    rung,
                    trial_id,
                    rng.random(),
                    REDUCTION_FACTOR,
                    Direction.MINIMIZE,
                )
        return {
            "create_trial": timed(lambda _: storage.create_new_trial(study_id), calls),
            "rung_decision": timed(
                lambda i: record_rung_value(
                    engine,
                    study_id,
                    WARM_UP_RUNGS,
                    trials[i],
                    rng.random(),
                    REDUCTION_FACTOR,
                    Direction.MINIMIZE,
                ),
                calls,
            ),
            "get_trial": timed(lambda i: storage.get_trial(trials[i]), calls),
            "tell": tell_timed(storage, created, calls),
        }
    finally:
        optuna.delete_study(study_name=name, storage=storage)
        engine.dispose()


def tell_timed(storage: WriteBehindStorage, created: Sequence[FrozenTrial], calls: int):
    """``timed`` for the tells of ``created``, each with ``REPORTS`` reports buffered."""
    for trial in created:
        for step in range(1, REPORTS + 1):
            storage.set_trial_intermediate_value(trial._trial_id, step, 1.0 / step)

    def tell(i: int) -> None:
        storage.finish_trial(created[i]._trial_id, TrialState.COMPLETE, [0.5], known=created[i])

    return timed(tell, calls)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 calls, 1 round")
    parser.add_argument("--calls", type=int, help="calls per kind and round (300)")
    parser.add_argument("--rounds", type=int, help="rounds, the median reported (3)")
    parser.add_argument("--storage", help="PostgreSQL URL (default: an embedded server)")
    args = parser.parse_args(argv)
    calls = (50 if args.quick else 300) if args.calls is None else args.calls
    rounds_wanted = (1 if args.quick else 3) if args.rounds is None else args.rounds
    if calls < 1 or rounds_wanted < 1:
        parser.error("--calls and --rounds must be at least 1")
    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="autotune-calls-") as scratch:
        url = normalize_url(args.storage) if args.storage else embedded_url(Path(scratch) / "s")
        rounds = []
        for seed in range(rounds_wanted):
            rounds.append(one_round(url, calls, seed))
            for kind, (wall_ms, cpu_ms) in rounds[-1].items():
                print(f"round {seed} {kind:14s} wall_ms={wall_ms:7.3f} cpu_ms={cpu_ms:7.3f}")
    for kind in rounds[0]:
        for index, measure in enumerate(("wall_ms", "cpu_ms")):
            median = statistics.median(r[kind][index] for r in rounds)
            print(f"RESULT {kind}_{measure}={median:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
