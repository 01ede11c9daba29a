from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from autotune.analysis._significance import DEFAULT_PERIODS
from autotune.analysis._significance import DEFAULT_SEEDS
from autotune.analysis._significance import PairedTest
from autotune.analysis._significance import compare_finalists
from autotune.analysis._significance import holm_adjust
from autotune.analysis._significance import mean_interval
from autotune.analysis._significance import min_pairs_to_reach
from autotune.analysis._significance import rank_agreement
from autotune.analysis._significance import ranking_means
from autotune.analysis._significance import simulate_false_positive_rate
from autotune.analysis._significance import simulate_power
from autotune.spec import Direction

ALPHA = 0.05
N_CALIBRATION = 10_000
"""Simulated A/A re-evaluations per test kind: standard error of a 5% rate: 0.2 points."""
N_POWER = 4000
LABELS = {
    PairedTest.WILCOXON: "Wilcoxon",
    PairedTest.SIGN: "sign",
    PairedTest.PAIRED_T: "paired t",
}


def _periods(values: list[float], seed: int = 0) -> dict[tuple[str, int], float]:
    return {(f"2024-{i + 1:02d}", seed): v for i, v in enumerate(values)}


def _noisy(base: float, n: int, rng: np.random.Generator) -> list[float]:
    return list(base + 0.001 * rng.standard_normal(n))


# --- calibration and power of the default design (simulated) -----------------------------


@pytest.mark.parametrize("test", [PairedTest.WILCOXON, PairedTest.PAIRED_T])
def test_equal_finalists_are_significant_at_rate_alpha(test: PairedTest) -> None:
    rate = simulate_false_positive_rate(
        DEFAULT_PERIODS, DEFAULT_SEEDS, 2, N_CALIBRATION, np.random.default_rng(11), test=test
    )
    assert ALPHA - 0.02 <= rate <= ALPHA + 0.02


def test_sign_test_false_positive_rate_is_at_most_alpha() -> None:
    # The sign test counts wins only: with 12 pairs the achievable two-sided levels jump
    # from 2 * P(X <= 2) = 0.039 to 2 * P(X <= 3) = 0.146, so its real level is below alpha.
    rate = simulate_false_positive_rate(
        DEFAULT_PERIODS,
        DEFAULT_SEEDS,
        2,
        N_CALIBRATION,
        np.random.default_rng(12),
        test=PairedTest.SIGN,
    )
    assert rate <= ALPHA + 0.02


def test_three_equal_finalists_stay_near_alpha() -> None:
    rate = simulate_false_positive_rate(
        DEFAULT_PERIODS, DEFAULT_SEEDS, 3, N_CALIBRATION, np.random.default_rng(13)
    )
    assert rate <= ALPHA + 0.02


@pytest.mark.parametrize("n_finalists", [2, 3])
def test_default_design_has_80_percent_power_for_1_5_sd(n_finalists: int) -> None:
    power = simulate_power(
        DEFAULT_PERIODS, DEFAULT_SEEDS, 1.5, n_finalists, N_POWER, np.random.default_rng(14)
    )
    assert power >= 0.80


def test_pairing_removes_the_period_effect() -> None:
    rng = np.random.default_rng(15)
    power = simulate_power(DEFAULT_PERIODS, DEFAULT_SEEDS, 1.5, 2, N_POWER, rng, period_sd=5.0)
    assert power >= 0.80


def test_fewer_pairs_give_less_power() -> None:
    few = simulate_power(6, 1, 1.5, 2, N_POWER, np.random.default_rng(16))
    many = simulate_power(
        DEFAULT_PERIODS, DEFAULT_SEEDS, 1.5, 2, N_POWER, np.random.default_rng(16)
    )
    assert few < 0.6 < 0.8 <= many


def test_simulations_are_deterministic_for_a_seed() -> None:
    def run() -> float:
        return simulate_power(8, 1, 1.0, 3, 300, np.random.default_rng(17))

    assert run() == run()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_periods": 0},
        {"n_periods": 1},
        {"n_seeds": 1.5},
        {"n_finalists": 1},
        {"n_sim": 0},
        {"effect_sd": -1.0},
        {"effect_sd": math.nan},
        {"period_sd": -0.1},
    ],
)
def test_simulation_rejects_bad_designs(kwargs: dict[str, object]) -> None:
    args = {"n_periods": 5, "n_seeds": 1, "effect_sd": 1.0, "n_finalists": 2, "n_sim": 10}
    args.update(kwargs)
    with pytest.raises(ValueError, match=next(iter(kwargs)).split("_")[0]):
        simulate_power(**args, rng=np.random.default_rng(0))  # type: ignore[arg-type]


