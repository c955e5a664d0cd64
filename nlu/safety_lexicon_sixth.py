"""Lay phrasings from the sixth batch of development messages (docs/safety.md): Vietnamese poisoning,
seizure, self-harm and unconsciousness, English breathing and post-operative pain, each found missing
when the batch was scored as written. nlu/safety_lexicon.py adds them to its concepts."""

from __future__ import annotations

SIXTH: dict[str, tuple[str, ...]] = {
    # a poison named by what it is in the countryside and the kitchen, or by how the air went bad
    "CHEMICAL": ("nấm hái", "nấm lạ", "nấm trên rừng", "lá ngón", "cá nóc", "cồn công nghiệp"),
    "GAS": ("khí gas", "rò rỉ gas", "rò gas", "hở gas", "xì gas", "đốt than", "than sưởi", "sưởi than"),
    "GAS_SICK": ("lơ mơ", "li bì", "mệt lả", "lả đi"),
    "INGEST": ("nhai", "chewed"),
    "OD_AMOUNT": ("nửa vỉ", "hết nửa", "mấy vỉ"),
    # a fit described by what the family sees
    "SEIZURE": ("co quắp", "mắt trợn", "kinh phong", "lên cơn không ngừng", "giật kinh"),
    # an overdose or a jump said without the C-SSRS words
    "SH": (
        "uống nhiều thuốc ngủ", "nhiều thuốc ngủ lắm", "uống cả vỉ thuốc ngủ", "nhảy xuống là xong",
        "nhảy xuống cho xong", "kết thúc mọi thứ tối nay",
    ),
    # someone who does not answer, lying still
    "UNC": (
        "nằm im không", "gọi không được", "gọi không thưa", "nằm bất động", "mê man", "nằm gục",
        "hỏi gì cũng không biết", "hỏi không biết gì",
    ),
    # English breathing and post-operative pain in the words of a tired patient
    "BLUE_LIPS": ("lips are going blue", "lips have gone blue", "lips went blue"),
    "BREATH_WORD": ("breathin", "breathn"),
    "EFFORT": ("rly hard", "really hard", "so hard"),
    "SURGERY": ("operated", "operated on", "where they cut", "where they operated"),
    "AGONY": (
        "through the roof", "nothing helps", "nothing is helping", "nothing touches it",
        "nothing is touching it",
    ),
    "SEVERE": ("way worse", "so much worse", "hurts so much"),
}  # fmt: skip
