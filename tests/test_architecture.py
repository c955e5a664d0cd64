"""Dependencies point one way (docs/architecture.md): pure cores import no web, database or vendor code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IO_LIBRARIES = {
    "sqlalchemy",
    "fastapi",
    "starlette",
    "redis",
    "rq",
    "httpx",
    "twilio",
    "wechatpy",
    "psycopg",
    "uvicorn",
    "requests",
    "alembic",
}
FORBIDDEN = {
    # questionnaires may use nlu's pure lexical parsers (numbers, yes/no, dates): one piece of code per idea
    "questionnaires": {"bots", "channels", "voice_ai", "backend"} | IO_LIBRARIES,
    "nlu": {"bots", "channels", "voice_ai", "backend", "questionnaires"} | (IO_LIBRARIES - {"httpx"}),
    "bots": {"channels", "voice_ai", "backend"} | IO_LIBRARIES,
    "channels": {"backend", "voice_ai"},
    "voice_ai": {"backend", "channels"},
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_the_dependency_direction(package: str) -> None:
    modules = sorted((ROOT / package).rglob("*.py"))
    assert modules, f"{package} has no modules"
    violations = {
        str(m.relative_to(ROOT)): sorted(imports_of(m) & FORBIDDEN[package])
        for m in modules
        if imports_of(m) & FORBIDDEN[package]
    }
    assert violations == {}


def test_every_module_says_what_it_is_for() -> None:
    missing = [
        str(path.relative_to(ROOT))
        for package in (*FORBIDDEN, "backend")
        for path in (ROOT / package).rglob("*.py")
        if "migrations/versions" not in str(path)
        and not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert missing == []


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from backend.models import Patient\nimport sqlalchemy as sa\n")
    assert imports_of(module) & FORBIDDEN["bots"] == {"backend", "sqlalchemy"}


def test_backend_root_holds_only_named_parts() -> None:
    """Modules live in the folder of the part they serve (app, dialogue, services, web, ...), not loose
    at the root of backend/ where composition and domain code would mix again."""
    loose = sorted(p.name for p in (ROOT / "backend").glob("*.py") if p.name != "__init__.py")
    assert loose == []
