"""PHI at rest: the raw rows hold no plaintext, search still finds patients, and key rotation rewrites
every encrypted value while values under the old key keep decrypting (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import os
from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app import cli
from backend.app.settings import Settings, get_settings
from backend.messaging.links import LinkKind, hide_link_refs, link_ref, read_short, read_token, render_links
from backend.messaging.media import seal_to_file
from backend.models import (
    CaseAttachment,
    CaseKind,
    CaseSource,
    Conversation,
    FeedbackCase,
    HandlingRecord,
    Message,
    Patient,
    PatientNameToken,
    QuestionnaireResponse,
    QuestionnaireVersion,
    RecordKind,
    Role,
    StaffUser,
    WorkJob,
    WorkState,
)
from backend.security import rotation
from backend.security.crypto import current_cipher
from backend.services import inbox
from backend.services import patients as patient_service
from backend.services.case_files import attachment_kind
from backend.work.runs import run_job, start
from bots.domain import Channel
from tests import factories
from tests.conftest import reset_caches

KEY_A = bytes(range(32))  # the suite's CARELOOP_DATA_KEY
KEY_B = os.urandom(32)


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def _world(db: Session) -> dict[str, int]:
    """One patient with something in every newly encrypted column."""
    dept = factories.department(db)
    staff = factories.staff(db, username="nurse1", role=Role.ADMIN)
    person = factories.patient(db, name="王小明", dept=dept, birth_date=date(1971, 3, 9))
    conv = factories.conversation(db, person, Channel.SMS)
    conv.state = {"slots": {"phone": "13812345678", "birth_date": "1971-03-09"}}
    msg = factories.reply(db, conv, "my wound is bleeding again")
    version = QuestionnaireVersion(questionnaire_id="q", version=1, definition={}, checksum="c")
    db.add(version)
    db.flush()
    db.add(
        QuestionnaireResponse(
            patient_id=person.id,
            version_id=version.id,
            questionnaire_id="q",
            channel=Channel.SMS,
            language="en",
            answers={"pain": "severe chest pain at night"},
        )
    )
    case = FeedbackCase(
        kind=CaseKind.COMPLAINT,
        category="service",
        text="the night nurse shouted at my mother",
        patient_id=person.id,
        source=CaseSource.CHAT,
        summary="apologised to the family",
    )
    db.add(case)
    db.flush()
    db.add(
        HandlingRecord(
            case_id=case.id, kind=RecordKind.FACTS, author_id=staff.id, text="called the ward sister"
        )
    )
    db.add(
        CaseAttachment(
            case_id=case.id,
            filename="wang-xiaoming-xray.png",
            mime_type="image/png",
            size=1,
            stored=seal_to_file(get_settings(), attachment_kind(case.id), b"x-ray"),
            uploaded_by_id=staff.id,
        )
    )
    handoff = factories.task(db, person=person, dept=dept, conv=conv)
    inbox.do_add_note(db, task=handoff, staff_id=staff.id, text="she told me about her HIV medication")
    enc = person.encounters[0] if person.encounters else None
    if enc is not None:
        enc.diagnoses = [{"system": "ICD-10", "code": "C34.1", "text": "malignant neoplasm of upper lobe"}]
    db.commit()
    return {"patient": person.id, "message": msg.id, "staff": staff.id, "case": case.id}


PLAINTEXTS = (
    "王小明",
    "1971-03-09",
    "13812345678",
    "wound is bleeding",
    "severe chest pain",
    "night nurse shouted",
    "apologised",
    "ward sister",
    "wang-xiaoming",
    "malignant neoplasm",
    "HIV medication",
)


def _dump(db: Session) -> str:
    """Every row of every table, as the database holds it."""
    out = []
    for table in sa.inspect(db.get_bind()).get_table_names():
        for row in db.execute(sa.select(sa.text("*")).select_from(sa.table(table))):
            out.append(" ".join(str(v) for v in row))
    return "\n".join(out)


def test_raw_rows_hold_no_plaintext_and_models_read_it_back(db: Session) -> None:
    ids = _world(db)
    dump = _dump(db)
    for secret in PLAINTEXTS:
        assert secret not in dump, secret
    raw = db.execute(sa.text("SELECT name, birth_date, birth_year FROM patients")).one()
    assert raw.name.startswith("v2.gcm.") and raw.birth_date.startswith("v2.gcm.")
    assert raw.birth_year == 1971  # the derivative audiences filter on stays plain
    db.expire_all()
    person = db.get_one(Patient, ids["patient"])
    assert (person.name, person.birth_date) == ("王小明", date(1971, 3, 9))
    assert db.get_one(Message, ids["message"]).text == "my wound is bleeding again"
    conv = db.scalars(sa.select(Conversation)).one()
    assert conv.state == {"slots": {"phone": "13812345678", "birth_date": "1971-03-09"}}
    assert person.encounters[0].diagnoses[0]["text"] == "malignant neoplasm of upper lobe"
    assert db.get_one(FeedbackCase, ids["case"]).text == "the night nurse shouted at my mother"


@pytest.mark.parametrize(
    ("name", "query", "found"),
    [
        ("王小明", "王小明", True),
        ("王小明", "小明", True),  # a character pair of the name
        ("王小明", "王", False),  # one character is not indexed (a surname alone says little)
        ("Nguyễn Văn An", "nguyen an", True),  # accents and case dropped, word order free
        ("Nguyễn Văn An", "Nguy", False),  # no prefix matches: tokens match whole
        ("Lena Andersen", "ANDERSEN", True),
        ("Lena Andersen", "Andersen Jr", False),  # every word must be in the name
    ],
)
def test_name_search_through_blind_indexed_tokens(db: Session, name: str, query: str, found: bool) -> None:
    admin = factories.staff(db, username="adm", role=Role.ADMIN)
    wanted = factories.patient(db, name=name)
    factories.patient(db, name="Someone Else")
    db.commit()
    assert [p.id for p in patient_service.search(db, admin, query)] == ([wanted.id] if found else [])
    # the name table holds digests only
    assert all(len(t) == 40 for t in db.scalars(sa.select(PatientNameToken.token)))


def test_search_results_are_in_name_order_and_a_rename_reindexes(db: Session) -> None:
    admin = factories.staff(db, username="adm", role=Role.ADMIN)
    b = factories.patient(db, name="Binh Tran")
    a = factories.patient(db, name="An Tran")
    db.commit()
    assert [p.id for p in patient_service.search(db, admin, "tran")] == [a.id, b.id]
    a.name = "An Le"
    db.commit()
    assert [p.id for p in patient_service.search(db, admin, "tran")] == [b.id]
    assert [p.id for p in patient_service.search(db, admin, "le")] == [a.id]


def _use_ring(monkeypatch: pytest.MonkeyPatch, *, current: bytes, previous: list[bytes], cipher: str) -> None:
    monkeypatch.setenv("CARELOOP_DATA_KEY", _b64(current))
    monkeypatch.setenv("CARELOOP_DATA_KEYS_PREVIOUS", ",".join(_b64(k) for k in previous))
    monkeypatch.setenv("CARELOOP_INDEX_KEY", _b64(KEY_A))  # the indexes' key never rotates
    monkeypatch.setenv("CARELOOP_DATA_CIPHER", cipher)
    reset_caches()


def _prefixes(db: Session) -> set[str]:
    found = set()
    for col in rotation.encrypted_columns():
        t = col.raw_table()
        for value in db.scalars(sa.select(t.c[col.column]).where(t.c[col.column].is_not(None))):
            if isinstance(value, str):
                found.add(value.partition(":")[0])
    return found


@pytest.mark.parametrize("algorithm", ["aes-gcm", "sm4"])
def test_rotation_rewrites_every_value_and_old_values_decrypt_meanwhile(
    db: Session, monkeypatch: pytest.MonkeyPatch, algorithm: str
) -> None:
    ids = _world(db)
    before_prefixes = _prefixes(db)
    assert len(before_prefixes) == 1
    _use_ring(monkeypatch, current=KEY_B, previous=[KEY_A], cipher=algorithm)
    new_prefix = current_cipher().current_prefix
    assert new_prefix.startswith("v2.gcm." if algorithm == "aes-gcm" else "v2.sm4.")

    # half-way: one column rewritten, everything else still under key A, and all of it reads
    columns = rotation.encrypted_columns()
    name_col = next(c for c in columns if c.name == "patients.name")
    rotation.rotate_chunk(db, current_cipher(), name_col, 0)
    db.commit()
    db.expire_all()
    assert _prefixes(db) == before_prefixes | {new_prefix}
    person = db.get_one(Patient, ids["patient"])
    assert (person.name, person.birth_date) == ("王小明", date(1971, 3, 9))
    assert db.get_one(Message, ids["message"]).text == "my wound is bleeding again"
    admin = db.get_one(StaffUser, ids["staff"])
    assert [p.id for p in patient_service.search(db, admin, "小明")] == [ids["patient"]]

    job_id = start(db, rotation.ROTATE_KIND, {}, None).id
    db.commit()
    run_job(job_id)
    db.expire_all()
    job = db.get_one(WorkJob, job_id)
    assert job.state is WorkState.DONE and job.counts["rewritten"] > 0
    assert _prefixes(db) == {new_prefix}
    census = rotation.key_census(db)
    assert set(census) == {new_prefix} and census[new_prefix] >= len(PLAINTEXTS) - 2

    # the old key is no longer needed: a ring of B alone reads everything
    _use_ring(monkeypatch, current=KEY_B, previous=[], cipher=algorithm)
    monkeypatch.delenv("CARELOOP_DATA_KEYS_PREVIOUS")
    reset_caches()
    db.expire_all()
    person = db.get_one(Patient, ids["patient"])
    assert (person.name, person.birth_date) == ("王小明", date(1971, 3, 9))
    assert db.get_one(FeedbackCase, ids["case"]).summary == "apologised to the family"
    assert db.scalars(sa.select(QuestionnaireResponse.answers)).one() == {
        "pain": "severe chest pain at night"
    }
    assert [p.id for p in patient_service.search(db, admin, "王小明")] == [ids["patient"]]
    for secret in PLAINTEXTS:
        assert secret not in _dump(db), secret


def test_rotation_job_records_progress_and_resumes(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    _world(db)
    for n in range(3):
        factories.patient(db, name=f"Extra Person{n}")
    db.commit()
    _use_ring(monkeypatch, current=KEY_B, previous=[KEY_A], cipher="aes-gcm")
    values = rotation.count_rows(db, rotation.encrypted_columns())
    job = start(db, rotation.ROTATE_KIND, {}, None)
    db.commit()
    run_job(job.id)
    db.expire_all()
    db.refresh(job)
    assert job.state.value == "done" and job.error_count == 0
    assert job.total == job.done and job.counts["rewritten"] == values
    assert job.counts["media_rewritten"] == 1  # the case's attachment
    # a second run finds everything current and rewrites nothing
    again = start(db, rotation.ROTATE_KIND, {}, None)
    db.commit()
    run_job(again.id)
    db.refresh(again)
    assert again.counts.get("rewritten", 0) == 0 and again.counts["current"] == values
    assert again.counts.get("media_rewritten", 0) == 0 and again.counts["media_current"] == 1


def test_a_value_under_a_key_outside_the_ring_is_reported_not_lost(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _world(db)
    raw_name = db.execute(
        sa.text("SELECT name FROM patients WHERE id = :i"), {"i": ids["patient"]}
    ).scalar_one()
    # key A forgotten: its values cannot be re-encrypted, and they stay as they were
    _use_ring(monkeypatch, current=KEY_B, previous=[os.urandom(32)], cipher="aes-gcm")
    job = start(db, rotation.ROTATE_KIND, {}, None)
    db.commit()
    run_job(job.id)
    db.refresh(job)
    assert job.counts["failed"] > 0 and job.errors[0]["at"].split("#")[0] in {
        c.name for c in rotation.encrypted_columns()
    }
    assert "bleeding" not in str(job.errors)
    after = db.execute(sa.text("SELECT name FROM patients WHERE id = :i"), {"i": ids["patient"]}).scalar_one()
    assert after == raw_name


def test_previous_keys_need_a_pinned_index_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARELOOP_DATA_KEY", _b64(KEY_B))
    monkeypatch.setenv("CARELOOP_DATA_KEYS_PREVIOUS", _b64(KEY_A))
    monkeypatch.delenv("CARELOOP_INDEX_KEY", raising=False)
    with pytest.raises(ValueError, match="CARELOOP_INDEX_KEY"):
        Settings()  # type: ignore[call-arg]
    monkeypatch.setenv("CARELOOP_DATA_KEYS_PREVIOUS", "not base64!")
    monkeypatch.setenv("CARELOOP_INDEX_KEY", _b64(KEY_A))
    with pytest.raises(ValueError, match="CARELOOP_DATA_KEYS_PREVIOUS"):
        Settings()  # type: ignore[call-arg]


def test_link_references_are_minted_per_channel_and_hidden_from_staff() -> None:
    settings = get_settings()
    stored = f"Your form: {link_ref(LinkKind.FORM, 42, days=7)} thanks"
    assert "/q/" not in stored and "/s/" not in stored
    sms = render_links(settings, stored, Channel.SMS)
    assert read_short(settings, sms.split()[2].rpartition("/s/")[2]) == (LinkKind.FORM, 42)
    web = render_links(settings, stored, Channel.WEBCHAT)
    assert read_token(settings, LinkKind.FORM, web.split()[2].rpartition("/q/")[2], 3600) == 42
    assert hide_link_refs(stored) == "Your form: 🔗 thanks"
    # text a patient typed that merely looks like a reference of an unknown kind is left as it is
    assert render_links(settings, "careloop-link:z.1.1", Channel.SMS) == "careloop-link:z.1.1"


def test_keys_rotate_and_status_commands(
    db: Session, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _world(db)
    _use_ring(monkeypatch, current=KEY_B, previous=[KEY_A], cipher="sm4")
    assert cli.main(["keys", "status"]) == 0
    before = capsys.readouterr().out
    assert "(current key)" not in before  # nothing is under the new key yet
    assert cli.main(["keys", "rotate"]) == 0  # no Redis: the job runs in the foreground
    assert "done:" in capsys.readouterr().out
    assert cli.main(["keys", "status"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith(current_cipher().current_prefix)
        and "(current key)" in lines[0]
    )


def test_a_table_keyed_by_name_rotates_too(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret entered on the channels page (keyed by the setting's name, not an id) is re-encrypted
    and still reads under the new key alone."""
    from backend.models.channel_config import ChannelSetting

    db.add(ChannelSetting(name="sms_gateway_token", value=None, secret="gateway-token-123"))
    db.add(ChannelSetting(name="a_first", value=None, secret="another"))
    db.commit()
    _use_ring(monkeypatch, current=KEY_B, previous=[KEY_A], cipher="aes-gcm")
    new_prefix = current_cipher().current_prefix
    job = start(db, rotation.ROTATE_KIND, {}, None)
    db.commit()
    run_job(job.id)
    db.refresh(job)
    assert job.state is WorkState.DONE and job.error_count == 0
    raw = db.execute(sa.text("SELECT secret FROM channel_settings ORDER BY name")).scalars().all()
    assert all(token.startswith(new_prefix + ":") for token in raw)
    _use_ring(monkeypatch, current=KEY_B, previous=[], cipher="aes-gcm")
    monkeypatch.delenv("CARELOOP_DATA_KEYS_PREVIOUS")
    reset_caches()
    db.expire_all()
    assert db.get_one(ChannelSetting, "sms_gateway_token").secret == "gateway-token-123"
