"""Messages as real hospital engines write them (corpus/*.hl7), each applied or answered with a precise
AE/AR: Z-segments, repeated identifiers and names, escapes, custom separators, v2.2 to v2.9 headers,
character sets, batches, long notes and unknown values. Written from the HL7 v2 standard's chapter 2
(control) and 3 (ADT) definitions and the forms integration engines (Mirth, Rhapsody) document."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_factory
from backend.app.settings import get_settings
from backend.integration.mllp import Frame
from backend.integration.receiver import Receiver, ReceiverConfig
from backend.models import Encounter, Hl7Message, Hl7Status, Patient, PatientIdentifier
from tests.backend.integration.hl7_peer import Ack, MllpPeer
from tests.conftest import reset_caches

CORPUS = Path(__file__).parent / "corpus"


@dataclass(frozen=True)
class Case:
    file: str
    ack: str  # MSA-1
    status: Hl7Status
    error: str = ""  # ERR-2 (e.g. "PV1^1^19") for AE/AR
    note: str = ""  # a phrase the MSA-3 / ERR text must hold
    patients: dict[str, str] = field(default_factory=dict)  # MRN -> name, exactly the patients afterwards
    phone: str | None = None  # the one patient's phone, when checked
    identifiers: int | None = None  # how many identifiers the one patient has
    visits: int = 0  # encounters afterwards
    times: tuple[datetime | None, datetime | None] | None = None  # the one visit's (start, end), UTC


CASES = [
    Case("z_segments_anywhere.hl7", "AA", Hl7Status.APPLIED, patients={"Z0001": "Fang Wang"},
         phone="+8613911112222", visits=1),
    Case("pid3_many_identifier_types.hl7", "AA", Hl7Status.APPLIED, patients={"0012345": "李娜"},
         identifiers=4, visits=1),
    Case("pid3_cccd_first_no_mr.hl7", "AA", Hl7Status.APPLIED, patients={"BN-5566": "Nguyễn Văn An"},
         phone="+84912345678", identifiers=2),
    Case("xpn_chinese_and_pinyin.hl7", "AA", Hl7Status.APPLIED, patients={"X0001": "张三"}),
    Case("xpn_alias_before_legal.hl7", "AA", Hl7Status.APPLIED, patients={"X0002": "Robert J Smith"}),
    Case("xpn_vietnamese_ascii_by_language.hl7", "AA", Hl7Status.APPLIED,
         patients={"X0003": "Tran Thi Binh"}),
    Case("escape_sequences.hl7", "AA", Hl7Status.APPLIED, patients={"ESC&0001": "Hans Müller^Schmidt"}),
    Case("escape_hex_chinese.hl7", "AA", Hl7Status.APPLIED, patients={"ESC0002": "张三"}),
    Case("custom_encoding_characters.hl7", "AA", Hl7Status.APPLIED, patients={"CUS0001": "Sean O!Hara"},
         identifiers=2),
    Case("msh2_truncation_character.hl7", "AA", Hl7Status.APPLIED, patients={"TRU0001": "Lan Zhou"}),
    Case("v22_minimal.hl7", "AA", Hl7Status.APPLIED, patients={"220001": "Jie Chen"}, visits=1,
         times=(datetime(1999, 11, 30, 16, 0, tzinfo=UTC), None)),
    Case("v23_pid2_only_event_in_evn.hl7", "AA", Hl7Status.APPLIED, patients={"HN-889": "Mei Liu"}),
    Case("v231_discharge_date_only.hl7", "AA", Hl7Status.APPLIED, patients={"D0001": "Gang Zhao"}, visits=1,
         times=(datetime(2026, 12, 1, 0, 30, tzinfo=UTC), datetime(2026, 12, 4, 16, 0, tzinfo=UTC))),
    Case("v28_fractional_offsets.hl7", "AA", Hl7Status.APPLIED, patients={"F0001": "Li Sun"}, visits=1,
         times=(datetime(2026, 12, 1, 0, 30, tzinfo=UTC), None)),
    Case("v29_register.hl7", "AA", Hl7Status.APPLIED, patients={"N0001": "Jun Ma"}, visits=1),
    Case("trailing_separators.hl7", "AA", Hl7Status.APPLIED, patients={"T0001": "Ying Guo"}, identifiers=1,
         visits=1),
    Case("a28_no_evn_no_pv1.hl7", "AA", Hl7Status.APPLIED, patients={"S0001": "Qi Feng"}),
    Case("a31_no_pv1.hl7", "AA", Hl7Status.APPLIED, patients={"S0002": "Hao Deng"}),
    Case("a08_without_visit_number.hl7", "AA", Hl7Status.APPLIED, patients={"S0003": "Bo Xu"}),
    Case("a01_without_visit_number.hl7", "AE", Hl7Status.INVALID, error="PV1^1^19", note="PV1-19"),
    Case("phones_xtn_mobile_wins.hl7", "AA", Hl7Status.APPLIED, patients={"P0001": "Tao Lin"},
         phone="+8613912345678"),
    Case("phones_unstructured_text.hl7", "AA", Hl7Status.APPLIED, patients={"P0002": "Li Yang"},
         phone="+8613800138000"),
    Case("charset_8859_1.hl7", "AA", Hl7Status.APPLIED, patients={"C0001": "Zoé Lefèvre"}),
    Case("charset_gb18030.hl7", "AA", Hl7Status.APPLIED, patients={"C0002": "欧阳娜娜"}),
    Case("charset_none_gbk.hl7", "AA", Hl7Status.APPLIED, patients={"C0003": "王小明"}),
    Case("long_nte_obx.hl7", "AA", Hl7Status.APPLIED, patients={"L0001": "Hong Qian"}, visits=1),
    Case("oru_long_obx_ignored.hl7", "AA", Hl7Status.IGNORED, note="ignored"),
    Case("unknown_values.hl7", "AA", Hl7Status.APPLIED, patients={"U0001": "Le Ke"}, visits=1),
    Case("unknown_event.hl7", "AA", Hl7Status.IGNORED, note="ignored"),
    Case("bad_birth_date.hl7", "AE", Hl7Status.INVALID, error="PID^1^7", note="PID-7"),
    Case("two_messages_one_frame.hl7", "AR", Hl7Status.REJECTED, error="MSH^1", note="2 messages"),
]  # fmt: skip


def test_every_corpus_file_has_a_case() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.hl7")) == sorted(
        [c.file for c in CASES] + ["batch_file.hl7"]
    )


@pytest.mark.parametrize("case", CASES, ids=[c.file.removesuffix(".hl7") for c in CASES])
def test_corpus_message(case: Case, database_url: str, db: Session) -> None:
    receiver = Receiver(session_factory(), ReceiverConfig.from_settings(get_settings()))
    ack = Ack.parse(receiver.handle(Frame((CORPUS / case.file).read_bytes()), "127.0.0.1").decode("utf-8"))
    reason = ack.note + " " + (ack.segments["ERR"][8] if "ERR" in ack.segments else "")
    assert (ack.code, ack.error_location) == (case.ack, case.error), reason
    assert case.note in reason
    db.expire_all()
    row = db.scalars(sa.select(Hl7Message)).one()  # kept, whatever the answer
    assert row.status is case.status
    patients = db.scalars(sa.select(Patient)).all()
    assert {p.mrn: p.name for p in patients} == case.patients  # nothing written by an AE or AR
    if case.phone is not None:
        assert patients[0].phone == case.phone
    if case.identifiers is not None:
        assert db.scalar(sa.select(sa.func.count()).select_from(PatientIdentifier)) == case.identifiers
    encounters = db.scalars(sa.select(Encounter)).all()
    assert len(encounters) == case.visits
    if case.times is not None:
        assert (encounters[0].started_at, encounters[0].ended_at) == case.times


def test_the_mrn_is_the_hospital_number_and_the_id_card_is_kept_as_an_identifier(
    database_url: str, db: Session
) -> None:
    receiver = Receiver(session_factory(), ReceiverConfig.from_settings(get_settings()))
    receiver.handle(Frame((CORPUS / "pid3_many_identifier_types.hl7").read_bytes()), "127.0.0.1")
    kinds = {(i.type_code, i.authority, i.value) for i in db.scalars(sa.select(PatientIdentifier))}
    assert kinds == {
        ("NI", "CHN", "110101199003077578"),
        ("PPN", "CHN", "E12345678"),
        ("MR", "HOSP", "0012345"),
        ("PI", "HOSP", "P998"),
    }
    # a later message naming the patient only by the id card finds the same person
    later = (
        "MSH|^~\\&|HIS|HOSP|CL|CL|20261202090000||ADT^A31|ID002|P|2.5\r"
        "PID|1||110101199003077578^^^CHN^NI||李^娜^^^^^L||19900307|F|||||^PRN^CP^^86^^13700001111\r"
    )
    ack = Ack.parse(receiver.handle(Frame(later.encode()), "127.0.0.1").decode())
    assert ack.code == "AA"
    db.expire_all()
    patient = db.scalars(sa.select(Patient)).one()
    assert (patient.mrn, patient.phone) == ("0012345", "+8613700001111")


def test_a_batch_file_over_mllp_is_answered_with_a_batch_of_acks(
    hl7_address: tuple[str, int], db: Session
) -> None:
    with MllpPeer(*hl7_address) as peer:
        peer.send_raw(b"\x0b" + (CORPUS / "batch_file.hl7").read_bytes() + b"\x1c\r")
        reply = peer.read_frame().decode()
        lines = reply.strip("\r").split("\r")
        assert [line[:3] for line in lines] == ["FHS", "BHS", "MSH", "MSA", "MSH", "MSA", "BTS", "FTS"]
        assert lines[0].split("|")[11] == "FILE0001" and lines[1].split("|")[11] == "BATCH0001"
        assert [line.split("|")[1:3] for line in lines if line.startswith("MSA")] == [
            ["AA", "BT001"],
            ["AA", "BT002"],
        ]
        assert lines[6] == "BTS|2"
        # the batch sent again: every message answered again, nothing applied twice
        peer.send_raw(b"\x0b" + (CORPUS / "batch_file.hl7").read_bytes() + b"\x1c\r")
        assert peer.read_frame().decode().count("MSA|AA|") == 2
        # and the connection carries on with single messages
        single = (CORPUS / "a31_no_pv1.hl7").read_bytes()
        assert peer.send(single).code == "AA"
    names = sorted(p.name for p in db.scalars(sa.select(Patient)))
    assert names == ["Hao Deng", "Xue Bai", "Yu Bai"]
    assert db.scalar(sa.select(sa.func.count()).select_from(Hl7Message)) == 3


def _mutations(data: bytes, seed: int) -> list[bytes]:
    """What a broken engine or a bad line does to a message: a cut, a byte dropped or doubled, a
    separator or escape character thrown in, a field emptied, segments swapped."""
    generator = random.Random(seed)
    out = []
    for _ in range(6):
        cut = generator.randrange(8, max(9, len(data)))
        kind = generator.randrange(5)
        if kind == 0:
            out.append(data[:cut])
        elif kind == 1:
            out.append(data[:cut] + data[cut + 1 :])
        elif kind == 2:
            out.append(
                data[:cut]
                + generator.choice([b"|", b"^", b"~", b"\\", b"&", b"\r", b"\\X", b"\xff"])
                + data[cut:]
            )
        elif kind == 3:
            end = data.find(b"|", cut + 1)
            out.append(data[:cut] + (data[end:] if end > 0 else b""))
        else:
            lines = data.split(b"\r")
            generator.shuffle(lines)
            out.append(b"\r".join(lines))
    return out


def test_broken_variants_of_every_corpus_message_get_an_answer(database_url: str, db: Session) -> None:
    """Whatever happens to a message on its way, the receiver answers it (AA, AE or AR) and never raises."""
    receiver = Receiver(session_factory(), ReceiverConfig.from_settings(get_settings()))
    answered = 0
    for index, path in enumerate(sorted(CORPUS.glob("*.hl7"))):
        for variant in _mutations(path.read_bytes(), index):
            reply = receiver.handle(Frame(variant), "127.0.0.1").decode("utf-8", "replace")
            lines = reply.strip("\r").split("\r")
            codes = {line.split("|")[1] for line in lines if line.startswith("MSA")}
            assert codes <= {"AA", "AE", "AR"}, (path.name, variant[:200])
            # one ACK, or a batch of them (an envelope cut to nothing is a batch of none)
            assert codes or lines[-1].startswith(("BTS", "FTS")), (path.name, variant[:200])
            answered += 1
    assert answered == 6 * len(list(CORPUS.glob("*.hl7")))


def test_the_mrn_comes_from_the_authority_the_hospital_names(
    monkeypatch: pytest.MonkeyPatch, database_url: str, db: Session
) -> None:
    """A regional index's MR number first, the campus's own PI second: with the campus named in
    CARELOOP_HL7_MRN_AUTHORITIES its number is the MRN, whatever the types say."""
    monkeypatch.setenv("CARELOOP_HL7_MRN_AUTHORITIES", '["EAST"]')
    reset_caches()
    message = (
        "MSH|^~\\&|HIS|EAST|CL|CL|20261202090000||ADT^A28|AU001|P|2.5\r"
        "PID|1||R-778^^^REGION^MR~E-1234^^^EAST^PI~W-55^^^WEST^MR||Zhou^Min||19700101|F\r"
    )
    receiver = Receiver(session_factory(), ReceiverConfig.from_settings(get_settings()))
    assert Ack.parse(receiver.handle(Frame(message.encode()), "127.0.0.1").decode()).code == "AA"
    db.expire_all()
    assert db.scalars(sa.select(Patient)).one().mrn == "E-1234"
