"""autotune.analysis works on plain data and FrozenTrials: no storage, no database."""

from __future__ import annotations

from pathlib import Path

import autotune.analysis
from tests.conftest import imported_modules

PACKAGE = Path(autotune.analysis.__file__).parent
ALLOWED_AUTOTUNE = {"autotune.spec", "autotune.analysis"}


def test_analysis_imports_no_storage() -> None:
    for path in PACKAGE.glob("*.py"):
        for module in imported_modules(path):
            top = module.split(".")[0]
            assert top not in {"sqlalchemy", "psycopg2", "torch"}, (path, module)
            if top == "optuna":
                assert module in {"optuna.trial", "optuna.distributions"}, (path, module)
            if top == "autotune":
                assert ".".join(module.split(".")[:2]) in ALLOWED_AUTOTUNE, (path, module)


def test_public_api_is_exported() -> None:
    for name in autotune.analysis.__all__:
        assert hasattr(autotune.analysis, name), name
    assert sorted(autotune.analysis.__all__) == autotune.analysis.__all__
