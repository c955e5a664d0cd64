"""Addresses in message text become links; everything else stays escaped text."""

from __future__ import annotations

from backend.web.text_links import linkify, split_links


def test_an_address_becomes_a_link_and_the_sentence_stop_stays_outside() -> None:
    html = str(linkify("Fill in the form: https://h.example/q/abc?x=1&y=2. Thanks"))
    assert html == (
        'Fill in the form: <a href="https://h.example/q/abc?x=1&amp;y=2" rel="noopener">'
        "https://h.example/q/abc?x=1&amp;y=2</a>. Thanks"
    )


def test_markup_in_the_text_is_escaped_and_only_http_addresses_link() -> None:
    html = str(linkify('<script>alert(1)</script> javascript:alert(1) "http://ok.example/a"'))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert 'href="javascript' not in html
    assert '<a href="http://ok.example/a" rel="noopener">' in html


def test_chinese_punctuation_ends_an_address() -> None:
    runs = split_links("请填写问卷：https://h.example/q/x。谢谢")
    assert runs == [("请填写问卷：", False), ("https://h.example/q/x", True), ("。谢谢", False)]


def test_text_without_addresses_comes_back_whole() -> None:
    assert split_links("no links here") == [("no links here", False)]
    assert split_links("") == []
    text = "a https://x.example/1 b http://y.example/2) c"
    assert "".join(piece for piece, _ in split_links(text)) == text
