"""A hospital's own red-flag phrases: extra phrases per category and language, and benign exceptions.

Clinicians know how their own patients write ("心口绞着疼", a dialect word for fainting, a local drug
name). The studio publishes such a lexicon through the one revision service (backend/content/
safety_lexicon.py); the process installs the published one here and the matcher (nlu/safety_match.py)
reads it beside the built-in lexicon:

- a phrase becomes a term of its category's own concept (``SITE_<CATEGORY>``), with a pattern of that
  concept alone: it raises the category when it appears, discounted like any other symptom (negated,
  over, a general question, a joke), except self-harm, which is never discounted;
- an exception blocks every tag inside it, as the built-in blockers do ("stroke clinic", "胸外科"): a
  figure of speech or a service's name the hospital's patients use.

A body is ``{"phrases": {category: {language: [phrase, ...]}}, "exceptions": {language: [phrase, ...]}}``.
`problems` validates one before it may be published: each phrase non-empty and long enough to mean
something, none that would raise an alarm on the known benign messages, no exception that would hide a
known emergency the rules catch today. Pure apart from reading the labelled messages in nlu/.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from nlu.red_flags import Emergency

LANGS = ("zh-CN", "vi", "en")  # the languages the studio edits in
MAX_PHRASE = 80  # characters: a phrase, not a message
MIN_WEIGHT = 4  # a Chinese character weighs 2, a Latin letter or digit 1: "吐血" and "sick" pass, "血" not
SITE_PREFIX = "SITE_"
_HAN = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[0-9a-z\u00c0-\u024f\u1e00-\u1eff]", re.IGNORECASE)
_EXAMPLES = 3  # benign or emergency messages quoted in one problem


def concept_of(emergency: Emergency) -> str:
    return SITE_PREFIX + emergency.name


@dataclass(frozen=True)
class SiteLexicon:
    """The phrases the rules add for this hospital; `revision` is the published revision it came from."""

    phrases: tuple[tuple[Emergency, str], ...] = ()
    exceptions: tuple[str, ...] = ()
    revision: int | None = None

    def __bool__(self) -> bool:
        return bool(self.phrases or self.exceptions)


EMPTY = SiteLexicon()


def skeleton() -> dict[str, Any]:
    """A first draft: every category and language present and empty, so the editor shows them all."""
    return {
        "phrases": {e.value: {lang: [] for lang in LANGS} for e in Emergency},
        "exceptions": {lang: [] for lang in LANGS},
    }


def phrase_list(value: Any) -> list[str]:
    """The strings of a body's list, trimmed; anything else is no phrases."""
    return [v.strip() for v in value if isinstance(v, str)] if isinstance(value, list) else []


def from_body(body: Mapping[str, Any], revision: int | None = None) -> SiteLexicon:
    """The lexicon a (validated) body describes; malformed parts are left out, empty phrases skipped."""
    phrases: list[tuple[Emergency, str]] = []
    table = body.get("phrases")
    for category, by_lang in table.items() if isinstance(table, Mapping) else []:
        emergency = next((e for e in Emergency if e.value == category), None)
        if emergency is None or not isinstance(by_lang, Mapping):
            continue
        for lang in LANGS:
            phrases += [(emergency, p) for p in phrase_list(by_lang.get(lang)) if p]
    exceptions: list[str] = []
    table = body.get("exceptions")
    if isinstance(table, Mapping):
        for lang in LANGS:
            exceptions += [p for p in phrase_list(table.get(lang)) if p]
    return SiteLexicon(tuple(dict.fromkeys(phrases)), tuple(dict.fromkeys(exceptions)), revision)


# The lexicon the matcher reads now. A module global on purpose: the rules are pure functions of the
# text called from everywhere (turns, forms, calls); the backend installs the published revision, and
# only that (a draft is checked or tried by passing it to `safety_match.find`, never installed).
_active: SiteLexicon = EMPTY


def active() -> SiteLexicon:
    return _active


def install(lexicon: SiteLexicon) -> None:
    """Make `lexicon` the one the rules read from the next message on."""
    global _active
    _active = lexicon


@dataclass(frozen=True)
class SiteProblem:
    where: str  # "phrases/chest_pain/en", "exceptions/vi", "phrases"
    code: str
    detail: str = ""
    blocking: bool = True


def weight(phrase: str) -> int:
    """How much a phrase says: two per Chinese character, one per Latin letter or digit."""
    return 2 * len(_HAN.findall(phrase)) + len(_LATIN.findall(phrase))


