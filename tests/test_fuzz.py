"""Property-based fuzzing: bad specs give SpecError, bad command lines exit 2 with a message.

The spec loader gets mutated copies of the shipped study specs and search spaces (deleted
keys, random values at random key paths, unknown keys, broken search spaces, rounds and
stages) and random garbage files: it returns a spec (which then survives its JSON round
trip) or raises SpecError naming the file, never anything else. The CLI runs in process on
random argument lists; it never reaches a database: the storage is an unreachable port
(``127.0.0.1:1``, refused at once), and guards fail the test if anything would connect
elsewhere, start the embedded server or run a batch-size probe.

Inputs the fuzzer once found crashing, leaking a password or wrongly accepted are pinned
by the regression tests at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import logging
import math
from pathlib import Path
import re
import shutil
from typing import Any

from hypothesis import HealthCheck
from hypothesis import event
from hypothesis import given
from hypothesis import note
from hypothesis import settings
from hypothesis import strategies as st
import optuna
import pytest
from sqlalchemy.engine import make_url
import torch
import yaml

from autotune import cli
from autotune import load_study_spec  # checked against the task, as create does
from autotune import storage
from autotune import training
from autotune.spec import BoundarySpec
from autotune.spec import FastModeSpec
from autotune.spec import MetricSpec
from autotune.spec import PrunerSpec
from autotune.spec import ReevaluationSpec
from autotune.spec import SamplerSpec
from autotune.spec import SearchSpace
from autotune.spec import SpecError
from autotune.spec import StepsSweepSpec
from autotune.spec import StudySpec
from autotune.spec import load_search_space
from autotune.spec import study_spec_from_dict
from autotune.worker import _worker as worker_module
from autotune.worker._launcher import STORAGE_ENV

REPO_ROOT = Path(__file__).resolve().parent.parent
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"
UNREACHABLE_HOSTS = frozenset({"127.0.0.1", "::1"})
SECRET = "s3cr3tpw"

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _inlined(study: dict[str, Any]) -> dict[str, Any]:
    """The study with its search-space reference replaced by the raw search-space mapping."""
    data = copy.deepcopy(study)
    reference = data.get("search_space")
    if isinstance(reference, str):
        data["search_space"] = _yaml(REPO_ROOT / "search_spaces" / f"{reference}.yaml")
    return data


SPACES = {p.stem: _yaml(p) for p in sorted((REPO_ROOT / "search_spaces").glob("*.yaml"))}
_QUICKSTART = _yaml(REPO_ROOT / "studies" / "quickstart.yaml")
STUDIES: dict[str, dict[str, Any]] = {
    "quickstart": _inlined(_QUICKSTART),
    "quickstart-reference": _QUICKSTART,
    "automatic": _inlined(_yaml(REPO_ROOT / "studies" / "automatic.yaml")),
    "automatic-reference": _yaml(REPO_ROOT / "studies" / "automatic.yaml"),
    "task-only": {"task": "digits-mlp"},
    "digits-cnn": _inlined(_yaml(REPO_ROOT / "studies" / "digits_cnn.yaml")),
    "co2-lstm": _inlined(_yaml(REPO_ROOT / "studies" / "co2_lstm.yaml")),
    "staged": {
        **_inlined(_QUICKSTART),
        "stages": [
            {"groups": ["learning_rate"]},
            {"name": "middle", "groups": ["optimizer", "model"], "sampler": "grid"},
            {"groups": ["regularization"], "trials": 5, "grid_points": 2},
        ],
        "boundary": {"top_k": 3, "max_widenings": 1},
        "reevaluation": {"finalists": 2, "periods": 3, "test": "sign"},
        "fast_mode": {"enabled": True, "train_fraction": 0.5},
    },
}
SECTIONS = {
    "sampler": SamplerSpec,
    "pruner": PrunerSpec,
    "boundary": BoundarySpec,
    "reevaluation": ReevaluationSpec,
    "fast_mode": FastModeSpec,
    "steps_sweep": StepsSweepSpec,
    "metric": MetricSpec,
}
GROUP_NAMES = ["learning_rate", "optimizer", "model", "regularization", "nosuch", ""]
TASKS = training.available_tasks()


def _is_task_reference(value: object) -> bool:
    """Whether a fuzzed string would be imported as a user task (never wanted here)."""
    return isinstance(value, str) and training.is_user_task_reference(value)


# --- values -------------------------------------------------------------------------------

_CHARS = st.characters(exclude_categories=("Cs",), exclude_characters=":")
TEXT = st.text(_CHARS, max_size=16)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.sampled_from([0, -1, 1, 2, 3, 7, 2**31, 2**63, 10**30, -(10**30)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 0.25, 0.5, 1.0, 1.5, -1.5, 5e-324, 1e308, math.nan, math.inf]),
)
WORDS = st.sampled_from(
    [
        "",
        " ",
        "auto",
        "tpe",
        "random",
        "grid",
        "minimize",
        "maximize",
        "learning_rate",
        "val_loss",
        "digits-mlp",
        "co2-lstm",
        "mlp",
        "cnn",
        "../x",
        "x.yaml",
        "nosuch",
        "float",
        "int",
        "categorical",
        "none",
        "successive_halving",
        "wilcoxon",
        "no_such_module_autotune_fuzz:factory",
    ]
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT, WORDS)
KEYS = st.one_of(TEXT, WORDS, st.integers(-3, 3), st.none(), st.booleans())
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(KEYS, children, max_size=3)
    ),
    max_leaves=6,
)


# --- key paths ----------------------------------------------------------------------------

Path_ = tuple[Any, ...]


def _paths(node: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every key path below ``node`` (dict keys and list indices), ``()`` included."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _get(node: Any, path: Path_) -> Any:
    for part in path:
        node = node[part]
    return node


# --- search-space mutations (in place, on a raw search-space mapping) ----------------------


def _params(space: Any, types: set[str] | None = None) -> list[dict[str, Any]]:
    groups = space.get("groups") if isinstance(space, dict) else None
    if not isinstance(groups, list):
        return []
    found = []
    for group in groups:
        params = group.get("params") if isinstance(group, dict) else None
        if isinstance(params, dict):
            for param in params.values():
                kind = param.get("type") if isinstance(param, dict) else None
                if isinstance(kind, str) and (types is None or kind in types):
                    found.append(param)
    return found


def _groups(space: Any) -> list[dict[str, Any]]:
    groups = space.get("groups") if isinstance(space, dict) else None
    if not isinstance(groups, list):
        return []
    return [g for g in groups if isinstance(g, dict) and isinstance(g.get("params"), dict)]


def _swap_bounds(draw: st.DrawFn, space: Any) -> None:
    params = _params(space, {"float", "int"})
    if params:
        param = draw(st.sampled_from(params))
        if draw(st.booleans()):
            param["low"], param["high"] = param.get("high"), param.get("low")
        else:
            param["low"] = param.get("high")


def _log_not_positive(draw: st.DrawFn, space: Any) -> None:
    params = _params(space, {"float", "int"})
    if params:
        param = draw(st.sampled_from(params))
        param.pop("step", None)
        param["log"] = True
        param["low"] = draw(st.sampled_from([0, -1, 0.0, -1e-9, -math.inf]))


def _bad_step_or_hard_limit(draw: st.DrawFn, space: Any) -> None:
    params = _params(space, {"float", "int"})
    if params:
        param = draw(st.sampled_from(params))
        key = draw(st.sampled_from(["step", "hard_low", "hard_high"]))
        param[key] = draw(st.one_of(st.sampled_from([0, -1, 0.0, -0.5, 10**6, "x"]), NUMBERS))


def _bad_choices(draw: st.DrawFn, space: Any) -> None:
    params = _params(space, {"categorical"})
    if params:
        param = draw(st.sampled_from(params))
        param["choices"] = draw(
            st.sampled_from(
                [[], ["a"], ["a", "a"], [1, 1], "ab", None, [[1], [2]], [{"a": 1}, {"b": 2}]]
            )
            | VALUES
        )


def _duplicate_param(draw: st.DrawFn, space: Any) -> None:
    groups = _groups(space)
    if len(groups) >= 2:
        source, target = draw(st.permutations(groups))[:2]
        if source["params"]:
            name = draw(st.sampled_from(sorted(map(str, source["params"]))))
            target["params"][name] = copy.deepcopy(source["params"].get(name))


def _unknown_type(draw: st.DrawFn, space: Any) -> None:
    params = _params(space)
    if params:
        param = draw(st.sampled_from(params))
        param["type"] = draw(st.sampled_from(["floaty", "Float", "", None, 1, ["float"]]) | TEXT)


def _learning_rate_not_first(draw: st.DrawFn, space: Any) -> None:
    groups = _groups(space)
    if not groups:
        return
    how = draw(st.sampled_from(["rotate", "rename", "drop-param", "move-param"]))
    if how == "rotate" and len(groups) > 1:
        space["groups"] = space["groups"][1:] + space["groups"][:1]
    elif how == "rename":
        groups[0]["name"] = draw(st.sampled_from(["lr", "optimizer", "Learning_rate"]))
    elif how == "drop-param":
        groups[0]["params"].pop("learning_rate", None)
    elif len(groups) > 1:
        moved = groups[0]["params"].pop("learning_rate", None)
        groups[-1]["params"]["learning_rate"] = moved


def _never_tuned_param(draw: st.DrawFn, space: Any) -> None:
    groups = _groups(space)
    if groups:
        group = draw(st.sampled_from(groups))
        name = draw(st.sampled_from(["batch_size", "max_train_steps"]))
        group["params"][name] = {"type": "int", "low": 8, "high": 256, "log": True}


def _bad_group(draw: st.DrawFn, space: Any) -> None:
    if not isinstance(space, dict):
        return
    groups = _groups(space)
    how = draw(st.sampled_from(["no-groups", "empty-params", "bad-name", "extra-group"]))
    if how == "no-groups" or not groups:
        space["groups"] = draw(st.sampled_from([[], None, {}, "learning_rate"]))
    elif how == "empty-params":
        draw(st.sampled_from(groups))["params"] = draw(st.sampled_from([{}, [], None]))
    elif how == "bad-name":
        draw(st.sampled_from(groups))["name"] = draw(
            st.sampled_from(["", "1x", "a-b", "é", None, 3]) | TEXT
        )
    else:
        space["groups"].append(
            {"name": draw(st.sampled_from(GROUP_NAMES)), "params": draw(VALUES)}
        )


SPACE_MUTATIONS = [
    _swap_bounds,
    _log_not_positive,
    _bad_step_or_hard_limit,
    _bad_choices,
    _duplicate_param,
    _unknown_type,
    _learning_rate_not_first,
    _never_tuned_param,
    _bad_group,
]


# --- generic and study mutations ----------------------------------------------------------


def _delete_key(draw: st.DrawFn, data: Any) -> None:
    paths = [p for p in _paths(data) if p and isinstance(_get(data, p[:-1]), dict | list)]
    if paths:
        path = draw(st.sampled_from(paths))
        del _get(data, path[:-1])[path[-1]]


def _replace_value(draw: st.DrawFn, data: Any) -> None:
    paths = [p for p in _paths(data) if p]
    if paths:
        path = draw(st.sampled_from(paths))
        _get(data, path[:-1])[path[-1]] = draw(VALUES)


def _perturb(draw: st.DrawFn, data: Any) -> None:
    """A number or flag changed to a plausible value of its type (often still valid)."""
    paths = [p for p in _paths(data) if p and isinstance(_get(data, p), int | float)]
    if paths:
        path = draw(st.sampled_from(paths))
        old = _get(data, path)
        if isinstance(old, bool):
            new: Any = not old
        elif isinstance(old, int):
            new = draw(st.sampled_from([old + 1, old * 2, max(old - 1, 0), 0]))
        else:
            new = draw(st.sampled_from([old * 1.5, old / 2, old + 0.1, 0.0]))
        _get(data, path[:-1])[path[-1]] = new


def _add_unknown_key(draw: st.DrawFn, data: Any) -> None:
    mappings = [p for p in _paths(data) if isinstance(_get(data, p), dict)]
    if mappings:
        target = _get(data, draw(st.sampled_from(mappings)))
        key = draw(st.sampled_from(["bogus", "Name", "search-space", "lr", ""]) | KEYS)
        target[key] = draw(VALUES)


def _space_mutation(draw: st.DrawFn, data: Any) -> None:
    space = data.get("search_space", "mlp") if isinstance(data, dict) else None
    if isinstance(space, str) and space in SPACES:
        space = data["search_space"] = copy.deepcopy(SPACES[space])
    draw(st.sampled_from(SPACE_MUTATIONS))(draw, space)


_ROUND_VALUES = {
    "budget_fraction": [0, -0.1, 0.1, 0.25, 0.5, 1.0, 1.5, math.nan, math.inf, "x", None, True],
    "top_k": [None, 0, -1, 1, 4, 60, 61, 1000, 1.5, "x", True],
}
ROUNDS = st.lists(
    st.fixed_dictionaries(
        {}, optional={k: st.sampled_from(v) for k, v in _ROUND_VALUES.items()} | {"x": VALUES}
    ),
    max_size=4,
)
STAGES = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "groups": st.lists(st.sampled_from([*GROUP_NAMES, 1, None]), max_size=3) | VALUES,
            "name": st.sampled_from([None, "a", "s1", "-x", "é", "", 3]),
            "trials": st.sampled_from([None, 0, -1, 1, 5, "x"]),
            "sampler": st.sampled_from([None, "tpe", "random", "grid", "bogus", 1]),
            "grid_points": st.sampled_from([1, 2, 3, 10, 11, "x", None]),
        },
    ),
    max_size=4,
)


def _bad_rounds(draw: st.DrawFn, data: Any) -> None:
    data["rounds"] = draw(ROUNDS | VALUES)


def _bad_stages(draw: st.DrawFn, data: Any) -> None:
    data["stages"] = draw(STAGES | VALUES)


def _section_field(draw: st.DrawFn, data: Any) -> None:
    name = draw(st.sampled_from(sorted(SECTIONS)))
    section = data.get(name)
    if not isinstance(section, dict):
        section = data[name] = {}
    field = draw(st.sampled_from([*sorted(SECTIONS[name].model_fields), "bogus"]))
    section[field] = draw(VALUES)


def _top_field(draw: st.DrawFn, data: Any) -> None:
    data[draw(st.sampled_from(sorted(StudySpec.model_fields)))] = draw(VALUES)


STUDY_MUTATIONS = [
    _perturb,
    _perturb,
    _perturb,
    _delete_key,
    _replace_value,
    _add_unknown_key,
    _space_mutation,
    _space_mutation,
    _bad_rounds,
    _bad_stages,
    _section_field,
    _top_field,
]
GENERIC_MUTATIONS = [_perturb, _perturb, _delete_key, _replace_value, _add_unknown_key]


@st.composite
def mutated(draw: st.DrawFn, bases: dict[str, Any], mutations: list[Any]) -> dict[str, Any]:
    """One of ``bases`` with one to three of ``mutations`` applied."""
    name = draw(st.sampled_from(sorted(bases)))
    data = copy.deepcopy(bases[name])
    for _ in range(draw(st.integers(1, 3))):
        mutation = draw(st.sampled_from(mutations))
        note(f"{name}: {mutation.__name__}")
        mutation(draw, data)
    return data


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@st.composite
def damaged_text(draw: st.DrawFn) -> str:
    """A shipped spec's YAML text cut short or with a character inserted."""
    text = _dump(draw(st.sampled_from([*STUDIES.values(), *SPACES.values()])))
    at = draw(st.integers(0, len(text)))
    if draw(st.booleans()):
        return text[:at]
    return (
        text[:at]
        + draw(st.sampled_from(["[", "{", ":", "\t", '"', "'", "&", "*", "!", "-"]))
        + text[at:]
    )