# --- Holm ----------------------------------------------------------------------------------


def test_holm_matches_a_hand_computed_example() -> None:
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> 0.06
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx((0.03, 0.06, 0.06, 0.02))


def test_holm_is_monotone_capped_and_not_below_raw() -> None:
    raw = np.random.default_rng(3).uniform(0, 0.5, size=20)
    adjusted = np.array(holm_adjust(list(raw)))
    order = np.argsort(raw)
    assert np.all(np.diff(adjusted[order]) >= 0)
    assert np.all(adjusted >= raw) and np.all(adjusted <= 1.0)
    assert holm_adjust([0.5, 0.6, 0.9]) == (1.0, 1.0, 1.0)
    assert holm_adjust([0.02]) == (0.02,) and holm_adjust([]) == ()


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, "0.1"])
def test_holm_rejects_bad_p_values(bad: object) -> None:
    with pytest.raises(ValueError, match="p-value"):
        holm_adjust([0.1, bad])  # type: ignore[list-item]


def test_report_applies_holm_across_its_comparisons() -> None:
    rng = np.random.default_rng(4)
    results = {
        "A": _periods(_noisy(1.0, 8, rng)),
        "B": _periods(_noisy(1.01, 8, rng)),
        "C": _periods([1.0 + 0.002 * (i % 3 - 1) for i in range(8)]),
    }
    report = compare_finalists(results, Direction.MINIMIZE)
    raw = [c.p_value for c in report.comparisons]
    assert [c.p_adjusted for c in report.comparisons] == list(holm_adjust(raw))
    assert all("Holm-adjusted" in c.verdict for c in report.comparisons)


# --- compare_finalists ---------------------------------------------------------------------


def test_clear_winner_is_significant() -> None:
    rng = np.random.default_rng(5)
    results = {"A": _periods(_noisy(0.10, 12, rng)), "B": _periods(_noisy(0.12, 12, rng))}
    report = compare_finalists(results, Direction.MINIMIZE)
    (c,) = report.comparisons
    assert (report.best, c.finalist, c.reference) == ("A", "B", "A")
    assert (c.n_pairs, c.wins, c.losses, c.ties) == (12, 12, 0, 0)
    assert c.p_value == pytest.approx(2 / 2**12) and c.p_adjusted == c.p_value
    assert c.ci_low < c.mean_difference < c.ci_high and c.mean_difference == pytest.approx(
        0.02, abs=0.002
    )
    assert c.effect_size > 5 and c.significant
    assert c.verdict.startswith("A is better than B in 12 of 12 periods; better on average by 0.0")
    assert "95% CI [" in c.verdict and "Wilcoxon p=0.000488" in c.verdict
    assert c.verdict.endswith(": significant at alpha=0.05") and "Holm" not in c.verdict
    assert (report.n_periods, report.n_seeds, report.min_pairs_needed) == (12, 1, 6)
    assert report.too_few_pairs_warning is None and report.summary == (c.verdict,)


def test_winning_every_one_of_five_periods_is_not_significant() -> None:
    rng = np.random.default_rng(6)
    results = {"A": _periods(_noisy(0.10, 5, rng)), "B": _periods(_noisy(0.12, 5, rng))}
    (c,) = compare_finalists(results, Direction.MINIMIZE).comparisons
    assert c.wins == 5 and c.p_value == pytest.approx(0.0625) and not c.significant
    assert "A is better than B in 5 of 5 periods;" in c.verdict
    assert c.verdict.endswith("Wilcoxon p=0.0625: not significant at alpha=0.05")


def test_all_ties_are_not_distinguishable() -> None:
    values = _periods([0.3, 0.5, 0.4, 0.6])
    for test in PairedTest:
        report = compare_finalists({"A": values, "B": dict(values)}, Direction.MINIMIZE, test=test)
        (c,) = report.comparisons
        assert (c.p_value, c.p_adjusted, c.significant) == (1.0, 1.0, False)
        assert (c.ties, c.mean_difference, c.effect_size, c.ci_low, c.ci_high) == (4, 0, 0, 0, 0)
        assert c.verdict == "B is not distinguishable from A: equal in all 4 periods"