def _shape(body: Mapping[str, Any]) -> list[SiteProblem]:
    problems: list[SiteProblem] = []
    unknown = set(body) - {"phrases", "exceptions"}
    problems += [SiteProblem(str(k), "unknown_part") for k in sorted(unknown, key=str)]
    phrases = body.get("phrases", {})
    if not isinstance(phrases, Mapping):
        return [*problems, SiteProblem("phrases", "not_a_table")]
    categories = {e.value for e in Emergency}
    for category, by_lang in phrases.items():
        if category not in categories:
            problems.append(SiteProblem(f"phrases/{category}", "unknown_category"))
        elif not isinstance(by_lang, Mapping):
            problems.append(SiteProblem(f"phrases/{category}", "not_a_table"))
        else:
            problems += _lists(f"phrases/{category}", by_lang)
    exceptions = body.get("exceptions", {})
    if not isinstance(exceptions, Mapping):
        problems.append(SiteProblem("exceptions", "not_a_table"))
    else:
        problems += _lists("exceptions", exceptions)
    return problems


def _lists(where: str, by_lang: Mapping[str, Any]) -> list[SiteProblem]:
    problems: list[SiteProblem] = []
    for lang, values in by_lang.items():
        at = f"{where}/{lang}"
        if lang not in LANGS:
            problems.append(SiteProblem(at, "unknown_language"))
            continue
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            problems.append(SiteProblem(at, "not_a_list"))
            continue
        seen: set[str] = set()
        for value in values:
            phrase = value.strip()
            if not phrase or not weight(phrase):  # nothing, or only punctuation and symbols
                problems.append(SiteProblem(at, "empty", phrase))
            elif len(phrase) > MAX_PHRASE:
                problems.append(SiteProblem(at, "too_long", phrase[:MAX_PHRASE] + "…"))
            elif weight(phrase) < MIN_WEIGHT:
                problems.append(SiteProblem(at, "too_short", phrase))
            elif phrase.casefold() in seen:
                problems.append(SiteProblem(at, "duplicate", phrase, blocking=False))
            seen.add(phrase.casefold())
    return problems


@cache
def _benign_messages() -> tuple[tuple[str, str], ...]:
    """Messages known not to be emergencies, with their unmarked folded form: the safety set's benign
    training messages and Rasa's NLU training examples (booking, directions, mild symptoms), minus those
    the rules flag today."""
    from nlu import safety_corpus as corpus
    from nlu.safety_match import find

    texts = [r.text for r in corpus.load_all("train") if r.label == corpus.BENIGN]
    try:
        from nlu.classifier import load_rasa_examples, rasa_files

        texts += [text for text, _ in load_rasa_examples(rasa_files())]
    except ImportError:  # the classifier module needs numpy; the safety set alone still checks
        pass
    return tuple((t, _bare(t)) for t in dict.fromkeys(texts) if not find(t, EMPTY))


@cache
def _caught_emergencies() -> tuple[tuple[str, str, Emergency], ...]:
    """The training split's emergencies the built-in rules catch, with their unmarked folded form and
    the category they raise."""
    from nlu import safety_corpus as corpus
    from nlu.safety_match import find

    out = []
    for r in corpus.load_all("train"):
        if r.label == corpus.EMERGENCY and (found := find(r.text, EMPTY)):
            out.append((r.text, _bare(r.text), found[0].emergency))
    return tuple(out)


def _bare(text: str) -> str:
    from nlu.safety_text import fold, plain

    return plain(fold(text))


def _locations(body: Mapping[str, Any]) -> dict[tuple[Emergency, str], str]:
    """Where each phrase of a (well-shaped) body was written: "phrases/<category>/<language>"."""
    out: dict[tuple[Emergency, str], str] = {}
    for category, by_lang in body.get("phrases", {}).items():
        for lang, values in by_lang.items():
            for value in values:
                out.setdefault((Emergency(category), value.strip()), f"phrases/{category}/{lang}")
    return out


def problems(body: Mapping[str, Any]) -> list[SiteProblem]:
    """Everything wrong with a body; a publish is refused while one of them is blocking. A message can
    only change its reading where it contains a phrase's letters, so only those messages are read."""
    from nlu.safety_match import find

    found = _shape(body)
    if any(p.blocking for p in found):
        return found
    lexicon = from_body(body)
    if not lexicon:
        return found
    where = _locations(body)
    for emergency, phrase in lexicon.phrases:
        key = _bare(phrase)
        alarms = [
            text
            for text, bare in _benign_messages()
            if key in bare
            and any(h.emergency is emergency and _site_term(h.term, phrase) for h in find(text, lexicon))
        ]
        if alarms:
            detail = f"{phrase}: " + " | ".join(alarms[:_EXAMPLES])
            found.append(SiteProblem(where[(emergency, phrase)], "matches_benign", detail))
    keys = [_bare(p) for p in lexicon.exceptions]
    hidden = [
        text
        for text, bare, emergency in _caught_emergencies()
        if any(k in bare for k in keys) and emergency not in {f.emergency for f in find(text, lexicon)}
    ]
    if hidden:
        found.append(SiteProblem("exceptions", "hides_emergency", " | ".join(hidden[:_EXAMPLES])))
    return found


def _site_term(term: str, phrase: str) -> bool:
    """Whether a hit's term (its terms joined with " … ") is this site phrase."""
    return phrase in term.split(" … ")