GARBAGE = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    st.one_of(SCALARS, st.lists(VALUES, max_size=3)).map(_dump),
    st.sampled_from(
        [
            "",
            "---\n",
            "...\n",
            "- a\n- b\n",
            "[",
            "{",
            "a: [1, 2",
            "\t- x",
            "a: b: c",
            "key: value\n  bad indent: 1",
            "a: !!python/object/apply:os.getcwd []",
            "a: &x [*x]",
            "a: *nosuch",
            "%YAML 9.9\n---\n",
            "\x00",
            "\ufeff",
            "? [a, b]\n: 1\n",
            "task: digits-mlp\ntask: digits-cnn\n",
            b"\xff\xfe\x00",
            b"task: \xe9\n",
        ]
    ),
    damaged_text(),
)
STUDY_DOCUMENTS = st.one_of(
    mutated(STUDIES, STUDY_MUTATIONS), mutated(STUDIES, STUDY_MUTATIONS), GARBAGE
)
PERTURBED_STUDIES = mutated(STUDIES, [_perturb])
SPACE_MUTATIONS_ALL = SPACE_MUTATIONS + GENERIC_MUTATIONS
SPACE_DOCUMENTS = st.one_of(
    mutated(SPACES, SPACE_MUTATIONS_ALL), mutated(SPACES, SPACE_MUTATIONS_ALL), GARBAGE
)
PERTURBED_SPACES = mutated(SPACES, [_perturb])


