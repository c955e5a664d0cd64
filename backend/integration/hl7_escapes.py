"""HL7 escape sequences made safe before parsing: hex bytes in the message's own character set, and the
sequences python-hl7 would mangle or log. Pure.

python-hl7 unescapes \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ and \\.br\\ itself, with the separators the message
declares in MSH-2. Three things it does not do as a receiver needs, so they are settled here first:

- `\\Xhh…\\` (hex data) is turned byte by byte into Latin-1 characters, so `\\XE4B8AD\\` (UTF-8 for 中)
  would come out as three wrong letters. Here the bytes are decoded with the message's codec and any
  separator among them is written back as its own escape.
- `\\H\\`/`\\N\\` (highlighting) become "_", and unknown or local sequences (`\\Zxx\\`, `\\Cxxxx\\`
  code-page switches) are logged by python-hl7 with the whole field, a name or a note: patient data in
  the log. Highlighting is dropped here; unknown sequences are dropped too (they carry no text).
- An escape character with no closing one in the same field (a Windows path `C:\\temp` typed into a
  note) makes python-hl7 swallow the rest of the field. Here it stays a literal backslash (`\\E\\`).
"""

from __future__ import annotations

_KEPT = {"F", "S", "T", "R", "E"}  # python-hl7 turns these into the separator characters
_FORMATTING = (".br", ".sp", ".fi", ".nf", ".in", ".ti", ".sk", ".ce")  # formatted text (FT) commands


def expand_escapes(text: str, codec: str) -> str:
    """The message with hex, highlight and unknown escapes settled; text is normalised (`\\r` segments)."""
    if not text.startswith("MSH") or len(text) < 8:
        return text
    field_sep = text[3]
    encoding = text[4:].split(field_sep, 1)[0]
    if len(encoding) < 3:
        return text  # no escape character declared: a backslash is just a backslash
    component, repetition, esc = encoding[0], encoding[1], encoding[2]
    sub = encoding[3] if len(encoding) > 3 else ""
    if esc not in text[4 + len(encoding) :]:
        return text
    separators = {field_sep: "F", component: "S", repetition: "R", esc: "E"}
    if sub:
        separators[sub] = "T"
    stops = set(separators) | {"\r"}
    lines = text.split("\r")
    out = []
    for index, line in enumerate(lines):
        if index == 0:  # MSH-1 and MSH-2 are the separators themselves, not escaped text
            head = 4 + len(encoding)
            out.append(line[:head] + _expand(line[head:], esc, stops, separators, codec))
        else:
            out.append(_expand(line, esc, stops, separators, codec))
    return "\r".join(out)


def _expand(line: str, esc: str, stops: set[str], separators: dict[str, str], codec: str) -> str:
    if esc not in line:
        return line
    parts: list[str] = []
    i = 0
    while i < len(line):
        char = line[i]
        if char != esc:
            parts.append(char)
            i += 1
            continue
        close = i + 1
        while close < len(line) and line[close] != esc and line[close] not in stops:
            close += 1
        if close >= len(line) or line[close] != esc:
            parts.append(f"{esc}E{esc}")  # a lone escape character: a literal one
            i += 1
            continue
        parts.append(_sequence(line[i + 1 : close], esc, separators, codec))
        i = close + 1
    return "".join(parts)


def _sequence(body: str, esc: str, separators: dict[str, str], codec: str) -> str:
    if body in _KEPT or body.startswith(_FORMATTING):
        return f"{esc}{body}{esc}"
    if body[:1] == "X" and len(body) > 1 and len(body) % 2 == 1:
        try:
            raw = bytes.fromhex(body[1:])
        except ValueError:
            return ""
        decoded = raw.decode(codec, errors="replace")
        return "".join(
            f"{esc}{separators[c]}{esc}" if c in separators else " " if c in "\r\n" else c
            for c in decoded
            if c.isprintable() or c in "\r\n"
        )
    return ""  # \H\, \N\ (highlighting), \Z..\ (local), \C..\ / \M..\ (code-page switches), junk
