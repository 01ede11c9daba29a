"""YAML → spec objects: the only place raw dictionaries exist; problems become SpecError."""

from __future__ import annotations

from collections.abc import Hashable
from collections.abc import Iterable
from pathlib import Path
import re
import stat
from typing import Any

from pydantic import ValidationError
import yaml

from autotune._errors import SpecError
from autotune.spec import _space
from autotune.spec import _study
from autotune.spec._space import ParamType
from autotune.spec._space import SearchSpace
from autotune.spec._study import StudySpec
from autotune.spec._study import number_text_hint
from autotune.spec._task_facts import TaskFacts
from autotune.spec._task_facts import TaskLookup
from autotune.spec._task_facts import check_against_task
from autotune.spec._task_facts import look_up_task

SEARCH_SPACES_DIR = "search_spaces"
BUILTIN_SPACES_DIR = Path(__file__).resolve().parents[2] / SEARCH_SPACES_DIR  # the checkout's
_PARAM_TAGS = frozenset(t.value for t in ParamType)
BUILTIN_SPACES = {
    "digits-mlp": "mlp",
    "digits-cnn": "cnn",
    "co2-lstm": "lstm",
    "cancer-mlp": "tabular",
}
USER_TASK_SPACE = "user"
AUTOMATIC_KEYS = frozenset({"max_train_steps", "eval_interval", "trials", "rounds", "stages"})
"""A spec that sets none of these runs in automatic mode: everything from built-in defaults
(the metric too, unless it names one of its task's: that is what to tune, not how; and the
batch size, unless it sets one: the machine's memory and throughput decide it, not the
pipeline)."""

AUTOMATIC_DEFAULTS: dict[str, Any] = {
    "max_train_steps": "auto",
    "steps_sweep": {"steps": 1000},
    "eval_interval": 10,
    "evaluations_per_run": 20,
    "pruner": {"min_steps": 10, "reduction_factor": 3},
    "batch_size": 64,
    "trials": 24,
    "rounds": [{"budget_fraction": 0.25}, {"budget_fraction": 1.0, "top_k": 4}],
}


def load_search_space(path: str | Path) -> SearchSpace:
    """Load and validate a search-space YAML file."""
    path = Path(path)
    data = _read_yaml_mapping(path)
    return _validate(SearchSpace, data, str(path))


def load_study_spec(path: str | Path, tasks: TaskLookup | None = None) -> StudySpec:
    """Load a study spec YAML file, resolving its search-space reference, and validate it.

    With ``tasks`` the spec is also checked against its task (and automatic mode takes the
    task's default metric); without, only the file's own rules are checked.
    """
    path = Path(path)
    data = _read_yaml_mapping(path)
    if "search_space" not in data and isinstance(data.get("task"), str):
        data = {**data, "search_space": BUILTIN_SPACES.get(data["task"], USER_TASK_SPACE)}
    reference = data.get("search_space")
    if isinstance(reference, str):
        data = {**data, "search_space": load_search_space(_find_search_space(reference, path))}
    return study_spec_from_dict(data, str(path), tasks)


def study_spec_from_dict(
    data: dict[str, Any], source: str, tasks: TaskLookup | None = None
) -> StudySpec:
    """Validate a study spec given as a mapping (inline search space or SearchSpace object).

    A spec that names only the task (and its search space) gets every other value from the
    automatic-mode defaults: the staged pipeline over the built-in ranges, which needs
    ``tasks``. Without ``tasks`` no task is looked up: a stored campaign's spec loads where
    the task's code is absent.
    """
    manual = sorted(AUTOMATIC_KEYS & set(data))
    if isinstance(data.get("metric"), str):  # "metric: val_accuracy": the name alone
        data = {**data, "metric": {"name": data["metric"]}}
    if not manual:
        data = automatic_spec(data, source, tasks)
    elif tasks is not None and isinstance(data.get("metric"), dict):
        data = {**data, "metric": _metric_direction(data["metric"], data.get("task"), tasks)}
    try:
        spec = _validate(StudySpec, data, source)
    except SpecError as error:
        required = (k for k, field in StudySpec.model_fields.items() if field.is_required())
        if not manual or all(key in data for key in required):
            raise
        raise SpecError(source, [*error.problems, _manual_mode_note(manual)]) from None
    if tasks is not None:
        check_against_task(spec, tasks, source)
    return spec


