"""Learning-rate schedules against hand-computed values (steps are 1-based)."""

from __future__ import annotations

import math

import pytest

from autotune.training._schedules import Schedule
from autotune.training._schedules import ScheduleConfig
from autotune.training._schedules import identical_between
from autotune.training._schedules import identical_until
from autotune.training._schedules import learning_rate_at
from autotune.training._schedules import resumable_step

BASE = 0.2


def lr(step: int, total: int = 100, **config: object) -> float:
    return learning_rate_at(step, BASE, total, ScheduleConfig(**config))


@pytest.mark.parametrize("step", [1, 2, 50, 99, 100])
def test_constant_is_the_base_rate(step: int) -> None:
    assert lr(step) == BASE


def test_linear_warmup_reaches_the_base_rate_at_its_last_step() -> None:
    assert lr(1, warmup_steps=10) == pytest.approx(0.02)
    assert lr(5, warmup_steps=10) == pytest.approx(0.1)
    assert lr(10, warmup_steps=10) == pytest.approx(0.2)
    assert lr(11, warmup_steps=10) == BASE
    assert lr(1, warmup_fraction=0.1) == pytest.approx(0.02)  # W = floor(0.1 * 100)


def test_linear_decays_over_everything_after_warmup() -> None:
    assert lr(1, kind=Schedule.LINEAR) == pytest.approx(0.198)
    assert lr(50, kind=Schedule.LINEAR) == pytest.approx(0.1)
    assert lr(100, kind=Schedule.LINEAR) == pytest.approx(0.0)
    assert lr(10, kind=Schedule.LINEAR, warmup_steps=10) == pytest.approx(0.2)
    assert lr(55, kind=Schedule.LINEAR, warmup_steps=10) == pytest.approx(0.1)
    assert lr(100, kind=Schedule.LINEAR, warmup_steps=10) == pytest.approx(0.0)


def test_wsd_keeps_the_stable_phase_then_decays_over_its_fixed_length() -> None:
    wsd = {"kind": Schedule.WSD, "warmup_steps": 10}  # default decay: 20% of 100 steps
    assert lr(80, **wsd) == BASE
    assert lr(90, **wsd) == pytest.approx(0.1)
    assert lr(100, **wsd) == pytest.approx(0.0)
    assert lr(90, final_lr_fraction=0.1, **wsd) == pytest.approx(0.11)
    assert lr(100, final_lr_fraction=0.1, **wsd) == pytest.approx(0.02)
    # A longer budget with the same decay length only extends the stable phase.
    assert lr(280, 300, decay_steps=20, **wsd) == BASE
    assert lr(290, 300, decay_steps=20, **wsd) == pytest.approx(0.1)


def test_cosine_with_warmup() -> None:
    cosine = {"kind": Schedule.COSINE, "warmup_steps": 10}
    assert lr(5, 50, **cosine) == pytest.approx(0.1)
    assert lr(10, 50, **cosine) == pytest.approx(0.2)
    assert lr(20, 50, **cosine) == pytest.approx(0.1 * (1 + math.cos(math.pi / 4)))
    assert lr(30, 50, **cosine) == pytest.approx(0.1)
    assert lr(50, 50, **cosine) == pytest.approx(0.0, abs=1e-12)
    assert lr(50, 50, final_lr_fraction=0.5, **cosine) == pytest.approx(0.1)


NOAM = {"kind": Schedule.NOAM, "noam_model_dim": 4, "warmup_steps": 8000}


def noam(step: int, scale: float = 2.0, **extra: object) -> float:
    return learning_rate_at(step, scale, 100_000, ScheduleConfig(**NOAM | extra))


def test_noam_worked_example_of_seed_001() -> None:
    # step 1 -> n = 2: 2 * 4**-0.5 * min(2**-0.5, 2 * 8000**-1.5) = 2.795e-6
    assert noam(1) == pytest.approx(2.7950849718747e-06)
    assert noam(1, minimum_learning_rate=0.0001) == 0.0001


def test_noam_peaks_at_warmup_then_decays_as_inverse_square_root() -> None:
    assert noam(7999) == pytest.approx(2 * 0.5 * 8000**-0.5)  # n = 8000 = warmup: the peak
    assert noam(31999) == pytest.approx(2 * 0.5 * 32000**-0.5)
    assert noam(7999, scale=6.0) == pytest.approx(3 * noam(7999))  # larger scale lifts the curve
    assert noam(7999, noam_model_dim=16) == pytest.approx(noam(7999) / 2)  # larger model: lower


def test_noam_start_decay_steps_holds_the_minimum_rate() -> None:
    hold = {"noam_start_decay_steps": 100, "minimum_learning_rate": 0.0001}
    assert [noam(step, **hold) for step in (1, 50, 100)] == [0.0001] * 3
    assert noam(7999 + 100, **hold) == pytest.approx(noam(7999))


def test_noam_decay_step_duration_divides_the_step() -> None:
    assert noam(7, noam_decay_step_duration=4) == pytest.approx(noam(1))  # 7 // 4 + 1 = 2
    assert noam(8, noam_decay_step_duration=4) == pytest.approx(noam(2))  # 8 // 4 + 1 = 3


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (ScheduleConfig(), 100),
        (ScheduleConfig(kind=Schedule.WSD, warmup_steps=10, decay_steps=20), 80),
        (ScheduleConfig(kind=Schedule.LINEAR, warmup_steps=10), 10),
        (ScheduleConfig(kind=Schedule.COSINE, warmup_steps=10), 10),
        (ScheduleConfig(warmup_fraction=0.1), 0),
        (ScheduleConfig(**NOAM), 100),
    ],
    ids=["constant", "wsd", "linear", "cosine", "warmup_fraction", "noam"],
)
def test_identical_until(config: ScheduleConfig, expected: int) -> None:
    assert identical_until(config, BASE, 100, 300) == expected
    assert identical_until(config, BASE, 300, 100) == expected


