"""Riding out Redis outages: the restart loop's backoff, and queueing that never fails a caller whose
work is already stored."""

from __future__ import annotations

import logging

import pytest
from redis.exceptions import ConnectionError as RedisDown
from redis.exceptions import TimeoutError as RedisTimeout

from backend.app import jobs
from backend.app.outages import BACKOFF, HEALTHY_RUN_SECONDS, run_through_outages
from tests.conftest import reset_caches


class Script:
    """A `run` that fails as told, on a clock the test moves."""

    def __init__(self, outcomes: list[tuple[float, BaseException | None]]) -> None:
        self.outcomes, self.now, self.calls, self.sleeps = outcomes, 0.0, 0, list[float]()

    def run(self) -> None:
        lasted, error = self.outcomes[self.calls]
        self.calls += 1
        self.now += lasted
        if error is not None:
            raise error

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_it_starts_again_after_each_outage_backing_off_and_returns_when_the_run_ends() -> None:
    script = Script([(1, RedisDown()), (1, RedisTimeout()), (1, RedisDown()), (0, None)])
    run_through_outages(script.run, "worker", sleep=script.sleep, clock=lambda: script.now)
    assert script.calls == 4 and script.sleeps == list(BACKOFF[:3])


def test_the_backoff_stops_growing_and_starts_over_after_a_healthy_run() -> None:
    outages = [(0.0, RedisDown())] * (len(BACKOFF) + 2)
    script = Script([*outages, (HEALTHY_RUN_SECONDS, RedisDown()), (0, None)])
    run_through_outages(script.run, "scheduler", sleep=script.sleep, clock=lambda: script.now)
    assert script.sleeps == [*BACKOFF, BACKOFF[-1], BACKOFF[-1], BACKOFF[0]]


def test_other_errors_are_not_hidden() -> None:
    script = Script([(0, ValueError("a bug"))])
    with pytest.raises(ValueError, match="a bug"):
        run_through_outages(script.run, "worker", sleep=script.sleep, clock=lambda: script.now)


def test_queueing_with_redis_unreachable_logs_and_returns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[int] = []
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    reset_caches()
    jobs._queue.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="backend.app.jobs"):
            jobs.enqueue(ran.append, 7)
    finally:
        monkeypatch.delenv("REDIS_URL")
        reset_caches()
        jobs._queue.cache_clear()
    assert ran == []  # not run in the caller either: the sweep owns it now
    assert "queue unreachable; append left for the periodic sweep" in caplog.text
