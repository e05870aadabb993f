"""`make mutate`: mutation testing of every module with logic, each against its own unit tests.

In a copy of the library and of the modules' test files under a temporary directory (the
tree itself is never touched):

* mutmut writes every function mutant of every module in MODULES (`function_runs.py
  generate`); then, module by module, one pytest session collects the module's own test
  files, runs each test once to learn which functions it calls, and runs each mutant's
  tests in a fork of itself (`function_runs.py run`, JOBS forks at a time);
* `constants` mutates each module's module-level constants, and `forked_runs.py` runs the
  same test files against each mutated copy, in forks of one process that imported the
  third-party packages once.

It prints one table (mutants, killed, survived, equivalent and score per module, for both
kinds) and every survivor with file:line and the change. Survivors listed in
`equivalent.toml` change no behaviour and are left out of the scores. It exits 1 when a
module scores under FUNCTION_TARGET or CONSTANT_TARGET percent.

    python tests/mutation/run.py [names/reference.py upstream/guard.py ...] [--jobs N] [--keep]
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from constants import mutants

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "ociwrap" / "ociwrap"
UNIT = ROOT / "tests" / "unit"
EQUIVALENT = Path(__file__).resolve().parent / "equivalent.toml"

#: Each module with logic (under layers/ociwrap/ociwrap) and the unit tests that are its own.
MODULES: dict[str, tuple[str, ...]] = {
    "names/reference.py": ("test_reference.py",),
    "names/digest.py": ("test_digest.py", "test_descriptor_digests.py"),
    "names/mediatypes.py": ("test_mediatypes.py",),
    "image/platforms.py": ("test_platforms.py", "test_platform_plans.py"),
    "image/documents.py": ("test_documents.py", "test_upstream_documents.py"),
    "image/compose.py": ("test_compose.py", "test_recipes.py"),
    "image/wrapped_config.py": (
        "test_wrapped_config.py",
        "test_wrapped_config_chains.py",
        "test_recipes.py",
    ),
    "image/jsondoc.py": ("test_jsondoc.py",),
    "upstream/guard.py": ("test_guard.py",),
    "upstream/bodies.py": ("test_bodies.py",),
    "upstream/challenge.py": ("test_challenge.py",),
    "upstream/tokens.py": ("test_upstream_tokens.py", "test_transport.py"),
    "upstream/fetch.py": ("test_fetch.py",),
    "upstream/transport.py": ("test_transport.py", "test_upstream_retries.py"),
    "upstream/session.py": ("test_session.py", "test_upstream_retries.py", "test_connection.py"),
    "upstream/connection.py": (
        "test_connection.py",
        "test_upstream_retries.py",
        "test_session.py",
        "test_guard.py",
    ),
    "upstream/locations.py": ("test_locations.py",),
    "signing/cosign.py": ("test_cosign.py", "test_provenance.py"),
    "signing/provenance.py": ("test_provenance.py",),
    "signing/policy.py": ("test_policy.py",),
    "registry/referrers.py": ("test_referrers.py",),
    "registry/imagesource.py": (
        "test_imagesource.py",
        "test_descriptor_digests.py",
        "test_proxy.py",
        "test_compositions.py",
    ),
    "registry/compositions.py": (
        "test_composer.py",
        "test_compositions.py",
        "test_attestations.py",
        "test_signatures.py",
    ),
    "registry/attestations.py": ("test_attestations.py", "test_signatures.py", "test_wiring.py"),
    "registry/attached.py": ("test_signatures.py", "test_attestations.py", "test_wiring.py"),
    "registry/composition_inputs.py": ("test_composer.py", "test_descriptor_digests.py"),
    "registry/signatures.py": (
        "test_signatures.py",
        "test_wrapped.py",
        "test_retention.py",
        "test_attestations.py",
    ),
    "registry/verification.py": ("test_verification.py", "test_policy.py"),
    "registry/wrapped.py": (
        "test_wrapped.py",
        "test_retention.py",
        "test_attestations.py",
        "test_signatures.py",
    ),
    "registry/proxy.py": (
        "test_proxy.py",
        "test_referrers.py",
        "test_handler.py",
        "test_page_routes.py",
    ),
    "registry/service.py": (
        "test_service.py",
        "test_page_routes.py",
        "test_handler.py",
        "test_descriptor_digests.py",
        "test_referrers.py",
        "test_tokens_api.py",
        "test_proxy.py",
        "test_signatures.py",
        "test_access.py",
        "test_hops.py",
        "test_wiring.py",
    ),
    "names/allowlist.py": ("test_allowlist.py",),
    "runtime/hops.py": ("test_hops.py",),
    "bucket/store.py": ("test_store.py", "test_bucket_contract.py"),
    "bucket/links.py": ("test_links.py",),
    "bucket/sources.py": ("test_sources.py",),
    "bucket/records.py": ("test_records.py",),
    "bucket/staging.py": ("test_staging.py", "test_blobs.py"),
    "bucket/retention.py": ("test_retention.py",),
    "registry/mirror.py": ("test_blobs.py", "test_staging.py", "test_retention.py"),
    "registry/blobs.py": ("test_blobs.py", "test_staging.py", "test_retention.py"),
    "runtime/memcache.py": ("test_memcache.py",),
    "runtime/concurrency.py": ("test_concurrency.py", "test_deadline.py"),
    "runtime/deadline.py": ("test_deadline.py", "test_deadline_budget.py"),
    "registry/access.py": ("test_access.py",),
    "registry/container_tokens.py": ("test_tokens_api.py",),
    "registry/token_requests.py": ("test_tokens_api.py", "test_recipes.py"),
    "registry/admission.py": ("test_upstream_allow.py",),
    "upstream/logins.py": ("test_logins.py",),
    "upstream/credentials.py": ("test_logins.py",),
    "upstream/ecr.py": ("test_logins.py",),
    "runtime/secrets.py": ("test_secrets.py",),
    "registry/settings.py": ("test_config.py", "test_retention.py"),
    "image/recipes.py": ("test_recipes.py",),
    "runtime/errors.py": ("test_errors.py",),
    "runtime/telemetry.py": ("test_telemetry.py",),
    "signing/signers.py": ("test_signers.py",),
    "signing/policy_source.py": ("test_policy_source.py",),
    "runtime/aws.py": ("test_aws.py",),
    "registry/wiring.py": ("test_wiring.py",),
}
#: Modules without logic to mutate: interfaces and the values they pass (declarations).
DECLARATIONS = ("bucket/interface.py", "registry/results.py", "upstream/interface.py")
#: What the unit tests' conftest and the composition tests import beside the test files,
#: and the packages under tests/ they import from (the scripted upstream, the doubles).
SUPPORT = ("conftest.py", "scripted_upstream.py", "compose_fixtures.py", "image_documents.py")
SUPPORT_PACKAGES = ("harness", "doubles")
IGNORED = shutil.ignore_patterns("__pycache__")
FUNCTION_TARGET = 90.0
CONSTANT_TARGET = 80.0
CONSTANT_TIMEOUT = 120
#: A function mutant's tests are stopped (and the mutant counted as killed) after this many
#: times their unmutated duration plus one second (mutmut's default is 15, which lets a
#: mutant that loops until its deadline cost minutes).
TIMEOUT_MULTIPLIER = 5

CONFIG = """\
[tool.mutmut]
source_paths = ["src/ociwrap"]
only_mutate = {modules}

