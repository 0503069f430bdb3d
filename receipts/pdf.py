"""Receipts as PDF, laid out by ReportLab from a Django template.

The template (templates/receipts/pdf/*.txt) says what a receipt states, one
block a line: `kind|text` (or `row|label|value` for the table of particulars);
text uses ReportLab's paragraph markup, which Django's HTML escaping keeps safe.
This module only lays the blocks out on an A4 page."""
from __future__ import annotations

import io
import os
from functools import lru_cache

from django.template.loader import render_to_string
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import HRFlowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

FONT_CANDIDATES = (
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
)


@lru_cache(maxsize=1)
def _fonts() -> tuple[str, str]:
    """A Unicode TrueType font (names in any script), else ReportLab's own Vera."""
    import reportlab

    bundled = os.path.join(os.path.dirname(reportlab.__file__), "fonts")
    for regular, bold in (*FONT_CANDIDATES, (os.path.join(bundled, "Vera.ttf"), os.path.join(bundled, "VeraBd.ttf"))):
        if os.path.exists(regular) and os.path.exists(bold):
            pdfmetrics.registerFont(TTFont("ReceiptSans", regular))
            pdfmetrics.registerFont(TTFont("ReceiptSans-Bold", bold))
            pdfmetrics.registerFontFamily("ReceiptSans", normal="ReceiptSans", bold="ReceiptSans-Bold",
                                          italic="ReceiptSans", boldItalic="ReceiptSans-Bold")
            return "ReceiptSans", "ReceiptSans-Bold"
    return "Helvetica", "Helvetica-Bold"


def _styles() -> dict[str, ParagraphStyle]:
    regular, bold = _fonts()
    base = ParagraphStyle("base", fontName=regular, fontSize=10, leading=14)
    return {
        "issuer": ParagraphStyle("issuer", parent=base, fontName=bold, fontSize=14, leading=18),
        "small": ParagraphStyle("small", parent=base, fontSize=8.5, leading=11, textColor=colors.HexColor("#444444")),
        "title": ParagraphStyle("title", parent=base, fontName=bold, fontSize=18, leading=24, spaceBefore=6, spaceAfter=4),
        "heading": ParagraphStyle("heading", parent=base, fontName=bold, fontSize=11, leading=15, spaceBefore=8, spaceAfter=2),
        "para": ParagraphStyle("para", parent=base, spaceAfter=4),
        "strong": ParagraphStyle("strong", parent=base, fontName=bold, spaceAfter=4),
        "label": ParagraphStyle("label", parent=base, textColor=colors.HexColor("#444444")),
        "value": ParagraphStyle("value", parent=base, fontName=bold),
        "num": ParagraphStyle("num", parent=base, alignment=TA_RIGHT),
        "withdrawn": ParagraphStyle("withdrawn", parent=base, fontName=bold, fontSize=12, textColor=colors.HexColor("#a40000")),
    }


def _table(rows: list[list[str]], styles, *, widths, header: bool = False) -> Table:
    cells = []
    for i, row in enumerate(rows):
        line = []
        for j, text in enumerate(row):
            style = styles["value"] if (header and i == 0) else styles["label"] if (not header and j == 0) else styles["para"]
            if header and j == len(row) - 1:
                style = ParagraphStyle("numcol", parent=style, alignment=TA_RIGHT)
            line.append(Paragraph(text, style))
        cells.append(line)
    table = Table(cells, colWidths=widths, hAlign="LEFT")
    commands = [("VALIGN", (0, 0), (-1, -1), "TOP"), ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#cccccc")),
                ("TOPPADDING", (0, 0), (-1, -1), 3), ("BOTTOMPADDING", (0, 0), (-1, -1), 3)]
    if header:
        commands.append(("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black))
    table.setStyle(TableStyle(commands))
    return table


def render_blocks(template: str, context: dict, *, title: str) -> bytes:
    """Render `template` to blocks and lay them out: one A4 PDF, as bytes."""
    styles = _styles()
    text = render_to_string(template, context)
    story: list = []
    rows: list[list[str]] = []
    lines: list[list[str]] = []
    width = A4[0] - 40 * mm

    def flush():
        if rows:
            story.append(_table(rows, styles, widths=[width * 0.35, width * 0.65]))
            rows.clear()
        if lines:
            n = len(lines[0])
            widths = [width * 0.2] + [width * 0.8 / (n - 1)] * (n - 1) if n > 1 else [width]
            story.append(_table(lines, styles, widths=widths, header=True))
            lines.clear()

    for raw in text.splitlines():
        raw = raw.strip()
        if not raw or "|" not in raw:
            continue
        kind, _, rest = raw.partition("|")
        if kind == "row":
            label, _, value = rest.partition("|")
            rows.append([label, value])
            continue
        if kind == "line":
            lines.append(rest.split("|"))
            continue
        flush()
        if kind == "space":
            story.append(Spacer(1, 4 * mm))
        elif kind == "rule":
            story.append(HRFlowable(width="100%", thickness=0.6, color=colors.HexColor("#999999"), spaceBefore=4, spaceAfter=4))
        elif kind in styles:
            story.append(Paragraph(rest, styles[kind]))
    flush()
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm,
                            bottomMargin=18 * mm, title=title, author=context.get("issuer", {}).get("legal_name", ""),
                            subject=title, creator="Together")
    doc.build(story)
    return out.getvalue()
