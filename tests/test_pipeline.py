"""Rounds: top-k promotion, the learning-rate schedule rule, and advancing under races."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import threading

import optuna
from optuna.distributions import FloatDistribution
from optuna.storages import RDBStorage
from optuna.trial import TrialState
from optuna.trial import create_trial
import pytest
import sqlalchemy

from autotune import training
from autotune.campaign import Campaign
from autotune.campaign import advance
from autotune.campaign import create_campaign
from autotune.campaign import load_campaign
from autotune.campaign import promotion_overrides
from autotune.report._summary import study_progress
from autotune.spec import SpecError
from autotune.spec import load_study_spec
from autotune.storage import open_storage
from autotune.worker._defaults import task_defaults
from tests.conftest import write_study

TWO_ROUNDS = "rounds:\n  - {budget_fraction: 0.5}\n  - {budget_fraction: 1.0, top_k: 3}\n"


def complete(value: float, number_hint: float = 0.1) -> optuna.trial.FrozenTrial:
    return create_trial(
        value=value,
        params={"learning_rate": number_hint},
        distributions={"learning_rate": FloatDistribution(1e-4, 1.0, log=True)},
        user_attrs={"seed": 7},
    )


def test_promotion_keeps_warmup_and_decay_lengths() -> None:
    wsd = {"learning_rate": 0.1, "schedule": "wsd", "warmup_fraction": 0.1}
    overrides = promotion_overrides(wsd, parent_steps=300)
    assert overrides == {
        "warmup_fraction": 0.0,
        "warmup_steps": 30,
        "decay_fraction": None,
        "decay_steps": 60,
    }
    config = training.ScheduleConfig.from_hparams({**wsd, **overrides})
    # The longer run keeps the base rate until its own last 60 steps.
    assert training.learning_rate_at(1140, 0.1, 1200, config) == 0.1
    assert training.identical_until(config, 0.1, 300, 1200) == 240
    cosine = promotion_overrides({"schedule": "cosine", "warmup_steps": 10}, 300)
    assert cosine == {"warmup_fraction": 0.0, "warmup_steps": 10}
    assert promotion_overrides({"schedule": "noam", "warmup_steps": 10}, 300) == {}


def test_rounds_are_validated(tmp_path: Path) -> None:
    path = write_study(tmp_path, "r", trials=4)
    path.write_text(
        path.read_text()
        + "rounds:\n  - {budget_fraction: 0.5}\n  - {budget_fraction: 0.4, top_k: 2}\n"
    )
    with pytest.raises(SpecError, match="rounds get longer"):
        load_study_spec(path)
    path.write_text(path.read_text().replace("top_k: 2}", "}").replace("0.4", "1.0"))
    with pytest.raises(SpecError, match="round 2 needs top_k"):
        load_study_spec(path)


def test_loading_a_campaign_reads_no_trials(storage_url: str, tmp_path: Path) -> None:
    """Workers load their campaign at start and at every advance: the cost must not grow
    with the trials of the database (Optuna's study summaries read every one of them)."""
    finished_round_one(storage_url, tmp_path, "loaded")
    storage = open_storage(storage_url)
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    sqlalchemy.event.listen(storage.engine, "before_cursor_execute", record)
    campaign = load_campaign("loaded", storage)
    sqlalchemy.event.remove(storage.engine, "before_cursor_execute", record)
    assert [s.name for s in campaign.studies] == ["loaded/joint/1"]
    assert statements and not [s for s in statements if "FROM trials" in s]


def finished_round_one(storage_url: str, tmp_path: Path, name: str) -> None:
    path = write_study(tmp_path, name, trials=6)
    path.write_text(path.read_text() + TWO_ROUNDS)
    spec = load_study_spec(path)
    campaign, _ = create_campaign(spec, open_storage(storage_url), task_defaults(spec))
    study = campaign.optuna_study(campaign.current)
    for index, value in enumerate([0.5, 0.2, 0.9, 0.1, 0.3, 0.4]):
        study.add_trial(complete(value, number_hint=0.01 * (index + 1)))


def race(name: str, storages: list[RDBStorage]) -> None:
    """Advance the campaign from every storage (own connections) at the same moment."""
    start = threading.Barrier(len(storages))

    def racer(storage: RDBStorage) -> None:
        start.wait()
        advance(name, storage)

    with ThreadPoolExecutor(len(storages)) as pool:
        for future in [pool.submit(racer, storage) for storage in storages]:
            future.result(timeout=120)


def test_concurrent_advancing_creates_one_round_with_top_k(
    storage_url: str, tmp_path: Path
) -> None:
    """Racers with their own storages (own connections) advance the same finished round."""
    storages = [open_storage(storage_url) for _ in range(4)]
    for attempt in range(12):
        name = f"race{attempt}"
        finished_round_one(storage_url, tmp_path, name)
        race(name, storages)
        names = [s for s in optuna.get_all_study_names(storage_url) if s.startswith(f"{name}/")]
        assert sorted(names) == [f"{name}/joint/1", f"{name}/joint/2"]
        promoted = optuna.load_study(study_name=f"{name}/joint/2", storage=storage_url).trials
        assert sorted(t.user_attrs["parent_trial"] for t in promoted) == [1, 3, 4]
        assert all(t.state == TrialState.WAITING for t in promoted)
        assert {t.user_attrs["parent_budget"] for t in promoted} == {60}
        assert {t.user_attrs["seed"] for t in promoted} == {7}


def sweep_finished_at_its_top_end(storage_url: str, tmp_path: Path, name: str) -> None:
    path = write_study(
        tmp_path,
        name,
        trials=4,
        baseline=True,
        extra="steps_sweep: {count: 3, steps: 200, max_widenings: 1}\n",
    )
    path.write_text(path.read_text().replace("max_train_steps: 120", "max_train_steps: auto"))
    spec = load_study_spec(path)
    campaign, _ = create_campaign(spec, open_storage(storage_url), task_defaults(spec))
    run_queued_sweep(campaign.optuna_study(campaign.current), [None, 160, 60])


def run_queued_sweep(
    study: optuna.Study,
    steps_to_fit: list[int | None],
    plateaus: list[tuple[float, float]] | None = None,
) -> None:
    """Stand-ins for the queued sweep trials, lowest learning rate first (the queue runs the
    middle first), finished with these steps to fit; with ``plateaus``, as the plateau rule
    finishes them: (first, lowest) training loss each."""
    queued = study.get_trials(states=(TrialState.WAITING,))
    queued.sort(key=lambda t: t.system_attrs["fixed_params"]["learning_rate"])
    assert len(queued) == len(steps_to_fit)
    losses = plateaus or [None] * len(queued)
    for trial, steps, plateau in zip(queued, steps_to_fit, losses, strict=True):
        attrs: dict[str, object] = {"steps_to_fit": steps}
        curve: dict[int, float] = {}
        if plateau is not None:
            curve = {20: plateau[0], 40: plateau[1]}
            attrs["sweep_lowest_loss"] = plateau[1]
        study.add_trial(
            create_trial(
                value=float("inf") if steps is None else float(steps),
                params=trial.system_attrs["fixed_params"],
                distributions={"learning_rate": FloatDistribution(1e-8, 1e3, log=True)},
                user_attrs=attrs,
                intermediate_values=curve,
            )
        )
        # The queued trial, replaced: failed with an error, so it is not retried.
        study._storage.set_trial_user_attr(trial._trial_id, "error", "replaced by a stand-in")
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)


