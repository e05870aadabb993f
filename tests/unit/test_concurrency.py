"""Threads for one request, and per-key locks.

Calls that must run at once meet at a barrier (they would wait forever one after the
other: the barrier's timeout only turns such a hang into a failure). How far a map has
read its items is counted on the items themselves, in the caller's thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ociwrap.runtime.concurrency import KeyedLocks, ordered_map, parallel_map, run_together

#: Only for a call that would otherwise never return; the tests time nothing.
HANG_GUARD = 30.0


class Counted:
    """Items 0..n-1, counting how many were taken."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.taken = 0

    def __iter__(self) -> Iterator[int]:
        for item in range(self.n):
            self.taken += 1
            yield item


def test_parallel_map_answers_in_order():
    assert parallel_map(lambda n: n * n, range(10), 4) == [n * n for n in range(10)]
    assert parallel_map(lambda n: n, [], 4) == []


def test_one_item_or_one_worker_runs_in_the_callers_thread():
    caller = threading.current_thread()
    assert parallel_map(lambda _: threading.current_thread(), [1], 8) == [caller]
    assert parallel_map(lambda _: threading.current_thread(), range(3), 1) == [caller] * 3
    assert parallel_map(lambda n: n * 2, [5], 8) == [10]
    assert parallel_map(lambda n: n * 2, range(3), 1) == [0, 2, 4]


def test_two_items_run_at_once_on_two_workers():
    barrier = threading.Barrier(2, timeout=HANG_GUARD)
    threads = parallel_map(lambda _: (barrier.wait(), threading.current_thread())[1], range(2), 2)
    assert threading.current_thread() not in threads and len(set(threads)) == 2


def test_the_first_failure_in_order_is_raised():
    def call(item: int) -> int:
        if item >= 3:
            raise ValueError(f"item {item}")
        return item

    with pytest.raises(ValueError, match="item 3"):
        parallel_map(call, range(4), 4)


def test_ordered_map_keeps_at_most_max_workers_results_under_way():
    items = Counted(10)
    results = ordered_map(lambda n: n, items, 3)
    assert next(results) == 0
    assert items.taken == 3  # 0 taken by the caller, 1 and 2 under way
    assert next(results) == 1
    assert items.taken == 4
    assert list(results) == list(range(2, 10))
    assert items.taken == 10


def test_ordered_map_runs_up_to_max_workers_at_once():
    barrier = threading.Barrier(3, timeout=HANG_GUARD)
    results = list(ordered_map(lambda n: (barrier.wait(), n)[1], range(3), 3))
    assert results == [0, 1, 2]


def test_ordered_map_closed_early_takes_no_more_items():
    items = Counted(10)
    results = ordered_map(lambda n: n, items, 2)
    assert next(results) == 0
    results.close()
    assert items.taken == 2


def test_ordered_map_raises_a_failure_when_its_turn_comes():
    def call(item: int) -> int:
        if item == 2:
            raise ValueError("two")
        return item

    results = ordered_map(call, range(5), 2)
    assert [next(results), next(results)] == [0, 1]
    with pytest.raises(ValueError, match="two"):
        next(results)


def test_run_together_runs_every_call_at_once_and_raises_a_failure():
    barrier = threading.Barrier(3, timeout=HANG_GUARD)
    done: list[int] = []

    def call(n: int):
        return lambda: (barrier.wait(), done.append(n))

    run_together(call(1), call(2), call(3))
    assert sorted(done) == [1, 2, 3]

    def fails() -> None:
        raise RuntimeError("write refused")

    with pytest.raises(RuntimeError, match="write refused"):
        run_together(lambda: None, fails)


def test_a_key_always_gets_the_same_lock_from_64():
    locks = KeyedLocks()
    assert locks.lock("sha256:abc") is locks.lock("sha256:abc")
    chosen = {id(locks.lock(f"key-{n}")) for n in range(2000)}
    assert len(chosen) == 64
    few = KeyedLocks(stripes=3)
    assert len({id(few.lock(f"key-{n}")) for n in range(100)}) == 3


def test_a_key_lock_keeps_others_out_until_released():
    locks = KeyedLocks()
    with locks.lock("wrap/a"):
        assert not locks.lock("wrap/a").acquire(blocking=False)
    assert locks.lock("wrap/a").acquire(blocking=False)
    locks.lock("wrap/a").release()