def _write(path: Path, document: Any) -> None:
    if isinstance(document, bytes):
        path.write_bytes(document)
    elif isinstance(document, str):
        path.write_text(document, encoding="utf-8")
    else:
        path.write_text(_dump(document), encoding="utf-8")


def _check_spec_error(error: SpecError, path: Path) -> None:
    """A SpecError names its file (the spec, or the search-space file it refers to)."""
    message = str(error)
    assert error.source in message
    assert error.source == str(path) or Path(error.source).is_file(), message
    assert error.problems, message
    assert all(isinstance(p, str) and p.strip() for p in error.problems), message


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A studies/ directory next to a copy of search_spaces/, so references resolve."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "studies").mkdir()
    shutil.copytree(REPO_ROOT / "search_spaces", root / "search_spaces")
    return root


def _guarded_check_connection(url: str) -> None:
    parsed = make_url(url)
    if parsed.host not in UNREACHABLE_HOSTS or parsed.port != 1:
        raise AssertionError(f"fuzzing must not connect to {url!r}")
    _REAL_CHECK_CONNECTION(url)


def _guarded_wait_for_server(url: str, limit_s: float, *args: object) -> float:
    """A worker started while the database is down waits ``limit_s`` for it, then gives
    up with exit 1 (tests/test_outage.py): here it gives up after one try (fuzzing must not
    wait 300 s per example), and only on the unreachable URLs."""
    parsed = make_url(url)
    if parsed.host not in UNREACHABLE_HOSTS or parsed.port != 1:
        raise AssertionError(f"fuzzing must not connect to {url!r}")
    return _REAL_WAIT_FOR_SERVER(url, 0.0)