def test_identical_between_resolves_each_run_by_its_own_budget() -> None:
    fraction = ScheduleConfig(kind=Schedule.WSD, warmup_fraction=0.1, decay_fraction=0.2)
    steps = ScheduleConfig(kind=Schedule.WSD, warmup_steps=10, decay_steps=20)
    assert identical_between(fraction, 100, steps, 300, BASE) == 80
    assert identical_between(steps, 300, fraction, 100, BASE) == 80
    assert identical_between(fraction, 100, fraction, 300, BASE) == 0  # W = 10 vs W = 30
    assert identical_between(steps, 100, ScheduleConfig(), 100, BASE) == 0
    assert identical_between(steps, 100, steps, 100, BASE) == 100


PARENT = {"learning_rate": 0.1, "hidden_units": 8, "weight_decay": 0.01}
WSD_PARENT = PARENT | {"schedule": "wsd", "decay_fraction": 0.2}
WSD_CHILD = WSD_PARENT | {
    "decay_fraction": None,
    "decay_steps": 60,
    "warmup_fraction": 0.0,
    "warmup_steps": 0,
}


@pytest.mark.parametrize(
    ("parent", "child", "expected"),
    [
        (WSD_PARENT, WSD_CHILD, 240),  # constant until 540 in the child, 240 in the parent
        (PARENT | {"schedule": "cosine"}, PARENT | {"schedule": "cosine"}, 0),
        (PARENT, PARENT | {"warmup_steps": 0, "warmup_fraction": 0.0}, 300),  # last step
        (
            PARENT | {"schedule": "linear", "warmup_steps": 10, "decay_steps": 100},
            PARENT | {"schedule": "linear", "warmup_steps": 10, "decay_steps": 100},
            180,  # decays from step 201 in the parent
        ),
        (
            PARENT | {"schedule": "wsd", "warmup_fraction": 0.1},
            PARENT | {"schedule": "wsd", "warmup_steps": 30, "decay_steps": 60},
            240,
        ),
        (
            PARENT | {"schedule": "cosine", "warmup_fraction": 0.1},
            PARENT | {"schedule": "cosine", "warmup_steps": 30},
            30,  # the end of the warmup
        ),
        (WSD_PARENT, WSD_CHILD | {"weight_decay": 0.02}, 0),
        (WSD_PARENT, WSD_CHILD | {"learning_rate": 0.2}, 0),
    ],
    ids=[
        "wsd",
        "cosine",
        "constant",
        "linear",
        "warmup_fraction",
        "cosine-warmup",
        "weight_decay",
        "learning_rate",
    ],
)
def test_resumable_step(parent: dict, child: dict, expected: int) -> None:
    assert resumable_step(parent, 300, child, 600, eval_interval=30) == expected


def test_resumable_step_noam_and_the_parents_last_eval_step() -> None:
    noam = PARENT | {"schedule": "noam", "warmup_steps": 50}
    assert resumable_step(noam, 300, noam, 600, eval_interval=30) == 300
    assert resumable_step(noam, 300, noam, 600, eval_interval=30, model_dim=4) == 300
    assert resumable_step(PARENT, 290, PARENT, 600, eval_interval=30) == 290  # not a multiple
    assert resumable_step(PARENT, 600, PARENT, 290, eval_interval=30) == 270  # child shorter
    assert resumable_step(PARENT, 300, PARENT | {"dropout": 0.1}, 600, eval_interval=30) == 0
    with pytest.raises(ValueError, match="'noam' needs warmup_steps"):
        resumable_step(noam, 300, PARENT | {"schedule": "noam"}, 600, eval_interval=30)


def test_from_hparams_parses_and_validates() -> None:
    config = ScheduleConfig.from_hparams(
        {"schedule": "wsd", "warmup_steps": 5, "decay_steps": 20, "learning_rate": 0.1}
    )
    assert config == ScheduleConfig(kind=Schedule.WSD, warmup_steps=5, decay_steps=20)
    assert ScheduleConfig.from_hparams({"schedule": "noam"}, model_dim=64).noam_model_dim == 64
    with pytest.raises(ValueError, match="'constant', 'linear', 'cosine', 'wsd', 'noam'"):
        ScheduleConfig.from_hparams({"schedule": "step"})
    with pytest.raises(ValueError, match="exclusive"):
        ScheduleConfig.from_hparams({"warmup_steps": 5, "warmup_fraction": 0.1})
    with pytest.raises(ValueError, match="noam_model_dim"):
        ScheduleConfig.from_hparams({"schedule": "noam"})
    with pytest.raises(ValueError, match="decay_steps=-1"):
        ScheduleConfig.from_hparams({"decay_steps": -1})


def test_impossible_budgets_are_errors_naming_the_numbers() -> None:
    with pytest.raises(ValueError, match="decay of 50 steps"):
        lr(10, 40, kind=Schedule.WSD, decay_steps=50)
    with pytest.raises(ValueError, match="warmup of 40 steps"):
        lr(1, 40, warmup_steps=40)
    with pytest.raises(ValueError, match="step=0"):
        lr(0)
