"""Every stored fact survives its round trip through JSON user attributes unchanged."""

from __future__ import annotations

import json
import math

from autotune.analysis import BoundarySide
from autotune.analysis import compare_finalists
from autotune.analysis import rank_agreement
from autotune.campaign import BaselineOutcome
from autotune.campaign import BoundaryAction
from autotune.campaign import BoundaryCheck
from autotune.campaign import BoundaryFinding
from autotune.campaign import Finalist
from autotune.campaign import Recipe
from autotune.campaign import Recommendation
from autotune.campaign import ReevaluationDesign
from autotune.campaign import ReevaluationSkipped
from autotune.campaign import Significance
from autotune.campaign import Stage
from autotune.campaign import StepAdvice
from autotune.campaign import Stopped
from autotune.campaign import StudyFacts
from autotune.campaign import StudyKey
from autotune.campaign import StudyPlan
from autotune.campaign import SweepResult
from autotune.campaign._records import fact_attr
from autotune.spec import Direction

RECIPE = Recipe(
    "digits-mlp", {"learning_rate": 0.1, "early_stopping_patience": 0}, 64, 1, 600, 360, 30,
    "val_loss", Direction.MINIMIZE, 7,
)  # fmt: skip
PLAN = StudyPlan(Stage.JOINT, 1, 12, 100, 400, "lr", 0, 1, {"width": 32}, {"lr": "{}"}, True)


def round_trip(facts: StudyFacts) -> StudyFacts:
    attrs = dict(fact_attr(f) for f in _facts_of(facts))
    return StudyFacts.from_attrs(json.loads(json.dumps(attrs)))  # as the database keeps them


def _facts_of(facts: StudyFacts) -> list:  # noqa: ANN401
    return [value for value in vars(facts).values() if value is not None]


def test_every_fact_round_trips_through_json() -> None:
    results = {
        "trial 0": {(str(p), 0): 1.0 + 0.1 * p for p in range(6)},
        "trial 1": {(str(p), 0): 1.2 + 0.1 * p + 0.01 * (p % 2) for p in range(6)},
        "trial 2": {(str(p), 0): 1.5 + 0.1 * p for p in range(6)},
    }
    report = compare_finalists(results, Direction.MINIMIZE)
    finding = BoundaryFinding(
        "learning_rate", False, 0.3, BoundarySide.HIGH, 0.01, 0, 5, True,
        BoundaryAction.WIDEN, "widen upward", 0, 5,
    )  # fmt: skip
    facts = StudyFacts(
        PLAN,
        sweep=SweepResult(120, 0.1, BoundarySide.NONE, 1, "why"),
        baseline=BaselineOutcome(True, "beats", 0.3, math.inf),
        step_advice=StepAdvice(100, 200, "100 -> 200 steps"),
        boundaries=BoundaryCheck((finding,)),
        design=ReevaluationDesign(
            "x/joint/2",
            (Finalist("x/joint/2 #0", 0, 0.5, 0.6, {"lr": 0.1}, RECIPE),),
            4,
            7,
            True,
            1,
        ),
        significance=Significance(report, report.summary),
        rank_agreement=rank_agreement(
            {"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 1.0, "b": 2.5, "c": 2.0}, Direction.MINIMIZE
        ),
        skipped=ReevaluationSkipped("too few"),
        recommendation=Recommendation("x/joint/2 #0", RECIPE, True, 0.5, 0.4, 0.6, 4, "best"),
        stopped=Stopped("broken"),
    )
    assert round_trip(facts) == facts


def test_each_fact_has_its_own_namespaced_key() -> None:
    keys = [fact_attr(f)[0] for f in (PLAN, Stopped("x"), StepAdvice(1, 2, "n"))]
    assert keys == [StudyKey.PLAN.value, StudyKey.STOPPED.value, StudyKey.STEP_ADVICE.value]
    assert all(key.startswith("autotune.") for key in keys)
