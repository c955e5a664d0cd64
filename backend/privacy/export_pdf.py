"""The patient's data export as a readable PDF (WeasyPrint), in the staff member's language, with fonts
that render Chinese and Vietnamese: DejaVu Sans for Latin with Vietnamese marks, Noto Sans CJK SC
(Debian's fonts-noto-cjk, as for the other PDFs and charts) for Chinese."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from backend.i18n import translations
from backend.privacy.export import SECTIONS, ExportContent
from backend.work.runs import WorkError

FONT_STACK = '"DejaVu Sans", "Noto Sans CJK SC", "Noto Sans CJK", sans-serif'
_env = Environment(
    loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=select_autoescape(["html"]),
)


def render_html(content: ExportContent, *, name: str, language: str, now: datetime | None = None) -> str:
    template = _env.get_template("export.html")
    return template.render(
        _=translations(language).gettext,
        lang=language,
        name=name,
        rows=content.rows,
        sections=SECTIONS,
        fonts=FONT_STACK,
        made_at=(now or datetime.now().astimezone()).strftime("%Y-%m-%d %H:%M %Z"),
    )


def render_pdf(content: ExportContent, *, name: str, language: str) -> bytes:
    try:
        from weasyprint import HTML
    except ImportError as exc:  # heavy, with system libraries (Pango): imported only here
        raise WorkError("PDF export needs WeasyPrint (pip install weasyprint) and Pango") from exc
    return bytes(HTML(string=render_html(content, name=name, language=language)).write_pdf())
