"""A grammar's phrases as the smallest word graph accepting exactly them (shared prefixes and suffixes).

324 glucose readings ("one point zero" .. "thirty three point three") become 54 word arcs instead of
324 parallel paths: a decoder searches far fewer states, and nothing outside the phrases is accepted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_Trie = dict[str, Any]  # word -> the trie node after it


@dataclass(frozen=True, slots=True)
class WordGraph:
    start: int
    final: int  # the one final state; every phrase's last word leads to it by an empty arc
    arcs: tuple[tuple[int, int, float, str | None], ...]  # (from, to, probability, word or None)


def word_graph(phrases: Sequence[str]) -> WordGraph:
    """Phrases are space-separated words; equal sub-graphs are merged (a minimal acyclic automaton)."""
    trie: _Trie = {}
    ends: set[int] = set()  # id() of the trie nodes where a phrase ends
    for text in phrases:
        node = trie
        for word in text.split():
            node = node.setdefault(word, {})
        ends.add(id(node))
    states: dict[tuple[bool, tuple[tuple[str, int], ...]], int] = {}
    words: list[tuple[int, int, str]] = []
    accepting: list[int] = []

    def visit(node: _Trie) -> int:
        children = tuple(sorted((word, visit(child)) for word, child in node.items()))
        signature = (id(node) in ends, children)
        if signature not in states:
            state = states[signature] = len(states) + 1  # 0 is the final state
            words.extend((state, child, word) for word, child in children)
            if signature[0]:
                accepting.append(state)
        return states[signature]

    start = visit(trie)
    out = Counter(state for state, _, _ in words) + Counter(accepting)
    arcs = [(a, b, 1.0 / out[a], w) for a, b, w in words] + [(a, 0, 1.0 / out[a], None) for a in accepting]
    return WordGraph(start, 0, tuple(arcs))