def test_concurrent_advancing_widens_the_sweep_once_then_opens_the_baseline_once(
    storage_url: str, tmp_path: Path
) -> None:
    storages = [open_storage(storage_url) for _ in range(4)]
    for attempt in range(6):
        name = f"sweep{attempt}"
        sweep_finished_at_its_top_end(storage_url, tmp_path, name)
        race(name, storages)
        names = sorted(s for s in optuna.get_all_study_names(storage_url) if s.startswith(name))
        assert names == [f"{name}/steps/1", f"{name}/steps/2"]
        widened = optuna.load_study(study_name=names[1], storage=storage_url)
        rates = sorted(t.system_attrs["fixed_params"]["learning_rate"] for t in widened.trials)
        assert rates == pytest.approx([31.62, 1000.0], rel=1e-3)  # 0.001, 0.0316, 1 continued
        run_queued_sweep(widened, [None, 40])  # the top end again, but no widening is left
        race(name, storages)
        campaign = load_campaign(name, storages[0])
        assert [s.name for s in campaign.studies] == [*names, f"{name}/baseline/1"]
        decision = campaign.studies[1].facts.sweep
        assert decision.max_train_steps == 40 and decision.on_boundary.value == "high"
        assert decision.fastest_learning_rate == pytest.approx(1000.0)
        assert "treat max_train_steps as an upper estimate" in decision.reason
        assert campaign.current.max_train_steps == 40  # round 1 = all 40 steps