def _no_embedded_server(*args: object, **kwargs: object) -> str:
    raise AssertionError("fuzzing must not start the embedded server")


def _guarded_probe(task: object, hparams: object, **kwargs: Any) -> object:
    if not kwargs.get("max_batch_size", 4096) < 8:  # < 8: rejected before any training
        raise AssertionError(f"fuzzing must not run a batch-size probe: {kwargs}")
    return _REAL_PROBE(task, hparams, **kwargs)


def _never(*args: object, **kwargs: object) -> None:
    raise AssertionError("fuzzing must not create campaigns or start workers")


_REAL_CHECK_CONNECTION = storage.check_connection
_REAL_WAIT_FOR_SERVER = worker_module.wait_for_server
_REAL_PROBE = training.probe_batch_size


@pytest.fixture(scope="module", autouse=True)
def no_database() -> Any:
    """Default storage unreachable; anything that would connect elsewhere or work fails."""
    threads = torch.get_num_threads()
    verbosity = optuna.logging.get_verbosity()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(STORAGE_ENV, UNREACHABLE)
        patch.setattr(storage, "check_connection", _guarded_check_connection)
        patch.setattr(worker_module, "wait_for_server", _guarded_wait_for_server)
        patch.setattr(storage, "embedded_url", _no_embedded_server)
        patch.setattr(training, "probe_batch_size", _guarded_probe)
        patch.setattr(cli, "create_or_extend_campaign", _never)
        patch.setattr(cli, "run_local_workers", _never)
        yield
    torch.set_num_threads(threads)
    optuna.logging.set_verbosity(verbosity)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``cli.main(argv)`` in process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    threads = torch.get_num_threads()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(argv)
            except SystemExit as exit_:
                code = exit_.code
    finally:
        torch.set_num_threads(threads)
    return code, out.getvalue(), err.getvalue()


