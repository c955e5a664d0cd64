"""The message-catalogue kind: every patient-facing text per key and language. Pure: validation (the rules
the file loader applies, and placeholders that agree across languages), per-language diff, what a text
costs on SMS and WeChat, and which translations are missing or stale.

A body is {language: {key: text}}, the shape of content/dialogues/messages/<lang>.yaml merged.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backend.content.kinds import Change, Problem, register
from bots.domain import FALLBACK_LANGUAGE, LANGUAGES
from channels.segments import encoding_of, split_segments

KIND = "messages"
# WeChat's customer-service text message holds at most 2048 bytes of UTF-8 (about 680 Chinese characters).
WECHAT_TEXT_BYTES = 2048
# Texts a patient reads in an emergency: a change to them is clinical whatever the catalogue's flag.
CLINICAL_PREFIXES = ("safety.",)
_FORMATTER = string.Formatter()


class BrokenPlaceholder(ValueError):
    """A text whose {placeholders} cannot be filled: an unclosed brace, a positional or indexed field."""


def placeholders(text: str) -> frozenset[str]:
    """The named {placeholders} of `text`; raises BrokenPlaceholder for any the bot could not fill."""
    names: set[str] = set()
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as exc:
        raise BrokenPlaceholder(str(exc)) from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier():
            raise BrokenPlaceholder(f"{{{field}}}" if field else "{}")
        if spec or conversion:
            raise BrokenPlaceholder(f"{{{field}{'!' + conversion if conversion else ''}:{spec}}}")
        names.add(field)
    return frozenset(names)


def keys_of(body: Mapping[str, Any]) -> list[str]:
    """Every key any language defines, sorted."""
    keys: set[str] = set()
    for table in body.values():
        if isinstance(table, Mapping):
            keys.update(str(k) for k in table)
    return sorted(keys)


def validate(body: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    for lang, table in body.items():
        if lang not in LANGUAGES:
            problems.append(Problem(str(lang), "unknown_language"))
        elif not isinstance(table, Mapping):
            problems.append(Problem(lang, "not_a_table"))
    if problems:
        return problems
    for key in keys_of(body):
        names: dict[str, frozenset[str]] = {}
        for lang in LANGUAGES:
            text = body.get(lang, {}).get(key)
            if text is None:
                problems.append(Problem(key, "missing", lang, blocking=lang == FALLBACK_LANGUAGE))
                continue
            if not isinstance(text, str):
                problems.append(Problem(key, "not_text", lang))
                continue
            if not text.strip():
                problems.append(Problem(key, "empty", lang))
                continue
            try:
                names[lang] = placeholders(text)
            except BrokenPlaceholder as exc:
                problems.append(Problem(key, "broken_placeholder", f"{lang}: {exc}"))
        if len(set(names.values())) > 1:
            shown = "; ".join(f"{lang}: {', '.join(sorted(n)) or '-'}" for lang, n in names.items())
            problems.append(Problem(key, "placeholders_differ", shown))
    return problems


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    """Changed, added and removed texts, by key then language."""
    changes = []
    for key in sorted(set(keys_of(before)) | set(keys_of(after))):
        for lang in LANGUAGES:
            old, new = before.get(lang, {}).get(key), after.get(lang, {}).get(key)
            if old != new:
                changes.append(Change(key, lang, old, new))
    return changes


def sample(text: str) -> str:
    """The text with each placeholder shown as «name», for previews and length estimates."""
    try:
        names = placeholders(text)
    except BrokenPlaceholder:
        return text
    return text.format_map({name: f"«{name}»" for name in names})


@dataclass(frozen=True)
class Cost:
    """What one text costs on the channels with limits."""

    encoding: str  # GSM-7 or UCS-2
    sms_segments: int
    wechat_bytes: int

    @property
    def wechat_too_long(self) -> bool:
        return self.wechat_bytes > WECHAT_TEXT_BYTES


def cost(text: str) -> Cost:
    shown = sample(text)
    return Cost(encoding_of(shown), len(split_segments(shown)), len(shown.encode("utf-8")))


def changed_in(history: Sequence[tuple[int, Mapping[str, Any]]]) -> dict[tuple[str, str], int]:
    """For each (key, language), the number of the revision that last changed its text. `history` is
    (number, body) oldest first."""
    last: dict[tuple[str, str], int] = {}
    previous: Mapping[str, Any] = {}
    for number, body in history:
        for change in diff(previous, body):
            if change.lang is None:
                continue
            if change.after is None:  # removed: a missing translation, not a stale one
                last.pop((change.where, change.lang), None)
            else:
                last[(change.where, change.lang)] = number
        previous = body
    return last


def stale(changed: Mapping[tuple[str, str], int], keys: Iterable[str], source: str) -> set[tuple[str, str]]:
    """(key, language) pairs whose translation predates the last change of the source-language text."""
    out = set()
    for key in keys:
        source_at = changed.get((key, source))
        if source_at is None:
            continue
        for lang in LANGUAGES:
            if lang != source and (key, lang) in changed and changed[(key, lang)] < source_at:
                out.add((key, lang))
    return out


def touches_clinical(published: Mapping[str, Any] | None, body: Mapping[str, Any]) -> bool:
    return any(c.where.startswith(CLINICAL_PREFIXES) for c in diff(published or {}, body))


def merge_edits(body: Mapping[str, Any], edits: Mapping[tuple[str, str], str]) -> dict[str, dict[str, str]]:
    """`body` with the edited texts set; an empty edit removes that text (a missing translation)."""
    out = {lang: dict(body.get(lang, {})) for lang in LANGUAGES}
    for (key, lang), text in edits.items():
        if lang not in out:
            continue
        text = text.replace("\r\n", "\n")
        if text.strip():
            out[lang][key] = text
        else:
            out[lang].pop(key, None)
    return out


class MessageCatalogues:
    """The ContentKind of message catalogues."""

    name = KIND

    def validate(self, body: Mapping[str, Any]) -> list[Problem]:
        return validate(body)

    def diff(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
        return diff(before, after)

    def preview(self, body: Mapping[str, Any], lang: str) -> dict[str, str]:
        table = body.get(lang, {})
        fallback = body.get(FALLBACK_LANGUAGE, {})
        return {key: sample(table.get(key) or fallback.get(key, "")) for key in keys_of(body)}

    def needs_approver(self, published: Mapping[str, Any] | None, body: Mapping[str, Any]) -> bool:
        return touches_clinical(published, body)


register(MessageCatalogues())
