"""Content as files: seeding a new site from content/, and bundles that carry published content (the
YAML formats of content/ plus revision metadata) from a test site to production or into git.

Files never overwrite a published revision: on a seeded site what they hold arrives as a draft.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session

from backend.app import yaml_files
from backend.content import canned, course, education, provider_templates, revisions
from backend.content.catalogue import DIALOGUES
from backend.content.flows import KIND as FLOWS
from backend.content.kinds import Problem, kind_of
from backend.content.kinds import problems as kind_problems
from backend.content.texts import KIND as TEXTS
from backend.content.texts import validate
from backend.dialogue.content import catalog_tables
from backend.models import ContentItem, ContentRevision, RevisionState, StaffUser
from bots.domain import LANGUAGES

MANIFEST = "careloop-bundle.yaml"
FORMAT = 1
# Kinds whose body is one YAML file, in the format content/ holds it (the same loader reads it back): the
# file's place in a bundle
ONE_FILE = {
    FLOWS: "flows/{key}.yaml",
    canned.KIND: "canned_replies/{key}.yaml",
    education.KIND: "education/{key}.yaml",
    course.KIND: "education_courses/{key}.yaml",
    provider_templates.KIND: "provider_templates/{key}.yaml",
}
CLINICAL = frozenset({education.KIND})  # kinds whose items are clinical from their first revision


class BundleError(ValueError):
    """A bundle that cannot be read: nothing was imported."""


@dataclass(frozen=True)
class Imported:
    kind: str
    key: str
    number: int | None  # None: the files hold what is already published or drafted
    published: bool  # True: a new site's first revision


def receive(
    session: Session,
    kind: str,
    key: str,
    body: Mapping[str, Any],
    *,
    source: str,
    user: StaffUser | None = None,
    changelog: str = "",
) -> Imported:
    """Texts from files or a bundle: the first published revision of a new item, else a draft (unless the
    same body is already published or waiting)."""
    item = revisions.get_item(session, kind, key, create=True, clinical=kind in CLINICAL)
    if not session.scalar(sa.select(sa.func.count()).where(ContentRevision.item_id == item.id)):
        revision = revisions.do_publish_initial(session, item, body, source=source)
        return Imported(kind, key, revision.number, True)
    alive = (RevisionState.DRAFT, RevisionState.IN_REVIEW, RevisionState.PUBLISHED)
    if any(r.state in alive and r.body == dict(body) for r in revisions.revisions(session, item)):
        return Imported(kind, key, None, False)
    revision = revisions.do_start_draft(session, item, user, body=body, source=source, changelog=changelog)
    return Imported(kind, key, revision.number, False)


def seed_from_files(session: Session, content_dir: Path) -> Imported:
    """The dialogue texts of content/: published on a new site, a draft on a seeded one."""
    body = catalog_tables(content_dir)
    if problems := [p for p in validate(body) if p.blocking]:
        raise BundleError("; ".join(f"{p.where}: {p.code} {p.detail}" for p in problems[:10]))
    return receive(session, TEXTS, DIALOGUES, body, source="files", changelog=f"from {content_dir}")


def _refusal(key: str, problems: list[Problem]) -> BundleError:
    blocking = [p for p in problems if p.blocking]
    return BundleError(f"{key}: " + "; ".join(f"{p.where}: {p.code} {p.detail}" for p in blocking[:10]))


def flow_files(content_dir: Path) -> dict[str, dict[str, Any]]:
    """The flows of content/dialogues/*.yaml by id (the file's name), each as the loader reads it."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((content_dir / "dialogues").glob("*.yaml")):
        try:
            body = yaml_files.load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise BundleError(f"{path.name}: {exc}") from None
        if not isinstance(body, dict):
            raise BundleError(f"{path.name}: not a flow")
        out[path.stem] = body
    return out


def seed_flows(session: Session, content_dir: Path) -> list[Imported]:
    """The flows of content/: each published on a new site (after the texts, whose keys it is checked
    against), a draft on a seeded one when the file differs. Nothing is stored when one is invalid."""
    bodies = flow_files(content_dir)
    for key, body in bodies.items():
        found = kind_problems(session, FLOWS, {**body, "id": key})
        if any(p.blocking for p in found):
            raise _refusal(key, found)
    return [
        receive(session, FLOWS, key, body, source="files", changelog=f"from {content_dir}")
        for key, body in bodies.items()
    ]


def _yaml_file(path: Path) -> dict[str, Any]:
    try:
        body = yaml_files.load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BundleError(f"{path.name}: {exc}") from None
    if not isinstance(body, dict):
        raise BundleError(f"{path.name}: expected a mapping")
    return body


def one_file_seeds(content_dir: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, key, body) of the canned replies, education articles and template mappings of content/."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    mappings = content_dir / "channels" / "templates.yaml"
    if mappings.is_file():
        found.append((provider_templates.KIND, provider_templates.KEY, _yaml_file(mappings)))
    replies = content_dir / "canned_replies.yaml"
    if replies.is_file():
        found.append((canned.KIND, canned.KEY, _yaml_file(replies)))
    for path in sorted((content_dir / "education").glob("*.yaml")):
        found.append((education.KIND, path.stem, _yaml_file(path)))
    return found


def seed_one_file_kinds(session: Session, content_dir: Path) -> list[Imported]:
    """The canned replies, education articles and template mappings of content/: published on a new site,
    a draft when the file differs from what is published or waiting, never over a published revision.
    Every file is checked first: one invalid and nothing is stored."""
    seeds = one_file_seeds(content_dir)
    for kind, key, body in seeds:
        found = kind_problems(session, kind, body)
        if kind == education.KIND and body.get("id") != key:
            found.append(Problem("id", "bad_id", f"{body.get('id')} is not the file's name"))
        if any(p.blocking for p in found):
            raise _refusal(key, found)
    return [
        receive(session, kind, key, body, source="files", changelog=f"from {content_dir}")
        for kind, key, body in seeds
    ]


def seed_site(session: Session, content_dir: Path) -> list[Imported]:
    """Everything the files seed: the dialogue texts, then the flows that speak them, the canned replies
    and the education articles."""
    return [
        seed_from_files(session, content_dir),
        *seed_flows(session, content_dir),
        *seed_one_file_kinds(session, content_dir),
    ]


def export_bundle(session: Session, target: Path) -> list[tuple[str, str, int]]:
    """Every item's published revision into `target`: texts as dialogues/messages/<lang>.yaml, and a
    manifest with each revision's number, author, approver, changelog and times."""
    target.mkdir(parents=True, exist_ok=True)
    entries, written = [], []
    names = {row.id: row.username for row in session.execute(sa.select(StaffUser.id, StaffUser.username))}
    items = session.scalars(sa.select(ContentItem).order_by(ContentItem.kind, ContentItem.key))
    for item in items:
        revision = revisions.published_revision(session, item)
        if revision is None or item.kind not in (TEXTS, *ONE_FILE):
            continue
        files: dict[str, str] = {}
        name = ONE_FILE.get(item.kind, "").format(key=item.key)
        if name:
            # the file as content/ holds it: the same loader reads it back
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            text = yaml_files.dump(dict(revision.body), allow_unicode=True, sort_keys=False, width=1000)
            (target / name).write_text(text, encoding="utf-8")
        else:
            folder = target / item.kind / item.key
            folder.mkdir(parents=True, exist_ok=True)
            for lang in LANGUAGES:
                text = yaml_files.dump(
                    revision.body.get(lang, {}), allow_unicode=True, sort_keys=True, width=1000
                )
                (folder / f"{lang}.yaml").write_text(text, encoding="utf-8")
            files = {lang: f"{item.kind}/{item.key}/{lang}.yaml" for lang in LANGUAGES}
        entries.append(
            {
                "kind": item.kind,
                "key": item.key,
                "clinical": item.clinical,
                "number": revision.number,
                "changelog": revision.changelog,
                "author": names.get(revision.author_id or 0),
                "approver": names.get(revision.approver_id or 0),
                "published_at": revision.published_at.isoformat() if revision.published_at else None,
                **({"file": name} if name else {"files": files}),
            }
        )
        written.append((item.kind, item.key, revision.number))
    manifest = {"format": FORMAT, "items": entries}
    (target / MANIFEST).write_text(
        yaml_files.dump(manifest, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return written


def read_bundle(source: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(manifest entry, body) per item; BundleError for anything unreadable, before anything is stored."""
    try:
        manifest = yaml_files.load((source / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BundleError(f"{source / MANIFEST}: {exc}") from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or not isinstance(manifest.get("items"), list)
    ):
        raise BundleError(f"{source / MANIFEST}: not a CareLoop content bundle (format {FORMAT})")
    out = []
    for entry in manifest["items"]:
        if isinstance(entry, dict) and entry.get("kind") in ONE_FILE and isinstance(entry.get("file"), str):
            read = _read_file(source, entry)
            if entry["kind"] != FLOWS:  # a flow is checked with the bundle's texts, in import_bundle
                # the kind's own rules; what depends on the database (a course's articles published) is
                # checked when the draft is submitted
                found = kind_of(str(entry["kind"])).validate(read)
                if any(p.blocking for p in found):
                    raise _refusal(str(entry["key"]), found)
            out.append((entry, read))
            continue
        if (
            not isinstance(entry, dict)
            or entry.get("kind") != TEXTS
            or not isinstance(entry.get("files"), dict)
        ):
            raise BundleError(f"{MANIFEST}: an item this version cannot read: {entry!r:.200}")
        body: dict[str, Any] = {}
        for lang, name in entry["files"].items():
            path = (source / str(name)).resolve()
            if lang not in LANGUAGES or not path.is_relative_to(source.resolve()):
                raise BundleError(f"{MANIFEST}: bad file entry {lang}: {name}")
            try:
                table = yaml_files.load(path.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise BundleError(f"{name}: {exc}") from None
            if not isinstance(table, dict):
                raise BundleError(f"{name}: expected key: text lines")
            body[lang] = {str(k): v for k, v in table.items()}
        if problems := [p for p in validate(body) if p.blocking]:
            raise BundleError(
                f"{entry['key']}: " + "; ".join(f"{p.where}: {p.code} {p.detail}" for p in problems[:10])
            )
        out.append((entry, body))
    return out


def _read_file(source: Path, entry: dict[str, Any]) -> dict[str, Any]:
    name = str(entry["file"])
    path = (source / name).resolve()
    if not path.is_relative_to(source.resolve()) or not isinstance(entry.get("key"), str):
        raise BundleError(f"{MANIFEST}: bad {entry.get('kind')} entry {name}")
    try:
        body = yaml_files.load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BundleError(f"{name}: {exc}") from None
    if not isinstance(body, dict):
        raise BundleError(f"{name}: not a {entry.get('kind')} file")
    return body


def _sub_flows_first(read: list[tuple[dict[str, Any], Any]]) -> list[tuple[dict[str, Any], Any]]:
    """The bundle's items with each flow after the flows of the bundle its choices run (publishing one
    checks that the flows it runs exist); a cycle keeps the order it was found in."""
    flows = {str(e["key"]): (e, b) for e, b in read if e["kind"] == FLOWS}
    ordered: list[tuple[dict[str, Any], Any]] = [(e, b) for e, b in read if e["kind"] != FLOWS]
    placed: set[str] = set()

    def place(key: str, seen: frozenset[str]) -> None:
        if key in placed or key in seen:
            return
        body = flows[key][1]
        steps = body.get("steps") if isinstance(body, dict) else None
        for step in steps.values() if isinstance(steps, dict) else []:
            for choice in step.get("choices") or [] if isinstance(step, dict) else []:
                runs = choice.get("flow") if isinstance(choice, dict) else None
                if isinstance(runs, str) and runs in flows:
                    place(runs, seen | {key})
        placed.add(key)
        ordered.append(flows[key])

    for key in flows:
        place(key, frozenset())
    return ordered


def import_bundle(session: Session, source: Path) -> list[Imported]:
    """A bundle's items as drafts (or, on a new site, as its first published revisions). Every item is
    checked first, texts before the flows that speak them; one invalid item and nothing is imported."""
    read = read_bundle(source)
    read.sort(key=lambda pair: pair[0]["kind"] == FLOWS)  # a flow's text keys may come with the bundle
    read = _sub_flows_first(read)  # a menu is published after the flows of the bundle it runs
    texts = next((body for entry, body in read if entry["kind"] == TEXTS), None)
    flows = {str(entry["key"]) for entry, _body in read if entry["kind"] == FLOWS}
    for entry, body in read:
        if entry["kind"] != FLOWS:
            continue
        found = kind_problems(session, FLOWS, {**body, "id": entry["key"]})
        # a flow the bundle brings is not missing for a menu of the bundle that runs it
        found = [p for p in found if not (p.code == "unknown_flow" and p.detail in flows)]
        if texts is not None:  # keys the bundle's own texts bring are not missing
            brought = {k for table in texts.values() for k in table}
            found = [p for p in found if not (p.code == "missing_text" and p.detail in brought)]
        if any(p.blocking for p in found):
            raise _refusal(str(entry["key"]), found)
    done = []
    for entry, body in read:
        note = f"bundle {source.name}: revision {entry.get('number')} by {entry.get('author') or '-'}"
        done.append(
            receive(session, str(entry["kind"]), str(entry["key"]), body, source="import", changelog=note)
        )
    return done
