"""Safety rules that never depend on Rasa: emergency words, asking for a human, STOP, in zh-CN, vi and en.

They run first on every inbound message, with Rasa up or down. One message may hit several rules;
`check` returns the most urgent (emergency before human before stop), `scan` returns them all.

Matching, after NFKC and case folding:
- Latin-script terms match whole words only ("end" is not in "weekend"); Chinese terms anywhere.
- Vietnamese typed without diacritics matches the plain form ("kho tho" is "khó thở"), but a mark the
  message does carry must be the term's own: "từ từ" (slowly) is not "tự tử" (suicide). A few
  one-syllable or ambiguous terms need their diacritics ("ngất", "xỉu", "tự tử").
- Physical symptoms are ignored when a negation directly precedes them in the same clause ("no chest
  pain", "không khó thở", "没有胸痛") — survey answers say this often. Self-harm is never negated:
  "I'm not going to kill myself" still goes to a person.
- STOP alone ("stop", "退订", "dừng") counts only as the whole message; "stop texting me", "别再发了",
  "đừng nhắn tin nữa" count anywhere. "cancel" is not STOP here (it cancels appointments).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class SafetyKind(StrEnum):
    EMERGENCY = "emergency"
    HUMAN = "human"
    STOP = "stop"


class Emergency(StrEnum):
    SELF_HARM = "self_harm"
    CHEST_PAIN = "chest_pain"
    BREATHING = "breathing"
    STROKE = "stroke"
    BLEEDING = "bleeding"
    UNCONSCIOUS = "unconscious"
    SEIZURE = "seizure"
    ANAPHYLAXIS = "anaphylaxis"


@dataclass(frozen=True, slots=True)
class SafetyHit:
    kind: SafetyKind
    emergency: Emergency | None
    term: str  # the rule's term that matched, as written in the rule
    matched: str  # the matching part of the folded message


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: SafetyKind
    emergency: Emergency | None
    terms: tuple[str, ...]
    negatable: bool = False
    whole_message: bool = False


_E = SafetyKind.EMERGENCY
_RULES: tuple[_Rule, ...] = (
    _Rule(_E, Emergency.SELF_HARM, (
        "suicide", "suicidal", "kill myself", "killing myself", "end my life", "end it all", "want to die",
        "wanna die", "don't want to live", "dont want to live", "do not want to live", "self harm",
        "harm myself", "hurt myself", "cut myself", "cutting myself", "overdose", "took too many pills",
        "better off dead", "no reason to live",
        "自杀", "想死", "不想活", "活不下去", "轻生", "自残", "自伤", "割腕", "结束生命", "结束自己的生命",
        "跳楼", "寻死", "安眠药",
        "tự tử", "tự sát", "muốn chết", "không muốn sống", "chán sống", "tự làm hại", "tự hại",
        "tự làm đau", "cắt tay", "rạch tay", "kết liễu", "quyên sinh", "nhảy lầu", "uống thuốc ngủ",
        "muon tu tu", "dinh tu tu", "tu tu chet",
    )),
    _Rule(_E, Emergency.CHEST_PAIN, (
        "chest pain", "chest pains", "pain in my chest", "chest hurts", "chest is tight", "tight chest",
        "chest tightness", "crushing chest", "heart attack",
        "胸痛", "胸疼", "胸口痛", "胸口疼", "胸口闷", "胸闷", "心口痛", "心口疼", "心绞痛", "心梗",
        "心肌梗塞", "心肌梗死", "心脏病发作", "胸部剧痛",
        "đau ngực", "tức ngực", "đau tức ngực", "đau thắt ngực", "nặng ngực", "đau tim", "nhồi máu cơ tim",
    ), negatable=True),
    _Rule(_E, Emergency.BREATHING, (
        "can't breathe", "cant breathe", "cannot breathe", "can not breathe", "not breathing",
        "short of breath", "shortness of breath", "difficulty breathing", "trouble breathing",
        "hard to breathe", "struggling to breathe", "choking", "gasping for air",
        "呼吸困难", "喘不过气", "喘不上气", "透不过气", "上不来气", "无法呼吸", "不能呼吸", "没法呼吸",
        "呼吸不了", "窒息", "憋气",
        "khó thở", "không thở được", "ko thở được", "k thở được", "thở không được", "thở ko được",
        "không thở nổi", "thở không nổi", "ngạt thở", "ngộp thở", "hụt hơi",
    ), negatable=True),
    _Rule(_E, Emergency.STROKE, (
        "stroke", "face drooping", "face is drooping", "drooping face", "slurred speech",
        "speech is slurred", "slurring my words", "numb on one side", "one side numb",
        "weak on one side", "can't move my arm", "sudden numbness",
        "中风", "卒中", "脑梗", "口眼歪斜", "嘴歪", "口角歪斜", "说话不清", "口齿不清", "半身不遂",
        "半边身子麻", "半边身体麻", "一侧肢体无力", "偏瘫",
        "đột quỵ", "tai biến", "méo miệng", "méo mặt", "nói ngọng", "nói không rõ", "yếu nửa người",
        "tê nửa người", "liệt nửa người", "liệt một bên",
    ), negatable=True),
    _Rule(_E, Emergency.BLEEDING, (
        "heavy bleeding", "bleeding heavily", "bleeding a lot", "lots of blood", "losing a lot of blood",
        "won't stop bleeding", "wont stop bleeding", "bleeding won't stop", "bleeding wont stop",
        "can't stop the bleeding", "vomiting blood", "coughing up blood", "blood everywhere",
        "大出血", "出血不止", "血流不止", "止不住血", "流了很多血", "大量出血", "吐血", "咯血", "呕血",
        "chảy máu nhiều", "chảy máu không cầm", "chảy máu không ngừng", "máu chảy không ngừng",
        "mất nhiều máu", "băng huyết", "nôn ra máu", "ói ra máu", "ho ra máu", "xuất huyết nặng",
    ), negatable=True),
    _Rule(_E, Emergency.UNCONSCIOUS, (
        "unconscious", "passed out", "fainted", "unresponsive", "not responding", "collapsed",
        "won't wake up", "wont wake up",
        "昏迷", "晕倒", "昏倒", "晕过去", "失去意识", "不省人事", "叫不醒",
        "bất tỉnh", "ngất xỉu", "bị ngất", "ngất", "xỉu", "hôn mê", "không tỉnh",
    ), negatable=True),
    _Rule(_E, Emergency.SEIZURE, (
        "seizure", "seizures", "convulsing", "convulsions", "fitting",
        "抽搐", "抽风", "癫痫发作",
        "co giật", "động kinh",
    ), negatable=True),
    _Rule(_E, Emergency.ANAPHYLAXIS, (
        "anaphylaxis", "anaphylactic", "throat is swelling", "throat swelling", "swollen throat",
        "tongue swelling", "lips swelling",
        "过敏性休克", "喉咙肿", "舌头肿", "嗓子肿",
        "sốc phản vệ", "phản vệ", "sưng họng", "sưng lưỡi", "phù môi",
    ), negatable=True),
    _Rule(SafetyKind.HUMAN, None, (
        "human", "real person", "to a person", "with a person", "live person", "live agent", "agent",
        "operator",
        "representative", "customer service", "talk to someone", "speak to someone", "talk to somebody",
        "speak to somebody", "talk to a nurse", "speak to a nurse", "speak with a nurse", "talk to staff",
        "someone call me",
        "转人工", "人工客服", "人工服务", "要人工", "找人工", "真人", "转客服", "找客服", "联系客服",
        "客服在吗", "转接",
        "người thật", "gặp nhân viên", "nói chuyện với nhân viên", "nói chuyện với người",
        "nói chuyện với y tá", "tư vấn viên", "tổng đài viên", "chăm sóc khách hàng", "gặp người",
        "kết nối với nhân viên", "chuyển nhân viên",
    )),
    _Rule(SafetyKind.HUMAN, None, ("人工", "客服", "nhân viên", "nhan vien"), whole_message=True),
    _Rule(SafetyKind.STOP, None, (
        "unsubscribe", "stop messaging", "stop texting", "stop sending", "stop contacting", "stop calling me",
        "don't text me", "dont text me", "don't message me", "dont message me", "no more messages",
        "no more texts",
        "退订", "取消订阅", "别再发", "不要再发", "别发了", "不要发了", "别再给我发", "不要再给我发",
        "hủy đăng ký", "huỷ đăng ký", "đừng nhắn tin", "đừng nhắn nữa", "đừng gửi tin", "ngừng gửi tin",
        "ngừng nhắn tin", "dừng gửi tin", "dừng nhắn tin", "không nhận tin nữa", "từ chối nhận tin",
    )),
    _Rule(SafetyKind.STOP, None, (
        "stop", "stopall", "stop all", "end", "quit", "optout", "opt out",
        "td", "停止", "停止发送", "停", "退定",
        "dừng", "dừng lại", "ngừng", "ngừng lại", "từ chối",
    ), whole_message=True),
)  # fmt: skip

# Terms whose plain (no-diacritic) form is too ambiguous to match: "ngat" is also "ngắt" (cut off),
# "xiu" is "xíu" (a little), "tu tu" is "từ từ" (slowly).
_MARKED_ONLY = frozenset({"ngất", "xỉu", "tự tử"})

_SEPARATORS = {"'": "'", "‘": "'", "’": "'", "`": "'", "-": " ", "_": " ", "–": " ", "—": " "}
_CLAUSE_BREAK = re.compile(r"[,.;!?:\n。、；！？]|\bbut\b|\bnhưng\b|\bnhung\b|但是|但|可是")
_NEGATION_BEFORE = re.compile(
    r"(?:\bno|\bnot(?: having| have| had| experiencing| feeling)?|\bnever had|\bwithout|\bdon't have"
    r"|\bdo not have|\bdidn't have|\bhaven't had|\bhasn't had|\bno more|\bdenies"
    r"|\bkhông(?: bị| có| còn)?|\bkhong(?: bi| co| con)?|\bko(?: bị| bi| có| co| còn| con)?"
    r"|\bchẳng|\bchang|\bhết|\bhet"
    r"|没有|没|无|不|未|不再|并没有|从没)(?: any)?\s*$"
)
# "chưa hết khó thở" = still short of breath: a negated "gone" is not a negated symptom.
_DOUBLE_NEGATION = re.compile(r"(?:\bchưa|\bchua|\bvẫn|\bvan|\bkhông|\bkhong|\bko)\s+(?:hết|het)\s*$")


def _strip_mark(ch: str) -> str:
    if ch == "đ":
        return "d"
    return unicodedata.normalize("NFD", ch)[0]


def _fold(text: str) -> str:
    """NFKC, case-folded, apostrophes unified, dashes as spaces, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = "".join(_SEPARATORS.get(ch, ch) for ch in folded)
    return " ".join(folded.split())


