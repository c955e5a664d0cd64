"""YAML in and out through libyaml when PyYAML was built with it: the same safe subset as `yaml.safe_load`
and `yaml.safe_dump`, several times faster (a questionnaire file parses in a tenth of the time), which
matters for the content files read at every start, every publish of the authored files and every first
turn of a flow."""

from __future__ import annotations

from typing import IO, Any

import yaml

_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load(source: str | bytes | IO[str] | IO[bytes]) -> Any:
    """As `yaml.safe_load`."""
    return yaml.load(source, Loader=_LOADER)  # noqa: S506  (a safe loader, C or Python)


def dump(data: Any, **options: Any) -> str:
    """As `yaml.safe_dump` to a string."""
    text: str = yaml.dump(data, Dumper=_DUMPER, **options)
    return text