def _manual_mode_note(manual: list[str]) -> str:
    """Why keys are required that automatic mode would have filled: the spec set one of
    the keys that turn it off (``batch_size: 128`` used to list four missing keys)."""
    return (
        f"(this spec sets {', '.join(manual)}, which turns automatic mode off, so the keys "
        f"above are required; a spec that sets none of {', '.join(sorted(AUTOMATIC_KEYS))} "
        "runs in automatic mode and fills them from its task and built-in defaults)"
    )


def automatic_spec(data: dict[str, Any], source: str, tasks: TaskLookup | None) -> dict[str, Any]:
    """Automatic mode: the task's metric, measured max_train_steps, learning rate first.

    Stage 1 tunes the learning-rate group, stage 2 every other group with the learning rate
    re-tuned around stage 1's best; the best 4 then train at the full budget.
    """
    name = data.get("task")
    if not isinstance(name, str):
        raise SpecError(source, ["task: required key is missing"])
    if tasks is None:
        raise SpecError(
            source,
            [
                f"metric: required key is missing (a spec that sets none of "
                f"{', '.join(sorted(AUTOMATIC_KEYS))} is in automatic mode, which takes the "
                f"metric from its task: load it with a task lookup, as autotune.load_study_spec "
                f"does)"
            ],
        )
    task = look_up_task(tasks, name, source)
    filled = {**AUTOMATIC_DEFAULTS, **data}
    filled.setdefault("name", re.sub(r"[^A-Za-z0-9_.-]", "-", task.name).strip("-") or "campaign")
    filled["metric"] = _automatic_metric(data.get("metric"), name, task, source)
    groups = _group_names(filled.get("search_space"))
    if len(groups) > 1:
        first, *rest = groups
        filled["stages"] = [{"groups": [first]}, {"groups": rest}]
    return filled


def _metric_direction(metric: dict[str, Any], task_name: Any, tasks: TaskLookup) -> Any:
    """A manual spec's metric with its direction the task's where left out (a task that
    cannot be looked up is left for `check_against_task` to name)."""
    if "direction" in metric or not isinstance(task_name, str):
        return metric
    try:
        facts = tasks(task_name)
    except ValueError:  # an unknown task: named by check_against_task, with what is allowed
        return metric
    return _with_task_direction(metric, facts)


def _with_task_direction(metric: dict[str, Any], task: TaskFacts) -> dict[str, Any]:
    """``metric`` with the direction its task gives its name (one it sets stays, for
    `check_against_task` to refuse if it is the wrong one); as is for a name not the task's."""
    direction = task.metrics.get(metric.get("name"))
    return metric if direction is None else {"direction": direction.value, **metric}


def _automatic_metric(given: Any, reference: str, task: TaskFacts, source: str) -> Any:
    """The spec's metric, its direction the task's where left out; the task's default
    metric when none is given (one without a name is left for validation to name)."""
    if given is None:
        given = {"name": task.default_metric}
    name = given.get("name") if isinstance(given, dict) else None
    if name is None:
        return given
    if name not in task.metrics:
        raise SpecError(
            source,
            [
                f"metric.name: task {reference!r} has no metric {name!r}; "
                f"its metrics: {', '.join(task.metrics)}"
            ],
        )
    return _with_task_direction(given, task)


