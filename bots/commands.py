"""Global commands any flow understands (menu, help, language, skip): whole-message words in three languages.

STOP, "a human please" and emergencies are safety rules (nlu/safety.py) and run before these.
A command is the whole message (after nlu.parsing.normalise), never a word inside a sentence, so
free text that mentions "help" or "menu" is still free text.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from nlu.parsing import normalise


class Command(StrEnum):
    MENU = "menu"
    HELP = "help"
    LANGUAGE = "language"  # switch to `lang`, or ask which when `lang` is None
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class CommandHit:
    command: Command
    lang: str | None = None


WORDS: dict[Command, set[str]] = {
    Command.MENU: {
        "menu",
        "main menu",
        "菜单",
        "主菜单",
        "目录",
        "thực đơn",
        "thuc don",
        "danh mục",
        "menu chính",
    },
    Command.HELP: {"help", "帮助", "求助", "怎么用", "trợ giúp", "tro giup", "giúp", "giup", "hướng dẫn"},
    Command.LANGUAGE: {
        "language",
        "change language",
        "语言",
        "切换语言",
        "ngôn ngữ",
        "ngon ngu",
        "đổi ngôn ngữ",
    },
    Command.SKIP: {"skip", "pass", "跳过", "略过", "下一题", "bỏ qua", "bo qua"},
}
LANGUAGE_NAMES = {
    "english": "en",
    "in english": "en",
    "英文": "en",
    "英语": "en",
    "tiếng anh": "en",
    "中文": "zh-CN",
    "汉语": "zh-CN",
    "普通话": "zh-CN",
    "chinese": "zh-CN",
    "tiếng trung": "zh-CN",
    "tiếng việt": "vi",
    "tieng viet": "vi",
    "vietnamese": "vi",
    "越南语": "vi",
}
# Rasa intents that mean a command when the text was not a command word (free text)
INTENT_COMMANDS = {"help": Command.HELP}


def command_of(text: str) -> CommandHit | None:
    norm = normalise(text)
    if not norm:
        return None
    if norm in LANGUAGE_NAMES:
        return CommandHit(Command.LANGUAGE, LANGUAGE_NAMES[norm])
    for command, words in WORDS.items():
        if norm in words:
            return CommandHit(command)
    return None
