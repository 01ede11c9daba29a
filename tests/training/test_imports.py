from __future__ import annotations

from pathlib import Path
import sys

import autotune.training
from tests.conftest import imported_modules

PACKAGE = Path(autotune.training.__file__).parent


SHARED_LEAVES = {"autotune._domains"}  # plain data both training and spec read


def test_training_imports_only_torch_numpy_and_stdlib() -> None:
    for path in PACKAGE.glob("*.py"):
        for module in imported_modules(path) - SHARED_LEAVES:
            top = module.split(".")[0]
            assert top not in {"optuna", "autotune", "sqlalchemy", "psycopg2"}, (path, module)


def test_the_shared_leaves_import_only_the_standard_library() -> None:
    for leaf in SHARED_LEAVES:
        path = PACKAGE.parent / f"{leaf.split('.')[-1]}.py"
        tops = {module.split(".")[0] for module in imported_modules(path)}
        assert tops <= set(sys.stdlib_module_names) | {"__future__"}, (path, tops)


def test_public_api_is_exported() -> None:
    for name in autotune.training.__all__:
        assert hasattr(autotune.training, name), name
