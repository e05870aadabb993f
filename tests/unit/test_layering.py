"""Data flows one way: the packages of the library, the handler and the local gateway import
only what lies below them.

Read from the source (imports are statements), so a new import that breaks the layering
fails here, whatever the tests of behaviour say. Every spelling counts: `import
ociwrap.bucket.store`, `from ociwrap.bucket import store`, `from ociwrap import bucket`,
and relative imports.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "layers" / "ociwrap" / "ociwrap"
HANDLER = ROOT / "functions" / "registry"
DEV = ROOT / "dev" / "ociwrap_local"

#: Each package's level: a package imports its own modules and packages of lower levels
#: only. Packages of one level (the upstream client, the bucket, signing) know nothing of
#: each other; the registry's services tie them together.
LEVELS = {
    "runtime": 0,  # errors, deadline, concurrency, cache, telemetry, secrets, AWS clients
    "names": 1,  # references, digests, media types, name patterns
    "image": 2,  # documents, platforms, composition, recipes: JSON in, JSON out
    "upstream": 3,  # the client of upstream registries, logins, credentials
    "bucket": 3,  # S3: the store, keys and records, links, sources, retention
    "signing": 3,  # cosign's format, the policy, signers
    "registry": 4,  # the proxied and wrapped services and their wiring
}
#: Third-party and standard modules a package may not import, by root name. Pure packages
#: do no I/O; the bucket speaks no HTTP of its own; nothing in the library knows the web
#: framework of the handler.
NETWORK = {"boto3", "botocore", "requests", "urllib3", "socket", "http", "ssl"}
WEB = {"aws_lambda_powertools.event_handler"}
FORBIDDEN = {
    "runtime": {"requests", "urllib3", *WEB},
    "names": NETWORK | WEB | {"aws_lambda_powertools"},
    "image": NETWORK | WEB | {"aws_lambda_powertools"},
    "upstream": {"boto3", *WEB},
    "bucket": {"requests", "urllib3", *WEB},
    "signing": {"requests", "urllib3", "boto3", *WEB},
    "registry": {"requests", "urllib3", *WEB},
}
#: The handler speaks HTTP and hands everything else to the registry service; the local
#: gateway runs the handler as Lambda does. Neither reaches into the bucket, the upstream
#: client or signing.
EDGE_PACKAGES = {"registry", "runtime", "names"}
HANDLER_MODULES = {path.stem for path in HANDLER.glob("*.py")}


def imported(source: str, package: str | None = None) -> set[str]:
    """Every module a source imports, by full dotted name.

    `from ociwrap import bucket` counts as `ociwrap.bucket`, `from ociwrap.bucket import
    store` as `ociwrap.bucket.store` too, and a relative import is resolved against
    `package` (the dotted package of the module read).
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = (package or "").split(".")
                base = base[: len(base) - node.level + 1] if node.level > 1 else base
                module = ".".join([*base, module] if module else base)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def library_package(module: str) -> str | None:
    """The library package a dotted module name lies in (`ociwrap.bucket.store` → bucket);
    None for modules outside the library, "" for the bare `ociwrap`."""
    parts = module.split(".")
    if parts[0] != "ociwrap":
        return None
    return parts[1] if len(parts) > 1 else ""


def forbidden_third_party(names: set[str], forbidden: set[str]) -> set[str]:
    return {
        name
        for name in names
        for banned in forbidden
        if name == banned or name.startswith(banned + ".")
    }


def library_violations(source: str, package: str, module_package: str) -> set[str]:
    """What a module of the library package `package` imports that it may not."""
    names = imported(source, module_package)
    wrong = set()
    for name in names:
        target = library_package(name)
        if target == "" or (target is not None and target not in LEVELS):
            continue  # `from ociwrap import x` is judged by its `ociwrap.x` entry
        if target is not None and target != package and LEVELS[target] >= LEVELS[package]:
            wrong.add(name)
        if name.split(".")[0] in HANDLER_MODULES | {"ociwrap_local"}:
            wrong.add(name)
    return wrong | forbidden_third_party(names, FORBIDDEN[package])


def edge_violations(source: str, allow_handler: bool) -> set[str]:
    """What the handler (or the local gateway) imports of the library beyond its edge."""
    wrong = set()
    for name in imported(source):
        target = library_package(name)
        if target and target in LEVELS and target not in EDGE_PACKAGES:
            wrong.add(name)
        if not allow_handler and name.split(".")[0] == "ociwrap_local":
            wrong.add(name)
    return wrong


LIBRARY_MODULES = sorted(p for p in LIBRARY.rglob("*.py") if p.parent != LIBRARY)
EDGE_MODULES = sorted([*HANDLER.glob("*.py"), *DEV.glob("*.py")])


def test_every_library_module_lies_in_a_package():
    loose = sorted(p.name for p in LIBRARY.glob("*.py") if p.name != "__init__.py")
    assert not loose, f"modules outside a package: {loose}"
    assert {p.parent.name for p in LIBRARY_MODULES} == set(LEVELS)


