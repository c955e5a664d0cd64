"""Loading authored content (flows and patient message catalogues) from the content directory."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from bots.catalog import Catalog
from bots.domain import LANGUAGES
from bots.flows import Flow, parse_flow


@lru_cache(maxsize=8)
def load_catalog(content_dir: Path, hospital_name: str) -> Catalog:
    tables = {}
    for lang in LANGUAGES:
        path = content_dir / "dialogues" / "messages" / f"{lang}.yaml"
        tables[lang] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return Catalog.merge(tables, defaults={"hospital": hospital_name})


@lru_cache(maxsize=32)
def load_flow(content_dir: Path, flow_id: str) -> Flow:
    path = content_dir / "dialogues" / f"{flow_id}.yaml"
    return parse_flow(yaml.safe_load(path.read_text(encoding="utf-8")))


@lru_cache(maxsize=8)
def _yaml_table(path: Path) -> dict[str, str]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(k): str(v) for k, v in data.items()}


def load_voice_phrases(lang: str, content_dir: Path | None = None) -> dict[str, str]:
    """Phrases the voice form of a question is built from ("for yes, press 1")."""
    from backend.settings import get_settings

    base = content_dir or get_settings().content_dir
    return _yaml_table(base / "questionnaires" / "voice" / f"{lang}.yaml")


def load_answer_messages(content_dir: Path) -> dict[str, dict[str, str]]:
    """Re-prompts for answers the questionnaire engine could not accept, per language."""
    return {
        lang: _yaml_table(content_dir / "questionnaires" / "messages" / f"{lang}.yaml") for lang in LANGUAGES
    }
