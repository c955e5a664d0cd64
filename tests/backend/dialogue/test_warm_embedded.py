"""Workers load the embedded intent classifier before they fork a child per job, so no turn pays for
loading it; with the classifier switched off nothing is loaded."""

from __future__ import annotations

import pytest

from backend.dialogue.understanding import warm_embedded
from nlu.intents import default_intents
from tests.conftest import reset_caches


def test_warming_loads_the_classifier_the_turns_then_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARELOOP_NLU_EMBEDDED", "true")
    reset_caches()
    default_intents.cache_clear()
    warm_embedded()
    # loaded once, in this process: the turn's call is a cache hit on the same model
    assert default_intents.cache_info().currsize == 1
    model = default_intents()
    assert model is not None and default_intents.cache_info().hits >= 1
    assert model.guess("i agree, you can send me reminders") is not None


def test_with_the_classifier_off_warming_loads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARELOOP_NLU_EMBEDDED", "false")
    reset_caches()
    default_intents.cache_clear()
    warm_embedded()
    assert default_intents.cache_info().currsize == 0
