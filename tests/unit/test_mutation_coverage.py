"""`make mutate` covers every module of the library: a new module is listed in its MODULES
(with its own test files) or, having no logic, in DECLARATIONS."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]


def load_runner() -> SimpleNamespace:
    """MODULES and DECLARATIONS of the mutation runner, read as the literals they are."""
    tree = ast.parse((ROOT / "tests" / "mutation" / "run.py").read_text())
    found = {}
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if isinstance(target, ast.Name) and target.id in ("MODULES", "DECLARATIONS"):
            found[target.id] = ast.literal_eval(node.value)
    return SimpleNamespace(**found)


def test_every_module_is_mutated_or_declared_without_logic():
    runner = load_runner()
    package = ROOT / "layers" / "ociwrap" / "ociwrap"
    modules = {
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "__init__.py"
    }
    listed = set(runner.MODULES) | set(runner.DECLARATIONS)
    assert sorted(modules - listed) == []
    assert sorted(listed - modules) == []


def test_every_listed_test_file_exists():
    runner = load_runner()
    missing = [
        (module, name)
        for module, names in runner.MODULES.items()
        for name in names
        if not (ROOT / "tests" / "unit" / name).is_file()
    ]
    assert missing == []
