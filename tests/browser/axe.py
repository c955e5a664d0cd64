"""axe-core in Chromium: inject axe.min.js (from npm, `make axe`) into a page and fail on serious findings."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

DEFAULT_AXE = Path.home() / ".cache" / "careloop" / "npm-axe-4" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


@lru_cache(maxsize=1)
def axe_source() -> str:
    path = Path(os.environ.get("CARELOOP_AXE_JS") or DEFAULT_AXE)
    if not path.exists():
        pytest.fail(f"axe-core not found at {path}: run `make axe` (make test does)")
    return path.read_text(encoding="utf-8")


def violations(page: Any, impacts: tuple[str, ...] = BLOCKING) -> list[dict[str, Any]]:
    """axe's violations of the given impacts on the page as it is now (WCAG 2.x A/AA and best practice)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # evaluated over the DevTools protocol, which the pages' Content-Security-Policy does not block
        page.evaluate(f"() => {{ {axe_source()}\n}}")
    result: dict[str, Any] = page.evaluate("async () => await window.axe.run(document)")
    found: list[dict[str, Any]] = result["violations"]
    return [v for v in found if v.get("impact") in impacts]


def describe(found: list[dict[str, Any]]) -> str:
    lines = []
    for v in found:
        targets = [" ".join(map(str, node["target"])) for node in v["nodes"][:5]]
        lines.append(f"{v['impact']}: {v['id']} ({v['help']}) at {targets}")
    return "\n".join(lines)


def assert_no_serious_violations(page: Any) -> None:
    """No serious or critical axe-core violation on the page."""
    found = violations(page)
    assert found == [], "axe-core found:\n" + describe(found)