def test_a_finalist_missing_runs_is_ranked_and_paired_on_shared_keys_only() -> None:
    """Periods differ more than finalists: B, better on every period both ran, has the
    worse mean over its own runs only because it missed A's two best periods."""
    a = _periods([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    b = {key: v + 0.5 for key, v in list(a.items())[:4]}
    b[("2023-12", 0)] = -100.0  # not shared: it enters neither the ranking nor the test
    report = compare_finalists({"A": a, "B": b}, Direction.MAXIMIZE)
    (c,) = report.comparisons
    assert report.best == "B"  # 3.0 against A's 2.5 on the shared keys (own: -18.6 and 3.5)
    assert (c.finalist, c.n_pairs, c.wins, c.losses) == ("A", 4, 4, 0)
    assert c.mean_difference == pytest.approx(0.5)
    assert report.n_periods == 7


def test_with_fewer_than_two_keys_shared_by_all_each_is_ranked_by_its_own() -> None:
    a = _periods([1.0, 2.0, 3.0])
    b = {key: v - 0.5 for key, v in a.items()}
    c = {("x", 0): 0.0, ("y", 0): 0.0}  # shares nothing: no key is common to all three
    assert ranking_means({"A": a, "B": b, "C": c}) == {"A": 2.0, "B": 1.5, "C": 0.0}
    only_a = a | {("z", 0): 9.0}  # shared by two of three: left out only where all share
    assert ranking_means({"A": only_a, "B": b}) == {"A": 2.0, "B": 1.5}
    assert ranking_means({}) == {}  # no candidate with runs: nothing to rank


def test_fewer_than_two_shared_pairs_is_an_error_naming_the_finalist() -> None:
    results = {"A": _periods([1.0, 2.0, 3.0]), "lr_0.1": {("2024-01", 0): 5.0, ("x", 0): 6.0}}
    with pytest.raises(ValueError, match=r"'lr_0.1' shares 1 \(period, seed\) pairs.*'A'"):
        compare_finalists(results, Direction.MINIMIZE)


def test_direction_decides_the_best_and_the_sign_of_differences() -> None:
    low = _periods([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    high = {key: v + 1.0 + 0.01 * i for i, (key, v) in enumerate(low.items())}
    minimized = compare_finalists({"low": low, "high": high}, Direction.MINIMIZE)
    maximized = compare_finalists({"low": low, "high": high}, Direction.MAXIMIZE)
    assert (minimized.best, maximized.best) == ("low", "high")
    for report in (minimized, maximized):
        (c,) = report.comparisons
        assert c.wins == 6 and c.mean_difference > 1.0 and c.significant


def test_equal_means_are_broken_by_name_and_finalists_are_listed_by_rank() -> None:
    results = {
        "zeta": _periods([1.0, 2.0, 3.0]),
        "alpha": _periods([2.0, 1.0, 3.0]),
        "mid": _periods([2.5, 2.5, 3.5]),
    }
    report = compare_finalists(results, Direction.MINIMIZE)
    assert report.best == "alpha"
    assert [c.finalist for c in report.comparisons] == ["zeta", "mid"]


def test_period_by_seed_pairs_are_named_so() -> None:
    rng = np.random.default_rng(7)
    keys = [(f"p{p}", s) for p in range(4) for s in range(3)]
    results = {
        "A": dict(zip(keys, _noisy(0.1, 12, rng), strict=True)),
        "B": dict(zip(keys, _noisy(0.2, 12, rng), strict=True)),
    }
    report = compare_finalists(results, Direction.MINIMIZE)
    assert (report.n_periods, report.n_seeds) == (4, 3)
    assert "in 12 of 12 period x seed pairs;" in report.comparisons[0].verdict


def test_test_kinds_give_scipy_p_values() -> None:
    diffs = np.array([0.3, 0.1, -0.05, 0.2, 0.4, 0.15, -0.1, 0.25])
    best = _periods(list(np.linspace(1.0, 2.0, 8)))
    other = {key: v + d for (key, v), d in zip(best.items(), diffs, strict=True)}
    expected = {
        PairedTest.WILCOXON: stats.wilcoxon(diffs).pvalue,
        PairedTest.SIGN: stats.binomtest(6, 8).pvalue,
        PairedTest.PAIRED_T: stats.ttest_rel(list(other.values()), list(best.values())).pvalue,
    }
    for test, p in expected.items():
        report = compare_finalists({"A": best, "B": other}, Direction.MINIMIZE, test=test)
        (c,) = report.comparisons
        assert c.p_value == pytest.approx(p) and c.test is test
        assert f"{LABELS[test]} p={p:.3g}:" in c.verdict
        assert c.effect_size == pytest.approx(diffs.mean() / diffs.std(ddof=1))


def test_confidence_interval_is_t_based_at_level_1_minus_alpha() -> None:
    diffs = np.array([0.3, 0.1, -0.05, 0.2, 0.4, 0.15])
    best = _periods([1.0] * 6)
    other = {key: v + d for (key, v), d in zip(best.items(), diffs, strict=True)}
    report = compare_finalists({"A": best, "B": other}, Direction.MINIMIZE, alpha=0.1)
    (c,) = report.comparisons
    low, high = stats.t.interval(0.9, 5, loc=diffs.mean(), scale=stats.sem(diffs))
    assert (c.ci_low, c.ci_high) == pytest.approx((low, high))
    assert "90% CI" in c.verdict


def test_constant_differences_under_a_t_test() -> None:
    best = _periods([1.0, 2.0, 3.0])
    other = {key: v + 0.5 for key, v in best.items()}
    (c,) = compare_finalists(
        {"A": best, "B": other}, Direction.MINIMIZE, test=PairedTest.PAIRED_T
    ).comparisons
    assert c.p_value == 0.0 and c.effect_size == math.inf and c.significant
    assert c.ci_low == c.ci_high == pytest.approx(0.5)


def test_a_test_favouring_the_other_finalist_is_no_win() -> None:
    # A wins one pair by far and loses nine narrowly: better mean, but the sign test
    # (p = 2 x 11/1024 = 0.021) speaks for B.
    best = _periods([0.0] * 10)
    other = {key: (100.0 if i == 0 else -1.0) for i, key in enumerate(best)}
    report = compare_finalists({"A": best, "B": other}, Direction.MINIMIZE, test=PairedTest.SIGN)
    (c,) = report.comparisons
    assert report.best == "A" and (c.wins, c.losses) == (1, 9)
    assert c.p_value == pytest.approx(22 / 1024) and not c.significant
    assert "no reliable winner (the sign test favours B)" in c.verdict


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 0.0}, "alpha=0.0"),
        ({"alpha": 1.0}, "alpha=1.0"),
        ({"direction": "minimize"}, "direction='minimize'"),
        ({"test": "wilcoxon"}, "test='wilcoxon'"),
    ],
)
def test_compare_finalists_rejects_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"direction": Direction.MINIMIZE}
    args.update(kwargs)
    results = {"A": _periods([1.0, 2.0]), "B": _periods([2.0, 3.0])}
    with pytest.raises(ValueError, match=match):
        compare_finalists(results, **args)  # type: ignore[arg-type]


