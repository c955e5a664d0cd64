"""The one refusal every staff action raises: a reason code the pages translate, nothing changed."""

from __future__ import annotations


class ActionRefused(Exception):
    """The action does not fit the state of what it acts on (closed, already claimed, not allowed …);
    `reason` is a code the page translates, and the form keeps what was typed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
