"""How a kind of authored content plugs into the revision service: its validator, differ and preview.

The lifecycle (backend/content/revisions.py) knows nothing of what a body means; each kind (message
catalogues today; flows, questionnaires, education, canned replies, voice prompts, template mappings and
follow-up plans as they move into the studio) registers one object implementing `ContentKind`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Problem:
    """Something wrong in a body: where (a key, a step), a code, and the offending detail."""

    where: str
    code: str  # e.g. broken_placeholder, placeholders_differ, not_text
    detail: str = ""
    blocking: bool = True  # False: shown to the editor (a missing translation), never stops a publish


@dataclass(frozen=True)
class Change:
    """One difference between two bodies, per language where the kind has languages."""

    where: str
    lang: str | None
    before: str | None  # None: absent on that side
    after: str | None


class ContentKind(Protocol):
    name: str

    def validate(self, body: Mapping[str, Any]) -> list[Problem]:
        """Every problem of `body`; a publish is refused while one of them is blocking."""
        ...

    def diff(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]: ...

    def preview(self, body: Mapping[str, Any], lang: str) -> dict[str, str]:
        """What a patient would read, per entry, in `lang`."""
        ...

    def needs_approver(self, published: Mapping[str, Any] | None, body: Mapping[str, Any]) -> bool:
        """Whether this change touches clinical content (which a second person with the grant approves)."""
        ...


# Inside the publishing transaction: (session, item key, published body, staff id or None). A kind whose
# published body must also live elsewhere (a questionnaire's frozen version, which plans and responses
# point at) writes it here, so a publish and its effect commit or roll back together.
Materialise = Callable[[Any, str, Mapping[str, Any], int | None], None]
# Problems only the database can tell, with the caller's session: a flow's text keys against the published
# catalogue. Run with the kind's own validation wherever a revision is submitted or published.
Check = Callable[[Any, Mapping[str, Any]], list[Problem]]

_KINDS: dict[str, ContentKind] = {}
# Called with the item's key after a revision of that kind is published (caches of the published body).
_ON_PUBLISH: dict[str, list[Callable[[str], None]]] = {}
_MATERIALISE: dict[str, Materialise] = {}
_NOT_RETIRABLE: set[str] = set()
_CHECK: dict[str, Check] = {}


def register(
    kind: ContentKind,
    on_publish: Callable[[str], None] | None = None,
    *,
    materialise: Materialise | None = None,
    retirable: bool = True,
    check: Check | None = None,
) -> None:
    """`retirable` False: withdrawing the published revision has no meaning for the kind (a published
    questionnaire version stays what its responses were answered on), so do_retire refuses."""
    _KINDS[kind.name] = kind
    if on_publish is not None:
        _ON_PUBLISH.setdefault(kind.name, []).append(on_publish)
    if materialise is not None:
        _MATERIALISE[kind.name] = materialise
    if not retirable:
        _NOT_RETIRABLE.add(kind.name)
    if check is not None:
        _CHECK[kind.name] = check


def problems(session: Any, kind: str, body: Mapping[str, Any]) -> list[Problem]:
    """The kind's validation with the session: its own, then what its check finds in the database."""
    hook = _CHECK.get(kind)
    return kind_of(kind).validate(body) if hook is None else hook(session, body)


def materialise(session: Any, kind: str, key: str, body: Mapping[str, Any], staff_id: int | None) -> None:
    hook = _MATERIALISE.get(kind)
    if hook is not None:
        hook(session, key, body, staff_id)


def retirable(kind: str) -> bool:
    return kind not in _NOT_RETIRABLE


def kind_of(name: str) -> ContentKind:
    """The registered kind; KeyError for one nobody registered."""
    return _KINDS[name]


def published(kind: str, key: str) -> None:
    for hook in _ON_PUBLISH.get(kind, []):
        hook(key)