[tool.pytest.ini_options]
addopts = "-p no:cacheprovider"
pythonpath = ["tests", "{dev}", "{handler}"]
"""


@dataclass
class Survivor:
    module: str
    kind: str  # "function" or "constant"
    line: int
    identity: str
    note: str = ""

    def __str__(self) -> str:
        note = f" [{self.note}]" if self.note else ""
        return f"{self.module}:{self.line} {self.identity}{note}"


@dataclass
class Tally:
    mutants: int = 0
    killed: int = 0
    survivors: list[Survivor] = field(default_factory=list)
    equivalent: int = 0
    invalid: int = 0

    @property
    def survived(self) -> int:
        return len(self.survivors)

    @property
    def score(self) -> float:
        counted = self.mutants - self.equivalent
        return 100.0 * self.killed / counted if counted else 100.0


# --------------------------------------------------------------------------- work dirs


def make_workdir(base: Path, modules: list[str]) -> Path:
    """A copy of the library and of the modules' own tests, with mutmut's configuration."""
    work = base / "work"
    shutil.copytree(PACKAGE, work / "src" / "ociwrap", ignore=IGNORED)
    tests = work / "tests" / "unit"
    tests.mkdir(parents=True)
    for name in {*SUPPORT, *(name for module in modules for name in MODULES[module])}:
        shutil.copy2(UNIT / name, tests / name)
    for package in SUPPORT_PACKAGES:
        copied = ROOT / "tests" / package
        if copied.is_dir():
            shutil.copytree(copied, tests.parent / package, ignore=IGNORED)
    mutated = json.dumps([f"src/ociwrap/{module}" for module in modules])
    config = CONFIG.format(
        modules=mutated, dev=ROOT / "dev", handler=ROOT / "functions" / "registry"
    )
    (work / "pyproject.toml").write_text(config)
    return work


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MUTANT_UNDER_TEST")}
    env.update(extra)
    return env


# --------------------------------------------------------------------------- mutmut


def _functions(tree: ast.AST) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {
        node.name: node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _original_line(source: str, function: str) -> int:
    """The `def` line of `function` (`name` or `Class.name`) in the original module."""
    *owner, name = function.split(".")
    tree = ast.parse(source)
    scopes = [n for n in tree.body if isinstance(n, ast.ClassDef) and [n.name] == owner]
    for scope in scopes if owner else [tree]:
        for node in scope.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
                return node.lineno
    return 0


def describe_function_mutant(mutated: str, original: str, key: str) -> tuple[int, str]:
    """(line in the original module, `function: old → new`) of the mutmut mutant `key`.

    `mutated` is mutmut's copy of the module, which holds every mutant of a function
    beside the original, all renamed (`x_name__mutmut_3`, `xǁClassǁname__mutmut_orig`).
    """
    mangled, number = key.rsplit(".", 1)[1].rsplit("__mutmut_", 1)
    if mangled.startswith("x_"):
        function = mangled[2:]
    else:
        _, owner, name = mangled.split("ǁ")
        function = f"{owner}.{name}"
    short = function.rpartition(".")[2]
    defs = _functions(ast.parse(mutated))

    def lines_of(suffix: str) -> list[str]:
        text = ast.get_source_segment(mutated, defs[f"{mangled}__mutmut_{suffix}"]) or ""
        return text.replace(f"{mangled}__mutmut_{suffix}(", f"{short}(", 1).splitlines()

    before, after = lines_of("orig"), lines_of(number)
    removed: list[str] = []
    added: list[str] = []
    first: int | None = None
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            first = i1 if first is None else first
            removed += [line.strip() for line in before[i1:i2]]
            added += [line.strip() for line in after[j1:j2]]
    change = f"{' '.join(removed) or '(nothing)'} → {' '.join(added) or '(nothing)'}"
    return _original_line(original, function) + (first or 0), f"{function}: {change}"


def function_runs(work: Path, name: str, *args: str) -> None:
    """`function_runs.py` in the work directory, its output in `<name>.log`."""
    log = work / f"{name}.log"
    with log.open("w") as out:
        result = subprocess.run(
            [sys.executable, str(Path(__file__).resolve().parent / "function_runs.py"), *args],
            cwd=work,
            env=child_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        tail = log.read_text(errors="replace").replace("\r", "\n").splitlines()[-30:]
        raise RuntimeError(f"function_runs.py {args[0]} failed:\n" + "\n".join(tail))


def run_mutmut(work: Path, module: str, jobs: int) -> Tally:
    """The module's function mutants (written by mutmut beforehand), run by `function_runs.py`."""
    results = work / f"{module.replace('/', '-')}.json"
    tests = [f"tests/unit/{name}" for name in MODULES[module]]
    function_runs(
        work, results.stem, "run", str(results), str(jobs), str(TIMEOUT_MULTIPLIER), module, *tests
    )
    outcome = json.loads(results.read_text())
    if "failing" in outcome:
        raise RuntimeError(f"the tests of {module} fail without any mutant: {outcome['failing']}")
    mutated = (work / "mutants" / "src" / "ociwrap" / module).read_text()
    original = (work / "src" / "ociwrap" / module).read_text()
    tally = Tally(mutants=len(outcome["mutants"]))
    for key, verdict in outcome["mutants"].items():
        if verdict in ("killed", "timeout"):
            tally.killed += 1
            continue
        line, identity = describe_function_mutant(mutated, original, key)
        note = "no test reaches it" if verdict == "no tests" else ""
        tally.survivors.append(Survivor(module, "function", line, identity, note))
    return tally


