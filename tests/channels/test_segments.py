"""GSM-7/UCS-2 detection and cutting long texts into concatenated SMS parts."""

from __future__ import annotations

import pytest

from channels.segments import encoding_of, length_in_units, split_segments


def _units(part: str) -> int:
    return length_in_units(part) if encoding_of(part) == "GSM-7" else len(part.encode("utf-16-le")) // 2


@pytest.mark.parametrize(
    "text",
    ["Hello", "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà", "price 5€ [a] {b} ~c|d^e\\"],
)
def test_gsm_alphabet_including_the_extension_table_is_gsm7(text: str) -> None:
    assert encoding_of(text) == "GSM-7"


@pytest.mark.parametrize(
    "text",
    [
        "您好，请回复1",
        "Bạn có khỏe không?",  # Vietnamese letters with diacritics are outside GSM-7
        "Trần Thị Ánh",
        "ok 👍",
        "“quoted”",  # curly quotes
        "ç",  # only the capital Ç is in GSM-7
    ],
)
def test_any_character_outside_gsm7_makes_the_message_ucs2(text: str) -> None:
    assert encoding_of(text) == "UCS-2"


def test_160_gsm_characters_fit_one_message_and_161_make_two_parts_of_at_most_153() -> None:
    assert split_segments("a" * 160) == ["a" * 160]
    parts = split_segments("a" * 161)
    assert [len(p) for p in parts] == [153, 8]


def test_extension_characters_count_two_septets() -> None:
    assert length_in_units("€" * 80) == 160
    assert split_segments("€" * 80) == ["€" * 80]
    parts = split_segments("€" * 81)  # 162 septets
    assert len(parts) == 2
    assert all(_units(p) <= 153 for p in parts)


def test_an_extension_character_is_never_split_from_its_escape() -> None:
    text = "a" * 152 + "€" + "b" * 10  # the € would straddle septets 153/154
    parts = split_segments(text)
    assert parts[0] == "a" * 152
    assert parts[1].startswith("€")
    assert "".join(parts) == text


def test_70_ucs2_units_fit_one_message_and_71_make_parts_of_at_most_67() -> None:
    assert split_segments("好" * 70) == ["好" * 70]
    parts = split_segments("好" * 71)
    assert [len(p) for p in parts] == [67, 4]


def test_emoji_count_two_utf16_units_and_their_surrogate_pair_is_never_split() -> None:
    assert length_in_units("😀" * 35) == 70
    assert split_segments("😀" * 35) == ["😀" * 35]
    text = "a" * 66 + "😀" + "b" * 5  # 73 units; the emoji would straddle units 67/68
    parts = split_segments(text)
    assert parts[0] == "a" * 66
    assert parts[1] == "😀bbbbb"
    for part in parts:
        assert len(part.encode("utf-16-le")) // 2 <= 67
        part.encode("utf-16-le")  # no lone surrogate anywhere


def test_long_vietnamese_is_ucs2_and_cut_at_whitespace() -> None:
    text = "Xin chào, bệnh viện nhắc bạn tái khám vào thứ Ba tuần sau lúc tám giờ sáng tại khoa Nội."
    assert encoding_of(text) == "UCS-2"
    parts = split_segments(text)
    assert len(parts) == 2
    assert parts[0].endswith(" ")
    assert "".join(parts) == text
    assert all(_units(p) <= 67 for p in parts)


def test_long_english_is_cut_at_the_last_whitespace_that_fits() -> None:
    words = "word " * 40  # 200 septets
    parts = split_segments(words)
    assert all(p.endswith(" ") or p == parts[-1] for p in parts)
    assert all(not p.startswith(" ") for p in parts)
    assert "".join(parts) == words


def test_a_text_without_whitespace_is_cut_at_the_limit() -> None:
    url = "https://care.example.org/f/" + "x" * 300
    parts = split_segments(url)
    assert [len(p) for p in parts] == [153, 153, 21]


def test_whitespace_far_back_is_not_used_so_no_part_is_wasted() -> None:
    text = "Link: " + "x" * 300  # cutting after "Link: " would waste a whole part
    assert len(split_segments(text)) == 2


def test_decomposed_vietnamese_keeps_a_combining_mark_with_its_letter() -> None:
    text = "a" * 66 + "e\u0301" + "x" * 10  # é as e + combining acute, straddling units 67/68
    parts = split_segments(text)
    assert not parts[1].startswith("\u0301")
    assert "".join(parts) == text


def test_a_zwj_emoji_sequence_is_kept_together_when_it_can_be() -> None:
    family = "👨\u200d👩\u200d👧"
    text = "a" * 62 + family + "b" * 10
    parts = split_segments(text)
    assert family in parts[0] or family in parts[1]
    assert "".join(parts) == text


def test_chinese_text_of_200_characters_takes_three_parts() -> None:
    parts = split_segments("请" * 200)
    assert [len(p) for p in parts] == [67, 67, 66]


def test_empty_text_has_no_parts() -> None:
    assert split_segments("") == []


def test_one_emoji_turns_an_otherwise_short_gsm_message_into_two_ucs2_parts() -> None:
    text = "a" * 100 + "🙂"
    assert encoding_of(text) == "UCS-2"
    assert len(split_segments(text)) == 2
