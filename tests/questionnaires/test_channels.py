"""Channels: how each item is asked on web, chat and voice, and the pre-flight check that refuses to
publish a questionnaire with an item a channel cannot carry. One test per refusal rule."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from questionnaires.channels import (
    ChannelKind,
    Keypad,
    PublishRefused,
    Refusal,
    plan,
    preflight,
    spoken_form,
)
from questionnaires.loader import parse_questionnaire
from questionnaires.model import LANGS, Item, Questionnaire
from questionnaires.spoken import VoicePhrases, phrase
from questionnaires.spoken_numbers import NumberWords, spell

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = sorted((ROOT / "content" / "questionnaires").glob("*.yaml"))
VOICE, CHAT, WEB = ChannelKind.VOICE, ChannelKind.CHAT, ChannelKind.WEB


@cache
def _phrases(lang: str) -> dict[str, Any]:
    path = ROOT / "content" / "questionnaires" / "voice" / f"{lang}.yaml"
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def phrases(lang: str = "en") -> dict[str, Any]:
    return dict(_phrases(lang))


def texts(en: str, *, zh: str | None = None, vi: str | None = None) -> dict[str, str]:
    return {"zh-CN": zh or f"{en}（中文）", "vi": vi or f"{en} (tiếng Việt)", "en": en}


def options(*labels: str) -> list[dict[str, Any]]:
    return [{"code": f"o{n}", "text": texts(label)} for n, label in enumerate(labels, start=1)]


def questionnaire(*items: dict[str, Any]) -> Questionnaire:
    return parse_questionnaire({"id": "t", "version": 1, "title": texts("T"), "items": list(items)})


def item(**raw: Any) -> Item:
    raw.setdefault("id", "x")
    raw.setdefault("text", texts("Question?"))
    return questionnaire(raw).item(raw["id"])


YES_NO = [
    {"code": "yes", "text": texts("Yes", zh="有", vi="Có"), "words": {"en": ["i do"], "zh-CN": ["有的"]}},
    {"code": "no", "text": texts("No", zh="没有", vi="Không")},
]


# --- spoken forms ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "prompt"),
    [
        ("en", "Fever? For Yes, press 1. For No, press 2."),
        ("zh-CN", "发烧？有请按1。没有请按2。"),
        ("vi", "Sốt? Có, bấm phím 1. Không, bấm phím 2."),
    ],
)
def test_a_choice_is_read_with_its_keys(lang: str, prompt: str) -> None:
    fever = item(type="single_choice", text=texts("Fever?", zh="发烧？", vi="Sốt?"), options=YES_NO)
    form = spoken_form(fever, lang, phrases(lang))
    assert form.prompt == prompt
    assert form.dtmf == {"1": "yes", "2": "no"}
    assert form.keypad is None and not form.recorded


def test_a_choice_grammar_has_labels_synonyms_yes_no_words_and_key_numbers() -> None:
    form = spoken_form(item(type="single_choice", options=YES_NO), "en", phrases())
    assert form.meanings["yes"] == "yes" and form.meanings["i do"] == "yes"
    assert form.meanings["yeah"] == "yes" and form.meanings["nope"] == "no"  # from the phrase file
    assert form.meanings["one"] == "yes" and form.meanings["two"] == "no"
    assert form.grammar == tuple(form.meanings)
    zh = spoken_form(item(type="single_choice", options=YES_NO), "zh-CN", phrases("zh-CN"))
    assert zh.meanings["有的"] == "yes" and zh.meanings["一"] == "yes"


def test_yes_no_words_are_only_for_yes_no_items() -> None:
    form = spoken_form(item(type="single_choice", options=options("Red", "Blue")), "en", phrases())
    assert "yeah" not in form.meanings
    assert form.meanings == {"red": "o1", "blue": "o2", "one": "o1", "two": "o2"}


def test_digits_in_labels_are_listened_for_as_words() -> None:
    form = spoken_form(
        item(type="single_choice", options=options("None", "1-2 days", "3 or more")), "en", phrases()
    )
    assert form.meanings["one two days"] == "o2" and form.meanings["three or more"] == "o3"
    assert phrase("0分：完全不痛", VoicePhrases.parse(phrases("zh-CN"), "zh-CN")) == "零分 完全不痛"


def test_a_phrase_two_options_share_is_not_listened_for() -> None:
    shared = [
        {"code": "a", "text": texts("Often"), "words": {"en": ["a lot"]}},
        {"code": "b", "text": texts("Always"), "words": {"en": ["a lot"]}},
    ]
    form = spoken_form(item(type="single_choice", options=shared), "en", phrases())
    assert "a lot" not in form.meanings and form.meanings["often"] == "a"


def test_more_than_nine_options_key_the_first_nine_and_say_the_rest() -> None:
    labels = [
        "Red",
        "Orange",
        "Yellow",
        "Green",
        "Blue",
        "Indigo",
        "Violet",
        "Black",
        "White",
        "Grey",
        "Pink",
    ]
    form = spoken_form(item(type="dropdown", options=options(*labels)), "en", phrases())
    assert list(form.dtmf) == list("123456789")
    assert form.meanings["grey"] == "o10" and form.meanings["pink"] == "o11"
    assert form.prompt.endswith("For White, press 9. Or say one of: Grey, Pink.")


def test_multiple_choice_is_asked_one_option_at_a_time() -> None:
    wound = item(type="multiple_choice", text=texts("Wound?"), options=options("Redness", "Swelling"))
    form = spoken_form(wound, "en", phrases())
    assert form.prompt == "Wound? I will read each answer in turn; say yes or no after each one."
    assert list(form.per_option) == ["o1", "o2"] and form.dtmf == {}
    redness = form.per_option["o1"]
    assert redness.prompt == "Redness? For yes, press 1. For no, press 2."
    assert redness.dtmf == {"1": "yes", "2": "no"}
    assert redness.meanings["yeah"] == "yes" and redness.meanings["not really"] == "no"
    vi = spoken_form(wound, "vi", phrases("vi")).per_option["o2"]
    assert vi.prompt == "Swelling (tiếng Việt)? có, bấm phím 1. không, bấm phím 2."


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "Pain? No pain. Worst pain. Say a number from zero to ten, or type it on the keypad"),
        ("zh-CN", "Pain?（中文）。No pain（中文）。Worst pain（中文）。请说出零到十之间的数字"),
        (
            "vi",
            "Pain? (tiếng Việt). No pain (tiếng Việt). Worst pain (tiếng Việt). Hãy nói một số từ không",
        ),
    ],
)
def test_a_scale_is_said_or_typed(lang: str, expected: str) -> None:
    pain = item(
        type="scale",
        min=0,
        max=10,
        text=texts("Pain?"),
        min_label=texts("No pain"),
        max_label=texts("Worst pain"),
    )
    form = spoken_form(pain, lang, phrases(lang))
    assert form.prompt.startswith(expected)
    assert len(form.grammar) == 11 and set(form.meanings.values()) == {str(n) for n in range(11)}
    assert form.keypad == Keypad(max_digits=2)


def test_a_decimal_is_said_to_one_place_or_typed_with_star_for_the_point() -> None:
    temperature = item(type="decimal", min=35, max=42, unit=texts("°C"), text=texts("Temperature?"))
    form = spoken_form(temperature, "en", phrases())
    assert form.meanings["thirty eight point five"] == "38.5" and form.meanings["forty two"] == "42"
    assert len(form.meanings) == 71
    assert form.keypad == Keypad(max_digits=3, decimal_key="*")
    assert "press the star key" in form.prompt and form.prompt.endswith("In °C.")
    glucose = spoken_form(item(type="decimal", min="0.25", max=2), "en", phrases())
    assert glucose.meanings["zero point two five"] == "0.25" and glucose.keypad == Keypad(3, decimal_key="*")


def test_a_star_rating_counts_from_one() -> None:
    form = spoken_form(item(type="star_rating", max=5), "zh-CN", phrases("zh-CN"))
    assert list(form.meanings) == ["一", "二", "三", "四", "五"]
    assert "一到五" in form.prompt


def test_a_very_wide_range_is_typed_only() -> None:
    form = spoken_form(item(type="integer", min=0, max=20000), "en", phrases())
    assert form.grammar == () and form.keypad == Keypad(max_digits=5)


def test_a_date_is_said_or_typed_as_eight_digits() -> None:
    form = spoken_form(item(type="date"), "zh-CN", phrases("zh-CN"))
    assert form.keypad == Keypad(max_digits=8, date_order="YMD")
    assert form.free_order and {"今天", "月", "三十一"} <= set(form.grammar)
    assert spoken_form(item(type="date"), "vi", phrases("vi")).keypad == Keypad(
        max_digits=8, date_order="DMY"
    )


def test_english_dates_are_whole_phrases_of_real_days() -> None:
    form = spoken_form(item(type="date"), "en", phrases())
    assert not form.free_order and form.keypad == Keypad(max_digits=8, date_order="DMY")
    grammar = set(form.grammar)
    assert {"today", "yesterday", "three days ago", "thirty days ago", "the first of november"} <= grammar
    assert {"march the twenty first", "february twenty ninth", "december thirty first"} <= grammar
    assert not {"february thirtieth", "the thirty first of april", "one day ago"} & grammar


def test_free_text_is_recorded_and_blanks_one_at_a_time() -> None:
    assert spoken_form(item(type="long_text"), "en", phrases()).recorded
    blanks = [{"id": "hba1c", "text": texts("HbA1c")}, {"id": "weight", "text": texts("Weight")}]
    form = spoken_form(item(type="multi_blank", blanks=blanks), "en", phrases())
    assert list(form.per_blank) == ["hba1c", "weight"]
    assert form.per_blank["weight"].recorded
    assert form.per_blank["weight"].prompt.startswith("Weight. Please say your answer after the tone")


def test_display_and_hint_are_read() -> None:
    assert spoken_form(item(type="display", text=texts("Hello")), "en", phrases()).prompt == "Hello."
    hinted = item(type="short_text", hint=texts("For example: Lan"))
    assert spoken_form(hinted, "en", phrases()).prompt.startswith("Question? For example: Lan. Please say")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.pop("press"), "missing press"),
        (lambda p: p.update(press="Press {key}."), "press must use"),
        (lambda p: p.update(lang="vi"), "for 'vi', not 'en'"),
        (lambda p: p.update(date_order="DDY"), "date_order"),
        (lambda p: p.update({"numbers.style": "fr"}), "numbers.style: one of"),
        (lambda p: p.pop("numbers.hundred"), "missing numbers.hundred"),
        (lambda p: p.update({"numbers.ones": "zero|one"}), "numbers.ones: 0 to 19"),
        (lambda p: p.update({"numbers.tens": "twenty"}), "numbers.tens: twenty to ninety"),
        (lambda p: p.update(yes_words=5), "expected words separated by |"),
    ],
)
def test_a_broken_phrase_file_is_refused(change: Any, message: str) -> None:
    raw = phrases()
    change(raw)
    with pytest.raises(ValueError, match=message):
        spoken_form(item(type="date"), "en", raw)


@pytest.mark.parametrize("lang", LANGS)
def test_the_phrase_files_are_flat_tables_of_strings_that_parse(lang: str) -> None:
    table = phrases(lang)
    assert all(isinstance(value, str) for value in table.values())  # loaded like every other catalogue
    parsed = VoicePhrases.parse(table, lang)
    assert parsed.lang == lang and parsed.yes_words and parsed.no_words
    assert VoicePhrases.parse(table | {"yes_words": ["ja", "jawohl"]}, lang).yes_words == ("ja", "jawohl")


# --- numbers in words --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "value", "words"),
    [
        ("en", 0, "zero"),
        ("en", 13, "thirteen"),
        ("en", 21, "twenty one"),
        ("en", 100, "one hundred"),
        ("en", 105, "one hundred five"),
        ("en", 3000, "three thousand"),
        ("en", 1250, "one thousand two hundred fifty"),
        ("en", Decimal("38.5"), "thirty eight point five"),
        ("en", Decimal("40.0"), "forty"),
        ("zh-CN", 10, "十"),
        ("zh-CN", 15, "十五"),
        ("zh-CN", 20, "二十"),
        ("zh-CN", 101, "一百零一"),
        ("zh-CN", 110, "一百一十"),
        ("zh-CN", 1005, "一千零五"),
        ("zh-CN", 1050, "一千零五十"),
        ("zh-CN", 10010, "一万零一十"),
        ("zh-CN", 280, "二百八十"),
        ("zh-CN", Decimal("38.5"), "三十八点五"),
        ("vi", 10, "mười"),
        ("vi", 11, "mười một"),
        ("vi", 15, "mười lăm"),
        ("vi", 21, "hai mươi mốt"),
        ("vi", 25, "hai mươi lăm"),
        ("vi", 105, "một trăm lẻ năm"),
        ("vi", 110, "một trăm mười"),
        ("vi", 1005, "một nghìn không trăm lẻ năm"),
        ("vi", 2050, "hai nghìn không trăm năm mươi"),
        ("vi", Decimal("37.5"), "ba mươi bảy phẩy năm"),
    ],
)
def test_numbers_are_spelled_in_each_language(lang: str, value: int | Decimal, words: str) -> None:
    assert spell(value, NumberWords.parse(phrases(lang))) == words


def test_negative_and_huge_numbers_are_not_spelled() -> None:
    words = NumberWords.parse(phrases())
    for value in (-1, 1_000_000):
        with pytest.raises(ValueError, match="cannot be spelled"):
            spell(value, words)


# --- plans ---------------------------------------------------------------------------------------------


def every_type() -> Questionnaire:
    return questionnaire(
        {"id": "fever", "type": "single_choice", "text": texts("Fever?"), "options": YES_NO},
        {"id": "wound", "type": "multiple_choice", "text": texts("Wound?"), "options": options("Red", "Wet")},
        {"id": "ward", "type": "dropdown", "text": texts("Ward?"), "options": options("A", "B", "C")},
        {"id": "stars", "type": "star_rating", "max": 5, "text": texts("Stars")},
        {"id": "pain", "type": "scale", "min": 0, "max": 10, "text": texts("Pain")},
        {"id": "bp", "type": "integer", "min": 60, "max": 280, "text": texts("BP")},
        {"id": "temp", "type": "decimal", "min": 35, "max": 42, "text": texts("Temp")},
        {"id": "since", "type": "date", "text": texts("Since?")},
        {"id": "name", "type": "short_text", "text": texts("Name?")},
        {"id": "story", "type": "long_text", "text": texts("Story?")},
        {
            "id": "labs",
            "type": "multi_blank",
            "text": texts("Labs"),
            "blanks": [{"id": "a", "text": texts("A")}],
        },
        {
            "id": "more",
            "type": "group",
            "text": texts("More"),
            "items": [{"id": "note", "type": "display", "text": texts("Note")}],
        },
    )


def test_the_plan_says_how_every_item_is_asked_on_every_channel() -> None:
    plans = plan(every_type(), "en", phrases())
    assert list(plans) == [WEB, CHAT, VOICE]
    for entries in plans.values():
        assert [e.item_id for e in entries] == [i.id for i in every_type().walk()]
        assert all(e.carried and e.problem is None for e in entries)
    how = {channel: {e.item_id: e.how for e in entries} for channel, entries in plans.items()}
    assert how[WEB]["wound"] == "check boxes (2)" and how[WEB]["pain"] == "slider (0..10)"
    assert how[WEB]["stars"] == "star rating (1..5)" and how[WEB]["more"] == "section of 1 items"
    assert how[CHAT]["fever"] == "numbered options 1-2; reply with a number or the option's words"
    assert how[CHAT]["wound"] == "numbered options 1-2; reply with every number that applies"
    assert how[CHAT]["more"] == "heading sent before its 1 items" and how[CHAT]["note"] == "sent as a message"
    assert how[VOICE]["fever"] == "options read with keys 1-2, said or keyed"
    assert how[VOICE]["wound"] == "each of 2 options asked as yes (1) or no (2)"
    assert how[VOICE]["temp"] == "number (35..42) said, or typed, up to 3 digits, * for the point, then #"
    assert how[VOICE]["since"] == "date said, or typed as 8 digits (DMY) then #"
    assert how[VOICE]["story"] == "recorded and transcribed"
    assert how[VOICE]["labs"] == "each of 1 blanks recorded in turn"
    assert how[VOICE]["more"] == "heading read before its 1 items" and how[VOICE]["note"] == "read aloud"
    assert preflight(every_type(), "zh-CN", phrases("zh-CN")) == plan(every_type(), "zh-CN", phrases("zh-CN"))


def test_a_plan_for_some_channels_needs_no_voice_phrases() -> None:
    assert list(plan(every_type(), "en", {}, channels=[WEB, CHAT])) == [WEB, CHAT]


def refusals(q: Questionnaire, lang: str = "en", **kwargs: Any) -> set[tuple[ChannelKind, str, str]]:
    with pytest.raises(PublishRefused) as caught:
        preflight(q, lang, phrases(lang), **kwargs)
    return {(r.channel, r.item_id, r.problem) for r in caught.value.refusals}


# --- each refusal rule ---------------------------------------------------------------------------------


def test_options_that_read_the_same_are_refused_everywhere() -> None:
    same = [{"code": "a", "text": texts("Yes")}, {"code": "b", "text": texts("yes!", vi="Vâng")}]
    q = questionnaire({"id": "x", "type": "single_choice", "text": texts("Q?"), "options": same})
    problem = "options 'a' and 'b' read the same ('yes!')"
    assert refusals(q) == {(WEB, "x", problem), (CHAT, "x", problem), (VOICE, "x", problem)}
    preflight(q, "vi", phrases("vi"))  # in Vietnamese they differ


def test_number_labels_that_are_not_their_positions_are_refused_on_chat_and_voice() -> None:
    counts = [{"code": f"c{n}", "text": texts(str(n))} for n in range(3)] + [
        {"code": "c3", "text": texts("3 or more")}
    ]
    single = questionnaire(
        {"id": "times", "type": "single_choice", "text": texts("How many?"), "options": counts}
    )
    expected = {
        f"option 'c{n}' is labelled '{n}' but is number {n + 1}: a reply of {n} would be ambiguous"
        for n in range(3)
    }
    found = refusals(single)
    assert {p for c, _, p in found if c is CHAT} == expected == {p for c, _, p in found if c is VOICE}
    assert not any(c is WEB for c, _, _ in found)
    # voice asks multiple choice option by option, so only chat replies with numbers there
    multiple = questionnaire(
        {"id": "times", "type": "multiple_choice", "text": texts("Which?"), "options": counts}
    )
    assert {c for c, _, _ in refusals(multiple)} == {CHAT}
    in_place = [{"code": f"k{n}", "text": texts(str(n))} for n in range(1, 4)]
    preflight(
        questionnaire({"id": "k", "type": "single_choice", "text": texts("K?"), "options": in_place}),
        "en",
        phrases(),
    )


def test_text_with_nothing_to_say_is_refused_on_voice() -> None:
    faces = [{"code": "happy", "text": texts("😀")}, {"code": "sad", "text": texts("Sad")}]
    q = questionnaire(
        {"id": "mood", "type": "single_choice", "text": texts("Mood?"), "options": faces},
        {"id": "stars", "type": "display", "text": texts("★★★")},
        {
            "id": "labs",
            "type": "multi_blank",
            "text": texts("Labs"),
            "blanks": [{"id": "a", "text": texts("→")}],
        },
        {
            "id": "tick",
            "type": "multiple_choice",
            "text": texts("Tick"),
            "options": [*faces, *options("Other")],
        },
    )
    assert refusals(q) == {
        (VOICE, "mood", "option 'happy' has nothing to say aloud"),
        (VOICE, "stars", "its text has nothing to say aloud"),
        (VOICE, "labs", "blank 'a' has nothing to say aloud"),
        (VOICE, "tick", "option 'happy' has nothing to say aloud"),
    }
    preflight(q, "en", {}, channels=[WEB, CHAT])


def test_options_after_the_ninth_need_words_of_their_own_on_voice() -> None:
    labels = ["Red", "Orange", "Yellow", "Green", "Blue", "Indigo", "Violet", "Black", "White"]
    many = [
        *options(*labels),
        {"code": "grey", "text": texts("Grey")},
        {"code": "other", "text": texts("Other"), "words": {"en": ["something else"]}},
        {"code": "else", "text": texts("Something else")},
    ]
    q = questionnaire({"id": "colour", "type": "single_choice", "text": texts("Colour?"), "options": many})
    problem = "option 'else' has no key (only 1-9 exist) and no words that tell it from the other options"
    assert refusals(q) == {(VOICE, "colour", problem)}
    many[-1]["words"] = {"en": ["another"]}
    q = questionnaire({"id": "colour", "type": "single_choice", "text": texts("Colour?"), "options": many})
    entries = preflight(q, "en", phrases())[VOICE]
    assert entries[0].how == "options read with keys 1-9, said or keyed; 3 more said only"


def test_a_keyed_option_needs_no_words_of_its_own() -> None:
    shared = [
        {"code": "a", "text": texts("Often"), "words": {"en": ["often"]}},
        {"code": "b", "text": texts("Often enough"), "words": {"en": ["often"]}},
    ]
    preflight(
        questionnaire({"id": "x", "type": "single_choice", "text": texts("Q?"), "options": shared}),
        "en",
        phrases(),
    )


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"type": "integer"}, "a spoken number needs min and max"),
        ({"type": "integer", "min": 0}, "a spoken number needs min and max"),
        ({"type": "decimal", "max": 10}, "a spoken number needs min and max"),
        (
            {"type": "integer", "min": -10, "max": 10},
            "the range goes below zero and the keypad has no minus key",
        ),
        ({"type": "scale", "min": -5, "max": 5}, "the range goes below zero and the keypad has no minus key"),
    ],
)
def test_numbers_need_a_range_from_zero_up_on_voice(raw: dict[str, Any], problem: str) -> None:
    q = questionnaire({"id": "n", "text": texts("How much?")} | raw)
    found = refusals(q)
    assert len(found) == 1
    channel, item_id, message = found.pop()
    assert (channel, item_id) == (VOICE, "n") and message.startswith(problem)
    assert plan(q, "en", phrases())[VOICE][0].how == "not asked: no usable range"
    preflight(q, "en", {}, channels=[WEB, CHAT])


def test_the_refusal_lists_every_channel_item_and_problem() -> None:
    same = [{"code": "a", "text": texts("Same")}, {"code": "b", "text": texts("same")}]
    q = questionnaire(
        {"id": "dup", "type": "dropdown", "text": texts("Dup?"), "options": same},
        {"id": "weight", "type": "decimal", "text": texts("Weight?")},
        {"id": "fine", "type": "short_text", "text": texts("Fine?")},
    )
    with pytest.raises(PublishRefused) as caught:
        preflight(q, "en", phrases())
    problem = "options 'a' and 'b' read the same ('same')"
    assert caught.value.refusals == (
        Refusal(WEB, "dup", problem),
        Refusal(CHAT, "dup", problem),
        Refusal(VOICE, "dup", problem),
        Refusal(VOICE, "weight", caught.value.refusals[3].problem),
    )
    assert str(caught.value).startswith("cannot publish: web: dup: options 'a' and 'b'")
    assert "voice: weight: a spoken number needs min and max" in str(caught.value)
    entries = {e.item_id: e for e in plan(q, "en", phrases())[VOICE]}
    assert not entries["dup"].carried and not entries["weight"].carried and entries["fine"].carried


# --- the built-in library ------------------------------------------------------------------------------


@pytest.mark.skipif(not LIBRARY, reason="no questionnaires under content/questionnaires yet")
def test_every_library_questionnaire_passes_preflight_in_every_language() -> None:
    checked = []
    for path in LIBRARY:
        q = parse_questionnaire(yaml.safe_load(path.read_text(encoding="utf-8")))
        for lang in LANGS:
            plans = preflight(q, lang, phrases(lang))
            assert all(len(entries) == len(list(q.walk())) for entries in plans.values())
        checked.append(path.name)
    assert checked and len(checked) == len(LIBRARY)
