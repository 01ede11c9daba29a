"""Search-space and study specs: frozen, validated, loaded from YAML.

No torch, no task import: checks that need the task take its TaskFacts from a lookup.
"""

from __future__ import annotations

from autotune._errors import SpecError
from autotune.spec._loader import load_search_space
from autotune.spec._loader import load_study_spec
from autotune.spec._loader import study_spec_from_dict
from autotune.spec._space import CategoricalParam
from autotune.spec._space import FloatParam
from autotune.spec._space import IntParam
from autotune.spec._space import ParamGroup
from autotune.spec._space import ParamType
from autotune.spec._space import SearchSpace
from autotune.spec._study import BoundarySpec
from autotune.spec._study import BudgetSpec
from autotune.spec._study import Direction
from autotune.spec._study import FastModeSpec
from autotune.spec._study import MetricSpec
from autotune.spec._study import PairedTestKind
from autotune.spec._study import PeriodSpec
from autotune.spec._study import PeriodsSpec
from autotune.spec._study import PrunerKind
from autotune.spec._study import PrunerSpec
from autotune.spec._study import ReevaluationSpec
from autotune.spec._study import RoundSpec
from autotune.spec._study import SamplerKind
from autotune.spec._study import SamplerSpec
from autotune.spec._study import StageSpec
from autotune.spec._study import StepsSweepSpec
from autotune.spec._study import StudySpec
from autotune.spec._study import spec_changes
from autotune.spec._task_facts import TaskFacts
from autotune.spec._task_facts import TaskLookup
from autotune.spec._task_facts import check_against_task
from autotune.spec._task_facts import task_problems

__all__ = [
    "BoundarySpec",
    "BudgetSpec",
    "PairedTestKind",
    "PeriodSpec",
    "PeriodsSpec",
    "ReevaluationSpec",
    "StageSpec",
    "CategoricalParam",
    "Direction",
    "FastModeSpec",
    "FloatParam",
    "IntParam",
    "MetricSpec",
    "ParamGroup",
    "ParamType",
    "PrunerKind",
    "PrunerSpec",
    "RoundSpec",
    "SamplerKind",
    "SamplerSpec",
    "SearchSpace",
    "SpecError",
    "StepsSweepSpec",
    "StudySpec",
    "TaskFacts",
    "TaskLookup",
    "check_against_task",
    "load_search_space",
    "load_study_spec",
    "spec_changes",
    "study_spec_from_dict",
    "task_problems",
]
