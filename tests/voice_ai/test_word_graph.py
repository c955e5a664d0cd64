"""The word graph of a grammar accepts exactly its phrases, with shared prefixes and suffixes merged."""

from __future__ import annotations

from decimal import Decimal

from backend.app.settings import REPO_ROOT
from backend.dialogue.content import load_voice_phrases
from questionnaires.channels import VoicePhrases
from questionnaires.spoken_numbers import spell
from voice_ai.word_graph import WordGraph, word_graph


def accepted(graph: WordGraph) -> set[str]:
    out: dict[int, list[tuple[int, str | None]]] = {}
    for a, b, _, word in graph.arcs:
        out.setdefault(a, []).append((b, word))
    found: set[str] = set()

    def walk(state: int, words: tuple[str, ...]) -> None:
        if state == graph.final:
            found.add(" ".join(words))
        for to, word in out.get(state, []):
            walk(to, (*words, word) if word else words)

    walk(graph.start, ())
    return found


def test_exactly_the_phrases_and_probabilities_per_state_add_up() -> None:
    phrases = ["very satisfied", "satisfied", "very dissatisfied", "dissatisfied", "one", "one hundred"]
    graph = word_graph(phrases)
    assert accepted(graph) == set(phrases)
    totals: dict[int, float] = {}
    for a, _, p, _ in graph.arcs:
        totals[a] = totals.get(a, 0.0) + p
    assert all(abs(t - 1.0) < 1e-9 for t in totals.values())


def test_a_number_grammar_shrinks_to_a_few_arcs() -> None:
    words = VoicePhrases.parse(load_voice_phrases("en", REPO_ROOT / "content"), "en").numbers
    glucose = [spell(Decimal(n) / 10, words) for n in range(10, 334)]  # 1.0 .. 33.3 mmol/L
    graph = word_graph(glucose)
    assert accepted(graph) == set(glucose)
    assert len(graph.arcs) < 80  # 324 phrases of 3-4 words each as parallel paths: over 1100 arcs
