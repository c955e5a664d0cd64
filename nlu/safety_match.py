"""The red-flag matcher: tag concepts in the folded message, then find category patterns among the tags.

1. Tagging. Every lexicon term (nlu/safety_lexicon.py) belongs to a concept ("CHEST", "PAIN",
   "OVERDOSE_AMOUNT"...). One trie-shaped regular expression over the unmarked text finds, at each
   position, the longest term there; its shorter prefixes that are terms count too. A tag keeps only
   what passes the whole-word test (Latin script) and the diacritics rule (`safety_text.accepts`).
   Regex concepts (ages, temperatures, pain scores) are tagged from the unmarked text. A "_" term
   blocks: tags that start inside it are dropped ("chest clinic", "胸外科", "ngon xỉu").
2. Patterns (nlu/safety_rules.py). A pattern names one or more concepts that must all appear in one
   sentence within a window of tokens (a Latin word or a Chinese character is a token), so "took like
   20 of my sleeping pills", "吃了一整瓶安眠药" and "uống hết cả vỉ thuốc ngủ" are one pattern.
3. Context (nlu/safety_rules.py). A hit does not count when a symptom tag is negated in its clause
   ("no chest pain", "không khó thở", "没有胸痛"), when the sentence says it is over or long past
   ("the pain went away", "上周胸闷，现在好了", "bị khó thở hôm qua, giờ đỡ rồi", "had a stroke in
   2015"), when it asks about a condition in general ("what are the signs of a stroke"), or when it
   laughs. Self-harm patterns ignore all of this: "I'm not going to kill myself" still goes to a person.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from nlu import safety_rules as rules
from nlu import safety_site as site
from nlu.red_flags import PRIORITY, Emergency
from nlu.safety_lexicon import BLOCK, CONCEPTS, REGEX_CONCEPTS, REGEX_HINTS
from nlu.safety_text import accepts, fold, has_marks, is_word_char, plain


@dataclass(frozen=True, slots=True)
class Tag:
    start: int
    end: int
    concept: str
    term: str


# Concepts that set a scene (a verb, a body part, who, when) rather than name a red flag by themselves.
SCENE_CONCEPTS = frozenset(
    {"TAKE", "INGEST", "DRUG", "CHILD", "BABY", "OTHERS", "ROUTINE", "SH_WANT", "LIMB", "FACE", "THROAT",
     "CHEST", "HEAD", "SPEECH", "STOOL", "WOUND", "SURGERY", "INFANT", "PREGNANT", "TRIGGER", "BREATH_WORD",
     "ONE_SIDE", "SUDDEN", "CALF", "AMNIO", "INSULIN", "BLOOD", "PAIN", "FEVER", "LONG", "OD_AMOUNT"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Found:
    """One red-flag pattern found in a message, with the folded text it spans."""

    emergency: Emergency
    term: str  # the matched terms as written in the lexicon, joined with " … "
    matched: str  # the folded message from the first tag to the last
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Entry:
    concept: str
    text: str  # as written in the lexicon
    folded: str
    prefix: bool  # "bleed*": any continuation of the Latin word
    marked_only: bool  # "!ngất": the plain form is too ambiguous to count
    latin_start: bool
    latin_end: bool
    simple: bool  # no word boundaries, marks or continuation to check (Chinese): a match is a tag


def _entry(concept: str, raw: str, *, syntax: bool = True) -> _Entry:
    """`syntax` False: a hospital's phrase, taken as written ("!" and "*" are not markers there)."""
    marked_only = syntax and raw.startswith("!")
    prefix = syntax and raw.endswith("*")
    text = raw.lstrip("!").rstrip("*") if syntax else raw
    folded = fold(text)
    bare = plain(folded)
    latin_start, latin_end = is_word_char(bare[0]), is_word_char(bare[-1])
    simple = not (latin_start or latin_end or prefix or marked_only) and bare == folded
    return _Entry(concept, text, folded, prefix, marked_only, latin_start, latin_end, simple)


def _trie_regex(words: list[str]) -> str:
    """A regex that matches the longest of `words` at a position, shaped as a trie so it stays fast."""
    trie: dict[str, dict] = {}  # type: ignore[type-arg]
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:  # type: ignore[type-arg]
        end = "" in node
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if end else body

    return build(trie)