def test_compare_finalists_rejects_bad_results() -> None:
    with pytest.raises(ValueError, match="1 finalists"):
        compare_finalists({"A": _periods([1.0, 2.0])}, Direction.MINIMIZE)
    bad_value = {"A": _periods([1.0, math.nan]), "B": _periods([1.0, 2.0])}
    with pytest.raises(ValueError, match=r"results\['A'\]\[\('2024-02', 0\)\]=nan"):
        compare_finalists(bad_value, Direction.MINIMIZE)
    bad_key = {"A": {"2024-01": 1.0, "2024-02": 2.0}, "B": _periods([1.0, 2.0])}
    bad_seed = {"A": {("2024-01", "s0"): 1.0}, "B": _periods([1.0, 2.0])}
    with pytest.raises(ValueError, match=r"key \(.2024-01., .s0.\) is invalid"):
        compare_finalists(bad_seed, Direction.MINIMIZE)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key '2024-01' is invalid"):
        compare_finalists(bad_key, Direction.MINIMIZE)  # type: ignore[arg-type]


# --- how many pairs are needed -------------------------------------------------------------


def test_min_pairs_to_reach() -> None:
    assert min_pairs_to_reach(0.05, PairedTest.WILCOXON) == 6
    assert min_pairs_to_reach(0.05, PairedTest.SIGN) == 6
    assert min_pairs_to_reach(0.05, PairedTest.PAIRED_T) == 2
    assert min_pairs_to_reach(0.05, PairedTest.WILCOXON, comparisons=2) == 7
    assert min_pairs_to_reach(0.01, PairedTest.WILCOXON) == 8
    assert stats.wilcoxon(np.arange(1.0, 6.0)).pvalue == pytest.approx(0.0625)
    assert stats.wilcoxon(np.arange(1.0, 7.0)).pvalue == pytest.approx(0.03125)
    with pytest.raises(ValueError, match="comparisons=0"):
        min_pairs_to_reach(0.05, PairedTest.WILCOXON, comparisons=0)


