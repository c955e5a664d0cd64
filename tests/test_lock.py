"""The lock files cover what they are made from: a dependency added to pyproject.toml (or to Rasa's
requirements.txt) without `make lock` would otherwise be missing from every venv built from the lock."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _locked(lock: Path) -> dict[str, str]:
    """Name -> version of every pinned line, each with at least one hash."""
    text = lock.read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", text, re.M))
    assert text.count("--hash=sha256:") >= len(pins), f"{lock.name}: a pin without a hash"
    return {canonicalize_name(name): version for name, version in pins.items()}


def _wanted(lines: list[str]) -> list[Requirement]:
    found = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            found.append(Requirement(line))
    return found


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        (
            "requirements.lock",
            lambda: [
                *(project := tomllib.loads((ROOT / "pyproject.toml").read_text())["project"])["dependencies"],
                *project["optional-dependencies"]["dev"],
            ],
        ),
        ("nlu/rasa/requirements.lock", lambda: (ROOT / "nlu/rasa/requirements.txt").read_text().splitlines()),
    ],
)
def test_every_requirement_is_locked_at_a_version_it_allows(lock: str, requirements: object) -> None:
    locked = _locked(ROOT / lock)
    assert callable(requirements)
    for requirement in _wanted(requirements()):
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is not in {lock}: run `make lock`"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"{lock} pins {requirement.name}=={locked[name]}, outside {requirement}: run `make lock`"
        )