def _assert_user_error(argv: list[str], code: int, out: str, err: str) -> None:
    shown = f"argv={argv!r}\nexit={code}\nstdout={out!r}\nstderr={err!r}"
    assert code == 2, shown
    assert "Traceback" not in out + err, shown
    assert "autotune: error" in err or "usage:" in err, shown


# --- 1. spec loader -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_base_studies_are_valid(name: str, workdir: Path) -> None:
    """The mutations start from valid specs (else they would test nothing)."""
    path = workdir / "studies" / f"base-{name}.yaml"
    _write(path, STUDIES[name])
    assert isinstance(load_study_spec(path), StudySpec)


def _check_study_file(path: Path) -> None:
    """load_study_spec gives a StudySpec that survives its JSON round trip, or a SpecError."""
    try:
        spec = load_study_spec(path)
    except SpecError as error:
        _check_spec_error(error, path)
        event("SpecError")
        return
    event("valid spec")
    assert isinstance(spec, StudySpec)
    again = study_spec_from_dict(spec.to_json_dict(), "round trip")
    assert again.spec_hash == spec.spec_hash


def _check_space_file(path: Path) -> None:
    """load_search_space gives a SearchSpace that survives its JSON round trip, or a SpecError."""
    try:
        space = load_search_space(path)
    except SpecError as error:
        _check_spec_error(error, path)
        event("SpecError")
        return
    event("valid search space")
    assert isinstance(space, SearchSpace)
    again = SearchSpace.model_validate(space.model_dump(mode="json"))
    assert _canonical(again) == _canonical(space)


def _canonical(space: SearchSpace) -> str:
    return json.dumps(space.model_dump(mode="json"), sort_keys=True)


@settings(FUZZ, max_examples=400)
@given(document=STUDY_DOCUMENTS)
def test_load_study_spec_fuzz(document: Any, workdir: Path) -> None:
    """Bad variants of the shipped studies and garbage files: SpecError naming the file."""
    path = workdir / "studies" / "fuzz.yaml"
    _write(path, document)
    _check_study_file(path)


@settings(FUZZ, max_examples=100)
@given(document=PERTURBED_STUDIES)
def test_perturbed_study_specs_round_trip(document: Any, workdir: Path) -> None:
    """Small changes of numbers and flags: mostly valid specs, which round-trip."""
    path = workdir / "studies" / "perturbed.yaml"
    _write(path, document)
    _check_study_file(path)


@settings(FUZZ, max_examples=250)
@given(document=SPACE_DOCUMENTS)
def test_load_search_space_fuzz(document: Any, workdir: Path) -> None:
    """Bad variants of the shipped search spaces and garbage files."""
    path = workdir / "search_spaces" / "fuzz.yaml"
    _write(path, document)
    _check_space_file(path)


@settings(FUZZ, max_examples=60)
@given(document=PERTURBED_SPACES)
def test_perturbed_search_spaces_round_trip(document: Any, workdir: Path) -> None:
    path = workdir / "search_spaces" / "perturbed.yaml"
    _write(path, document)
    _check_space_file(path)


def test_missing_and_directory_paths_are_spec_errors(workdir: Path) -> None:
    for path in [workdir / "nope.yaml", workdir, workdir / "studies" / "", Path("")]:
        for loader in (load_study_spec, load_search_space):
            with pytest.raises(SpecError) as caught:
                loader(path)
            assert str(path) in str(caught.value)


# --- 2. command line ----------------------------------------------------------------------


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli._parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


SUBPARSERS = _subparsers()
STORAGE_URLS = st.sampled_from(
    [
        UNREACHABLE,
        "postgresql://u:pw@127.0.0.1:1/db",
        "postgres://127.0.0.1:1",
        "postgresql://[::1]:1/db",
        "postgresql://127.0.0.1:1/db?sslmode=bogus",
        "mysql://u@127.0.0.1:1/db",
        "sqlite:///x.db",
        "",
        "not a url",
        "://",
    ]
)
INT_TOKENS = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["0", "-1", "10" * 15, "-" + "9" * 30]),
    st.sampled_from(["", "abc", "1.5", "1e3", "0x10", "nan", "inf", "-", "1_000", " 7 ", "٣"]),
)
CLEAN_INT_TOKENS = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["0", "-1", "1", str(2**31), str(2**63), "1" + "0" * 30, "-" + "9" * 30]),
)
THREAD_TOKENS = st.one_of(
    st.integers(-64, 64).map(str),
    st.sampled_from(["", "abc", "1.5", "nan", "٣", str(2**31), "9" * 30]),
)
FLOAT_TOKENS = st.one_of(
    st.floats(-1e6, 1e6).map(repr),
    st.sampled_from(["", "abc", "0", "-1", "1e3", "nan", "inf", "-inf", "1e400", "0x10"]),
)
MEMORY_CAP_TOKENS = st.one_of(
    st.floats(-1e6, 1e6).map(repr),
    st.sampled_from(["", "abc", "0", "-1", "inf", "nan", "1e308"]),
)
NAMES = st.one_of(
    TEXT,
    st.sampled_from(
        ["", "x", "../x", "a/b", "é", "名前", " ", "-", "--", "x" * 200, "quickstart", "a\x00b"]
    ),
).filter(lambda s: s not in TASKS and not _is_task_reference(s))
PATHS = st.one_of(
    st.sampled_from(
        ["", ".", "/", "/nonexistent/spec.yaml", "../x.yaml", "x" * 200, "studies", "é.yaml"]
    ),
    TEXT,
)
GARBAGE_TOKENS = st.one_of(
    st.sampled_from(
        ["--bogus", "-x", "--", "-", "---", "--verb", "--wor", "--nam", "-vv", "--yes", "--x=1"]
    ),
    NAMES.filter(lambda s: not s.startswith("-")),
)
BOUNDED_INT_OPTIONS = frozenset({"heartbeat_interval", "grace_period", "port"})
HELP_TOKENS = ("-h", "--help", "--hel", "-vh", "-hv")


