"""Content as files: seeding a new site, file changes arriving as drafts, and bundles moved between sites
with `careloop content export/import`; a bad bundle imports nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session

from backend.app.cli import main
from backend.app.settings import get_settings
from backend.content import revisions as rv
from backend.content.bundle import MANIFEST, BundleError, import_bundle, seed_from_files
from backend.content.catalogue import DIALOGUES
from backend.content.texts import KIND
from backend.dialogue.content import catalog_tables
from backend.models import ContentRevision, RevisionState


def _copy_content(tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "content"
    shutil.copytree(get_settings().content_dir / "dialogues" / "messages", target / "dialogues" / "messages")
    return target


def test_files_seed_a_new_site_then_arrive_as_drafts_never_over_the_published_revision(
    db: Session, tmp_path: Path
) -> None:
    content = _copy_content(tmp_path)
    first = seed_from_files(db, content)
    assert (first.number, first.published) == (1, True)
    assert seed_from_files(db, content).number is None  # the same files again: nothing new

    en = content / "dialogues" / "messages" / "en.yaml"
    en.write_text(
        en.read_text(encoding="utf-8").replace("We look after you", "We care for you"), encoding="utf-8"
    )
    second = seed_from_files(db, content)
    assert (second.number, second.published) == (2, False)
    db.commit()
    item = rv.get_item(db, KIND, DIALOGUES)
    assert item.published_number == 1
    assert rv.get_revision(db, item, 2).state is RevisionState.DRAFT
    assert "We care for you" in rv.get_revision(db, item, 2).body["en"]["welcome.greeting"]


def test_export_then_import_on_another_site_carries_the_texts_and_their_history(
    db: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_from_files(db, get_settings().content_dir)
    db.commit()
    bundle = tmp_path / "bundle"
    assert main(["content", "export", str(bundle)]) == 0
    manifest = yaml.safe_load((bundle / MANIFEST).read_text(encoding="utf-8"))
    assert [(i["kind"], i["key"], i["number"]) for i in manifest["items"]] == [(KIND, DIALOGUES, 1)]
    exported = {
        lang: yaml.safe_load((bundle / f"{KIND}/{DIALOGUES}/{lang}.yaml").read_text("utf-8"))
        for lang in ("en", "vi", "zh-CN")
    }
    assert exported == catalog_tables(get_settings().content_dir)

    # the same bundle on this (seeded) site: already published, nothing added
    assert main(["content", "import", str(bundle)]) == 0
    assert "unchanged" in capsys.readouterr().out
    (bundle / f"{KIND}/{DIALOGUES}/vi.yaml").write_text('menu.prompt: "Chọn một mục"\n', encoding="utf-8")
    assert main(["content", "import", str(bundle)]) == 0
    assert "revision 2 (a draft)" in capsys.readouterr().out
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(ContentRevision)) == 2


@pytest.mark.parametrize(
    ("manifest", "vi_text", "message"),
    [
        ("not: a bundle\n", None, "not a CareLoop content bundle"),
        (None, 'menu.prompt: "Chọn {x"\n', "broken_placeholder"),
        (None, "- a list\n", "expected key: text lines"),
    ],
)
def test_a_bad_bundle_imports_nothing_and_says_why(
    db: Session, tmp_path: Path, manifest: str | None, vi_text: str | None, message: str
) -> None:
    seed_from_files(db, get_settings().content_dir)
    db.commit()
    bundle = tmp_path / "bundle"
    main(["content", "export", str(bundle)])
    if manifest is not None:
        (bundle / MANIFEST).write_text(manifest, encoding="utf-8")
    if vi_text is not None:
        (bundle / f"{KIND}/{DIALOGUES}/vi.yaml").write_text(vi_text, encoding="utf-8")
    with pytest.raises(BundleError, match=message):
        import_bundle(db, bundle)
    assert main(["content", "import", str(bundle)]) == 2
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(ContentRevision)) == 1


def test_bundles_carry_flows_to_a_new_site_and_a_dangling_step_imports_nothing(
    db: Session, tmp_path: Path
) -> None:
    from backend.content.bundle import seed_site
    from backend.content.flows import KIND as FLOWS
    from backend.models import ContentItem

    seed_site(db, get_settings().content_dir)
    db.commit()
    bundle = tmp_path / "bundle"
    assert main(["content", "export", str(bundle)]) == 0
    manifest = yaml.safe_load((bundle / MANIFEST).read_text(encoding="utf-8"))
    flows = {i["key"]: i for i in manifest["items"] if i["kind"] == FLOWS}
    assert set(flows) >= {"main_menu", "welcome", "booking"} and flows["welcome"]["number"] == 1
    shipped = yaml.safe_load((get_settings().content_dir / "dialogues" / "welcome.yaml").read_text("utf-8"))
    assert yaml.safe_load((bundle / flows["welcome"]["file"]).read_text("utf-8")) == shipped

    db.execute(sa.delete(ContentRevision))  # another site: nothing in its studio yet
    db.execute(sa.update(ContentItem).values(published_number=None))
    db.execute(sa.delete(ContentItem))
    db.commit()
    welcome = bundle / flows["welcome"]["file"]
    good = welcome.read_text("utf-8")
    welcome.write_text(good.replace("next: thanks_granted", "next: thanks_lost"), encoding="utf-8")
    with pytest.raises(BundleError, match="welcome: consent: unknown_step choice yes → thanks_lost"):
        import_bundle(db, bundle)
    db.rollback()
    assert db.scalar(sa.select(sa.func.count()).select_from(ContentRevision)) == 0

    welcome.write_text(good, encoding="utf-8")
    # a new flow the bundle brings, run by the bundle's main menu: not missing
    (bundle / "flows" / "visiting.yaml").write_text(
        yaml.safe_dump(
            {"id": "visiting", "version": 1, "start": "a", "steps": {"a": {"say": "menu.faq", "end": True}}}
        ),
        encoding="utf-8",
    )
    manifest["items"].append({**flows["welcome"], "key": "visiting", "file": "flows/visiting.yaml"})
    (bundle / MANIFEST).write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
    menu = bundle / flows["main_menu"]["file"]
    menu_body = yaml.safe_load(menu.read_text("utf-8"))
    menu_body["steps"]["menu"]["choices"].append(
        {"id": "visit", "label": "menu.faq", "flow": "visiting", "next": "menu"}
    )
    menu.write_text(yaml.safe_dump(menu_body, allow_unicode=True, sort_keys=False), encoding="utf-8")
    done = import_bundle(db, bundle)
    db.commit()
    assert {(d.kind, d.key, d.published) for d in done} >= {
        (KIND, DIALOGUES, True),
        (FLOWS, "welcome", True),
        (FLOWS, "visiting", True),
    }
    item = rv.get_item(db, FLOWS, "welcome")
    assert item.published_number == 1 and rv.get_revision(db, item, 1).body == shipped
