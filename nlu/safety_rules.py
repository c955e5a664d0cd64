"""Red-flag patterns per category, and the context that discounts a hit (negation, over, long past, general
questions, laughter). The terms behind each concept name are in nlu/safety_lexicon.py."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from nlu.red_flags import Emergency

E = Emergency


class Span(Protocol):
    """A tagged concept in the folded message (nlu.safety_match.Tag)."""

    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def concept(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Pattern:
    emergency: Emergency
    concepts: tuple[str, ...]
    window: int = 6  # tokens allowed between the concepts, besides their own
    ordered: bool = False  # the concepts must appear in this order
    negatable: bool = True  # False: never negated or discounted (self-harm)
    mild: bool = False  # "a bit", "hơi", "有点" just before discounts it ("a bit breathless")
    with_any: tuple[str, ...] = ()  # one of these concepts must be in the same sentence
    unless: tuple[str, ...] = ()  # none of these concepts may be in the same sentence


def _p(emergency: Emergency, *concepts: str, **options: object) -> Pattern:
    return Pattern(emergency, concepts, **options)  # type: ignore[arg-type]


PATTERNS: tuple[Pattern, ...] = (
    # Self-harm first: never negated, never discounted.
    _p(E.SELF_HARM, "SH", negatable=False),
    _p(
        E.SELF_HARM,
        "TAKE",
        "OD_AMOUNT",
        "DRUG",
        window=8,
        negatable=False,
        unless=("CHILD", "ACCIDENT", "ROUTINE"),
    ),
    _p(E.SELF_HARM, "SH_DIE", negatable=False),  # Vietnamese "[adjective] muốn chết" idioms are blocked
    _p(E.SELF_HARM, "LIFE", "END_IT", window=5, negatable=False),
    _p(E.CHEST_PAIN, "CP"),
    _p(E.CHEST_PAIN, "CHEST", "PAIN", window=6),
    _p(E.CHEST_PAIN, "CHEST", "PRESSURE", window=6),
    _p(E.CHEST_PAIN, "HEART", "PAIN", "SWEAT", window=10),
    _p(E.CHEST_PAIN, "CLUTCH", "CHEST", window=3),
    _p(E.BREATHING, "BR"),
    _p(E.BREATHING, "BREATHLESS", mild=True),
    _p(E.BREATHING, "BLUE_LIPS"),
    _p(E.BREATHING, "BREATH_WORD", "EFFORT", window=5),
    _p(E.STROKE, "STROKE"),
    _p(E.STROKE, "LIMB", "DEFICIT", window=4, mild=True),
    _p(E.STROKE, "SPEECH", "GARBLED", window=4),
    _p(E.STROKE, "SUDDEN", "VISION_LOSS", window=8),
    _p(E.STROKE, "ONE_SIDE", "DEFICIT", window=6, mild=True),
    _p(E.STROKE, "SUDDEN", "BALANCE", window=4),
    _p(E.BLEEDING, "BLEED_STRONG"),
    _p(E.BLEEDING, "BLEED", "HEAVY", window=5),
    _p(E.BLEEDING, "VOMIT", "BLOOD", window=4),
    _p(E.BLEEDING, "BLACK", "STOOL", window=4),
    _p(E.BLEEDING, "NOSEBLEED", "LONG", window=6),
    _p(E.UNCONSCIOUS, "UNC"),
    _p(E.UNCONSCIOUS, "FELL", "FLOOR", window=4),
    _p(E.UNCONSCIOUS, "FLOOR", "NOT_MOVING", window=4),
    _p(E.SEIZURE, "SEIZURE"),
    _p(E.ANAPHYLAXIS, "ANA"),
    _p(E.ANAPHYLAXIS, "THROAT", "SWELL", window=4),
    _p(E.ANAPHYLAXIS, "FACE", "SWELL", window=4, with_any=("TRIGGER",)),
    _p(E.ANAPHYLAXIS, "SWALLOW", window=4, with_any=("TRIGGER",)),
    _p(E.ANAPHYLAXIS, "FACE", "SWELL", "SWALLOW", window=10),
    _p(E.POISONING, "INGEST", "CHEMICAL", window=6),
    _p(E.POISONING, "POISON"),
    _p(E.POISONING, "ACCIDENT", "DRUG", window=8),
    _p(E.POISONING, "INSULIN", "TWICE", window=4),
    _p(E.POISONING, "GAS", "GAS_SICK", window=12),  # a gas leak and people dizzy or sick
    _p(E.POISONING, "CHILD", "INGEST", "DRUG", window=8, with_any=("OTHERS",)),
    _p(E.POISONING, "CHILD", "INGEST", "OD_AMOUNT", "DRUG", window=8),
    _p(E.POISONING, "CHILD", "INGEST_STRONG", "DRUG", window=8),
    _p(E.SEVERE_HEADACHE, "HEADACHE_STRONG"),
    _p(E.SEVERE_HEADACHE, "HEAD", "SEVERE", window=8),
    _p(E.SEVERE_HEADACHE, "HEAD", "STIFF_NECK", window=10),
    _p(E.SEVERE_HEADACHE, "HEAD_INJURY", "VOMIT", window=10),
    _p(E.PREGNANCY, "PREGNANT", "BLEED", window=12),
    _p(E.PREGNANCY, "PREGNANT", "WATERS", window=12),
    _p(E.PREGNANCY, "AMNIO", "BROKE", window=3),
    _p(E.PREGNANCY, "NO_KICKS"),
    _p(E.PREGNANCY, "PREGNANT", "NO_MOVE", window=12),
    # "haven't felt the baby move": the negation is the red flag, so it is not discounted as one
    _p(E.PREGNANCY, "PREGNANT", "FETUS_MOVE", "LESS", window=10, negatable=False),
    _p(E.PREGNANCY, "PREGNANT", "PREECLAMPSIA", window=12),
    _p(E.INFANT_FEVER, "INFANT_STRONG", "FEVER", window=14, unless=("PREGNANT",)),
    _p(E.INFANT_FEVER, "INFANT", "FEVER", window=14, with_any=("BABY",), unless=("PREGNANT",)),
    _p(E.POST_OP_PAIN, "SURGERY", "AGONY", window=14),
    _p(E.POST_OP_PAIN, "SURGERY", "PAIN", "SEVERE", window=14),
    _p(E.POST_OP_PAIN, "CALF", "SWELL", window=6),
    _p(E.POST_OP_PAIN, "SURGERY", "LEG", "SWELL", window=10),
    _p(E.WOUND_INFECTION, "WOUND", "PUS", window=10),
    _p(E.WOUND_INFECTION, "WOUND", "INFECT_SIGN", "SYSTEMIC", window=18),
    _p(E.WOUND_INFECTION, "WOUND", "HOT", "RED", window=10),
    _p(E.WOUND_INFECTION, "WOUND", "HOT", "DISCHARGE", window=10),
    _p(E.WOUND_INFECTION, "WOUND", "DISCHARGE", "SYSTEMIC", window=12),
    _p(E.WOUND_INFECTION, "SPREADING_RED"),
)


BLOCKERS: tuple[str, ...] = (
    # places and services named after a condition
    "chest clinic", "stroke clinic", "stroke unit", "pain clinic", "heart scan", "epilepsy clinic",
    "seizure clinic", "bleeding disorder*", "allergy test", "allergy clinic", "maternity unit",
    "chest x ray", "chest xray", "blood test*", "blood pressure", "blood sugar", "blood result*",
    "胸外科", "胸外", "胸科", "胸片", "胸部ct", "胸痛中心", "卒中中心", "卒中单元", "癫痫门诊", "疼痛科",
    "心脏彩超", "过敏原", "产科", "抽血", "抽了血", "抽完血", "抽烟", "抽了烟", "抽了根烟", "血压", "血糖",
    "血常规", "血脂", "贫血", "血管", "验血", "血检", "献血", "血氧", "血型", "血液科", "退烧药", "退烧",
    "退热",
    "哮喘能", "有哮喘", "哮喘病", "哮喘史", "心如刀割", "痛彻心扉", "消肿", "退肿",
    "phòng khám đau ngực", "phòng khám đau", "đơn vị đột quỵ", "phòng khám động kinh", "siêu âm tim",
    "test dị ứng", "khoa sản", "xét nghiệm máu", "lấy máu", "huyết áp", "đường huyết", "hạ sốt",
    "hết sưng", "đỡ sưng", "bớt sưng", "thiếu máu", "mỡ máu", "máu nhiễm mỡ", "thử máu", "nhóm máu",
    "giật mình", "ngạt mũi", "nghẹt mũi",
    # figures of speech
    "drowning in", "take my breath away", "breath away", "to die for", "dying to", "died laughing",
    "could die", "killing me", "kill me", "heartbreak", "heart skipped", "pain in the neck",
    "bleeding edge", "my phone died", "phone died", "battery died", "battery is dead",
    "ngon xỉu", "cười xỉu", "đẹp xỉu", "muốn xỉu luôn", "xỉu ngang",
    "chán muốn chết", "muốn chết luôn", "muốn chết mất", "sốt ruột muốn chết", "muốn chết đi được",
    "nóng muốn chết", "lạnh muốn chết", "mệt muốn chết", "đói muốn chết", "khát muốn chết", "cười muốn chết",
    "sợ muốn chết", "tức muốn chết", "ngại muốn chết", "xấu hổ muốn chết", "thèm muốn chết",
    "kẹt xe muốn chết",
    "vui muốn chết", "buồn cười muốn chết", "muốn xỉu",
    "ngất ngây", "đói xỉu", "mệt xỉu", "sợ xỉu", "chết cười",
    # services and medicines named after a condition (Vietnamese)
    "khám động kinh", "thuốc động kinh", "thuốc chống động kinh",
    "trái tim anh đau", "tim anh đau", "想死你", "想死我了",
    # food poisoning is not this red flag
    "food poisoning", "食物中毒", "ngộ độc thực phẩm",
    # "much better" after taking a medicine is not an amount of it; Chinese hyperbole "X得(我)想死"
    "好多了", "得想死", "得我想死", "得要死",
)  # fmt: skip


SENTENCE_BREAK = re.compile(r"[!?;\n。！？；]|(?<!\d)\.|\.(?!\d)")
_CLAUSE_BREAK = re.compile(
    r"[,.;!?:\n。；！？]|\bbut\b|\bhowever\b|\bnhưng\b|\bnhung\b|\bmà giờ\b|\bma gio\b|但是|但|可是|不过"
)
# After "it went away", these say it came back: "the pain went away but now it's back".
_RECUR = re.compile(
    r"\b(?:back|again|worse|returned|came back|started again|now its|now it is|lại|lai|nặng hơn|nang hon"
    r"|tái)\b"
    r"|又|再次|加重|复发|回来了|更厉害"
)
_QUOTED = re.compile(r'"[^"]{1,160}"|“[^”]{1,160}”|「[^」]{1,160}」|《[^》]{1,80}》|『[^』]{1,160}』')
# "从来没这么头痛过" (never had a headache like this) is emphasis, not the past.
_NEVER_LIKE = re.compile(r"从没|从来没|从未|没这么|没有这么")

_NEGATOR = (
    r"(?:\b(?:no|not|never|without|denies|deny|denied|dont|didnt|doesnt|havent|hasnt|hadnt|isnt|arent"
    r"|wasnt|werent|nope|none|nor|free of)\b"
    r"|\b(?:không|khong|hông|chẳng|chang|chả|chưa|chua|hết|het|đâu có|dau co|chưa từng|chua tung)\b"
    r"|没有|没|無|无|不|未|从没有|从来没有|从没|并没有|不再|毫无)"
)
_FILLER = (
    r"(?:\s*(?:any|a|an|the|more|much|real|really|sign|signs|of|have|has|had|having|got|get|gotten|feel"
    r"|felt|feeling|experienced|experiencing|been|my|her|his|its|problems?|trouble|issues?|further|new"
    r"|other|obvious|significant|with|in|at|all|ever|so|too|very|bị|bi|có|co|còn|con|thấy|thay|hề|he"
    r"|từng|tung|bao giờ|bao gio|gì|gi|nhiều|nhieu|lắm|lam|hơi|hoi|cảm thấy|cam thay|bất kỳ|ai|"
    r"都|也|再|太|有|什么|任何|明显|感觉|觉得|过|出过|出现|发生|一点|点|会))*"
)
_LIST = (
    r"(?:\s*[^,.;!?。；！？]{1,24}?\s*"
    r"(?:\bor\b|\bnor\b|\band\b|\bhay\b|\bhoặc\b|\bhoac\b|\bvà\b|\bva\b|或|和|、|与|及|,|/))?"
)
_NEGATED = re.compile(_NEGATOR + _FILLER + _LIST + r"\s*$")
# "chưa hết khó thở" = still short of breath: a negated "gone" is not a negated symptom.
_DOUBLE_NEGATION = re.compile(r"(?:\bchưa|\bchua|\bvẫn|\bvan|\bkhông|\bkhong)\s+(?:hết|het)\s*$")
# "never had a headache like this" is emphasis, not a denial.
_LIKE_THIS = re.compile(
    r"^\W*(?:\S+\s+){0,2}?(?:like this|like that|this bad|như vầy|như vậy|như thế|như này|nhu vay|nhu the)"
)
_MILD = re.compile(
    r"(?:\b(?:a bit|a little|bit|slightly|mild|mildly|little|abit)|\bhơi|\bhoi|\bchút|\bchut|\bnhẹ|\bnhe"
    r"|有点|有一点|一点|稍微|稍|略|轻微)\s*$"
)
_OVER = re.compile(
    # "gone" is over, unless something has gone a colour or a state: "gone grey", "lips have gone blue"
    r"\b(?:went away|gone(?! (?:all |really |very |a bit )?(?:grey|gray|blue|white|pale|purple|floppy|limp"
    r"|quiet|cold|numb|dark|black|red|stiff|weak|dead|funny|weird|blurry|wobbly|from \S+ to))"
    r"|go away|goes away"
    r"|(?:is|are|was|much|getting|feel|feeling|feels|lot|loads) better"
    r"|better now|settled|stopped|healed|cleared|cleared up|went down|gone down|easier|eased|easing|resolved"
    r"|back to normal|fine now|all fine|ok now|okay now|doing fine|fine since|none since|since then|broke"
    r"|last time|it was (?:just )?(?:anxiety|stress|heartburn|indigestion|reflux|a panic attack)|calm now"
    r"|died (?:of|from)|passed away"
    r"|(?:years?|months?|decades?) ago|last (?:year|month|winter|summer|spring|autumn)|in the past"
    r"|years back|back in|in (?:19|20)\d\d|in the \d0s|as a (?:kid|child|baby|toddler|teen|teenager)"
    r"|when (?:i|he|she|they|we) (?:was|were)|used to|history of|(?<!at )once|working well|under control"
    r"|(?:was|were|is|are) (?:from|due to|caused by)|(?:doctor|doc|gp) said|checked me"
    r"|sorted (?:it|me)|(?:inhaler|tablets?|pills?|spray|medicine) (?:helped|worked|sorted))\b"
    r"|(?<!比)以前|之前|去年|前年|上个月|上月|上周|年前|年轻时|小时候|曾经|当年|\d{4}年|年代|好了|好多了|好些了|好点了"
    r"|好转|缓解|消了|消肿|退了|止住|没事了|过去了|恢复|正常了|不疼了|不痛了|再没|没再|后来没|之后没|管用"
    r"|一天比一天轻|减轻|轻了|轻多了|平静|引起的|导致的|是因为|走的|死于|去世"
    r"|\b(?:hết rồi|het roi|là hết|thì hết|thi het|đã hết|da het|hết hẳn|het han|sau đó hết|sau do het"
    r"|đỡ rồi|do roi|đỡ nhiều|do nhieu|đỡ hơn|do hon|đỡ hẳn|đã đỡ|da do|giờ đỡ|thấy đỡ|đỡ đau|ổn rồi|on roi"
    r"|khỏe rồi|khoe roi|khỏi rồi|khoi roi|lành rồi|lanh roi|lành tốt"
    r"|bình thường lại|binh thuong lai|năm ngoái|nam ngoai|tháng trước|thang truoc|tuần trước|tuan truoc"
    r"|hồi trẻ|hoi tre|hồi nhỏ|hoi nho|hồi bé|hoi be|hồi trước|hoi truoc|ngày xưa|ngay xua|trước đây"
    r"|truoc day|năm trước"
    r"|nam truoc|năm \d{4}|nam \d{4}|những năm|nhung nam|từ đó|tu do|không bị nữa|khong bi nua|dễ hơn|de hon"
    r"|giảm dần|giam dan|hiệu quả|hieu qua|cầm máu|cam mau|hết sưng|het sung|xẹp|một lần|mot lan|từng bị"
    r"|tung bi|là do|la do|do uống|do uong|bình tĩnh|binh tinh|mất vì|mat vi)\b"
)
_OVER_NEGATED = re.compile(
    r"(?:\b(?:not|never|no|isnt|hasnt|havent|wont|didnt|doesnt|arent|without|không|khong|chưa|chua)\s+"
    r"(?:\S+\s+)?|不|没|未|无|别)$"
)
_GENERAL = re.compile(
    r"\b(?:signs? of|symptoms? of|how (?:do|would|can|will) (?:i|you|we|they) (?:know|tell)|feel like in"
    r"|what does (?:a|an)? ?\S+ (?:\S+ )?feel like|can \S+ cause|genetic|hereditary|run in the family"
    r"|family history|my risk|raise my risk|screening|is it common|reading about|just curious"
    r"|when should i worry|what should i (?:watch|look out) for|what are the signs"
    r"|asking for (?:my|a friend)|just asking|just wondering|out of curiosity"
    r"|what (?:should|do|would|can) (?:i|we|you) do if|in case (?:i|he|she|we) (?:ever )?(?:get|have))\b"
    r"|哪些症状|什么症状|症状是什么|什么表现|哪些表现|怎么判断|怎么知道|如何判断|遗传|风险|筛查|随便问问"
    r"|帮.{0,6}问问|常见吗|这种多吗|会引起|什么程度|要注意什么|注意什么|哪些.{1,4}症状|想了解一下|科普"
    r"|(?:如果|假如|万一|要是).{0,16}(?:怎么办|该怎么|应该怎么|怎么处理)"
    r"|\b(?:dấu hiệu|dau hieu|biểu hiện|bieu hien|làm sao biết|lam sao biet|di truyền|di truyen|nguy cơ"
    r"|nguy co|tầm soát|tam soat|hỏi cho biết|hoi cho biet|có hay gặp|co hay gap|có gây|co gay"
    r"|thế nào thì|the nao thi|chú ý gì|chu y gi|lưu ý gì|luu y gi"
    r"|triệu chứng gì|trieu chung gi|triệu chứng như thế nào|trieu chung nhu the nao"
    r"|(?:ở|o) (?:trẻ|tre)(?: em| nhỏ| nho)? (?:có|co) (?:nguy hiểm|nguy hiem|sao|bị gì|bi gi)"
    r"|(?:nếu|neu).{0,30}(?:thì phải làm sao|thi phai lam sao|thì làm sao|thi lam sao|phải làm gì"
    r"|phai lam gi))\b"
)
_LAUGH = re.compile(
    r"\b(?:lol|lmao|haha\w*|hehe\w*|hihi\w*|kk+|rofl|jk)\b|哈哈|呵呵|嘻嘻|😂|🤣|😆|:\)\)|=\)\)"
    # "thở không nổi vì cười": out of breath from laughing
    r"|\b(?:vì cười|vi cuoi|cười quá|cuoi qua|cười đau bụng|cuoi dau bung|cười lăn|cuoi lan)\b"
)
_PAST_ASPECT = re.compile(r"^过(?!去|来|气)")


class Context:
    """Sentence and clause facts about one folded message, computed on demand."""

    def __init__(self, folded: str) -> None:
        self.folded = folded
        self._sentences = [m.end() for m in SENTENCE_BREAK.finditer(folded)]
        self._quotes: list[tuple[int, int]] | None = None

    def sentence(self, pos: int) -> tuple[int, int]:
        """The start and end of the sentence holding `pos`."""
        return self._sentence(pos)

    def _sentence(self, pos: int) -> tuple[int, int]:
        i = bisect_right(self._sentences, pos)
        start = self._sentences[i - 1] if i else 0
        end = self._sentences[i] if i < len(self._sentences) else len(self.folded)
        return start, end

    def in_sentence(self, tag: Span, pos: int) -> bool:
        start, end = self._sentence(pos)
        return start <= tag.start < end

    def _clause_before(self, pos: int) -> str:
        before = self.folded[self._sentence(pos)[0] : pos]
        return _CLAUSE_BREAK.split(before)[-1]

    def negated(self, start: int, end: int) -> bool:
        clause = self._clause_before(start)
        if not _NEGATED.search(clause) or _DOUBLE_NEGATION.search(clause):
            return False
        return not _LIKE_THIS.search(self.folded[end : end + 40])

    def _over(self, lo: int, hi: int) -> bool:
        """Said to be gone or long past: after the hit in its sentence (unless it then comes back), or
        before it in its clause ("back in 2019 I had a heart attack"), or Chinese 过 right after it."""
        after = self.folded[hi : self._sentence(lo)[1]]
        last_over = max(
            (m.end() for m in _OVER.finditer(after) if not _OVER_NEGATED.search(after[: m.start()][-16:])),
            default=-1,
        )
        if last_over >= 0 and not _RECUR.search(after, last_over):
            return True
        before = self._clause_before(lo)
        if any(not _OVER_NEGATED.search(before[: m.start()][-16:]) for m in _OVER.finditer(before)):
            return True
        return bool(_PAST_ASPECT.search(self.folded[hi : hi + 2])) and not _NEVER_LIKE.search(
            self.folded[max(0, lo - 8) : hi]
        )

    def flags(self) -> dict[str, bool]:
        """Whole-message context, for the classifier: said to be over, a general question, a joke."""
        end = len(self.folded)
        return {
            "over": bool(_OVER.search(self.folded)) or self._over(0, 0),
            "general": bool(_GENERAL.search(self.folded)),
            "laugh": bool(_LAUGH.search(self.folded)),
            "quoted": bool(_QUOTED.search(self.folded)),
            "long": end > 400,
        }

    def quoted(self, lo: int, hi: int) -> bool:
        """Inside quotation marks: a song, a title, someone else's words."""
        if self._quotes is None:  # found once per message: a long one is asked about many hits
            self._quotes = [m.span() for m in _QUOTED.finditer(self.folded)]
        return any(start <= lo and hi <= end for start, end in self._quotes)

    def discounted(self, tags: Sequence[Span], lo: int, hi: int, *, mild: bool = False) -> bool:
        """True when the hit is negated, over, long past, a general question, mild or a joke."""
        if self.negated(lo, hi):
            return True
        for t in tags:
            if t.concept in _CONTEXT_CONCEPTS:
                continue
            if self.negated(t.start, t.end):
                return True
        if mild and any(
            _MILD.search(self._clause_before(t.start)) for t in tags if t.concept not in _CONTEXT_CONCEPTS
        ):
            return True
        s_start, s_end = self._sentence(lo)
        sentence = self.folded[s_start:s_end]
        # A joke is judged on the hit's sentence and the one after it ("I'm dying lol"), not on a
        # laugh somewhere else in a long message.
        after = self._sentence(s_end)[1] if s_end < len(self.folded) else s_end
        return (
            self._over(lo, hi)
            or bool(_GENERAL.search(sentence))
            or bool(_LAUGH.search(self.folded, s_start, after))
            or self.quoted(lo, hi)
        )


# Concepts that set the scene rather than name a symptom: a negation before them does not deny the
# symptom ("no, my baby is 6 weeks and has a fever").
_CONTEXT_CONCEPTS = frozenset(
    {"INFANT", "PREGNANT", "SURGERY", "WOUND", "CHILD", "TRIGGER", "SUDDEN", "ONE_SIDE", "LIMB", "HEAD",
     "CHEST", "THROAT", "FACE", "SPEECH", "CALF", "STOOL", "TAKE", "DRUG"}
)  # fmt: skip
