"""The one option matcher that chat menus, forms and voice share: what names an option, in three
languages, and what does not. Menus used to get an exact matcher of their own; the cases where the two
disagreed are pinned here, each with the reply the exact one missed or got wrong."""

from __future__ import annotations

import pytest

from questionnaires.model import Item, ItemType, Option
from questionnaires.options import match_choice, match_option, option_table, table_of
from questionnaires.reasons import Reason

AGREE = [("yes", "Yes, I agree"), ("no", "No, thank you")]  # the consent menu's buttons (en)
AGREE_VI = [("yes", "Có, tôi đồng ý"), ("no", "Không, cảm ơn")]
AGREE_ZH = [("yes", "同意"), ("no", "不用了，谢谢")]
MENU = [  # the main menu (en)
    ("register", "Link my hospital record"),
    ("book", "Book an appointment"),
    ("appointments", "My appointments"),
    ("faq", "Visiting hours, parking and other questions"),
]
HOW_VI = [("good", "Tốt"), ("fair", "Bình thường"), ("poor", "Không tốt")]
HOW_ZH = [("good", "很好"), ("fair", "一般"), ("poor", "不好")]
WEEKDAYS_VI = [("mon", "Thứ Hai 09:00"), ("tue", "Thứ Ba 10:00"), ("wed", "Thứ Tư 11:00")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [  # what the exact matcher accepted and refused, labels only (codes play no part here)
        ("1", 0),
        ("2", 1),
        (" 1 ", 0),
        ("１", 0),
        ("2。", 1),
        ("yes, i agree", 0),
        ("NO, THANK YOU!", 1),
        ("3", None),
        ("0", None),
        ("-1", None),
        ("", None),
        ("   ", None),
        ("yes please agree", None),
    ],
)
def test_numbers_and_whole_labels(text: str, expected: int | None) -> None:
    labels = [("agree", "Yes, I agree"), ("decline", "No, thank you")]
    assert match_choice(labels, text, "en") == expected


@pytest.mark.parametrize(
    ("choices", "lang", "text", "expected"),
    [  # replies the exact matcher did not read, and that chat menus now read as forms and voice do
        (AGREE, "en", "option 2", 1),
        (AGREE, "en", "two", 1),
        (AGREE, "en", "the second one", 1),
        (AGREE, "en", "2nd", 1),
        (AGREE, "en", "yes", 0),  # yes/no for a yes/no pair
        (AGREE_VI, "vi", "khong, cam on", 1),  # without tone marks
        (AGREE_VI, "vi", "khong", 1),
        (AGREE_VI, "vi", "số 2", 1),
        (AGREE_VI, "vi", "thứ hai", 1),
        (AGREE_VI, "vi", "hai", 1),
        (AGREE_ZH, "zh-CN", "第二个", 1),
        (AGREE_ZH, "zh-CN", "选2", 1),
        (AGREE_ZH, "zh-CN", "二", 1),
        (AGREE_ZH, "zh-CN", "是", 0),
        (HOW_VI, "vi", "Tốt", 0),
        (HOW_VI, "vi", "tot", 0),
        (HOW_VI, "vi", "khong tot", 2),
        (HOW_ZH, "zh-CN", "很好", 0),
    ],
)
def test_replies_the_exact_matcher_missed(
    choices: list[tuple[str, str]], lang: str, text: str, expected: int
) -> None:
    assert match_choice(choices, text, lang) == expected


@pytest.mark.parametrize(
    ("choices", "lang", "text"),
    [  # and what a chat menu leaves to Rasa or re-asks
        (MENU, "en", "I'd like to book an appointment"),  # free words: Rasa's intent leads there
        (MENU, "en", "Book an apointment"),
        (MENU, "en", "the fifth one"),
        (MENU, "en", "hello"),
        (WEEKDAYS_VI, "vi", "thứ hai"),  # Monday here, not the second slot
    ],
)
def test_free_words_unknown_places_and_weekdays_are_no_menu_entry(
    choices: list[tuple[str, str]], lang: str, text: str
) -> None:
    assert match_choice(choices, text, lang) is None


def _loose(choices: list[tuple[str, str]], text: str, lang: str) -> int | Reason:
    """How a form or a call reads a reply to a question with these options."""
    return match_option(option_table([Option(code, {lang: label}) for code, label in choices]), text, lang)


@pytest.mark.parametrize(
    ("choices", "lang", "text", "expected"),
    [  # forms and voice, with no Rasa behind them, also read a label inside a reply and a misspelling
        (AGREE, "en", "Yes, I agre", 0),
        (HOW_ZH, "zh-CN", "我觉得很好", 0),
        (MENU, "en", "I'd like to book an appointment", 1),
        (MENU, "en", "Book an apointment", 1),
        # ...but never a negated label
        (MENU, "en", "I don't want to book an appointment", Reason.NOT_UNDERSTOOD),  # normalised "don t"
        (MENU, "en", "I do not want to book an appointment", Reason.NOT_UNDERSTOOD),
        (HOW_ZH, "zh-CN", "我觉得不是很好", Reason.NOT_UNDERSTOOD),
    ],
)
def test_forms_and_voice_also_read_labels_inside_replies_and_misspellings(
    choices: list[tuple[str, str]], lang: str, text: str, expected: int | Reason
) -> None:
    assert _loose(choices, text, lang) == expected


def test_a_weekday_label_is_still_found_by_its_name() -> None:
    assert match_choice(WEEKDAYS_VI, "thu ba 10:00", "vi") == 1


def test_a_minus_sign_is_no_option_number_on_a_form_either() -> None:
    item = Item(
        "q", ItemType.SINGLE_CHOICE, {"en": "?"}, options=(Option("a", {"en": "A"}), Option("b", {"en": "B"}))
    )
    assert match_option(table_of(item), "-1", "en") is Reason.UNKNOWN_OPTION
    assert match_option(table_of(item), "1", "en") == 0


def test_an_ordinal_past_the_list_is_an_unknown_option() -> None:
    table = option_table([Option("a", {"en": "A"}), Option("b", {"en": "B"})])
    assert match_option(table, "the third one", "en") is Reason.UNKNOWN_OPTION
    assert match_option(table, "the last one", "en") == 1
