"""Translations out to an agency as PO and back: keys as contexts, stale ones fuzzy, a translation of a
source text that changed since is not taken, a file for another language or not PO is refused."""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po

from backend.content.po import PoError, export_po, import_po

BODY = {
    "zh-CN": {"a": "你好 {name}", "b": "再见", "c": "谢谢"},
    "vi": {"a": "Chào {name}", "b": "Tạm biệt"},
    "en": {"a": "Hello {name}", "b": "Bye", "c": "Thanks"},
}


def _read(data: bytes) -> dict[str, tuple[str, str, bool]]:
    import io

    return {m.context: (m.id, m.string, m.fuzzy) for m in read_po(io.BytesIO(data)) if m.id}


def test_export_has_one_entry_per_key_with_the_source_text_and_stale_ones_fuzzy() -> None:
    data = export_po(BODY, "vi", "zh-CN", stale={("b", "vi")})
    assert _read(data) == {
        "a": ("你好 {name}", "Chào {name}", False),
        "b": ("再见", "Tạm biệt", True),
        "c": ("谢谢", "", False),
    }


def test_import_takes_new_translations_and_skips_those_whose_source_changed() -> None:
    data = export_po(BODY, "vi", "zh-CN").replace(
        b'msgstr ""\n\n', b'msgstr "C\xe1\xba\xa3m \xc6\xa1n"\n\n', 1
    )
    data = data.replace("Tạm biệt".encode(), "Hẹn gặp lại".encode())
    changed = {**BODY, "zh-CN": {**BODY["zh-CN"], "b": "再会"}}  # the source of b changed after the export
    taken = import_po(changed, data, "vi", "zh-CN")
    assert taken.body["vi"]["c"] == "Cảm ơn" and taken.updated == ["c"]
    assert taken.source_changed == ["b"] and taken.body["vi"]["b"] == "Tạm biệt"
    assert BODY["vi"] == {"a": "Chào {name}", "b": "Tạm biệt"}  # the input is untouched


@pytest.mark.parametrize(
    ("data", "lang", "message"),
    [
        (b"\x00\x01 not po", "vi", "not a PO file|for"),
        (None, "en", "not vi|for vi, not en"),
        (b"", "zh-CN", "cannot"),
    ],
)
def test_a_wrong_file_is_refused(data: bytes | None, lang: str, message: str) -> None:
    content = export_po(BODY, "vi", "zh-CN") if data is None else data
    with pytest.raises(PoError, match=message):
        import_po(BODY, content, lang, "zh-CN")
