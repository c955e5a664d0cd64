"""Safety understanding that never depends on Rasa: emergencies, asking for a human, STOP, in zh-CN, vi, en.

It runs first on every inbound message, whoever holds the conversation. One message may hit several
rules; `check` returns the most urgent (emergency before human before stop), `scan` returns them all,
and `assess` adds the second net: an embedded classifier (nlu/safety_net.py) whose confident
"emergency" escalates a message the rules missed. The rules alone answer when no model can load.

- Emergencies are the red-flag categories of nlu/red_flags.py (taxonomy and sources in
  nlu/red_flags.md); each hit carries its category, and `advice_for(hit.emergency)` gives its
  urgency and the guidance to send. How they are recognised — normalisation, concepts within a
  window of words, negation, resolved and past symptoms — is in nlu/safety_match.py.
- Asking for a person and STOP are term lists. Latin-script terms match whole words only ("end" is
  not in "weekend"); Chinese terms anywhere. Vietnamese typed without diacritics matches the plain
  form, but a mark the message does carry must be the term's own ("Đúng" is not "dừng").
- STOP alone ("stop", "退订", "dừng") counts only as the whole message; "stop texting me", "别再发了",
  "đừng nhắn tin nữa" count anywhere. "cancel" is not STOP here (it cancels appointments).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from nlu.red_flags import Advice, AdviceKind, Emergency, Urgency, advice_for
from nlu.safety_match import find
from nlu.safety_text import accepts, fold, is_word_char, plain, trim

__all__ = [
    "Advice",
    "AdviceKind",
    "Emergency",
    "SafetyAssessment",
    "SafetyHit",
    "SafetyKind",
    "Source",
    "Urgency",
    "advice_for",
    "assess",
    "check",
    "scan",
]


class SafetyKind(StrEnum):
    EMERGENCY = "emergency"
    HUMAN = "human"
    STOP = "stop"


class Source(StrEnum):
    RULES = "rules"
    CLASSIFIER = "classifier"


@dataclass(frozen=True, slots=True)
class SafetyHit:
    kind: SafetyKind
    emergency: Emergency | None
    term: str  # the rule's term that matched, as written in the rule ("classifier" for the second net)
    matched: str  # the matching part of the folded message
    source: Source = Source.RULES
    confidence: float = 1.0  # the classifier's probability of an emergency; 1.0 for a rule

    @property
    def advice(self) -> Advice | None:
        """Urgency and guidance for an emergency hit; None for a request for a person or STOP."""
        return advice_for(self.emergency) if self.emergency is not None else None


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: SafetyKind
    terms: tuple[str, ...]
    whole_message: bool = False


_RULES: tuple[_Rule, ...] = (
    _Rule(SafetyKind.HUMAN, (
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
    _Rule(SafetyKind.HUMAN, ("人工", "客服", "nhân viên", "nhan vien"), whole_message=True),
    _Rule(SafetyKind.STOP, (
        "unsubscribe", "stop messaging", "stop texting", "stop sending", "stop contacting", "stop calling me",
        "don't text me", "dont text me", "don't message me", "dont message me", "no more messages",
        "no more texts",
        "退订", "取消订阅", "别再发", "不要再发", "别发了", "不要发了", "别再给我发", "不要再给我发",
        "hủy đăng ký", "huỷ đăng ký", "đừng nhắn tin", "đừng nhắn nữa", "đừng gửi tin", "ngừng gửi tin",
        "ngừng nhắn tin", "dừng gửi tin", "dừng nhắn tin", "không nhận tin nữa", "từ chối nhận tin",
    )),
    _Rule(SafetyKind.STOP, (
        "stop", "stopall", "stop all", "end", "quit", "optout", "opt out",
        "td", "停止", "停止发送", "停", "退定",
        "dừng", "dừng lại", "ngừng", "ngừng lại", "từ chối",
    ), whole_message=True),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Term:
    text: str
    folded: str
    plain: str
    latin: bool


def _compile(term: str) -> _Term:
    folded = fold(term)
    bare = plain(folded)
    return _Term(term, folded, bare, latin=is_word_char(bare[0]))


_COMPILED = tuple((rule, tuple(_compile(term) for term in rule.terms)) for rule in _RULES)


def _find(term: _Term, folded: str, bare: str) -> str | None:
    start = bare.find(term.plain)
    while start >= 0:
        end = start + len(term.plain)
        bounded = not term.latin or (
            (start == 0 or not is_word_char(bare[start - 1]))
            and (end == len(bare) or not is_word_char(bare[end]))
        )
        span = folded[start:end]
        if bounded and accepts(term.folded, span):
            return span
        start = bare.find(term.plain, start + 1)
    return None


def scan(text: str) -> tuple[SafetyHit, ...]:
    """Every rule the message hits, most urgent first: each emergency category found, then a request
    for a person, then STOP (at most one hit of each)."""
    hits = [SafetyHit(SafetyKind.EMERGENCY, f.emergency, f.term, f.matched) for f in find(text)]
    folded = fold(text)
    whole = trim(folded)
    bare, bare_whole = plain(folded), plain(whole)  # once per message, not once per term
    for rule, terms in _COMPILED:
        if any(hit.kind is rule.kind for hit in hits):
            continue
        for term in terms:
            if rule.whole_message:
                exact = whole and bare_whole == term.plain and accepts(term.folded, whole)
                matched = whole if exact else None
            else:
                matched = _find(term, folded, bare)
            if matched is not None:
                hits.append(SafetyHit(rule.kind, None, term.text, matched))
                break
    return tuple(hits)


def check(text: str) -> SafetyHit | None:
    """The most urgent safety hit in the message, or None when no rule applies."""
    hits = scan(text)
    return hits[0] if hits else None


@dataclass(frozen=True, slots=True)
class SafetyAssessment:
    """What the rules and the second net make of one message."""

    hits: tuple[SafetyHit, ...]  # most urgent first; a classifier hit only when the rules found no emergency
    emergency_probability: float | None = None  # the classifier's; None when it did not run or is unavailable
    classifier_available: bool = field(default=False)

    @property
    def top(self) -> SafetyHit | None:
        return self.hits[0] if self.hits else None

    @property
    def emergency(self) -> SafetyHit | None:
        return next((h for h in self.hits if h.kind is SafetyKind.EMERGENCY), None)


def assess(text: str, *, use_classifier: bool = True) -> SafetyAssessment:
    """The rules, then the second net: when the rules find no emergency and the embedded classifier
    is confident the message is one, an emergency hit (source CLASSIFIER) is put first. The rules'
    answer stands alone when scikit-learn or numpy is missing or the model cannot be trained."""
    hits = scan(text)
    if any(h.kind is SafetyKind.EMERGENCY for h in hits) or not use_classifier or not text.strip():
        return SafetyAssessment(hits)
    from nlu.safety_net import default_net  # lazy: numpy and the model load only when asked for

    net = default_net()
    if net is None:
        return SafetyAssessment(hits)
    emergency, probability = net.predict(text)
    if emergency is None:
        return SafetyAssessment(hits, probability, classifier_available=True)
    hit = SafetyHit(
        SafetyKind.EMERGENCY, emergency, "classifier", fold(text)[:200], Source.CLASSIFIER, probability
    )
    return SafetyAssessment((hit, *hits), probability, classifier_available=True)
