"""Write-behind of a running trial's reports and attributes, on a real PostgreSQL.

A second, plain ``RDBStorage`` plays the other processes (the dashboard, other workers).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
import math
import pickle
import time
from typing import Any
from typing import TypeVar

import optuna
from optuna.samplers import RandomSampler
from optuna.trial import TrialState
import pytest
import sqlalchemy

from autotune.storage import RetryStaleTrial
from autotune.storage import WriteBehindStorage
from autotune.storage import create_trial_within
from autotune.storage import flush
from autotune.storage import record_heartbeat
from autotune.storage import tell
from autotune.storage import trial_curve
from autotune.storage._schema import CREATE_TRIAL_FUNCTION
from autotune.storage._schema import WRITE_TRIAL_FUNCTION
from autotune.storage._write_behind import TrialLimitReached
from autotune.storage._write_behind import _Pending

HOUR = 3600.0
_T = TypeVar("_T")


def studies(url: str, flush_interval_s: float) -> tuple[optuna.Study, optuna.Study]:
    """The same study through a write-behind storage and through a plain one."""
    buffered = WriteBehindStorage(url, flush_interval_s=flush_interval_s)
    study = optuna.create_study(study_name="s", storage=buffered)
    return study, optuna.load_study(study_name="s", storage=optuna.storages.RDBStorage(url))


def seen_elsewhere(observer: optuna.Study, number: int = 0) -> optuna.trial.FrozenTrial:
    return optuna.load_study(study_name="s", storage=observer._storage._backend).trials[number]


def test_reports_and_attributes_reach_the_database_together_at_tell(storage_url: str) -> None:
    study, observer = studies(storage_url, HOUR)
    trial = study.ask()
    trial.suggest_float("x", 0, 1)  # a parameter is written through at once
    for step in range(1, 21):
        trial.report(1.0 / step, step)
    trial.set_user_attr("best_step", 20)

    elsewhere = seen_elsewhere(observer)
    assert elsewhere.intermediate_values == {} and elsewhere.user_attrs == {}
    assert "x" in elsewhere.params
    own = study._storage.get_trial(trial._trial_id)  # this process reads its own writes
    assert len(own.intermediate_values) == 20 and own.user_attrs == {"best_step": 20}

    study.tell(trial, 0.05)
    done = seen_elsewhere(observer)
    assert done.state is TrialState.COMPLETE
    assert done.intermediate_values == {s: 1.0 / s for s in range(1, 21)}
    assert done.user_attrs == {"best_step": 20}


def test_parameters_of_known_distributions_are_written_behind_and_checked_at_once(
    storage_url: str,
) -> None:
    study, observer = studies(storage_url, HOUR)
    first = study.ask()
    first.suggest_float("x", 0, 1)
    first.suggest_categorical("c", ["a", "b"])
    study.tell(first, 1.0)

    trial = study.ask()
    values = {"x": trial.suggest_float("x", 0, 1), "c": trial.suggest_categorical("c", ["a", "b"])}
    assert seen_elsewhere(observer, 1).params == {}
    assert study._storage.get_trial(trial._trial_id).params == values  # own writes
    flush(trial)
    assert seen_elsewhere(observer, 1).params == values
    assert seen_elsewhere(observer, 1).distributions == first.distributions

    other = study.ask()  # a changed distribution fails at the suggest, not at a later flush
    with pytest.raises(ValueError, match="dynamic value space"):
        other.suggest_categorical("c", ["a", "z"])


def test_a_trial_that_never_sent_a_heartbeat_goes_stale_after_the_grace_period(
    storage_url: str,
) -> None:
    storage = WriteBehindStorage(
        storage_url,
        heartbeat_interval=1,
        grace_period=1,
        heartbeat_stale_trial_callback=RetryStaleTrial(),
    )
    study = optuna.create_study(study_name="s", storage=storage)
    silent = study.ask()  # its worker was killed before the first heartbeat
    beating = study.ask()
    storage.record_heartbeat(beating._trial_id)
    optuna.storages.fail_stale_trials(study)  # first seen silent: not stale yet
    assert [t.state for t in study.trials] == [TrialState.RUNNING] * 2

    time.sleep(1.5)
    storage.record_heartbeat(beating._trial_id)
    optuna.storages.fail_stale_trials(study)
    first, second, retry = study.trials
    assert (first.state, second.state, retry.state) == (
        TrialState.FAIL,
        TrialState.RUNNING,
        TrialState.WAITING,
    )
    assert retry.system_attrs["failed_trial"] == silent.number


def test_a_trials_curve_is_read_up_to_a_step_in_order(storage_url: str) -> None:
    study, observer = studies(storage_url, HOUR)
    trial = study.ask()
    for step in (30, 10, 20, 40):
        trial.report(step / 100, step)
    assert trial_curve(observer._storage, "s", 0, 30) == {}  # not written yet
    assert trial_curve(study._storage, "s", 0, 30) == {10: 0.1, 20: 0.2, 30: 0.3}  # own writes
    assert list(trial_curve(study._storage, "s", 0, 30)) == [10, 20, 30]
    assert trial_curve(observer._storage, "s", 0, 100) == {10: 0.1, 20: 0.2, 30: 0.3, 40: 0.4}


def test_flush_interval_zero_writes_through(storage_url: str) -> None:
    study, observer = studies(storage_url, 0.0)
    trial = study.ask()
    trial.report(0.5, 1)
    trial.set_user_attr("k", [1, 2])
    elsewhere = seen_elsewhere(observer)
    assert elsewhere.intermediate_values == {1: 0.5} and elsewhere.user_attrs == {"k": [1, 2]}


def test_flush_and_heartbeat_make_writes_durable(storage_url: str) -> None:
    study, observer = studies(storage_url, HOUR)
    trial = study.ask()
    trial.report(0.5, 1)
    trial.set_user_attr("recovery", {"step": 1})
    flush(trial)
    assert seen_elsewhere(observer).user_attrs == {"recovery": {"step": 1}}
    trial.report(0.25, 2)
    record_heartbeat(study._storage, trial)
    assert seen_elsewhere(observer).intermediate_values == {1: 0.5, 2: 0.25}


def test_a_trial_failed_elsewhere_drops_its_writes_and_refuses_more(storage_url: str) -> None:
    study, observer = studies(storage_url, HOUR)
    trial = study.ask()
    trial.report(0.5, 1)
    trial.set_user_attr("best_step", 1)
    observer._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # stale

    frozen = study.tell(trial, 0.5, skip_if_finished=True)  # no error: it was finished
    assert frozen.state is TrialState.FAIL
    elsewhere = seen_elsewhere(observer)
    assert elsewhere.intermediate_values == {} and elsewhere.user_attrs == {}
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        trial.report(0.25, 2)


def test_a_failed_flush_keeps_its_writes_under_newer_ones() -> None:
    x = optuna.distributions.FloatDistribution(0, 1)
    failed = _Pending(0.0, {1: 0.5, 2: 0.4}, {"a": 1, "b": 2}, {"x": (0.5, x)})
    newer = _Pending(1.0, {2: 0.3, 3: 0.2}, {"b": 3})
    newer.merge_older(failed)
    assert newer.intermediate_values == {1: 0.5, 2: 0.3, 3: 0.2}
    assert newer.user_attrs == {"a": 1, "b": 3}
    assert newer.params == {"x": (0.5, x)}


def test_bad_attribute_values_fail_at_once_and_bad_intervals_are_refused(
    storage_url: str,
) -> None:
    study, _ = studies(storage_url, HOUR)
    trial = study.ask()
    with pytest.raises(TypeError):
        trial.set_user_attr("handle", object())
    with pytest.raises(ValueError, match="flush_interval_s must be >= 0"):
        WriteBehindStorage(storage_url, flush_interval_s=-1)


def test_pickling_flushes_and_the_copy_works(storage_url: str) -> None:
    study, observer = studies(storage_url, HOUR)
    trial = study.ask()
    trial.report(0.5, 1)
    copy = pickle.loads(pickle.dumps(study._storage._backend))
    assert seen_elsewhere(observer).intermediate_values == {1: 0.5}
    assert copy.get_trial(trial._trial_id).intermediate_values == {1: 0.5}


def every_kind_of_trial(study: optuna.Study) -> None:
    """Finished, pruned, failed, running and waiting trials with every kind of stored value."""
    dists = {
        "lr": optuna.distributions.FloatDistribution(1e-5, 1.0, log=True),
        "units": optuna.distributions.IntDistribution(8, 64, step=8),
        "act": optuna.distributions.CategoricalDistribution(["relu", None, True, 2.5]),
    }
    study.add_trial(
        optuna.trial.create_trial(
            params={"lr": 1e-3, "units": 16, "act": None},
            distributions=dists,
            value=0.125,
            intermediate_values={1: 0.5, 2: float("nan"), 3: float("inf"), 4: float("-inf")},
            user_attrs={"nested": {"a": [1, 2.5, None]}, "text": "é"},
            system_attrs={"completed_rung_0": 0.5},
        )
    )
    study.add_trial(optuna.trial.create_trial(value=float("inf")))
    study.add_trial(
        optuna.trial.create_trial(state=TrialState.PRUNED, intermediate_values={5: 1.0})
    )
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={"error": "x"}))
    study.enqueue_trial({"lr": 0.01}, user_attrs={"parent_trial": 0})
    running = study.ask()
    running.suggest_int("depth", 1, 4, log=True)
    running.report(0.75, 7)


def test_one_query_reads_match_optunas_own(storage_url: str) -> None:
    plain = optuna.storages.RDBStorage(storage_url)
    study = optuna.create_study(study_name="s", storage=plain)
    every_kind_of_trial(study)
    ours = WriteBehindStorage(storage_url)
    study_id = study._study_id
    expected = plain.get_all_trials(study_id)
    assert repr(ours.get_all_trials(study_id)) == repr(expected)  # repr: NaN equals NaN
    for trial in expected:
        assert repr(ours.get_trial(trial._trial_id)) == repr(trial)
    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    assert repr(ours.get_all_trials(study_id, states=finished)) == repr(
        plain.get_all_trials(study_id, states=finished)
    )
    ids = [t._trial_id for t in expected]
    increment = ours._get_trials(study_id, None, {ids[0], ids[-1]}, ids[2])
    assert [t._trial_id for t in increment] == [ids[0], *ids[3:]]
    with pytest.raises(KeyError):
        ours.get_trial(max(ids) + 100)
    with pytest.raises(KeyError):
        ours.get_all_trials(study_id + 100)
    assert ours.get_all_trials(optuna.create_study(storage=plain)._study_id) == []


def round_trips_during(study: optuna.Study, call: Callable[[], _T]) -> tuple[_T, int]:
    """``call()``'s result and how many statements and commits it sent on the study's
    engine (psycopg2 sends a BEGIN before the first statement of a transaction too)."""
    engine = study._storage._backend.engine
    sent = []
    listener = lambda *_: sent.append(1)  # noqa: E731
    sqlalchemy.event.listen(engine, "commit", listener)
    sqlalchemy.event.listen(engine, "before_cursor_execute", listener)
    try:
        return call(), len(sent)
    finally:
        sqlalchemy.event.remove(engine, "commit", listener)
        sqlalchemy.event.remove(engine, "before_cursor_execute", listener)


def without_complete_time(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    fields = dict(vars(trial))
    fields.pop("datetime_complete")
    return fields


def test_tell_writes_the_buffered_writes_value_and_state_in_one_round_trip(
    storage_url: str,
) -> None:
    study, observer = studies(storage_url, HOUR)
    study.enqueue_trial({"x": 0.5})
    study.ask().suggest_float("x", 0, 1)  # the distribution is known: later ones buffered
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    for step in (1, 2, 3):
        trial.report(1.0 / step, step)
    trial.set_user_attr("best_step", 3)

    told, sent = round_trips_during(study, lambda: tell(study, trial, 0.25, TrialState.COMPLETE))
    assert sent == 1  # one statement in autocommit mode: no BEGIN, no COMMIT
    stored = seen_elsewhere(observer, trial.number)
    assert stored.state is TrialState.COMPLETE and stored.value == 0.25
    assert stored.intermediate_values == {1: 1.0, 2: 0.5, 3: 1.0 / 3}
    assert stored.user_attrs == {"best_step": 3} and "x" in stored.params
    assert vars(told) == vars(stored)  # built from what was written, not read back


@pytest.mark.parametrize(("last", "value"), [(0.5, 0.5), (math.nan, None)])
def test_tell_gives_a_pruned_trial_its_last_report_if_a_number(
    storage_url: str, last: float, value: float | None
) -> None:
    study, observer = studies(storage_url, HOUR)
    trial = study.ask()
    trial.report(2.0, 1)
    trial.report(last, 2)
    told = tell(study, trial, None, TrialState.PRUNED)
    stored = seen_elsewhere(observer)
    assert stored.state is TrialState.PRUNED and stored.value == value == told.value


def test_tell_leaves_a_trial_finished_elsewhere_as_it_is(storage_url: str) -> None:
    study, observer = studies(storage_url, HOUR)
    trial = study.ask()
    trial.report(1.0, 1)
    observer._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # stale
    told = tell(study, trial, 0.5, TrialState.COMPLETE)
    assert told.state is TrialState.FAIL and told.value is None
    stored = seen_elsewhere(observer)
    assert stored.state is TrialState.FAIL and stored.intermediate_values == {}


def test_tell_of_a_value_that_is_no_number_is_optunas(storage_url: str) -> None:
    study, _ = studies(storage_url, HOUR)
    trial = study.ask()
    with pytest.raises(ValueError, match="not acceptable"):
        tell(study, trial, math.nan, TrialState.COMPLETE)


def test_tell_on_optunas_own_storage_is_optunas_tell(storage_url: str) -> None:
    study = optuna.create_study(study_name="s", storage=optuna.storages.RDBStorage(storage_url))
    trial = study.ask()
    assert tell(study, trial, 1.5, TrialState.COMPLETE).value == 1.5
    assert study.trials[0].state is TrialState.COMPLETE


def test_new_trials_are_numbered_as_optunas_own_and_read_as_stored(storage_url: str) -> None:
    study, observer = studies(storage_url, HOUR)
    asked = [study.ask() if i % 2 else observer.ask() for i in range(6)]  # both kinds, mixed
    assert [t.number for t in asked] == list(range(6))
    ours = asked[1]
    stored = seen_elsewhere(observer, ours.number)
    assert stored.state is TrialState.RUNNING and stored.params == {}
    assert ours._cached_frozen_trial.datetime_start == stored.datetime_start
    assert without_complete_time(ours._cached_frozen_trial) == without_complete_time(stored)


def test_trials_made_at_once_by_many_storages_get_every_number_once(storage_url: str) -> None:
    study, _ = studies(storage_url, HOUR)
    storages = [WriteBehindStorage(storage_url, flush_interval_s=HOUR) for _ in range(4)]

    def create(storage: WriteBehindStorage) -> list[int]:
        return [storage.create_new_trial(study._study_id) for _ in range(25)]

    with ThreadPoolExecutor(len(storages)) as pool:
        created = [trial_id for ids in pool.map(create, storages) for trial_id in ids]
    numbers = [t.number for t in study.get_trials() if t._trial_id in set(created)]
    assert sorted(numbers) == list(range(100))
    with pytest.raises(KeyError):
        storages[0].create_new_trial(study._study_id + 1000)  # no such study
    for storage in storages:
        storage.engine.dispose()


def test_capped_creation_makes_trials_only_below_the_cap_even_at_once(
    storage_url: str,
) -> None:
    """Eight workers that each read 2 trials and room for 3 more race to make theirs:
    exactly 3 are made (the lock-free hand-out's guarantee), the others are told."""
    study, _ = studies(storage_url, HOUR)
    study.ask(), study.ask()
    optuna_studies = [
        optuna.load_study(study_name="s", storage=WriteBehindStorage(storage_url))
        for _ in range(8)
    ]
    with ThreadPoolExecutor(len(optuna_studies)) as pool:
        made = list(pool.map(lambda s: create_trial_within(s, 2 + 3), optuna_studies))
    assert sum(trial_id is not None for trial_id in made) == 3
    assert len(study.get_trials()) == 5
    storage = optuna_studies[0]._storage._backend
    with pytest.raises(TrialLimitReached), storage.trials_at_most(5):
        storage.create_new_trial(study._study_id)
    assert storage.create_new_trial(study._study_id)  # no cap outside the block
    for each in optuna_studies:
        each._storage._backend.engine.dispose()


def test_a_database_without_the_trial_functions_gains_them(storage_url: str) -> None:
    study, observer = studies(storage_url, HOUR)
    study.ask()
    with study._storage._backend.engine.begin() as connection:
        for function in (CREATE_TRIAL_FUNCTION, WRITE_TRIAL_FUNCTION):
            connection.execute(sqlalchemy.text(f"DROP FUNCTION {function}"))
    trial = study.ask()  # made again by the first worker that missed it
    assert trial.number == 1
    trial.report(0.5, 1)
    tell(study, trial, 0.5, TrialState.COMPLETE)
    assert seen_elsewhere(observer, 1).intermediate_values == {1: 0.5}


def test_a_new_process_reads_the_studys_distributions_once_and_buffers_parameters(
    storage_url: str,
) -> None:
    study, observer = studies(storage_url, HOUR)
    study.ask().suggest_float("x", 0, 1)  # stored by another process's trial
    storage = WriteBehindStorage(storage_url, flush_interval_s=HOUR)
    fresh = optuna.load_study(study_name="s", storage=storage, sampler=RandomSampler(seed=0))
    first, second = fresh.ask(), fresh.ask()
    _, sent = round_trips_during(fresh, lambda: first.suggest_float("x", 0, 1))
    assert sent == 1  # the study's distributions; Optuna's own path takes a transaction
    _, sent = round_trips_during(fresh, lambda: second.suggest_float("x", 0, 1))
    assert sent == 0  # known now (Optuna's cache)
    assert seen_elsewhere(observer, first.number).params == {}  # buffered
    flush(first)
    assert "x" in seen_elsewhere(observer, first.number).params
    third = optuna.load_study(study_name="s", storage=storage).ask()
    with pytest.raises(ValueError, match="Cannot set different distribution"):
        third.suggest_int("x", 0, 5)  # checked against the stored one, at the call
    storage.engine.dispose()


def test_buffered_writes_are_flushed_in_one_round_trip(storage_url: str) -> None:
    study, observer = studies(storage_url, HOUR)
    study.ask().suggest_float("x", 0, 1)  # the distribution is known: later ones buffered
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    trial.report(0.5, 1)
    trial.set_user_attr("note", "buffered")
    _, sent = round_trips_during(study, lambda: flush(trial))
    assert sent == 1
    stored = seen_elsewhere(observer, trial.number)
    assert stored.state is TrialState.RUNNING and "x" in stored.params
    assert stored.intermediate_values == {1: 0.5} and stored.user_attrs == {"note": "buffered"}


def test_a_new_trial_written_to_is_read_from_the_database(storage_url: str) -> None:
    study, _ = studies(storage_url, HOUR)
    trial_id = study._storage.create_new_trial(study._study_id)
    study._storage.set_trial_system_attr(trial_id, "note", "written through")
    assert study._storage.get_trial(trial_id).system_attrs == {"note": "written through"}
    trial_id = study._storage.create_new_trial(study._study_id)
    study._storage.set_trial_user_attr(trial_id, "note", "buffered")
    assert study._storage.get_trial(trial_id).user_attrs == {"note": "buffered"}
