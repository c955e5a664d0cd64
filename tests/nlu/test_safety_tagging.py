"""The shortcuts that keep tagging a long message cheap give the same tags as reading every position."""

from __future__ import annotations

import re

import pytest

from nlu import safety_corpus as corpus
from nlu.safety_lexicon import REGEX_CONCEPTS, REGEX_HINTS
from nlu.safety_match import tag
from nlu.safety_text import fold, plain


def _tags(text: str) -> set[tuple[str, str]]:
    folded = fold(text)
    return {(t.concept, folded[t.start : t.end]) for t in tag(folded, plain(folded))}


@pytest.mark.parametrize(
    ("text", "present"),
    [
        ("我cough得厉害", ("VOMIT", "cough")),  # a Latin word right after Chinese starts a word
        ("(chest pain)", ("CP", "chest pain")),
        ("...chest pain", ("CP", "chest pain")),
        ("2 chest pain", ("CHEST", "chest")),
        ("bleeding a lot", ("BLEED", "bleeding")),  # a term that runs to the end of its word
        ("tôi ăn không ngon", ("INGEST", "ăn")),
    ],
)
def test_latin_terms_are_found_wherever_a_word_starts(text: str, present: tuple[str, str]) -> None:
    assert present in _tags(text)


@pytest.mark.parametrize(
    ("inside", "apart", "span"),
    [
        ("khong echo", "khong ec ho", "ho"),  # "ho" (cough in Vietnamese) inside a word
        ("unbleeding", "un bleeding", "bleeding"),
        ("xchest pain", "x chest pain", "chest"),
    ],
)
def test_latin_terms_inside_a_word_are_not_tags(inside: str, apart: str, span: str) -> None:
    assert all(found != span for _, found in _tags(inside))
    # the same letters as a word of their own are a tag: the word start is what kept them out
    assert any(found == span for _, found in _tags(apart))


def test_every_regex_concept_match_contains_one_of_its_hints() -> None:
    """The matcher skips a regex concept in a window without one of its hints: that is only safe if no
    match can be without one. Checked on every message of the set, and on made-up figures."""
    texts = [r.text for r in corpus.load_all("train")] + [
        "my 3 week old baby has 38.5", "宝宝出生十天发烧39度", "bé 2 tháng tuổi sốt 39 độ", "28 tuần",
        "took 30 pills", "吃了二十片安眠药", "pain 9/10", "痛到十分", "thai 30 tuan", "孕32周", "6 wks",
        "two months old", "5 days old", "da 10 diem", "it is 9 out of 10",
    ]  # fmt: skip
    for text in texts:
        bare = plain(fold(text))
        for name, rx in REGEX_CONCEPTS.items():
            hints = REGEX_HINTS.get(name)
            if not hints:
                continue
            for m in re.finditer(rx, bare):
                assert any(h in m.group() for h in hints), (name, m.group(), text)


def test_a_long_message_is_tagged_as_its_sentences_are() -> None:
    """Tagging is local: the tags of sentences run together are the tags of each sentence, shifted."""
    rows = [r.text for r in corpus.load_all("train") if r.lang == "vi"][:80]
    joined = ". ".join(rows)
    assert _tags(joined) >= set().union(*(_tags(r) for r in rows))
