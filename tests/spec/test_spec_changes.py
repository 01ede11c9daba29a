"""spec_changes: what differs between two specs, by key path, for the "spec changed" error."""

from __future__ import annotations

from autotune import load_study_spec
from autotune.spec import spec_changes
from autotune.spec import study_spec_from_dict
from tests.conftest import REPO_ROOT

QUICKSTART = load_study_spec(REPO_ROOT / "studies" / "quickstart.yaml")


def _changed(**changes: object) -> object:
    return study_spec_from_dict({**QUICKSTART.to_json_dict(), **changes}, "changed")


def test_the_same_spec_has_no_changes() -> None:
    assert spec_changes(QUICKSTART, _changed()) == []


def test_changes_are_named_by_key_path_with_both_values() -> None:
    changed = _changed(trials=20, seed=3, pruner={"min_steps": 60})
    assert spec_changes(QUICKSTART, changed) == [
        "trials: 60 -> 20",
        "pruner.min_steps: 30 -> 60",
        "seed: 0 -> 3",
    ]


def test_many_changes_are_cut_with_a_count() -> None:
    changes = spec_changes(QUICKSTART, _changed(trials=20, seed=3, eval_interval=60), limit=2)
    assert changes == ["eval_interval: 30 -> 60", "trials: 60 -> 20", "and 1 more"]
