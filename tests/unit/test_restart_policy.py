"""The supervisor's restart policy (starter/devstack/supervisor.py): a quick restart after a
stable run, a doubling backoff while a service keeps dying young, a bound per minute."""

from __future__ import annotations

import signal

from starter.devstack.devstack import Child
from starter.devstack.supervisor import (
    MAX_BACKOFF,
    QUICK_RESTART,
    RESTARTS_PER_MINUTE,
    RestartPolicy,
)


def test_a_service_dying_young_waits_longer_each_time_up_to_the_cap() -> None:
    policy = RestartPolicy()
    delays = [policy.next_delay(ran_for=1.0, now=float(t)) for t in range(6)]
    assert delays == [QUICK_RESTART, 1.0, 2.0, 4.0, 8.0, MAX_BACKOFF]


def test_a_service_that_ran_a_while_restarts_quickly_again() -> None:
    policy = RestartPolicy()
    for t in range(4):
        policy.next_delay(ran_for=1.0, now=float(t))
    assert policy.next_delay(ran_for=30.0, now=10.0) == QUICK_RESTART


def test_too_many_restarts_within_a_minute_stop_the_restarts_and_old_ones_are_forgotten() -> None:
    policy = RestartPolicy()
    for t in range(RESTARTS_PER_MINUTE):
        assert policy.next_delay(ran_for=30.0, now=float(t)) is not None
    assert policy.next_delay(ran_for=30.0, now=float(RESTARTS_PER_MINUTE)) is None
    assert policy.next_delay(ran_for=30.0, now=61.5) == QUICK_RESTART  # the first two expired


def test_the_supervisor_says_how_a_service_ended() -> None:
    worker = Child("worker", ["python", "-m", "worker"], None, "worker")
    assert worker.exit_description(-signal.SIGKILL) == "worker was killed by SIGKILL"
    assert worker.exit_description(1) == "worker exited with code 1"
    assert worker.exit_description(-200) == "worker was killed by signal 200"