@dataclass(frozen=True, eq=False)  # hashed by identity: caches below are per lexicon
class _Lexicon:
    entries: dict[str, tuple[_Entry, ...]]  # by plain form
    latin: re.Pattern[str]  # terms that start with a Latin letter or digit, at word starts only (group 1)
    other: re.Pattern[str]  # the rest (Chinese): searched anywhere
    regexes: tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...]  # name, regex, hints
    patterns: tuple[rules.Pattern, ...]  # the built-in ones, then one per category with site phrases


@lru_cache(maxsize=4096)
def _prefix_entries(lex: _Lexicon, found: str) -> tuple[tuple[int, tuple[_Entry, ...]], ...]:
    """The terms that `found` (the longest term at a position) starts with: itself and its term prefixes."""
    entries = lex.entries
    return tuple((n, entries[found[:n]]) for n in range(len(found), 0, -1) if found[:n] in entries)


def _candidates(lex: _Lexicon, bare: str) -> Iterator[tuple[int, str]]:
    """(start, longest term there) for every position where a term starts. Latin terms are matched at
    word starts only: a search for them anywhere spent most of a long message's time trying every
    letter against the whole trie (4 KB of English: 1.9 ms of regex alone). They are found in one pass
    of a zero-width match (a word start, then the trie in a lookahead), so terms that overlap ("chest
    pain", "pain") are all found: half the time of trying the trie at each word start from Python (0.26
    against 0.49 ms for 4 KB). Chinese terms are searched for, restarting just after each match's start
    so overlapping terms are found too."""
    for word in lex.latin.finditer(bare):
        if found := word.group(1):
            yield word.start(), found
    search, pos = lex.other.search, 0
    while (m := search(bare, pos)) is not None:
        pos = m.start() + 1
        if m.end() > m.start():
            yield m.start(), m.group()


_WORD_REST = re.compile(r"[0-9a-z]*")


@lru_cache(maxsize=16384)
def _verdicts(
    lex: _Lexicon, found: str, span: str, word_follows: bool
) -> tuple[tuple[int, str, str, bool], ...]:
    """The terms that count where the longest term `found` (unmarked) starts, as (length, concept, term,
    runs to the end of the word): `span` is that stretch as typed (with its marks), `word_follows` whether
    a letter or digit comes right after it. A candidate already starts a word when its terms are Latin,
    so this is all a position's verdict depends on, and long messages repeat the same words: cached."""
    out: list[tuple[int, str, str, bool]] = []
    for length, entries in _prefix_entries(lex, found):
        typed = span[:length]
        # the character after a shorter term is inside `found`; after the whole of it, outside
        next_is_word = word_follows if length == len(found) else is_word_char(found[length])
        for e in entries:
            if not (e.simple and typed == e.folded):
                if not e.prefix and e.latin_end and next_is_word:
                    continue
                if typed != e.folded and not accepts(e.folded, typed, marked_only=e.marked_only):
                    continue
                if e.marked_only and typed == e.folded and not has_marks(typed):
                    continue
            out.append((length, e.concept, e.text, e.prefix))
    return tuple(out)


# Regex concepts all involve a number; they run only in a small window around each number. A Chinese
# numeral counts only before the unit every such pattern puts right after it (weeks, months, days,
# tablets, points): "一下", "一直" are everywhere in Chinese, and their windows were most of the regex time.
_NUMBER = re.compile(
    # the lookahead fails at once on most characters, before the three branches are tried (a third of
    # the pass's time on 4 KB)
    r"(?=[0-9一二两三四五六七八九十otfse])"
    r"(?:\d+|[一二两三四五六七八九十]+(?=[几多]?(?:[周週天片粒颗分]|个月))|\b(?:one|two|three|four|six|eight|ten)\b)"
)


def _lexicon() -> _Lexicon:
    """The built-in lexicon with the hospital's installed phrases (nlu/safety_site.py)."""
    return _build(site.active())


