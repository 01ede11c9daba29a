"""The layering of DESIGN.md, held on the real import closure and on the source.

Data flows down: spec -> campaign -> worker -> training; campaign -> analysis; report reads
campaign records. The pure packages never load torch (a notebook that queries studies has no
training code), nothing imports the CLI, only storage/ touches SQLAlchemy or Optuna's storage
internals, and study attribute keys ("autotune.*") are named in campaign/ only.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
import json
from pathlib import Path
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "autotune"


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = frozenset(module_name(path) for path in package_files())


# package -> modules that importing it (and every module in it) must not load. The campaign,
# and so report, may use autotune.training's pure schedule math (training/_schedules.py).
NOT_LOADED = {
    "autotune": ("torch", "optuna", "sqlalchemy", "autotune.training"),
    "autotune.spec": ("torch", "optuna", "sqlalchemy", "autotune.training"),
    "autotune.analysis": ("torch",),
    "autotune.pruning": ("torch",),
    "autotune.report": ("torch",),
}

# A fresh interpreter imports the package; a meta-path finder notes, for every forbidden
# module, the chain of autotune modules (then the third-party one) whose import pulled it in.
_PROBE = """
import json, sys, traceback
ROOT, TARGET, WATCHED = sys.argv[1], sys.argv[2], set(sys.argv[3:])
chains = {}

def module_of(filename):
    if filename.startswith(ROOT + "/autotune/"):
        return filename[len(ROOT) + 1 : -3].replace("/", ".").removesuffix(".__init__")
    parts = filename.split("site-packages/")
    return parts[-1] if len(parts) > 1 else filename

class Spy:
    def find_spec(self, name, path=None, target=None):
        if name in WATCHED and name not in chains:
            frames = [f.filename for f in traceback.extract_stack()[:-1]]
            names = [module_of(f) for f in frames if "importlib" not in f and f != "<string>"]
            chains[name] = [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]
        return None

sys.meta_path.insert(0, Spy())
for name in TARGET.split(","):
    __import__(name)
print(json.dumps({m: chains.get(m, []) for m in sorted(WATCHED) if m in sys.modules}))
"""


def loaded_by_import(package: str, watched: tuple[str, ...]) -> dict[str, list[str]]:
    """The watched modules a fresh interpreter loads importing ``package`` and every module
    in it (``autotune`` alone: just the package), each with its import chain."""
    modules = [package] if package == "autotune" else sorted(submodules(package))
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(REPO_ROOT), ",".join(modules), *watched],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"import {package} failed:\n{result.stderr[-3000:]}"
    return json.loads(result.stdout.splitlines()[-1])


def submodules(package: str) -> set[str]:
    return {m for m in MODULES if m == package or m.startswith(f"{package}.")}


@pytest.mark.parametrize("package", sorted(NOT_LOADED))
def test_pure_packages_load_no_torch(package: str) -> None:
    loaded = loaded_by_import(package, NOT_LOADED[package])
    chains = "\n".join(f"  {module}: {' -> '.join(chain)}" for module, chain in loaded.items())
    assert not loaded, f"import {package} loads what it must not, through:\n{chains}"


# --- static scans of autotune/*.py ---------------------------------------------------------


def imports_of(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module) of every import in the file, in functions and TYPE_CHECKING too.

    ``from package import name`` yields ``package.name`` as well, so importing a submodule by
    name (``from autotune import cli``) counts.
    """
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield node.lineno, base
            yield from ((node.lineno, f"{base}.{alias.name}") for alias in node.names)


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(REPO_ROOT)}:{line}"


def test_nothing_imports_the_cli() -> None:
    found = [
        f"{where(path, line)} imports {name}"
        for path in package_files()
        if path.name not in {"cli.py", "__main__.py"}
        for line, name in imports_of(path)
        if name == "autotune.cli" or name.startswith("autotune.cli.")
    ]
    assert not found, "the CLI is the top; nothing imports it:\n" + "\n".join(found)


# file (relative to the repository) -> why it may import SQLAlchemy or Optuna storage
# internals anyway; none at present.
STORAGE_EXCEPTIONS: dict[str, str] = {}


def is_storage_internal(name: str) -> bool:
    return name.split(".")[0] == "sqlalchemy" or name.startswith("optuna.storages._")


def test_only_storage_touches_sqlalchemy_and_optuna_storage_internals() -> None:
    found = [
        f"{where(path, line)} imports {name}"
        for path in package_files()
        if not path.is_relative_to(PACKAGE / "storage")
        and str(path.relative_to(REPO_ROOT)) not in STORAGE_EXCEPTIONS
        for line, name in imports_of(path)
        if is_storage_internal(name)
    ]
    assert not found, "only autotune/storage/ may:\n" + "\n".join(found)


def test_storage_exceptions_are_still_needed() -> None:
    """An exception that no longer imports what it was allowed is removed from the list."""
    for relative in STORAGE_EXCEPTIONS:
        names = [name for _, name in imports_of(REPO_ROOT / relative)]
        assert any(is_storage_internal(n) for n in names), f"{relative}: drop the exception"


def attribute_key_literals(path: Path) -> Iterator[tuple[int, str]]:
    """String constants (f-string parts too) that start with "autotune." and name no module.

    Module names (for importlib, loggers) are allowed; a key spelled like a module
    ("autotune.spec") is not caught, a limit of telling the two apart by the text alone.
    """
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if text.startswith("autotune.") and text not in MODULES:
                yield node.lineno, text


def test_study_attribute_keys_live_in_the_campaign_package() -> None:
    found = [
        f"{where(path, line)}: {text[:60]!r}"
        for path in package_files()
        if not path.is_relative_to(PACKAGE / "campaign")
        for line, text in attribute_key_literals(path)
    ]
    assert not found, "name study attribute keys in autotune/campaign/ only:\n" + "\n".join(found)