# --------------------------------------------------------------------------- constants


def run_versions(work: Path, base: Path, module: str, versions: list[str], jobs: int) -> list[str]:
    """Run the module's own tests against each source in `versions`, each in a fork of one
    process that imported the third-party packages once (`forked_runs.py`): 'killed' (a
    test failed, or they ran past CONSTANT_TIMEOUT), 'survived' (all passed) or 'invalid'
    (pytest could not even run them: the module does not import)."""
    scratch = base / "constants" / module.removesuffix(".py").replace("/", "-")
    scratch.mkdir(parents=True)
    entries = []
    for number, source in enumerate(versions):
        path = scratch / f"{number}.py"
        path.write_text(source)
        entries.append({"name": str(number), "file": str(path)})
    plan = {
        "src": str(work / "src"),
        "module": module,
        "tests": [f"tests/unit/{test}" for test in MODULES[module]],
        "jobs": jobs,
        "timeout": CONSTANT_TIMEOUT,
        "scratch": str(scratch),
        "versions": entries,
    }
    (scratch / "plan.json").write_text(json.dumps(plan))
    result = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve().parent / "forked_runs.py"),
            str(scratch / "plan.json"),
        ],
        cwd=work,
        env=child_env(PYTHONDONTWRITEBYTECODE="1"),
        capture_output=True,
        text=True,
        check=False,
    )
    outcomes = {}
    for line in result.stdout.splitlines():
        record = json.loads(line)
        outcomes[record["name"]] = record["outcome"]
    if len(outcomes) != len(versions):
        raise RuntimeError(f"constant runs of {module} stopped:\n{result.stderr[-3000:]}")
    return [outcomes[str(number)] for number in range(len(versions))]