def _plain(folded: str) -> str:
    """Diacritics removed character by character, so positions line up with the folded text."""
    return "".join(_strip_mark(ch) for ch in folded)


def _has_marks(text: str) -> bool:
    return _plain(text) != text


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _trim(folded: str) -> str:
    """The whole message without surrounding punctuation, symbols (emoji) and spaces."""
    start, end = 0, len(folded)
    while start < end and unicodedata.category(folded[start])[0] in "PSZC":
        start += 1
    while end > start and unicodedata.category(folded[end - 1])[0] in "PSZC":
        end -= 1
    return folded[start:end]


@dataclass(frozen=True, slots=True)
class _Term:
    text: str
    folded: str
    plain: str
    latin: bool
    marked_only: bool


def _compile(term: str) -> _Term:
    folded = _fold(term)
    plain = _plain(folded)
    return _Term(term, folded, plain, latin=_is_word_char(plain[0]), marked_only=term in _MARKED_ONLY)


_COMPILED = tuple((rule, tuple(_compile(term) for term in rule.terms)) for rule in _RULES)


def _accepts(term: _Term, span: str) -> bool:
    """The diacritics rule: each character of the span is either the term's own or unmarked, so
    "kho thở" is "khó thở" but "từ từ" is not "tự tử"; marked-only terms need at least one mark."""
    if term.marked_only and not _has_marks(span):
        return False
    return all(s == t or s == _strip_mark(s) for s, t in zip(span, term.folded, strict=True))


