"""Loading authored content (flows, every version of each, and message catalogues) from the content dir.

Flows: content/dialogues/<id>.yaml is the current version; when a new version is authored the old file
moves to content/dialogues/versions/<id>.v<N>.yaml, so conversations started on it finish on it.
Messages: content/dialogues/messages/<lang>.yaml plus messages/<area>/<lang>.yaml (one area per set of
flows, so parallel authors do not edit one file); a key defined twice is an authoring error.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from backend.app import yaml_files
from bots.catalog import Catalog, CatalogError
from bots.domain import LANGUAGES
from bots.flows import Flow, FlowError, parse_flow


@lru_cache(maxsize=8)
def load_catalog(content_dir: Path, hospital_name: str) -> Catalog:
    return Catalog.merge(catalog_tables(content_dir), defaults={"hospital": hospital_name})


def catalog_tables(content_dir: Path) -> dict[str, dict[str, object]]:
    """The message files merged per language: {language: {key: text}}."""
    tables: dict[str, dict[str, object]] = {}
    base = content_dir / "dialogues" / "messages"
    for lang in LANGUAGES:
        table: dict[str, object] = {}
        for path in [base / f"{lang}.yaml", *sorted(base.glob(f"*/{lang}.yaml"))]:
            part = yaml_files.load(path.read_text(encoding="utf-8")) or {}
            twice = set(part) & set(table)
            if twice:
                raise CatalogError(f"{path}: {', '.join(sorted(twice))} already defined")
            table.update(part)
        tables[lang] = table
    return tables


@lru_cache(maxsize=64)
def load_flow(content_dir: Path, flow_id: str, version: int | None = None) -> Flow:
    """The flow at `version` (None: the current file). Raises KeyError for an unknown flow or version."""
    if "/" in flow_id or "\\" in flow_id or flow_id.startswith("."):
        raise KeyError(flow_id)
    current_path = content_dir / "dialogues" / f"{flow_id}.yaml"
    if not current_path.exists():
        raise KeyError(flow_id)
    current = parse_flow(yaml_files.load(current_path.read_text(encoding="utf-8")))
    if version is None or version == current.version:
        return current
    old = content_dir / "dialogues" / "versions" / f"{flow_id}.v{version}.yaml"
    if not old.exists():
        raise KeyError(f"{flow_id} v{version}")
    flow = parse_flow(yaml_files.load(old.read_text(encoding="utf-8")))
    if (flow.id, flow.version) != (flow_id, version):
        raise FlowError(f"{old}: holds {flow.id} v{flow.version}")
    return flow


class ContentFlows:
    """bots.ports.FlowLibrary over the content directory."""

    def __init__(self, content_dir: Path) -> None:
        self.content_dir = content_dir

    def get(self, flow_id: str, version: int | None = None) -> Flow:
        return load_flow(self.content_dir, flow_id, version)

    def ids(self) -> list[str]:
        return sorted(p.stem for p in (self.content_dir / "dialogues").glob("*.yaml"))


@lru_cache(maxsize=8)
def _yaml_table(path: Path) -> dict[str, str]:
    data = yaml_files.load(path.read_text(encoding="utf-8")) or {}
    return {str(k): str(v) for k, v in data.items()}


def load_voice_phrases(lang: str, content_dir: Path | None = None) -> dict[str, str]:
    """Phrases the voice form of a question is built from ("for yes, press 1")."""
    from backend.app.settings import get_settings

    base = content_dir or get_settings().content_dir
    return _yaml_table(base / "questionnaires" / "voice" / f"{lang}.yaml")


def load_answer_messages(content_dir: Path) -> dict[str, dict[str, str]]:
    """Re-prompts for answers the questionnaire engine could not accept, per language."""
    return {
        lang: _yaml_table(content_dir / "questionnaires" / "messages" / f"{lang}.yaml") for lang in LANGUAGES
    }