def _group_names(space: Any) -> list[str]:
    """The groups of a search space, loaded or written inline in the spec (a mapping not
    yet validated: a malformed one gives none, and validation then says what is wrong)."""
    if isinstance(space, SearchSpace):
        return list(space.group_names)
    groups = space.get("groups") if isinstance(space, dict) else None
    if not isinstance(groups, list):
        return []
    names = [group.get("name") if isinstance(group, dict) else None for group in groups]
    return names if all(isinstance(name, str) for name in names) else []


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (instead of the last
    one silently winning: ``name:`` twice would make a different campaign)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {seen[key]})",
                    key_node.start_mark,
                )
            if isinstance(key, Hashable):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a file; an unusable path (too long, bad bytes) is not."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _not_a_file(path: Path) -> str:
    """Why ``path`` cannot be read as a spec: missing, or what it is instead of a file."""
    shown = str(path)[:300]
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return f"file not found (looked at {shown})"
    kinds = {
        stat.S_ISDIR: "a directory",
        stat.S_ISFIFO: "a named pipe (FIFO)",
        stat.S_ISSOCK: "a socket",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
    }
    what = next((text for test, text in kinds.items() if test(mode)), "not a regular file")
    return f"{shown} is {what}; allowed: a YAML file"


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    if not _is_file(path):
        raise SpecError(str(path)[:300], [_not_a_file(path)])
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
    except OSError as error:
        raise SpecError(str(path), [f"cannot read the file: {error.strerror}"]) from None
    except RecursionError:
        raise SpecError(str(path), ["bad YAML: nested too deeply"]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise SpecError(str(path), [f"bad YAML at {where}{problem}"]) from None
    except UnicodeDecodeError as error:
        raise SpecError(str(path), [f"not a UTF-8 text file ({error.reason})"]) from None
    if not isinstance(data, dict):
        raise SpecError(
            str(path), [f"the top level must be a mapping of keys, got {type(data).__name__}"]
        )
    return data


def _find_search_space(reference: str, study_path: Path) -> Path:
    if reference.endswith((".yaml", ".yml")) or "/" in reference:
        candidates = [study_path.parent / reference]
    else:
        file_name = f"{reference}.yaml"
        candidates = [
            study_path.parent.parent / SEARCH_SPACES_DIR / file_name,
            Path.cwd() / SEARCH_SPACES_DIR / file_name,
            BUILTIN_SPACES_DIR / file_name,  # the built-in spaces, from any directory
        ]
    for candidate in candidates:
        if _is_file(candidate):
            return candidate
    looked = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise SpecError(
        str(study_path),
        [f"search_space: no search space {reference!r} (looked for {looked})"],
    )


def _validate(model: type, data: dict[str, Any], source: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = [_describe(e) for e in error.errors(include_url=False)]
        raise SpecError(source, _split_lines(problems)) from None


def _split_lines(problems: list[str]) -> list[str]:
    """A validator that checks several things reports each on a line of one message (one
    error per validator is all pydantic keeps); the study's is top-level, so the lines
    carry their own key names."""
    return [line for problem in problems for line in problem.split("\n")]


def _describe(error: Any) -> str:
    path = _key_path(error["loc"])
    where = f"{path}: " if path else ""
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{where}required key is missing"
    bad_value = error.get("input")
    if error["type"] == "model_type":  # "a valid dictionary or instance of BudgetSpec"
        keys = _model_keys(str(error.get("ctx", {}).get("class_name", "")))
        return f"{where}must be a mapping of {keys} (got {bad_value!r})"
    if isinstance(bad_value, dict | list) or error["type"].startswith("value_error"):
        return f"{where}{message}"
    hint = number_text_hint(bad_value) if error["type"].endswith("_parsing") else ""
    return f"{where}{message} (got {bad_value!r}){hint}"


def _model_keys(class_name: str) -> str:
    """The keys a spec section takes, for a value that is no mapping: "{steps: ...}"."""
    model = getattr(_study, class_name, None) or getattr(_space, class_name, None)
    fields = getattr(model, "model_fields", None)
    if not fields:
        return "keys"
    return "{" + ", ".join(f"{name}: ..." for name in fields) + "}"


def _key_path(loc: Iterable[str | int]) -> str:
    """Format a pydantic location as ``a.b[0].c``, dropping the parameter-type union tags."""
    parts: list[str | int] = list(loc)
    cleaned = [
        p
        for i, p in enumerate(parts)
        if not (p in _PARAM_TAGS and i >= 2 and parts[i - 2] == "params")
    ]
    text = ""
    for part in cleaned:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