@lru_cache(maxsize=4)  # the installed lexicon, and the one a validation is trying
def _build(site_lexicon: site.SiteLexicon) -> _Lexicon:
    by_plain: dict[str, list[_Entry]] = defaultdict(list)
    for concept, terms in [*CONCEPTS.items(), (BLOCK, rules.BLOCKERS)]:
        for raw in terms:
            entry = _entry(concept, raw)
            by_plain[plain(entry.folded)].append(entry)
    own = [(site.concept_of(e), phrase) for e, phrase in site_lexicon.phrases]
    for concept, phrase in [*own, *((BLOCK, phrase) for phrase in site_lexicon.exceptions)]:
        entry = _entry(concept, phrase, syntax=False)
        if entry.folded.strip():
            by_plain[plain(entry.folded)].append(entry)
    categories = dict.fromkeys(e for e, _ in site_lexicon.phrases)
    patterns = rules.PATTERNS + tuple(
        rules.Pattern(e, (site.concept_of(e),), negatable=e is not Emergency.SELF_HARM) for e in categories
    )
    latin = sorted(w for w in by_plain if is_word_char(w[0]))
    other = sorted(w for w in by_plain if not is_word_char(w[0]))
    return _Lexicon(
        entries={k: tuple(v) for k, v in by_plain.items()},
        latin=re.compile(r"(?<![0-9a-z])(?=(" + _trie_regex(latin) + "))"),
        other=re.compile(_trie_regex(other)),
        regexes=tuple(
            (name, re.compile(rx), REGEX_HINTS.get(name, ())) for name, rx in REGEX_CONCEPTS.items()
        ),
        patterns=patterns,
    )


def tag(folded: str, bare: str) -> list[Tag]:
    """Every concept tag in the message (`bare` is `plain(folded)`), blockers applied, by start."""
    return list(_tag(_lexicon(), folded, bare))


@lru_cache(maxsize=16)  # the rules and the second net read the same long message: tag it once
def _tag(lex: _Lexicon, folded: str, bare: str) -> tuple[Tag, ...]:
    n = len(bare)
    tags: list[Tag] = []
    blocks: list[tuple[int, int]] = []
    for start, found in _candidates(lex, bare):
        after = start + len(found)
        for length, concept, text, prefix in _verdicts(
            lex, found, folded[start:after], after < n and is_word_char(bare[after])
        ):
            end = start + length
            if prefix:
                end = _WORD_REST.match(bare, end).end()  # type: ignore[union-attr]
            if concept == BLOCK:
                blocks.append((start, end))
            else:
                tags.append(Tag(start, end, concept, text))
    windows: list[list[int]] = []
    for m in _NUMBER.finditer(bare):
        lo, hi = max(0, m.start() - 16), m.end() + 24
        if windows and lo <= windows[-1][1]:
            windows[-1][1] = hi
        else:
            windows.append([lo, hi])
    seen: set[tuple[int, int, str]] = set()
    for lo, hi in windows:
        window = bare[lo:hi]
        for name, rx, hints in lex.regexes:
            if hints and not any(h in window for h in hints):
                continue
            for m in rx.finditer(bare, lo, min(hi, n)):
                if (m.start(), m.end(), name) not in seen:
                    seen.add((m.start(), m.end(), name))
                    tags.append(Tag(m.start(), m.end(), name, m.group()))
    tags.sort(key=lambda t: (t.start, -t.end))
    if blocks:
        merged: list[list[int]] = []
        for b_start, b_end in sorted(blocks):
            if merged and b_start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b_end)
            else:
                merged.append([b_start, b_end])
        # One walk over tags and blocks, both by start: the blocks are disjoint, so the first one that
        # ends after a tag starts is the only one that can overlap it (a bisect per tag cost twice this).
        unblocked: list[Tag] = []
        i, last = 0, len(merged)
        for t in tags:
            while i < last and merged[i][1] <= t.start:
                i += 1
            if i == last or merged[i][0] >= t.end:
                unblocked.append(t)
        tags = unblocked
    # "ra máu" and "máu" are one bleeding mention: a tag inside a longer one of its concept goes.
    # By start, longest first: a tag is inside an earlier one of its concept when it ends no later than
    # the furthest end of that concept so far.
    kept: list[Tag] = []
    reach: dict[str, int] = {}
    for t in tags:
        if t.end > reach.get(t.concept, -1):
            kept.append(t)
            reach[t.concept] = t.end
    return tuple(kept)


_WORD = re.compile(r"[0-9a-z\u00c0-\u024f\u1e00-\u1eff]+|[,，、]")
_HAN = re.compile(r"[\u3400-\u9fff]")


