"""A request's deadline on a settable clock: when it passes, what it leaves, how it reads."""

from __future__ import annotations

import threading

from ociwrap.runtime import deadline


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_a_deadline_passes_at_exactly_its_budget():
    clock = Clock()
    current = deadline.Deadline(28, clock)
    assert (current.budget, current.expires, current.remaining()) == (28, 528.0, 28.0)
    clock.now = 527.5
    assert current.remaining() == 0.5 and not current.expired()
    clock.now = 528.0
    assert current.remaining() == 0 and current.expired()
    clock.now = 530.0
    assert current.remaining() == -2 and current.expired()


def test_an_earlier_deadline_keeps_the_budget_and_the_clock():
    clock = Clock()
    current = deadline.Deadline(28, clock)
    earlier = current.keeping(2.5)
    assert (earlier.budget, earlier.expires, earlier.remaining()) == (28, 525.5, 25.5)
    clock.now = 525.5
    assert earlier.expired() and not current.expired()
    assert current.keeping(0).expires == current.expires


def test_a_deadline_reads_as_its_budget_and_what_is_left():
    clock = Clock()
    current = deadline.Deadline(28, clock)
    clock.now += 3.125
    assert repr(current) == "Deadline(budget=28.0s, remaining=24.88s)"


def test_within_makes_a_deadline_current_for_the_block_only():
    outer, inner = deadline.Deadline(10), deadline.Deadline(5)
    with deadline.within(outer) as entered:
        assert entered is outer and deadline.current() is outer
        with deadline.within(inner):
            assert deadline.current() is inner
        assert deadline.current() is outer
        with deadline.within(None):
            assert deadline.current() is None and deadline.timeout(7) == 7
        assert deadline.current() is outer
    assert deadline.current() is None


def test_a_thread_started_plainly_has_no_deadline():
    seen = []
    with deadline.within(deadline.Deadline(10)):
        thread = threading.Thread(target=lambda: seen.append(deadline.current()))
        thread.start()
        thread.join()
    assert seen == [None]


def test_the_next_wait_is_what_the_deadline_leaves_or_the_cap():
    clock = Clock()
    with deadline.within(deadline.Deadline(10, clock)):
        assert deadline.timeout(20) == 10 and deadline.timeout(4) == 4
        clock.now += 9
        assert deadline.timeout(20) == 1
        clock.now += 2
        assert deadline.timeout(20) == -1
