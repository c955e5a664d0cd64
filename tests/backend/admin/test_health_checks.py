"""The health checks are pure: each fact maps to OK, warning or failing with its reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backend.admin.health import (
    BackupFacts,
    Check,
    DiskFacts,
    Facts,
    ProviderFacts,
    QueueFacts,
    Status,
    all_checks,
    check_adt,
    check_backup,
    check_disk,
    check_his,
    check_provider,
    check_queue,
    check_rasa,
    check_scheduler,
    check_workers,
    overall,
)

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("queue", "status", "reason"),
    [
        (QueueFacts(inline=True), Status.OK, "inline"),
        (QueueFacts(inline=False, reachable=False), Status.FAILING, "redis_unreachable"),
        (QueueFacts(inline=False), Status.OK, "queue_empty"),
        (
            QueueFacts(inline=False, queued=3, oldest_enqueued_at=NOW - timedelta(seconds=59)),
            Status.OK,
            "queue_moving",
        ),
        (
            QueueFacts(inline=False, queued=3, oldest_enqueued_at=NOW - timedelta(seconds=60)),
            Status.WARNING,
            "queue_slow",
        ),
        (
            QueueFacts(inline=False, queued=3, oldest_enqueued_at=NOW - timedelta(minutes=5)),
            Status.FAILING,
            "queue_backlog",
        ),
    ],
)
def test_queue(queue: QueueFacts, status: Status, reason: str) -> None:
    check = check_queue(queue, NOW)
    assert (check.status, check.reason) == (status, reason)


@pytest.mark.parametrize(
    ("queue", "status", "reason"),
    [
        (QueueFacts(inline=True), Status.OK, "inline"),
        (QueueFacts(inline=False, reachable=False), Status.FAILING, "redis_unreachable"),
        (QueueFacts(inline=False, workers=0), Status.FAILING, "no_workers"),
        (QueueFacts(inline=False, workers=2), Status.OK, "workers_running"),
    ],
)
def test_workers(queue: QueueFacts, status: Status, reason: str) -> None:
    check = check_workers(queue)
    assert (check.status, check.reason) == (status, reason)


@pytest.mark.parametrize(
    ("ago", "status", "reason"),
    [
        (None, Status.FAILING, "no_heartbeat"),
        (timedelta(seconds=0), Status.OK, "heartbeat_fresh"),
        (timedelta(seconds=119), Status.OK, "heartbeat_fresh"),
        (timedelta(minutes=2), Status.WARNING, "heartbeat_late"),
        (timedelta(minutes=5), Status.FAILING, "heartbeat_stale"),
        (timedelta(seconds=-30), Status.OK, "heartbeat_fresh"),  # another server's clock a little ahead
    ],
)
def test_scheduler(ago: timedelta | None, status: Status, reason: str) -> None:
    check = check_scheduler(None if ago is None else NOW - ago, NOW)
    assert (check.status, check.reason) == (status, reason)


def test_rasa() -> None:
    assert check_rasa(None).reason == "not_configured" and check_rasa(None).status is Status.OK
    assert check_rasa(True).status is Status.OK
    assert check_rasa(False) == Check("rasa", Status.FAILING, "unreachable")


@pytest.mark.parametrize(
    ("sent", "failed", "status", "reason"),
    [
        (0, 0, Status.OK, "provider_idle"),
        (10, 0, Status.OK, "provider_sending"),
        (91, 9, Status.OK, "provider_sending"),
        (9, 1, Status.WARNING, "provider_errors"),
        (6, 4, Status.WARNING, "provider_errors"),
        (5, 5, Status.FAILING, "provider_failing"),
        (0, 3, Status.FAILING, "provider_failing"),
    ],
)
def test_provider(sent: int, failed: int, status: Status, reason: str) -> None:
    check = check_provider(ProviderFacts("sms", sent, failed, NOW - timedelta(minutes=3)), NOW)
    assert (check.name, check.status, check.reason) == ("provider:sms", status, reason)
    assert check.figures["last_success_seconds_ago"] == 180


def test_adt_is_shown_not_judged() -> None:
    assert check_adt(None, NOW).reason == "no_adt_yet"
    assert check_adt(NOW - timedelta(days=3), NOW).figures == {"last_seconds_ago": 3 * 86400}
    assert check_adt(NOW - timedelta(days=3), NOW).status is Status.OK


@pytest.mark.parametrize(
    ("free", "status", "reason"),
    [(50, Status.OK, "disk_room"), (10, Status.WARNING, "disk_filling"), (2, Status.FAILING, "disk_full")],
)
def test_disk(free: int, status: Status, reason: str) -> None:
    check = check_disk(DiskFacts("media", True, 5, total_bytes=100, free_bytes=free), 90)
    assert (check.name, check.status, check.reason) == ("disk:media", status, reason)


def test_a_missing_folder_is_a_warning() -> None:
    assert check_disk(DiskFacts("data", False), 90).reason == "folder_missing"


def test_overall_is_the_worst_check() -> None:
    facts = Facts(
        now=NOW,
        queue=QueueFacts(inline=True),
        scheduler_beat=NOW,
        rasa=None,
        providers=(ProviderFacts("sms", 9, 1, NOW),),
        last_adt=None,
        disks=(DiskFacts("media", True, 1, 100, 50),),
    )
    checks = all_checks(facts)
    assert [c.name for c in checks] == [
        "queue",
        "workers",
        "scheduler",
        "rasa",
        "provider:sms",
        "adt",
        "his",
        "disk:media",
        "backup",  # no backup folder configured: shown, not judged
    ]
    assert overall(checks) is Status.WARNING
    assert overall([]) is Status.OK
    assert overall([*checks, Check("rasa", Status.FAILING, "unreachable")]) is Status.FAILING
    assert checks[4].as_json()["status"] == "warning"


def test_a_failing_his_source_is_a_warning_naming_it() -> None:
    assert check_his(0, ()) == Check("his", Status.OK, "no_his_sources")
    assert check_his(2, ()).status is Status.OK and check_his(2, ()).reason == "his_pulling"
    failing = check_his(2, ("HIS-VIEW",))
    assert (failing.status, failing.reason) == (Status.WARNING, "his_failing")
    assert failing.figures == {"his_sources": 2, "his_failing": 1, "his_failing_names": "HIS-VIEW"}


@pytest.mark.parametrize(
    ("backup", "status", "reason"),
    [
        (None, Status.OK, "backup_not_configured"),
        (BackupFacts(last=None, max_age=timedelta(hours=26)), Status.FAILING, "no_backup"),
        (BackupFacts(last=NOW - timedelta(hours=3), max_age=timedelta(hours=26)), Status.OK, "backup_recent"),
        (
            BackupFacts(last=NOW - timedelta(hours=26), max_age=timedelta(hours=26)),
            Status.OK,
            "backup_recent",
        ),
        (
            BackupFacts(last=NOW - timedelta(hours=27), max_age=timedelta(hours=26)),
            Status.WARNING,
            "backup_old",
        ),
        (
            BackupFacts(last=NOW + timedelta(minutes=5), max_age=timedelta(hours=1)),
            Status.OK,
            "backup_recent",
        ),
    ],
)
def test_the_newest_backups_age(backup: BackupFacts | None, status: Status, reason: str) -> None:
    check = check_backup(backup, NOW)
    assert (check.name, check.status, check.reason) == ("backup", status, reason)
    if backup is not None and backup.last is not None:
        expected = round(max(0.0, (NOW - backup.last).total_seconds()) / 3600, 1)
        assert check.figures == {"backup_age_hours": expected}
