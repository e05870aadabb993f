"""Run one module's tests against many versions of that module, each in a fork.

Starting Python, importing boto3, requests, Powertools and pytest and collecting the test
files costs more than most modules' tests themselves, and it used to be paid once per
constant mutant. This runner pays it once: it imports the third-party packages (never
`ociwrap`), then forks one child per version of the module. The child copies the library
(compiled once by the parent), writes its version of the module into the copy, puts the
copy first on `sys.path` and runs the tests with `pytest -x`.

    python forked_runs.py PLAN.json        (in the module's work directory)

PLAN.json: {"src": library copy, "module": "names/digest.py", "tests": [...], "jobs": N,
"timeout": seconds, "scratch": dir, "versions": [{"name": ..., "file": source or null}]}.
Prints one JSON line per version: {"name": ..., "outcome": "survived" | "killed" |
"invalid"} (a test failed or it ran past the timeout: killed; pytest could not run the
tests, e.g. the module does not import: invalid; null file: the module unchanged).
"""

from __future__ import annotations

import compileall
import contextlib
import importlib
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

#: Imported once in the parent, so that no child imports them again.
PRELOAD = (
    "pytest",
    "requests",
    "urllib3",
    "boto3",
    "botocore.session",
    "aws_lambda_powertools",
    "cryptography.hazmat.primitives.asymmetric.ec",
    "bcrypt",
    "moto",
)
OUTCOMES = {0: "survived", 1: "killed"}


def preload() -> None:
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def child(plan: dict, version: dict, cache: bool) -> None:
    """In the fork: the library with this version of the module, then the tests. Never returns.

    With `cache`, pytest keeps the test files as it rewrote them (for their asserts) for
    the children after it: rewriting them is most of what a child would otherwise do."""
    try:
        copy = Path(plan["scratch"]) / version["name"]
        shutil.copytree(plan["src"], copy)
        if version["file"] is not None:
            target = copy / "ociwrap" / plan["module"]
            target.write_text(Path(version["file"]).read_text())
            for stale in (target.parent / "__pycache__").glob(f"{target.stem}.*.pyc"):
                stale.unlink()
        sys.path.insert(0, str(copy))
        sys.dont_write_bytecode = not cache
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        import pytest

        code = int(pytest.main(["-x", "-q", "-p", "no:cacheprovider", *plan["tests"]]))
    except BaseException:
        code = 99
    os._exit(code)


def run(plan: dict) -> None:
    compileall.compile_dir(plan["src"], quiet=1)
    compileall.compile_dir("tests", quiet=1)
    preload()
    pending = list(plan["versions"])
    running: dict[int, tuple[dict, float]] = {}
    first = True
    while pending or running:
        while pending and len(running) < (1 if first else plan["jobs"]):
            version = pending.pop(0)
            pid = os.fork()
            if pid == 0:
                child(plan, version, cache=first)
            running[pid] = (version, time.monotonic())
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            now = time.monotonic()
            for late, (_version, began) in list(running.items()):
                if now - began > plan["timeout"]:
                    os.kill(late, signal.SIGKILL)
            time.sleep(0.02)
            continue
        version, _began = running.pop(pid)
        first = False
        code = os.waitstatus_to_exitcode(status)
        outcome = "killed" if code < 0 else OUTCOMES.get(code, "invalid")
        shutil.rmtree(Path(plan["scratch"]) / version["name"], ignore_errors=True)
        print(json.dumps({"name": version["name"], "outcome": outcome}), flush=True)


if __name__ == "__main__":
    run(json.loads(Path(sys.argv[1]).read_text()))
