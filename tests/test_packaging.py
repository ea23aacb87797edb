"""Every third-party module the package imports is a declared dependency (a fresh machine has
only what pyproject.toml installs)."""

from __future__ import annotations

import ast
import sys
import tomllib

from .conftest import ROOT

# Import name → distribution name, where they differ.
DISTRIBUTION = {"docx": "python-docx", "python_calamine": "python-calamine", "PIL": "pillow",
                "msoffcrypto": "msoffcrypto-tool"}
# Installed by a declared dependency (the value), so not declared again.
COMES_WITH = {"numpy": "pandas", "markupsafe": "jinja2", "lxml": "docxtpl", "pillow": "matplotlib"}


def _imports(folder: str) -> set[str]:
    found = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name != "macros"}


def _declared(group: list[str]) -> set[str]:
    return {dep.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip().lower()
            for dep in group}


def test_runtime_imports_are_runtime_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = _declared(project["dependencies"])
    declared |= {extra for extra, parent in COMES_WITH.items() if parent in declared}
    missing = {DISTRIBUTION.get(m, m).lower() for m in _imports("macros")} - declared
    assert not missing, f"macros imports {sorted(missing)} but pyproject.toml does not install them"


def test_test_imports_are_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = _declared(project["dependencies"]) | _declared(project["optional-dependencies"]["test"])
    declared |= {extra for extra, parent in COMES_WITH.items() if parent in declared}
    missing = {DISTRIBUTION.get(m, m).lower() for m in _imports("tests")} - declared - {"tests"}
    assert not missing, f"tests import {sorted(missing)} but pyproject.toml does not install them"
