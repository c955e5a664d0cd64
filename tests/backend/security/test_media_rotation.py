"""Key rotation re-seals the files under `media_dir` too (a message's image, a case's attachment, a call's
kept answer audio), in place and resumably, so that once `keys status` shows an old key sealing nothing it
can leave the ring without a single file becoming unreadable. A file no key opens is reported and left
as it was; a row naming a file that is gone is counted, not fatal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.messaging.media import load_blob, store_blob
from backend.models import CaseAttachment, CaseKind, CaseSource, FeedbackCase, Role, VoiceCall, WorkJob
from backend.security import media_keys, rotation
from backend.security.crypto import current_cipher
from backend.services.case_files import attachment_kind
from backend.voice.call_media import keep_answer_audio, load_answer_audio
from backend.work.runs import run_job, start
from bots.domain import Channel
from tests import factories
from tests.backend.security.test_phi_at_rest import KEY_A, KEY_B, _use_ring
from voice_ai.call_events import CallState
from voice_ai.gateway import GatewayName

PHOTO = b"\x89PNG a patient's wound"
XRAY = b"\x89PNG an x-ray attached to a complaint"
AUDIO = b"\x00\x01" * 400


def _files(db: Session) -> dict[str, int | str]:
    settings = get_settings()
    dept = factories.department(db)
    staff = factories.staff(db, username="officer", role=Role.ADMIN)
    person = factories.patient(db, name="Nguyen Thi Lan", dept=dept)
    message = factories.reply(db, factories.conversation(db, person, Channel.WHATSAPP), "see the photo")
    photo = store_blob(settings, message.id, PHOTO)
    message.media = [{"media_id": "m1", "stored": photo, "mime_type": "image/png"}, {"media_id": "m2"}]
    case = FeedbackCase(
        kind=CaseKind.COMPLAINT, category="service", text="x", patient_id=person.id, source=CaseSource.CHAT
    )
    db.add(case)
    db.flush()
    xray = f"{os.urandom(16).hex()}.bin"
    (settings.media_dir / xray).write_bytes(current_cipher().seal(attachment_kind(case.id), XRAY))
    db.add(
        CaseAttachment(
            case_id=case.id,
            filename="xray.png",
            mime_type="image/png",
            size=len(XRAY),
            stored=xray,
            uploaded_by_id=staff.id,
        )
    )
    call = VoiceCall(
        patient_id=person.id, gateway=GatewayName.SIMULATED, language="vi", state=CallState.COMPLETED
    )
    db.add(call)
    db.flush()
    audio = keep_answer_audio(settings, call.id, AUDIO)
    call.transcripts = [{"item": "other", "heard": "...", "audio": audio}, {"item": "pain", "heard": "4"}]
    db.add(VoiceCall(patient_id=person.id, gateway=GatewayName.SIMULATED, language="vi"))  # no audio kept
    db.commit()
    return {
        "message": message.id,
        "photo": photo,
        "case": case.id,
        "xray": xray,
        "call": call.id,
        "audio": audio,
    }


def _file_keys(db: Session) -> dict[str, int]:
    return {k: v for k, v in rotation.key_census(db).items() if k.startswith("v") or k.startswith("media")}


@pytest.mark.parametrize("algorithm", ["aes-gcm", "sm4"])
def test_rotation_reseals_every_file_and_the_old_key_can_then_go(
    db: Session, monkeypatch: pytest.MonkeyPatch, algorithm: str
) -> None:
    _use_ring(monkeypatch, current=KEY_A, previous=[], cipher=algorithm)
    ids = _files(db)
    folder = get_settings().media_dir
    old_prefix = current_cipher().current_prefix
    before = {name: (folder / str(ids[name])).read_bytes() for name in ("photo", "xray", "audio")}
    _use_ring(monkeypatch, current=KEY_B, previous=[KEY_A], cipher=algorithm)
    new_prefix = current_cipher().current_prefix
    # before the job: every file still under the old key, and `keys status` says so
    cipher = current_cipher()
    assert {
        cipher.blob_key(k, before[n])
        for n, k in (
            ("photo", f"media:{ids['message']}"),
            ("xray", attachment_kind(int(ids["case"]))),
            ("audio", f"voice:{ids['call']}"),
        )
    } == {old_prefix}

    job = start(db, rotation.ROTATE_KIND, {}, None)
    db.commit()
    run_job(job.id)
    db.expire_all()
    done = db.get_one(WorkJob, job.id)
    assert done.state.value == "done" and done.error_count == 0
    assert done.counts["media_rewritten"] == 3 and done.total == done.done
    for name in ("photo", "xray", "audio"):
        assert (folder / str(ids[name])).read_bytes() != before[name]  # same name, new seal
    assert not list(folder.glob(".*.tmp"))  # no temporary file left behind
    census = rotation.key_census(db)
    assert old_prefix not in census and census[new_prefix] > 0

    # the old key leaves the ring: every file still opens
    _use_ring(monkeypatch, current=KEY_B, previous=[], cipher=algorithm)
    settings = get_settings()
    assert load_blob(settings, int(ids["message"]), str(ids["photo"])) == PHOTO
    assert load_answer_audio(settings, int(ids["call"]), str(ids["audio"])) == AUDIO
    assert (
        current_cipher().unseal(attachment_kind(int(ids["case"])), (folder / str(ids["xray"])).read_bytes())
        == XRAY
    )

    # a second run rewrites nothing
    again = start(db, rotation.ROTATE_KIND, {}, None)
    db.commit()
    run_job(again.id)
    db.refresh(again)
    assert again.counts.get("media_rewritten", 0) == 0 and again.counts["media_current"] == 3


def test_a_file_no_key_opens_is_reported_and_left_and_a_missing_file_is_counted(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_ring(monkeypatch, current=KEY_A, previous=[], cipher="aes-gcm")
    ids = _files(db)
    folder = get_settings().media_dir
    (folder / str(ids["audio"])).unlink()  # removed by hand, the row still names it
    foreign = os.urandom(32)
    _use_ring(monkeypatch, current=foreign, previous=[], cipher="aes-gcm")
    (folder / str(ids["xray"])).write_bytes(current_cipher().seal(attachment_kind(int(ids["case"])), XRAY))
    sealed_foreign = (folder / str(ids["xray"])).read_bytes()
    _use_ring(monkeypatch, current=KEY_B, previous=[KEY_A], cipher="aes-gcm")
    job = start(db, rotation.ROTATE_KIND, {}, None)
    db.commit()
    run_job(job.id)
    db.refresh(job)
    assert job.counts["media_rewritten"] == 1  # the photo
    assert job.counts["media_failed"] == 1 and job.counts["media_missing"] == 1
    assert [e["at"] for e in job.errors] == [f"case_attachments#{db.scalar(sa.select(CaseAttachment.id))}"]
    assert (folder / str(ids["xray"])).read_bytes() == sealed_foreign  # untouched, for someone to look at
    census = rotation.key_census(db)
    assert census["unreadable"] == 1 and census["media files missing"] == 1


def test_the_file_listing_walks_every_source_in_chunks(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(media_keys, "CHUNK", 2)
    _use_ring(monkeypatch, current=KEY_A, previous=[], cipher="aes-gcm")
    ids = _files(db)
    conv = factories.conversation(db, factories.patient(db), Channel.SMS)
    settings = get_settings()
    extra = []
    for n in range(3):
        message = factories.reply(db, conv, f"photo {n}")
        message.media = [{"stored": store_blob(settings, message.id, b"jpeg %d" % n)}]
        extra.append(message.id)
    db.commit()
    seen: list[tuple[str, int]] = []
    for source in media_keys.SOURCES:
        after = 0
        while True:
            files, after, rows = media_keys.files_after(db, source, after)
            seen += [(f.source, f.row_id) for f in files]
            if rows < media_keys.CHUNK:
                break
    assert sorted(seen) == sorted(
        [("messages", int(ids["message"]))]
        + [("messages", m) for m in extra]
        + [
            ("case_attachments", db.scalar(sa.select(CaseAttachment.id)) or 0),
            ("voice_calls", int(ids["call"])),
        ]
    )
    assert (
        media_keys.reseal_file(
            Path(settings.media_dir),
            current_cipher(),
            media_keys.MediaFile("messages", 1, "../etc/passwd", "media:1"),
        )
        == "missing"
    )
