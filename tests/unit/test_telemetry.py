"""What one request did, counted into the statistics of the request being served."""

from __future__ import annotations

import contextvars
import threading
from collections import Counter
from types import SimpleNamespace

import pytest

from ociwrap.runtime import telemetry
from ociwrap.runtime.telemetry import RequestStats


@pytest.fixture
def clock(monkeypatch) -> SimpleNamespace:
    """The time telemetry reads (`perf_counter`, in seconds), set by the test."""
    now = SimpleNamespace(value=100.0)
    monkeypatch.setattr(telemetry, "time", SimpleNamespace(perf_counter=lambda: now.value))
    return now


def test_a_new_request_has_counted_nothing():
    stats = RequestStats()
    assert (stats.upstream_calls, stats.upstream_ms, stats.s3_calls, stats.s3_ms) == (0, 0, 0, 0)
    assert stats.cache == Counter() and stats.events == Counter()
    assert stats.redirects == Counter() and stats.registries == {}
    assert "_lock" not in repr(stats)


def test_upstream_calls_are_counted_by_registry_with_errors_and_time(clock):
    with telemetry.collecting() as stats:
        clock.value = 100.25
        telemetry.upstream_call("docker.io", 100.0, False)
        clock.value = 101.0
        telemetry.upstream_call("docker.io", 100.5, True)
        telemetry.upstream_call("ghcr.io", 100.875, False)
    assert stats.upstream_calls == 3
    assert stats.upstream_ms == 250.0 + 500.0 + 125.0
    assert stats.registries == {"docker.io": [2, 1, 750.0], "ghcr.io": [1, 0, 125.0]}


def test_s3_calls_are_counted_with_their_time():
    with telemetry.collecting() as stats:
        telemetry.s3_call(12.5)
        telemetry.s3_call(7.5)
    assert (stats.s3_calls, stats.s3_ms) == (2, 20.0)


def test_cache_levels_events_and_redirects_are_counted_by_name():
    with telemetry.collecting() as stats:
        telemetry.cache("tag", "memory")
        telemetry.cache("tag", "memory")
        telemetry.cache("manifest", "s3")
        telemetry.event("compositions")
        telemetry.event("stale")
        telemetry.event("stale")
        telemetry.redirect("upstream")
        telemetry.redirect("s3")
        telemetry.redirect("s3")
    assert stats.cache == Counter({("tag", "memory"): 2, ("manifest", "s3"): 1})
    assert stats.events == Counter({"compositions": 1, "stale": 2})
    assert stats.redirects == Counter({"upstream": 1, "s3": 2})


def test_outside_a_request_nothing_is_counted_and_nothing_fails(clock):
    telemetry.upstream_call("docker.io", 99.0, True)
    telemetry.s3_call(3.0)
    telemetry.cache("tag", "memory")
    telemetry.event("stale")
    telemetry.redirect("s3")
    with telemetry.collecting() as stats:
        pass
    telemetry.event("stale")  # after the request: not counted into it
    assert (stats.upstream_calls, stats.s3_calls, stats.registries) == (0, 0, {})
    assert stats.cache == stats.events == stats.redirects == Counter()


def test_each_request_counts_into_its_own_statistics():
    with telemetry.collecting() as outer:
        telemetry.event("compositions")
        with telemetry.collecting() as inner:
            telemetry.event("stale")
        telemetry.redirect("s3")
    assert outer.events == Counter({"compositions": 1}) and outer.redirects == Counter({"s3": 1})
    assert inner.events == Counter({"stale": 1}) and inner.redirects == Counter()


def test_threads_a_request_starts_count_into_it():
    with telemetry.collecting() as stats:
        workers = [
            threading.Thread(target=contextvars.copy_context().run, args=(work,))
            for work in [lambda: [telemetry.s3_call(1.0) for _ in range(200)]] * 4
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert (stats.s3_calls, stats.s3_ms) == (800, 800.0)
