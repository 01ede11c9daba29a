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

from autotune import training
from autotune.campaign import create_campaign
from autotune.pipeline import advance
from autotune.pipeline import promotion_overrides
from autotune.spec import SpecError
from autotune.spec import load_study_spec
from autotune.storage import open_storage
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


def finished_round_one(storage_url: str, tmp_path: Path, name: str) -> None:
    path = write_study(tmp_path, name, trials=6)
    path.write_text(path.read_text() + TWO_ROUNDS)
    spec = load_study_spec(path)
    campaign, _ = create_campaign(spec, open_storage(storage_url))
    for index, value in enumerate([0.5, 0.2, 0.9, 0.1, 0.3, 0.4]):
        trial = complete(value, number_hint=0.01 * (index + 1))
        campaign.current_study.add_trial(trial)


def test_concurrent_advancing_creates_one_round_with_top_k(
    storage_url: str, tmp_path: Path
) -> None:
    """Racers with their own storages (own connections) advance the same finished round."""
    storages = [open_storage(storage_url) for _ in range(4)]
    for attempt in range(12):
        name = f"race{attempt}"
        finished_round_one(storage_url, tmp_path, name)
        start = threading.Barrier(len(storages))

        def racer(storage: RDBStorage, name: str = name, start: threading.Barrier = start) -> None:
            start.wait()
            advance(name, storage)

        with ThreadPoolExecutor(len(storages)) as pool:
            for future in [pool.submit(racer, storage) for storage in storages]:
                future.result(timeout=120)
        names = [s for s in optuna.get_all_study_names(storage_url) if s.startswith(f"{name}/")]
        assert sorted(names) == [f"{name}/joint/1", f"{name}/joint/2"]
        promoted = optuna.load_study(study_name=f"{name}/joint/2", storage=storage_url).trials
        assert sorted(t.user_attrs["parent_trial"] for t in promoted) == [1, 3, 4]
        assert all(t.state == TrialState.WAITING for t in promoted)
        assert {t.user_attrs["parent_budget"] for t in promoted} == {60}
        assert {t.user_attrs["seed"] for t in promoted} == {7}