@pytest.mark.parametrize("path", LIBRARY_MODULES, ids=lambda p: str(p.relative_to(LIBRARY)))
def test_no_library_module_imports_a_higher_or_sibling_package(path):
    package = path.parent.name
    wrong = library_violations(path.read_text(), package, f"ociwrap.{package}")
    assert not wrong, f"{path.relative_to(LIBRARY)} ({package}) imports {sorted(wrong)}"


@pytest.mark.parametrize("path", EDGE_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_handler_and_the_local_gateway_speak_only_to_the_registry(path):
    wrong = edge_violations(path.read_text(), allow_handler=path.parent == DEV)
    assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


@pytest.mark.parametrize("path", LIBRARY_MODULES, ids=lambda p: str(p.relative_to(LIBRARY)))
def test_modules_stay_small(path):
    assert len(path.read_text().splitlines()) <= 320, f"{path.name}: split it by job"


@pytest.mark.parametrize("path", LIBRARY_MODULES, ids=lambda p: str(p.relative_to(LIBRARY)))
def test_no_class_is_longer_than_200_lines(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= 200, f"{path.name}: class {node.name} has {length} lines"


# -- the rules themselves catch every spelling ---------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "from ociwrap import bucket, upstream",
        "from ociwrap.bucket import store",
        "import ociwrap.bucket.store",
        "from ociwrap.upstream.fetch import Fetcher",
        "from ..bucket import store",
        "from ..registry.service import RegistryService",
        "import boto3",
        "from requests import Session",
        "from aws_lambda_powertools.event_handler import Response",
        "import app",
    ],
)
def test_a_pure_module_importing_io_in_any_spelling_is_caught(source):
    assert library_violations(source, "image", "ociwrap.image")


@pytest.mark.parametrize(
    "source",
    [
        "from ociwrap.image import documents",
        "from ociwrap.names.digest import encoded",
        "from . import documents",
        "from ociwrap.runtime import errors",
        "import json",
    ],
)
def test_imports_from_below_or_within_pass(source):
    assert not library_violations(source, "image", "ociwrap.image")


def test_siblings_of_one_level_do_not_import_each_other():
    assert library_violations("from ociwrap.upstream.fetch import Fetcher", "bucket", "x")
    assert library_violations("from ociwrap import signing", "upstream", "x")
    assert not library_violations("from ociwrap.bucket import store", "registry", "x")


def test_the_handler_may_not_reach_past_the_registry():
    assert edge_violations("from ociwrap.bucket.store import Store", allow_handler=False)
    assert edge_violations("from ociwrap import upstream", allow_handler=False)
    assert edge_violations("import ociwrap_local.server", allow_handler=False)
    assert not edge_violations("from ociwrap.registry import service", allow_handler=False)


# -- one home for each thing -----------------------------------------------------------------

#: A string that is a media type (`type/subtype`, parameters allowed) or an `Accept` wildcard.
MEDIA_TYPE = re.compile(r"(?:application|text|image|\*)/[A-Za-z0-9.+*-]+(?:;.*)?")
MEDIA_TYPES_MODULE = LIBRARY / "names" / "mediatypes.py"


def media_type_literals(source: str) -> list[str]:
    """String constants of a module that are media types (docstrings are not constants)."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and MEDIA_TYPE.fullmatch(node.value)
    ]


@pytest.mark.parametrize(
    "path",
    [p for p in [*LIBRARY_MODULES, *HANDLER.glob("*.py")] if p != MEDIA_TYPES_MODULE],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_media_type_strings_live_only_in_the_media_types_module(path):
    found = media_type_literals(path.read_text())
    assert not found, f"{path.relative_to(ROOT)} spells media types {found}: use names.mediatypes"


def test_a_media_type_literal_is_found():
    source = 'X = "application/vnd.oci.image.index.v1+json"\nY = "text/html; charset=utf-8"\n'
    assert media_type_literals(source) == [
        "application/vnd.oci.image.index.v1+json",
        "text/html; charset=utf-8",
    ]
    assert not media_type_literals('def f():\n    """application/json docs"""\n')


#: The modules that speak to AWS through its SDK: clients are made in one place, the bucket
#: is S3 in one adapter, and ECR logins are asked for in one more.
AWS_SDK_MODULES = {"runtime/aws.py", "bucket/store.py", "upstream/ecr.py"}


@pytest.mark.parametrize("path", LIBRARY_MODULES, ids=lambda p: str(p.relative_to(LIBRARY)))
def test_the_aws_sdk_is_spoken_only_by_its_adapters(path):
    sdk = forbidden_third_party(imported(path.read_text()), {"boto3", "botocore"})
    if str(path.relative_to(LIBRARY)) not in AWS_SDK_MODULES:
        assert not sdk, f"{path.relative_to(LIBRARY)} imports {sorted(sdk)}"
