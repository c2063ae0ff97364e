"""The restart schedule of a stage that dies: exponential backoff, forgiven after a stable run."""

from __future__ import annotations

from detectord.daemon.pipeline.restarts import BACKOFF_MAX_S, BACKOFF_MIN_S, STABLE_S, Restarts


def test_a_stage_that_keeps_dying_waits_twice_as_long_each_time_up_to_the_maximum() -> None:
    restarts = Restarts(started=0.0)
    now, waits = 0.0, []
    for _ in range(8):
        now += 0.5  # dies half a second after each start
        waits.append(restarts.failed(now))
        now = restarts.due or now
        assert restarts.take_due(now)
        restarts.ran_from(now)
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, BACKOFF_MAX_S, BACKOFF_MAX_S, BACKOFF_MAX_S]
    assert restarts.count == 8


def test_a_stage_that_ran_stably_starts_again_from_the_shortest_wait() -> None:
    restarts = Restarts(started=0.0)
    for now in (1.0, 3.0, 7.0):
        restarts.failed(now)
        restarts.take_due(restarts.due or now)
        restarts.ran_from(restarts.due or now)
    restarts.ran_from(100.0)
    assert restarts.failed(100.0 + STABLE_S) == BACKOFF_MIN_S


def test_the_restart_is_due_only_once_its_wait_has_passed() -> None:
    restarts = Restarts(started=0.0)
    assert not restarts.take_due(0.0), "nothing is scheduled before a failure"
    wait = restarts.failed(10.0)
    assert not restarts.take_due(10.0 + wait / 2)
    assert restarts.take_due(10.0 + wait)
    assert not restarts.take_due(10.0 + wait), "taken once"
