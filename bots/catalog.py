"""Patient-facing message catalogues: one text per key per language, with a fallback language."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bots.domain import FALLBACK_LANGUAGE, LANGUAGES


class CatalogError(ValueError):
    """A catalogue is missing a key in some language, or is malformed."""


@dataclass(frozen=True)
class Catalog:
    messages: Mapping[str, Mapping[str, str]]  # language -> key -> text
    defaults: Mapping[str, str] = field(default_factory=dict)  # e.g. {"hospital": ...}

    def text(self, lang: str, key: str, **params: object) -> str:
        table = self.messages.get(lang) or self.messages[FALLBACK_LANGUAGE]
        template = table.get(key) or self.messages[FALLBACK_LANGUAGE].get(key)
        if template is None:
            raise CatalogError(f"no message {key!r}")
        return template.format_map({**self.defaults, **params})

    def check_complete(self, keys: set[str]) -> None:
        """Every key present in every language: a missing translation is an authoring error."""
        for lang in LANGUAGES:
            missing = keys - set(self.messages.get(lang, {}))
            if missing:
                raise CatalogError(f"language {lang}: missing {', '.join(sorted(missing))}")

    @classmethod
    def merge(
        cls, tables: Mapping[str, Mapping[str, object]], defaults: Mapping[str, str] | None = None
    ) -> Catalog:
        checked: dict[str, dict[str, str]] = {}
        for lang, table in tables.items():
            if not isinstance(table, Mapping):
                raise CatalogError(f"language {lang}: expected a mapping of key to text")
            for key, value in table.items():
                if not isinstance(value, str):
                    raise CatalogError(f"language {lang}: message {key!r} is not text")
            checked[lang] = {str(k): str(v) for k, v in table.items()}
        return cls(checked, dict(defaults or {}))