def _tokens(text: str) -> int:
    """Words of Latin script, plus Chinese characters at two to a word (a Chinese word is 1-3 of them)."""
    return len(_WORD.findall(text)) + (len(_HAN.findall(text)) + 1) // 2


def _instances(
    pattern: rules.Pattern, by_concept: dict[str, list[Tag]], starts: dict[str, list[int]], folded: str
) -> list[list[Tag]]:
    """Every way the pattern's concepts sit together in one sentence within its window."""
    first, *rest = pattern.concepts
    reach = pattern.window * 12 + 40  # characters: no window of tokens is wider than this
    found: list[list[Tag]] = []
    for anchor in by_concept.get(first, ()):
        chosen = [anchor]
        for concept in rest:
            cands = by_concept[concept]
            lo_i = bisect_left(starts[concept], anchor.start - reach)
            hi_i = bisect_right(starts[concept], anchor.end + reach)
            best: Tag | None = None
            best_distance = 0
            for cand in cands[lo_i:hi_i]:
                if pattern.ordered and cand.start < chosen[-1].end:
                    continue
                distance = abs(cand.start - anchor.start)
                if best is None or distance < best_distance:
                    best, best_distance = cand, distance
            if best is None:
                break
            chosen.append(best)
        else:
            lo = min(t.start for t in chosen)
            hi = max(t.end for t in chosen)
            span = folded[lo:hi]
            if rules.SENTENCE_BREAK.search(span):
                continue
            inner = sum(_tokens(folded[t.start : t.end]) for t in chosen)
            if _tokens(span) - inner <= pattern.window:
                found.append(chosen)
    return found


def find(text: str, site_lexicon: site.SiteLexicon | None = None) -> list[Found]:
    """The red-flag categories the message hits, most urgent first, one per category. `site_lexicon`:
    read with these hospital phrases instead of the installed ones (a draft being checked or tried;
    nothing global changes, so the messages being screened meanwhile never see a draft)."""
    folded = fold(text)
    if not folded:
        return []
    lex = _build(site_lexicon if site_lexicon is not None else site.active())
    tags = _tag(lex, folded, plain(folded))
    if not tags:
        return []
    by_concept: dict[str, list[Tag]] = defaultdict(list)
    for t in tags:
        by_concept[t.concept].append(t)
    starts = {concept: [t.start for t in ts] for concept, ts in by_concept.items()}
    context = rules.Context(folded)

    def in_sentence(concepts: tuple[str, ...], pos: int) -> bool:
        """A tag of one of these concepts starts in the sentence at `pos`: a bisect per concept rather
        than a look at each of its tags ("con", "bé" are tagged dozens of times in 4 KB of Vietnamese)."""
        s_start, s_end = context.sentence(pos)
        for concept in concepts:
            at = starts.get(concept)
            if at and (i := bisect_left(at, s_start)) < len(at) and at[i] < s_end:
                return True
        return False

    hits: dict[Emergency, Found] = {}
    for pattern in lex.patterns:
        if pattern.emergency in hits or not all(c in by_concept for c in pattern.concepts):
            continue
        for chosen in _instances(pattern, by_concept, starts, folded):
            lo, hi = min(t.start for t in chosen), max(t.end for t in chosen)
            if pattern.unless and in_sentence(pattern.unless, lo):
                continue
            if pattern.with_any and not in_sentence(pattern.with_any, lo):
                continue
            if pattern.negatable and context.discounted(chosen, lo, hi, mild=pattern.mild):
                continue
            term = " … ".join(t.term for t in sorted(chosen, key=lambda t: t.start))
            hits[pattern.emergency] = Found(pattern.emergency, term, folded[lo:hi], lo, hi)
            break
    return [hits[e] for e in PRIORITY if e in hits]


def describe(text: str) -> list[str]:
    """The concepts the message mentions, marked when negated, and its context (over, general, joke):
    what the rules saw, as words the second net can learn from even where no pattern fired."""
    folded = fold(text)
    if not folded:
        return []
    context = rules.Context(folded)
    words = []
    for t in tag(folded, plain(folded)):
        if t.concept.startswith(site.SITE_PREFIX):  # the net learnt without them: its reading stays the same
            continue
        negated = context.negated(t.start, t.end)
        words.append(("not_" if negated else "") + t.concept.lower())
    words += [name for name, present in context.flags().items() if present]
    return sorted(set(words))