def run_constants(work: Path, modules: list[str], base: Path, jobs: int) -> dict[str, Tally]:
    """Every constant mutant of every module, after a run of each module's tests unchanged."""
    tallies = {module: Tally() for module in modules}
    for module in modules:
        source = (PACKAGE / module).read_text()
        found = list(mutants(source))
        clean, *outcomes = run_versions(
            work, base, module, [source, *(m.source for m in found)], jobs
        )
        if clean != "survived":
            raise RuntimeError(f"the tests of {module} fail without any mutant")
        tally = tallies[module]
        for mutant, outcome in zip(found, outcomes, strict=True):
            if outcome == "invalid":
                tally.invalid += 1
                continue
            tally.mutants += 1
            if outcome == "killed":
                tally.killed += 1
            else:
                tally.survivors.append(Survivor(module, "constant", mutant.line, mutant.identity))
    return tallies


# --------------------------------------------------------------------------- report


def load_equivalent() -> list[dict[str, str]]:
    with EQUIVALENT.open("rb") as handle:
        return tomllib.load(handle).get("mutant", [])


def apply_equivalent(tallies: list[Tally], entries: list[dict[str, str]]) -> list[dict[str, str]]:
    """Move survivors listed as equivalent out of the scores; the entries that matched none."""
    listed = {(entry["module"], entry["mutant"]): entry for entry in entries}
    matched = set()
    for tally in tallies:
        kept = []
        for survivor in tally.survivors:
            key = (survivor.module, survivor.identity)
            if key in listed:
                tally.equivalent += 1
                matched.add(key)
            else:
                kept.append(survivor)
        tally.survivors = kept
    return [entry for key, entry in listed.items() if key not in matched]


