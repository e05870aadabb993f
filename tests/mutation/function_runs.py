"""Run a module's function mutants: mutmut writes them, one pytest session runs them.

mutmut 3.7 writes every mutant of a function beside the original and a trampoline that
calls the one named by `MUTANT_UNDER_TEST`. Its own runner then starts a pytest session
per mutant (configuration, plugins, collection): for a module whose tests take 50 ms,
that is twenty times the tests. Here pytest collects the module's test files once; each
test runs once unmutated, recording which mutated functions it calls and how long it
takes; then for each mutant a fork of that session runs only the tests that call its
function, fastest first, and stops at the first failure.

    python function_runs.py generate JOBS          (in the work directory: writes ./mutants)
    python function_runs.py run RESULTS.json JOBS MULTIPLIER MODULE TEST_FILE...

RESULTS.json gets {"mutants": {key: "killed" | "survived" | "timeout" | "no tests"}} or
{"failing": [test ids]} when a test fails without any mutant. A mutant's tests are
stopped after MULTIPLIER times (their unmutated duration + 1 s) and it counts as killed.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import _pytest.reports
import mutmut
import pytest
from _pytest.runner import runtestprotocol
from mutmut.__main__ import (
    copy_also_copy_files,
    copy_src_dir,
    create_mutants,
    mangled_name_from_mutant_name,
    setup_source_paths,
)
from mutmut.configuration import Config


def fresh_resolver() -> None:
    """The DNS look-up pool of the connection module has no threads in a fork: start anew."""
    connection = sys.modules.get("ociwrap.upstream.connection")
    if connection is not None:
        connection._resolver = None


def generate(jobs: int) -> None:
    """Write the mutants of every module `only_mutate` names under ./mutants."""
    os.environ["MUTANT_UNDER_TEST"] = "mutant_generation"
    Config.ensure_loaded()
    Path("mutants").mkdir(exist_ok=True)
    copy_src_dir()
    copy_also_copy_files()
    setup_source_paths()
    create_mutants(jobs)


def keys_of(module: str) -> list[str]:
    """The keys (`ociwrap.x.y.x_f__mutmut_3`) of the mutants written for `module`."""
    meta = Path("mutants") / "src" / "ociwrap" / f"{module}.meta"
    return list(json.loads(meta.read_text())["exit_code_by_key"])


#: A child's exit status: 0 all tests passed, FIRST_FAILED + i the i-th test failed
#: (1 when i is too large to tell), which the parent tries first for the next mutants of
#: the same function: mutants of one function are mostly killed by the same few tests.
FIRST_FAILED = 2
KILLERS_KEPT = 3


def first_failure(items: list[pytest.Item]) -> int | None:
    """Run `items` in order, fixtures kept between them as pytest would: the index of the
    first that fails (in setup, call or teardown), None when all pass."""
    for index, item in enumerate(items):
        nextitem = items[index + 1] if index + 1 < len(items) else None
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        if any(report.failed for report in reports):
            return index
    return None


@dataclass
class Plan:
    key: str
    function: str
    tests: list[int]  # indices of the tests that call the function, fastest first
    estimate: float  # their unmutated duration


class MutantLoop:
    """A pytest plugin that replaces the run of the collected tests by the mutant loop."""

    def __init__(self, keys: list[str], jobs: int, multiplier: float) -> None:
        self.keys = keys
        self.jobs = jobs
        self.multiplier = multiplier
        self.results: dict[str, object] = {}
        self.seconds: dict[str, float] = {}
        self.killers: dict[str, list[int]] = {}  # function -> tests that killed its mutants

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        self.items = list(session.items)
        began = time.monotonic()
        callers, durations, failing = self.record(self.items)
        print(f"{len(self.items)} tests run once in {time.monotonic() - began:.1f} s", flush=True)
        if failing:
            self.results = {"failing": failing}
            return True
        os.environ["MUTANT_UNDER_TEST"] = ""
        outcomes: dict[str, str] = {}
        plans = []
        for key in self.keys:
            function = mangled_name_from_mutant_name(key)
            tests = sorted(callers.get(function, ()), key=durations.__getitem__)
            if not tests:
                outcomes[key] = "no tests"
                continue
            plans.append(Plan(key, function, tests, sum(durations[i] for i in tests)))
        gc.collect()
        gc.freeze()
        began = time.monotonic()
        outcomes.update(self.run_mutants(sorted(plans, key=lambda plan: plan.estimate)))
        print(f"{len(plans)} mutants run in {time.monotonic() - began:.1f} s", flush=True)
        self.results = {"mutants": outcomes, "seconds": self.seconds}
        return True

    def record(self, items: list[pytest.Item]) -> tuple[dict[str, list[int]], list[float], list]:
        """Each test once, unmutated: which mutated functions it calls, how long it takes."""
        os.environ["MUTANT_UNDER_TEST"] = "stats"
        callers: dict[str, list[int]] = {}
        durations: list[float] = []
        failing = []
        for index, item in enumerate(items):
            nextitem = items[index + 1] if index + 1 < len(items) else None
            mutmut._stats.clear()
            began = time.perf_counter()
            reports = runtestprotocol(item, nextitem=nextitem, log=False)
            durations.append(time.perf_counter() - began)
            if any(report.failed for report in reports):
                failing.append(item.nodeid)
            for name in mutmut._stats:
                callers.setdefault(name, []).append(index)
        return callers, durations, failing

    def order(self, plan: Plan) -> list[int]:
        """The plan's tests, those that killed other mutants of its function first."""
        killers = [i for i in self.killers.get(plan.function, ()) if i in plan.tests]
        return killers + [i for i in plan.tests if i not in killers]

    def run_mutants(self, plans: list[Plan]) -> dict[str, str]:
        outcomes: dict[str, str] = {}
        running: dict[int, tuple[Plan, list[int], float]] = {}
        pending = list(plans)
        while pending or running:
            while pending and len(running) < self.jobs:
                plan = pending.pop(0)
                tests = self.order(plan)
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    self.child(plan.key, [self.items[i] for i in tests])
                self.seconds[plan.key] = time.monotonic()
                limit = self.seconds[plan.key] + (plan.estimate + 1.0) * self.multiplier
                running[pid] = (plan, tests, limit)
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                now = time.monotonic()
                for late, (_plan, _tests, limit) in running.items():
                    if now > limit:
                        os.kill(late, signal.SIGKILL)
                time.sleep(0.005)
                continue
            plan, tests, limit = running.pop(pid)
            self.seconds[plan.key] = round(time.monotonic() - self.seconds[plan.key], 3)
            code = os.waitstatus_to_exitcode(status)
            if code == 0:
                outcomes[plan.key] = "survived"
            elif code == -signal.SIGKILL and time.monotonic() > limit:
                outcomes[plan.key] = "timeout"
            else:
                outcomes[plan.key] = "killed"
                if FIRST_FAILED <= code < FIRST_FAILED + len(tests):
                    killer = tests[code - FIRST_FAILED]
                    known = self.killers.setdefault(plan.function, [])
                    if killer in known:
                        known.remove(killer)
                    known.insert(0, killer)
                    del known[KILLERS_KEPT:]
        return outcomes

    @staticmethod
    def child(key: str, tests: list[pytest.Item]) -> None:
        """In the fork: the mutant's tests in order. Exits 0 only if all pass."""
        code = 1
        try:
            os.environ["MUTANT_UNDER_TEST"] = key
            # Only pass or fail matters here: formatting a failure's traceback (reading the
            # source of every frame) would cost more than most tests.
            _pytest.reports._format_failed_longrepr = lambda item, call, excinfo: "failed"
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            failed = first_failure(tests)
            if failed is None:
                code = 0
            elif FIRST_FAILED + failed < 250:
                code = FIRST_FAILED + failed
        finally:
            os._exit(code)


def main() -> None:
    if sys.argv[1] == "generate":
        generate(int(sys.argv[2]))
        return
    results, jobs, multiplier, module, *tests = sys.argv[2:]
    os.environ["MUTANT_UNDER_TEST"] = ""
    Config.ensure_loaded()
    setup_source_paths()
    os.register_at_fork(after_in_child=fresh_resolver)
    loop = MutantLoop(keys_of(module), int(jobs), float(multiplier))
    os.chdir("mutants")
    code = pytest.main(
        ["--rootdir=.", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *tests],
        plugins=[loop],
    )
    if not loop.results:
        raise SystemExit(f"pytest stopped before the mutants ran (exit code {code})")
    Path(results).write_text(json.dumps(loop.results))


if __name__ == "__main__":
    main()