def test_too_few_pairs_warning_for_four_periods() -> None:
    rng = np.random.default_rng(8)
    results = {"A": _periods(_noisy(0.1, 4, rng)), "B": _periods(_noisy(0.2, 4, rng))}
    report = compare_finalists(results, Direction.MINIMIZE)
    assert report.too_few_pairs_warning == (
        "with 4 periods the Wilcoxon test can never reach p<0.05 even if A wins all of them; "
        "use at least 6 periods (or seeds)"
    )
    assert report.summary[0] == report.too_few_pairs_warning and len(report.summary) == 2


def test_too_few_pairs_warning_counts_the_holm_correction() -> None:
    rng = np.random.default_rng(9)
    results = {
        name: _periods(_noisy(base, 6, rng)) for name, base in zip("ABC", (1, 2, 3), strict=True)
    }
    report = compare_finalists(results, Direction.MINIMIZE)
    assert report.min_pairs_needed == 7
    assert report.too_few_pairs_warning is not None
    assert "p<0.025 (alpha=0.05 Holm-corrected for the first of 2 comparisons)" in (
        report.too_few_pairs_warning
    )


def test_no_warning_for_the_default_design() -> None:
    rng = np.random.default_rng(10)
    keys = [(f"p{p}", s) for p in range(DEFAULT_PERIODS) for s in range(DEFAULT_SEEDS)]
    results = {name: dict(zip(keys, _noisy(1.0, len(keys), rng), strict=True)) for name in "ABC"}
    report = compare_finalists(results, Direction.MINIMIZE)
    assert report.too_few_pairs_warning is None and len(report.summary) == 2


# --- fast mode -----------------------------------------------------------------------------


def test_rank_agreement_perfect() -> None:
    fast = {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4, "e": 0.5, "f": 0.6}
    full = {name: 2 * v - 0.05 for name, v in fast.items()}
    agreement = rank_agreement(fast, full, Direction.MINIMIZE)
    assert agreement.rho == pytest.approx(1.0) and agreement.n == 6 and agreement.agrees
    assert agreement.full_rank_of_fast_best == 1
    assert agreement.message.startswith(
        "fast-mode ranks agree with full runs: Spearman rho=1 over 6 finalists (p="
    )


def test_rank_agreement_reversed_warns() -> None:
    fast = {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4, "e": 0.5}
    full = {name: -v for name, v in fast.items()}
    agreement = rank_agreement(fast, full, Direction.MAXIMIZE)
    assert agreement.rho == pytest.approx(-1.0) and not agreement.agrees
    assert agreement.full_rank_of_fast_best == 5
    assert agreement.message.startswith("WARNING: fast-mode ranks do not reliably agree")


def test_rank_agreement_needs_significance() -> None:
    fast = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    full = {"a": 1.0, "b": 3.0, "c": 2.0, "d": 4.0}  # rho = 0.8, but p = 0.2
    agreement = rank_agreement(fast, full, Direction.MINIMIZE)
    assert agreement.rho == pytest.approx(0.8) and agreement.p_value > 0.05
    assert not agreement.agrees and "WARNING" in agreement.message


