"""The queues by urgency and the rule for a periodic job's last copy: pure decisions, every case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from backend.app.queues import DEFAULT_ORDER, JobQueue, parse_order, queue_name, still_pending
from backend.app.settings import Settings

NOW = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)
TIMEOUT = timedelta(seconds=180)


def test_default_order_is_upkeep_then_sends_then_turns_then_the_rest() -> None:
    assert parse_order(DEFAULT_ORDER) == (JobQueue.SYSTEM, JobQueue.SENDS, JobQueue.TURNS, JobQueue.DEFAULT)


def test_order_may_name_fewer_queues_with_spaces() -> None:
    assert parse_order(" turns , system ") == (JobQueue.TURNS, JobQueue.SYSTEM)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("system,periodic", "unknown queue(s) periodic"),
        ("sends,sends", "each queue may be named once"),
        (" , ", "name at least one queue"),
        ("", "name at least one queue"),
    ],
)
def test_bad_order_is_refused_with_a_reason(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("(", r"\(").replace(")", r"\)")):
        parse_order(text)


def test_settings_refuse_a_bad_worker_queue_list() -> None:
    with pytest.raises(ValidationError, match="unknown queue"):
        Settings(worker_queues="system,urgent")


def test_queue_names_keep_the_default_queue_name() -> None:
    assert [queue_name("careloop", kind) for kind in JobQueue] == [
        "careloop-system",
        "careloop-sends",
        "careloop-turns",
        "careloop",
    ]


@pytest.mark.parametrize("status", ["queued", "deferred", "scheduled"])
def test_a_copy_waiting_to_run_is_pending(status: str) -> None:
    assert still_pending(status, None, NOW, TIMEOUT)
    assert still_pending(status, NOW - timedelta(hours=5), NOW, TIMEOUT)


@pytest.mark.parametrize("status", ["finished", "failed", "stopped", "canceled", None])
def test_a_copy_that_ended_or_vanished_is_not_pending(status: str | None) -> None:
    assert not still_pending(status, NOW - timedelta(seconds=1), NOW, TIMEOUT)


@pytest.mark.parametrize(
    ("started_ago", "pending"),
    [
        (timedelta(0), True),
        (timedelta(seconds=179), True),
        (timedelta(seconds=180), False),  # longer than the job may run: its worker was killed
        (timedelta(hours=1), False),
    ],
)
def test_a_running_copy_is_pending_until_its_timeout(started_ago: timedelta, pending: bool) -> None:
    assert still_pending("started", NOW - started_ago, NOW, TIMEOUT) is pending


def test_a_running_copy_without_a_start_time_is_not_pending() -> None:
    assert not still_pending("started", None, NOW, TIMEOUT)