def _plain(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return strategy.filter(lambda token: not token.startswith("-"))


def _value_tokens(action: argparse.Action, clean: bool) -> st.SearchStrategy[str]:
    """Values for an option; ``clean``: only values that argparse accepts."""
    if action.dest == "storage":
        return STORAGE_URLS
    if action.dest == "threads":
        return st.integers(-64, 64).map(str) if clean else THREAD_TOKENS
    if action.dest == "memory_cap_mib":
        return st.floats(-1e6, 1e6).map(repr) if clean else MEMORY_CAP_TOKENS
    if action.type is int or action.dest in BOUNDED_INT_OPTIONS:
        return CLEAN_INT_TOKENS if clean else INT_TOKENS
    if action.type is float:
        return st.floats(-1e300, 1e300).map(repr) if clean else FLOAT_TOKENS
    if action.type is Path:
        return _plain(PATHS) if clean else PATHS
    if action.dest == "hparams":
        return st.sampled_from(
            [
                "a=1",
                "hidden_units=abc",
                "=3",
                "noequals",
                "x=",
                "é=[]",
                "a=[x",
                "a=!!python/name:os",
            ]
        )
    return _plain(NAMES) if clean else NAMES


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """A command line: a real or garbage subcommand, its options and positionals, garbage.

    Half of them are clean: a real subcommand, its positionals and well-formed option values,
    so that they get past argparse to the command itself.
    """
    clean = draw(st.booleans())
    commands = st.sampled_from(sorted(SUBPARSERS))
    command = draw(commands if clean else commands | GARBAGE_TOKENS)
    units: list[list[str]] = []
    parser = SUBPARSERS.get(command)
    for action in parser._actions if parser else []:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            if not draw(st.booleans()):
                continue
            flag = draw(st.sampled_from(action.option_strings))
            if action.nargs == 0:
                units.append([flag])
            elif action.nargs == "*":
                units.append([flag, *draw(st.lists(_value_tokens(action, clean), max_size=3))])
            else:
                units.append([flag, draw(_value_tokens(action, clean))])
        elif not clean and not draw(st.integers(0, 2)):
            continue  # a positional left out
        elif action.dest == "spec":
            units.append([draw(_plain(PATHS) if clean else PATHS)])
        elif action.dest == "name" and command == "tasks":
            units.append([draw(st.sampled_from(TASKS) | _plain(NAMES))])
        else:
            units.append([draw(_plain(NAMES) if clean else NAMES)])
    if not clean:
        units += [[token] for token in draw(st.lists(GARBAGE_TOKENS, max_size=2))]
        if draw(st.integers(0, 4)) == 0:
            units.append([draw(st.sampled_from(HELP_TOKENS))])
    ordered = draw(st.permutations(units)) if draw(st.booleans()) else units
    return [command] + [token for unit in ordered for token in unit]


@settings(FUZZ, max_examples=400)
@given(argv=command_lines())
def test_cli_fuzz(argv: list[str]) -> None:
    """Any command line: exit 2 with a message (0 for help and valid `tasks`), no traceback."""
    code, out, err = run_cli(argv)
    event(f"exit {code}: {'usage' if 'usage:' in err else 'autotune error' if err else 'ok'}")
    shown = f"argv={argv!r}\nexit={code}\nstdout={out!r}\nstderr={err!r}"
    assert "Traceback" not in out + err, shown
    if code == 0:
        helped = any(re.match(r"-[A-Za-z]*h|--he", token) for token in argv)
        assert helped or argv[0] == "tasks", shown
        assert out.strip(), shown
    elif code == 1 and argv[0] == "worker":  # gave up waiting for the database
        assert "gives up: the database has been unreachable" in err, shown
    else:
        _assert_user_error(argv, code, out, err)


@settings(FUZZ, max_examples=150)
@given(
    document=STUDY_DOCUMENTS,
    command=st.sampled_from(["run", "create"]),
    extra=st.lists(
        st.sampled_from(
            [
                ["--name", "renamed"],
                ["--name", "../x"],
                ["--workers", "0"],
                ["--workers", "-3"],
                ["--heartbeat-interval", "0"],
                ["--grace-period", "5"],
                ["--storage", "postgresql://u:pw@127.0.0.1:1/db"],
                ["-v"],
            ]
        ),
        max_size=2,
    ),
)
def test_cli_spec_file_fuzz(
    document: Any, command: str, extra: list[list[str]], workdir: Path
) -> None:
    """`run`/`create` with a fuzzed spec file: exit 2 and the spec error names the file."""
    path = workdir / "studies" / "cli.yaml"
    _write(path, document)
    argv = [command, str(path)] + [token for pair in extra for token in pair]
    code, out, err = run_cli(argv)
    event("invalid spec" if "invalid spec" in err else err.split(":")[2].strip()[:25])
    _assert_user_error(argv, code, out, err)
    if "invalid spec" in err:
        assert str(path) in err or "search_spaces" in err, err


@pytest.mark.parametrize("command", sorted(SUBPARSERS))
def test_cli_help_exits_zero(command: str) -> None:
    code, out, err = run_cli([command, "--help"])
    assert code == 0
    assert "usage:" in out
    assert not err


@pytest.mark.parametrize("argv", [[], ["--bogus"], ["nosuch"], ["run"], ["worker"]])
def test_cli_usage_errors(argv: list[str]) -> None:
    code, out, err = run_cli(argv)
    _assert_user_error(argv, code, out, err)
    assert "usage:" in err


# --- 3. passwords never reach the output --------------------------------------------------

_PASSWORD_URL = f"postgresql://user:{SECRET}@127.0.0.1:1/db"
PASSWORD_COMMANDS = [
    ["status", "x", "--storage", _PASSWORD_URL],
    ["status", "--storage", _PASSWORD_URL],
    ["status", "x", "-v", "--storage", f"postgres://user:{SECRET}@127.0.0.1:1"],
    ["status", "x", "--storage", f"postgresql://user:{SECRET}@127.0.0.1:1/db?sslmode=bogus"],
    ["status", "x", "--storage", f"mysql://user:{SECRET}@127.0.0.1:1/db"],
    ["status", "x", "--storage", f"postgresql+asyncpg://user:{SECRET}@127.0.0.1:1/db"],
    ["status", "x", "--storage", f"postgresql://user:{SECRET}%40x@127.0.0.1:1/db"],
    ["status", "x", "--storage", f"postgresql://user:p@{SECRET}@127.0.0.1:1/db"],  # issue 17
    ["best", "x", "-v", "--storage", _PASSWORD_URL],
    ["report", "x", "--storage", _PASSWORD_URL],
    ["delete", "x", "--yes", "--storage", _PASSWORD_URL],
    ["dashboard", "--storage", _PASSWORD_URL],
    ["worker", "x", "-v", "--outage-limit", "1", "--storage", _PASSWORD_URL],  # exits 1
    ["run", str(REPO_ROOT / "studies" / "quickstart.yaml"), "-v", "--storage", _PASSWORD_URL],
    ["create", str(REPO_ROOT / "studies" / "quickstart.yaml"), "--storage", _PASSWORD_URL],
    ["create", "/nonexistent.yaml", "--storage", _PASSWORD_URL],
    ["status", "x", "--heartbeat-interval", "0", "--storage", _PASSWORD_URL],
]


def _assert_no_secret(argv: list[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    code, out, err = run_cli(argv)
    gives_up = argv[0] == "worker"  # waits out an outage as a running worker does, then 1
    assert code == (1 if gives_up else 2), (out, err)
    assert "Traceback" not in err
    for where, text in (("stdout", out), ("stderr", err), ("log", caplog.text)):
        assert SECRET not in text, f"password in {where}: {text!r}"


@pytest.mark.parametrize("argv", PASSWORD_COMMANDS, ids=lambda argv: " ".join(argv[:2]))
def test_password_never_in_output(argv: list[str], caplog: pytest.LogCaptureFixture) -> None:
    _assert_no_secret(argv, caplog)


def test_password_from_environment_never_in_output(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STORAGE_ENV, _PASSWORD_URL)
    _assert_no_secret(["status", "x", "-v"], caplog)


# --- regressions: inputs that once crashed, leaked a password or were accepted ----------

_QUICKSTART_PATH = str(REPO_ROOT / "studies" / "quickstart.yaml")


@pytest.mark.parametrize(
    "argv",
    [
        # make_url raises ValueError (not ArgumentError) for a non-numeric port
        ["status", "x", "--storage", "postgresql://u:pw@127.0.0.1:abc/db"],
        ["status", "x", "--storage", "postgresql://u:pw@[::1:1/db"],
        # torch.set_num_threads: "Overflow when unpacking long long"
        ["worker", "x", "--threads", "99999999999999999999"],
        ["probe-batch", "nosuch", "--threads", "99999999999999999999"],
        # yaml.YAMLError from _parse_assignments
        ["probe-batch", "digits-mlp", "--max-batch-size", "1", "--hparams", "a=[x"],
        ["probe-batch", "digits-mlp", "--max-batch-size", "1", "--hparams", "a=!!python/name:os"],
        # int(inf * 2**20) / int(nan): OverflowError / ValueError
        ["probe-batch", "digits-mlp", "--max-batch-size", "1", "--memory-cap-mib", "inf"],
        ["probe-batch", "digits-mlp", "--max-batch-size", "1", "--memory-cap-mib", "nan"],
        ["probe-batch", "digits-mlp", "--max-batch-size", "1", "--memory-cap-mib", "1e308"],
        # Path.is_file raises OSError ENAMETOOLONG
        ["create", "a" * 5000],
        # OverflowError in the heartbeat and janitor threads, in bind() (issue 17 item 15)
        ["worker", "x", "--heartbeat-interval", "99999999999"],
        ["run", _QUICKSTART_PATH, "--heartbeat-interval", "99999999999"],
        ["worker", "x", "--grace-period", "99999999999"],
        ["dashboard", "--port", "99999"],
        ["dashboard", "--port", "-1"],
    ],
    ids=lambda argv: " ".join(argv)[:60],
)
def test_regression_cli_crashes(argv: list[str]) -> None:
    code, out, err = run_cli(argv)
    _assert_user_error(argv, code, out, err)


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 5000 + "]" * 5000,  # RecursionError in the YAML constructor
        "task: digits-mlp\nsearch_space: " + "a" * 5000,  # OSError: File name too long
        "task: digits-mlp\nsearch_space: x/" + "a" * 5000,
    ],
    ids=["deep-nesting", "long-reference", "long-relative-reference"],
)
def test_regression_spec_crashes(text: str, workdir: Path) -> None:
    path = workdir / "studies" / "bug.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError):
        load_study_spec(path)


def test_regression_duplicate_keys_accepted(workdir: Path) -> None:
    """A key given twice: the last one won silently (issue 17 item 8)."""
    path = workdir / "studies" / "bug.yaml"
    text = (REPO_ROOT / "studies" / "quickstart.yaml").read_text(encoding="utf-8")
    path.write_text(text + "name: another\n", encoding="utf-8")
    with pytest.raises(SpecError, match="duplicate key 'name'"):
        load_study_spec(path)


def test_regression_long_spec_path() -> None:
    with pytest.raises(SpecError):
        load_study_spec("a" * 5000)


_SCHEDULE = "search_space.groups[0].params.schedule"


@pytest.mark.parametrize(
    ("key_path", "value"),
    [
        ("search_space.groups[0].params.warmup_fraction.low", math.nan),
        ("search_space.groups[0].params.warmup_fraction.low", -math.inf),
        ("search_space.groups[0].params.warmup_fraction.high", math.nan),
        (f"{_SCHEDULE}.choices", [math.nan, "cosine"]),
        (f"{_SCHEDULE}.choices", [1, True]),  # distinct by repr, equal as values
        (f"{_SCHEDULE}.choices", [1, 1.0]),
        ("fixed.momentum", math.nan),
        ("learning_rate_narrowing", math.inf),
        ("boundary", {"log_factor": math.inf}),
        ("boundary", {"linear_fraction": math.inf}),
        ("steps_sweep", {"high": math.inf}),
        ("search_space.groups[2].name", "optimizer"),  # two groups of the same name
        # values outside the hyperparameters' domains (issue 17 item 6)
        ("fixed.momentum", -5),
        ("fixed.momentum", "0.9"),
        (f"{_SCHEDULE}.choices", ["bogus_schedule", "cosine"]),
        ("search_space.groups[0].params.warmup_fraction.high", 5.0),
        ("search_space.groups[0].params.early_stopping_patience.low", -1),
        ("search_space.groups[2].params.hidden_units", {"type": "int", "low": 0, "high": 64}),
        ("search_space.groups[2].params.num_layers.high", 100000),
        ("search_space.groups[3].params.dropout.high", 1.5),
        # booleans where numbers belong (issue 17 item 8): pydantic read true as 1
        ("trials", True),
        ("pruner", {"min_steps": True}),
        ("search_space.groups[0].params.warmup_fraction.high", True),
    ],
    ids=lambda v: str(v)[:40],
)
def test_regression_bad_values_accepted(key_path: str, value: Any, workdir: Path) -> None:
    data = copy.deepcopy(STUDIES["quickstart"])
    *parents, last = key_path.replace("[", ".").replace("]", "").split(".")
    node = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(last) if last.isdigit() else last] = value
    path = workdir / "studies" / "bug.yaml"
    _write(path, data)
    with pytest.raises(SpecError):
        load_study_spec(path)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://127.0.0.1:1/db?password={SECRET}",  # libpq's query-string password
        f"user:{SECRET}@127.0.0.1:1/db",  # no scheme: the fallback mask needs '://'
    ],
)
def test_regression_password_in_output(url: str, caplog: pytest.LogCaptureFixture) -> None:
    _assert_no_secret(["status", "x", "--storage", url], caplog)


def test_regression_zero_workers_accepted() -> None:
    code, out, err = run_cli(["run", _QUICKSTART_PATH, "--workers", "0"])
    assert code == 2
    assert "--workers" in err
