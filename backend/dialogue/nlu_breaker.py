"""Rasa's circuit breaker shared by every process through Redis.

An RQ worker runs each job in a child process of its own, so a breaker kept in process memory starts
closed for every turn: with Rasa hanging, every free-text turn waited out the timeout. Here the breaker's
state lives in the shared store (backend.security.ephemeral): consecutive failures are counted there, an
open breaker is a key that expires after `open_for`, and once it has expired one process at a time may
try Rasa again (half-open). Without Redis the store is the process's own, which is what one process needs.
"""

from __future__ import annotations

from backend.security.ephemeral import Ephemeral

OPEN_KEY = "nlu-breaker:open"
FAILURES_KEY = "nlu-breaker:failures"
TRIAL_KEY = "nlu-breaker:trial"


class SharedBreaker:
    """The same rules as nlu.client.CircuitBreaker: open after `failure_threshold` failures in a row,
    for `open_for` seconds; then one trial call; its success closes the breaker, its failure reopens it."""

    def __init__(
        self, store: Ephemeral, *, failure_threshold: int = 3, open_for: int = 30, trial_for: int = 5
    ):
        self.failure_threshold = failure_threshold
        self.open_for = open_for
        # how long one trial call may hold the half-open breaker before another may try (a child killed
        # mid-call never reports back)
        self.trial_for = trial_for
        self._store = store
        self._on_trial = False

    def is_open(self) -> bool:
        return self._store.peek(OPEN_KEY) is not None

    def allow(self) -> bool:
        if self.is_open():
            return False
        if int(self._store.peek(FAILURES_KEY) or 0) < self.failure_threshold:
            return True  # closed: fewer failures in a row than the threshold
        # half-open: the breaker was open and has expired; one trial at a time across processes
        self._on_trial = self._store.remember(TRIAL_KEY, "1", self.trial_for) is None
        return self._on_trial

    def record_success(self) -> None:
        self._on_trial = False
        for key in (FAILURES_KEY, OPEN_KEY, TRIAL_KEY):
            self._store.forget(key)

    def record_failure(self) -> None:
        # the count outlives the open period, so that after it the breaker is half-open, not closed
        failures = self._store.hit(FAILURES_KEY, 24 * 3600)
        if self._on_trial or failures >= self.failure_threshold:
            self._store.forget(TRIAL_KEY)
            self._store.remember(OPEN_KEY, "1", self.open_for)
        self._on_trial = False
