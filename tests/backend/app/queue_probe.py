"""A job for the queue tests: notes its label in a Redis list, so a test sees the order jobs ran in."""

from __future__ import annotations

import os

from redis import Redis

PROBE_KEY = "careloop-test:ran"


def note(label: str) -> None:
    Redis.from_url(os.environ["CARELOOP_TEST_REDIS"]).rpush(PROBE_KEY, label)
