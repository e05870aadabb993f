"""Data flows one way: lower modules of the library never import higher ones.

Read from the source (imports are statements), so a new import that breaks the layering
fails here, whatever the tests of behaviour say.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIBRARY = Path(__file__).resolve().parents[2] / "layers" / "ociwrap" / "ociwrap"

#: Pure modules: names, documents, composition. No I/O libraries, no network, no S3.
PURE = {
    "reference",
    "digest",
    "mediatypes",
    "jsondoc",
    "documents",
    "platforms",
    "compose",
    "compose_config",
    "records",
    "errors",
    "replies",
    "deadline",
    "credentials",
    "recipes",
    "telemetry",
    "allowlist",
    "hops",
}
#: The services, top of the library; they may use everything below them.
SERVICES = {
    "imagesource",
    "composer",
    "sources",
    "blobs",
    "mirror",
    "proxy",
    "wrapped",
    "service",
}
#: What each layer may not import (module names under `ociwrap.`, or third-party roots).
FORBIDDEN = {
    "pure": SERVICES | {"upstream", "store", "aws", "boto3", "botocore", "requests", "urllib3"},
    "upstream": SERVICES | {"store", "aws", "boto3", "botocore"},
    "store": SERVICES | {"upstream", "requests", "urllib3"},
    "services": {"service"},
}


def imported(path: Path) -> set[str]:
    """`ociwrap.x.y` as `x` (and `x.y`), third-party modules by their root."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        modules = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        for module in modules:
            parts = module.split(".")
            if parts[0] == "ociwrap" and len(parts) > 1:
                names.add(parts[1])
            else:
                names.add(parts[0])
    return names


def layer_of(path: Path) -> str:
    relative = path.relative_to(LIBRARY)
    if relative.parts[0] == "upstream":
        return "upstream"
    if path.stem in PURE:
        return "pure"
    if path.stem in ("store", "staging", "aws"):
        return "store"
    return "services"


MODULES = sorted(p for p in LIBRARY.rglob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(LIBRARY)))
def test_no_module_imports_a_higher_layer(path):
    wrong = imported(path) & FORBIDDEN[layer_of(path)]
    assert not wrong, f"{path.name} ({layer_of(path)}) imports {sorted(wrong)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(LIBRARY)))
def test_modules_stay_small(path):
    assert len(path.read_text().splitlines()) <= 320, f"{path.name}: split it by job"