def test_rank_agreement_uses_shared_finalists_and_needs_three() -> None:
    fast = {"a": 1.0, "b": 2.0, "c": 3.0, "x": 9.0}
    full = {"a": 1.0, "b": 2.0, "y": 3.0}
    with pytest.raises(ValueError, match=r"share 2 finalists \(\['a', 'b'\]\).*at least 3"):
        rank_agreement(fast, full, Direction.MINIMIZE)
    constant = rank_agreement(fast, {"a": 1.0, "b": 1.0, "c": 1.0}, Direction.MINIMIZE)
    assert math.isnan(constant.rho) and not constant.agrees and constant.n == 3
    with pytest.raises(ValueError, match="fast"):
        rank_agreement({**fast, "a": math.inf}, full | {"c": 3.0}, Direction.MINIMIZE)


def test_numpy_values_and_seeds_are_accepted() -> None:
    keys = [("2024-01", np.int64(0)), ("2024-02", np.int64(0)), ("2024-03", np.int64(0))]
    results = {
        "A": dict(zip(keys, np.array([1.0, 2.0, 3.0], dtype=np.float32), strict=True)),
        "B": dict(zip(keys, np.array([1.5, 2.5, 3.1], dtype=np.float32), strict=True)),
    }
    report = compare_finalists(results, Direction.MINIMIZE)  # type: ignore[arg-type]
    assert report.best == "A" and report.comparisons[0].wins == 3


def test_rank_agreement_p_values_are_exact_for_few_finalists() -> None:
    fast = {"a": 0.1, "b": 0.2, "c": 0.3}
    agreement = rank_agreement(fast, dict(fast), Direction.MINIMIZE)  # perfect, but only 3
    assert agreement.rho == pytest.approx(1.0)
    assert agreement.p_value == pytest.approx(2 / 6) and not agreement.agrees
    assert "even a perfect agreement has p=0.33" in agreement.message
    five = {name: float(i) for i, name in enumerate("abcde")}
    assert rank_agreement(five, dict(five), Direction.MINIMIZE).p_value == pytest.approx(2 / 120)


def test_a_verdict_never_calls_better_a_finalist_that_loses_most_periods() -> None:
    """The best by mean lost 8 of 12 periods but won 4 by far: the sentence read "trial 1
    beats trial 2 in 4/12 periods, loses 8 (mean 0.0095 better ...)" (issue 15)."""
    periods = [(f"p{i}", 0) for i in range(12)]
    other = {key: 1.0 for key in periods}
    best = {key: 1.005 if i < 8 else 0.96 for i, key in enumerate(periods)}
    report = compare_finalists({"trial 1": best, "trial 2": other}, Direction.MINIMIZE)
    (verdict,) = [line for line in report.summary if "trial 2" in line]
    assert "beats" not in verdict and "loses" not in verdict, verdict
    assert verdict.startswith(
        "trial 1 is better than trial 2 in 4 of 12 periods, worse in 8; better on average by "
        "0.01 (95% CI ["
    ), verdict
    assert "; a few large differences outweigh the 8 periods it is worse in, " in verdict


def test_too_few_pairs_advice_counts_the_tuning_run_apart() -> None:
    """The tuning run is a pair no design choice adds: 4 pairs with it are 3 periods set."""
    rng = np.random.default_rng(8)
    results = {"A": _periods(_noisy(0.1, 4, rng)), "B": _periods(_noisy(0.2, 4, rng))}
    (tuning_key,) = [key for key in results["A"] if key[0] == "2024-01"]
    report = compare_finalists(results, Direction.MINIMIZE, given=(tuning_key,))
    warning = report.too_few_pairs_warning
    assert warning is not None
    assert warning.startswith(
        "with 4 periods (3 re-evaluation period(s) and the tuning period, where the "
        "finalists' own runs count) "
    )  # the count and the advice say alike which periods they mean
    assert warning.endswith(
        "use at least 5 re-evaluation periods (or seeds), 6 with the tuning period"
    )


def test_the_interval_of_a_mean_of_losses_stops_at_the_floor_it_is_given() -> None:
    """One period's losses 4x the others' put the t interval's low end at -3.5 for 7.0."""
    losses = [1.2, 2.0, 3.1, 1.5, 8.0, 26.6, 6.7]
    assert mean_interval(losses, floor=0.0).low == 0.0
    symmetric = mean_interval(losses)  # no floor (a score that may go negative): as t gives it
    assert symmetric.low < 0 and math.isclose(
        symmetric.high - symmetric.mean, symmetric.mean - symmetric.low
    )
    assert mean_interval([1.0, 1.1, 0.9], floor=0.0).low > 0  # far from it: untouched