def test_concurrent_advancing_after_the_baseline_opens_round_one_once(
    storage_url: str, tmp_path: Path
) -> None:
    storages = [open_storage(storage_url) for _ in range(4)]
    for attempt in range(6):
        name = f"base{attempt}"
        path = write_study(tmp_path, name, trials=4, baseline=True)
        spec = load_study_spec(path)
        campaign, _ = create_campaign(spec, open_storage(storage_url), task_defaults(spec))
        campaign.optuna_study(campaign.current).add_trial(
            create_trial(value=0.3, user_attrs={"trivial_val_loss": 2.3, "seed": 1})
        )
        race(name, storages)
        names = sorted(s for s in optuna.get_all_study_names(storage_url) if s.startswith(name))
        assert names == [f"{name}/baseline/1", f"{name}/joint/1"]
        joint = load_campaign(name, storages[0]).current
        assert joint.name == names[1] and joint.trial_budget == 4
        assert optuna.load_study(study_name=names[1], storage=storage_url).trials == []


def test_a_sweep_where_nothing_fits_stops_the_campaign(storage_url: str, tmp_path: Path) -> None:
    path = write_study(tmp_path, "unfit", trials=4, extra="steps_sweep: {count: 2, steps: 200}\n")
    path.write_text(path.read_text().replace("max_train_steps: 120", "max_train_steps: auto"))
    spec = load_study_spec(path)
    campaign, _ = create_campaign(spec, open_storage(storage_url), task_defaults(spec))
    run_queued_sweep(campaign.optuna_study(campaign.current), [None, None])
    advance("unfit", open_storage(storage_url))
    campaign = load_campaign("unfit", open_storage(storage_url))
    assert len(campaign.studies) == 1
    assert campaign.stopped is not None
    assert "no learning rate in [0.001, 1] fitted the training set" in campaign.stopped
    assert "raise the sweep's N" in campaign.stopped


def _plateau_sweep(
    storage_url: str, tmp_path: Path, name: str, steps: list[int | None], plateaus
) -> Campaign:
    """A three-rate plateau-rule sweep with these steps to fit and (first, lowest) losses
    per rate, lowest rate first; the highest always levels off at 60 far above the rest."""
    path = write_study(tmp_path, name, trials=4, extra="steps_sweep: {count: 3, steps: 200}\n")
    path.write_text(path.read_text().replace("max_train_steps: 120", "max_train_steps: auto"))
    spec = load_study_spec(path)
    campaign, _ = create_campaign(spec, open_storage(storage_url), task_defaults(spec))
    study = campaign.optuna_study(campaign.current)
    run_queued_sweep(study, [*steps, 60], [*plateaus, (1.0, 0.9)])
    advance(name, open_storage(storage_url))
    return load_campaign(name, open_storage(storage_url))


def test_a_loss_memorised_towards_zero_by_two_rates_measures_the_one_that_levelled_off(
    storage_url: str, tmp_path: Path
) -> None:
    """0.032 against 0.025, both from 1.0: stable on the way down (a GRU memorising a noisy
    training set stopped automatic mode on 4 of 5 seeds)."""
    losses = [(1.0, 0.025), (1.0, 0.032)]  # the lowest rate still falling, the middle levelled
    campaign = _plateau_sweep(storage_url, tmp_path, "memorised", [None, 120], losses)
    assert campaign.stopped is None
    assert campaign.studies[0].facts.sweep.max_train_steps == 120
    assert study_progress(campaign, campaign.studies[0]).best_value == 120


def test_a_lowest_loss_still_falling_at_the_sweeps_end_trains_its_n_steps(
    storage_url: str, tmp_path: Path
) -> None:
    """The faster rates levelled off far above it (on SGD noise): the campaign stopped, and
    its row said "best steps to fit 120" beside "no rate fitted"."""
    losses = [(1.0, 0.134), (1.0, 0.03)]  # the middle rate, the lowest loss, still falling
    campaign = _plateau_sweep(storage_url, tmp_path, "falling", [120, None], losses)
    assert campaign.stopped is None
    decision = campaign.studies[0].facts.sweep
    assert decision.max_train_steps == 200 and "still falling" in decision.reason
    progress = study_progress(campaign, campaign.studies[0])
    assert progress.best_value == 200 and progress.best_number is not None