def _negated(folded: str, start: int) -> bool:
    clause = _CLAUSE_BREAK.split(folded[:start])[-1]
    return bool(_NEGATION_BEFORE.search(clause)) and not _DOUBLE_NEGATION.search(clause)


def _find(term: _Term, folded: str, plain: str, rule: _Rule) -> str | None:
    start = plain.find(term.plain)
    while start >= 0:
        end = start + len(term.plain)
        bounded = not term.latin or (
            (start == 0 or not _is_word_char(plain[start - 1]))
            and (end == len(plain) or not _is_word_char(plain[end]))
        )
        span = folded[start:end]
        if bounded and _accepts(term, span) and not (rule.negatable and _negated(folded, start)):
            return span
        start = plain.find(term.plain, start + 1)
    return None


def scan(text: str) -> tuple[SafetyHit, ...]:
    """Every rule the message hits (at most one hit per rule), most urgent first."""
    folded = _fold(text)
    whole = _trim(folded)
    plain, plain_whole = _plain(folded), _plain(whole)  # once per message, not once per term
    hits: list[SafetyHit] = []
    for rule, terms in _COMPILED:
        for term in terms:
            if rule.whole_message:
                matched = whole if whole and plain_whole == term.plain and _accepts(term, whole) else None
            else:
                matched = _find(term, folded, plain, rule)
            if matched is not None:
                hits.append(SafetyHit(rule.kind, rule.emergency, term.text, matched))
                break
    return tuple(hits)


def check(text: str) -> SafetyHit | None:
    """The most urgent safety hit in the message, or None when no rule applies."""
    hits = scan(text)
    return hits[0] if hits else None
