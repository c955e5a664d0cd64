"""The flow editor's text fields for a step's structured parts, both ways, pure: effects one per line
(`grant_consent purpose=care`, `handoff reason=asked_for_human`, `set_language lang=$lang`), slots to set one
per line (`feedback_kind = complaint`), and lists of names (slots to forget, a choice's intents) separated by
commas or spaces.

Nothing is checked here: what was typed goes into the body as typed, and the loader's validation names what
is wrong at its step (an unknown effect, a line that is not `name=value`), the one validation a save, a
submit and a publish all run. A line the form cannot split is kept in a shape the loader refuses, so an
editor's typing is never silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SPLIT = re.compile(r"[,\s]+")
_INT = re.compile(r"-?\d{1,18}")


def _scalar_text(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    return "" if value is None else str(value)


def _scalar(text: str) -> Any:
    """A typed value: whole numbers and true/false are what they say; anything else is text (YAML's "yes"
    is not read as true: a slot's value `yes` is a choice's id)."""
    if _INT.fullmatch(text):
        return int(text)
    return {"true": True, "false": False}.get(text, text)


def effects_text(raw: Any) -> str:
    lines = []
    for effect in raw if isinstance(raw, list) else []:
        if not isinstance(effect, Mapping):
            continue
        for name, args in effect.items():
            pairs = [f"{k}={_scalar_text(v)}" for k, v in args.items()] if isinstance(args, Mapping) else []
            lines.append(
                " ".join([str(name), *pairs])
                if args is None or isinstance(args, Mapping)
                else f"{name} {args}"
            )
    return "\n".join(lines)


def effects_from(text: str) -> list[dict[str, Any]]:
    """One effect a line: its name, then `key=value` arguments. A word without `=` keeps the arguments as
    the text typed, which the loader refuses by name ("this effect's arguments must be name=value")."""
    effects: list[dict[str, Any]] = []
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        name, rest = words[0], words[1:]
        if all("=" in w and not w.startswith("=") for w in rest):
            effects.append({name: {k: _scalar(v) for k, _, v in (w.partition("=") for w in rest)}})
        else:
            effects.append({name: " ".join(rest)})
    return effects


def set_text(raw: Any) -> str:
    if isinstance(raw, str):
        return raw  # typed earlier and refused by the loader: shown again as typed
    if not isinstance(raw, Mapping):
        return ""
    return "\n".join(f"{k} = {_scalar_text(v)}" for k, v in raw.items())


def set_from(text: str) -> dict[str, Any] | str:
    """`slot = value` a line; any other line makes the whole the text typed, which the loader refuses."""
    out: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        slot, eq, value = line.partition("=")
        if not eq or not slot.strip():
            return text.strip()
        out[slot.strip()] = _scalar(value.strip())
    return out


def words_text(raw: Any) -> str:
    return ", ".join(str(w) for w in raw) if isinstance(raw, list) else ""


def words_from(text: str) -> list[str]:
    return [w for w in _SPLIT.split(text) if w]