def table(functions: dict[str, Tally], constants: dict[str, Tally]) -> str:
    head = (
        "| module | function mutants | killed | survived | equivalent | score "
        "| constant mutants | killed | survived | equivalent | score |"
    )
    rows = [head, "|" + " --- |" * 11]
    for module in MODULES:
        if module not in functions and module not in constants:
            continue
        cells = [module]
        for tallies in (functions, constants):
            tally = tallies.get(module)
            if tally is None:
                cells += ["-"] * 5
            else:
                cells += [
                    str(tally.mutants),
                    str(tally.killed),
                    str(tally.survived),
                    str(tally.equivalent),
                    f"{tally.score:.1f}%",
                ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="modules to mutate (default: all)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--only", choices=("functions", "constants"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    selected = args.modules or list(MODULES)
    unknown = [m for m in selected if m not in MODULES]
    if unknown:
        parser.error(f"unknown modules {unknown}; choose from {list(MODULES)}")

    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="ociwrap-mutate-"))
    try:
        work = make_workdir(base, selected)
        functions: dict[str, Tally] = {}
        if args.only != "constants":
            begun = time.monotonic()
            function_runs(work, "generate", "generate", str(args.jobs))
            print(f"mutants written in {time.monotonic() - begun:.0f} s", flush=True)
            for module in selected:
                begun = time.monotonic()
                functions[module] = run_mutmut(work, module, args.jobs)
                print(
                    f"functions of {module}: {functions[module].mutants} mutants "
                    f"in {time.monotonic() - begun:.0f} s",
                    flush=True,
                )
        constants: dict[str, Tally] = {}
        if args.only != "functions":
            begun = time.monotonic()
            constants = run_constants(work, selected, base, args.jobs)
            count = sum(t.mutants + t.invalid for t in constants.values())
            print(f"constants: {count} mutants in {time.monotonic() - begun:.0f} s", flush=True)
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    entries = [e for e in load_equivalent() if e["module"] in selected]
    stale = apply_equivalent([*functions.values(), *constants.values()], entries)
    print()
    print(table(functions, constants))
    invalid = sum(t.invalid for t in constants.values())
    if invalid:
        print(f"\n{invalid} constant mutants do not import: not counted.")
    survivors = [s for t in [*functions.values(), *constants.values()] for s in t.survivors]
    print(f"\nSurvivors ({len(survivors)}):" if survivors else "\nNo survivors.")
    for survivor in sorted(survivors, key=lambda s: (s.module, s.kind, s.line)):
        print(f"  {survivor.kind:8} {survivor}")
    for entry in stale if not args.only else []:
        print(f"  listed as equivalent but not found: {entry['module']}: {entry['mutant']}")
    print(f"\ntook {time.monotonic() - started:.0f} s")
    low = [m for m, t in functions.items() if t.score < FUNCTION_TARGET] + [
        m for m, t in constants.items() if t.score < CONSTANT_TARGET
    ]
    if low:
        print(
            f"under {FUNCTION_TARGET:.0f}% (functions) or {CONSTANT_TARGET:.0f}% (constants): "
            + ", ".join(sorted(set(low)))
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
