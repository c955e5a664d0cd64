"""The pure parts: MLLP frame decoding, character sets, segment ends, the content hash, timestamps, ACKs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from backend.integration.ack import AckAddress, build_ack
from backend.integration.adt_content import adt_content
from backend.integration.hl7_parse import (
    InvalidField,
    Unparseable,
    codec_for,
    content_hash,
    decode,
    normalise_segments,
    parse,
    parse_timestamp,
    sniff_header,
)
from backend.integration.mllp import Frame, FrameDecoder, FramingError, frame, peer_allowed
from tests.backend.integration.hl7_peer import adt

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_frames_split_across_reads_and_several_in_one_read() -> None:
    decoder = FrameDecoder(max_bytes=100)
    stream = frame(b"MSH|one") + frame(b"MSH|two") + frame(b"MSH|three")
    events = [event for i in range(0, len(stream), 3) for event in decoder.feed(stream[i : i + 3])]
    assert events == [Frame(b"MSH|one"), Frame(b"MSH|two"), Frame(b"MSH|three")]


def test_oversized_frame_is_an_error_with_its_head_kept_and_the_next_frame_is_fine() -> None:
    decoder = FrameDecoder(max_bytes=10)
    events = list(decoder.feed(frame(b"MSH|" + b"x" * 10_000) + frame(b"MSH|ok")))
    assert isinstance(events[0], FramingError) and "10004 bytes" in events[0].reason
    assert events[0].head.startswith(b"MSH|xxx") and len(events[0].head) <= 4096
    assert events[1] == Frame(b"MSH|ok")


def test_junk_between_frames_is_counted_and_a_restart_cuts_the_frame() -> None:
    decoder = FrameDecoder(max_bytes=100)
    events = list(decoder.feed(b"junk\x0bMSH|cut\x0bMSH|whole\x1c\x0d"))
    assert events == [
        FramingError("a new frame started before the end block", b"MSH|cut"),
        Frame(b"MSH|whole"),
    ]
    assert decoder.discarded == 4
    assert decoder.truncated() is None
    list(decoder.feed(b"\x0bMSH|half"))
    assert decoder.mid_frame and decoder.truncated() == FramingError(
        "the frame was not completed (no end block)", b"MSH|half"
    )


@pytest.mark.parametrize(
    ("msh18", "codec"),
    [
        ("", "utf-8"),
        ("UNICODE UTF-8", "utf-8"),
        ("GB 18030-2000", "gb18030"),
        ("GBK", "gbk"),
        ("8859/1", "iso-8859-1"),
    ],
)
def test_character_sets(msh18: str, codec: str) -> None:
    assert codec_for(msh18) == codec


def test_unknown_character_set_is_unparseable() -> None:
    with pytest.raises(Unparseable, match="MSH-18"):
        codec_for("EBCDIC-MARTIAN")


def test_unnamed_character_set_falls_back_to_gb18030_when_not_utf8() -> None:
    payload = adt("A01", "G1", name="王^芳", charset="").encode("gb18030")
    text, codec = decode(payload, sniff_header(payload), "gb18030")
    assert codec == "gb18030" and "王^芳" in text


def test_gbk_text_labelled_ascii_is_read_with_the_fallback() -> None:
    payload = adt("A01", "G2", name="赵^敏", charset="ASCII").encode("gbk")
    text, codec = decode(payload, sniff_header(payload), "gb18030")
    assert codec == "gb18030" and "赵^敏" in text


def test_segment_ends_are_normalised() -> None:
    assert normalise_segments("MSH|a\r\nPID|b\n\nPV1|c\r") == "MSH|a\rPID|b\rPV1|c"


def test_content_hash_ignores_msh7_only() -> None:
    first = normalise_segments(adt("A01", "H1", sent="20261201083500"))
    resent = normalise_segments(adt("A01", "H1", sent="20261202090000"))
    changed = normalise_segments(adt("A01", "H1", name="Li^Na"))
    assert content_hash(first) == content_hash(resent) != content_hash(changed)


def test_timestamps_in_the_hospital_zone_or_with_their_offset() -> None:
    assert parse_timestamp("20261201083000", SHANGHAI, "PV1", 44) == datetime(2026, 12, 1, 0, 30, tzinfo=UTC)
    assert parse_timestamp("202612010830+0100", SHANGHAI, "PV1", 44) == datetime(
        2026, 12, 1, 7, 30, tzinfo=UTC
    )
    assert parse_timestamp("20261201083000.1234-0500", SHANGHAI, "PV1", 44) == datetime(
        2026, 12, 1, 13, 30, tzinfo=UTC
    )
    assert parse_timestamp("2026", SHANGHAI, "PV1", 44) == datetime(2025, 12, 31, 16, 0, tzinfo=UTC)
    with pytest.raises(InvalidField) as bad:
        parse_timestamp("20261301", SHANGHAI, "PV1", 45)
    assert bad.value.location == "PV1-45"


def test_adt_content_reads_pid_pv1_dg1_pr1() -> None:
    text = normalise_segments(
        adt(
            "A03",
            "C1",
            discharge="20261205100000",
            disposition="01",
            diagnoses=("E11.9^Type 2 diabetes^I10", "I10^Hypertension^I10"),
            procedures=("0DTJ4ZZ^Appendectomy^I10P",),
            phone="(021)5555-1234",
        )
    )
    message, header = parse(text)
    assert (header.message_type, header.version, header.sending_facility) == ("ADT^A03", "2.5.1", "HOSP")
    content = adt_content(message, header, zone=SHANGHAI, needs_visit=True)
    assert content.patient is not None and content.encounter is not None
    assert content.patient.birth_date == date(1965, 3, 17) and content.patient.phone == "(021)5555-1234"
    assert content.encounter.visit.value == "V1001" and content.encounter.visit.authority == "HOSP"
    assert [d.code for d in content.encounter.diagnoses] == ["E11.9", "I10"]
    assert [p.code for p in content.encounter.procedures] == ["0DTJ4ZZ"]
    assert content.encounter.ended_at == datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    assert (
        content.encounter.attending_doctor is not None
        and content.encounter.attending_doctor.text == "Ming Li"
    )


def test_escaped_separators_are_unescaped() -> None:
    message, header = parse(normalise_segments(adt("A28", "E1", name="O\\T\\Brien^Mary")))
    content = adt_content(message, header, zone=SHANGHAI, needs_visit=False)
    assert content.patient is not None and content.patient.name == "Mary O&Brien"


def test_ack_carries_err_in_both_forms() -> None:
    address = AckAddress(sending_application="HIS", sending_facility="HOSP", control_id="X1", trigger="A01")
    error = InvalidField("PID", 3, 101, "PID-3 (patient identifier list) is empty")
    ack = build_ack(
        address, "AE", text="bad", error=error, ack_control_id="CL1", now=datetime(2026, 1, 1, tzinfo=UTC)
    )
    msh, msa, err = ack.rstrip("\r").split("\r")
    assert msh.split("|")[4:6] == ["HIS", "HOSP"] and msh.split("|")[8] == "ACK^A01^ACK"
    assert msa == "MSA|AE|X1|bad"
    fields = err.split("|")
    assert fields[1] == "PID^1^3^101&Required field missing&HL70357"
    assert fields[2:5] == ["PID^1^3", "101^Required field missing^HL70357", "E"]


@pytest.mark.parametrize(
    ("host", "allowed", "ok"),
    [
        ("10.1.2.3", (), True),
        ("10.1.2.3", ("10.1.0.0/16",), True),
        ("10.2.2.3", ("10.1.0.0/16", "192.168.1.5"), False),
        ("::ffff:192.168.1.5", ("192.168.1.5",), True),
        ("not-an-ip", ("10.0.0.0/8",), False),
    ],
)
def test_allow_list(host: str, allowed: tuple[str, ...], ok: bool) -> None:
    assert peer_allowed(host, allowed) is ok
