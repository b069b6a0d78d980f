"""Page furniture of the PDF: fonts, styles, escaped paragraphs, paper-style tables, vector figures.

Every piece of user text (group labels, column labels, file names) goes through
:func:`paragraph` or :func:`esc`, so it can never be read as reportlab markup.
"""
from __future__ import annotations

import functools
import io
from pathlib import Path
from xml.sax.saxutils import escape

import matplotlib
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, Spacer, Table, TableStyle

PAGE = A4
MARGIN = 16 * mm
FRAME_PADDING = 6  # reportlab's default padding inside SimpleDocTemplate's frame, on every side
CONTENT_WIDTH = PAGE[0] - 2 * MARGIN - 2 * FRAME_PADDING
CONTENT_HEIGHT = PAGE[1] - 2 * MARGIN - 2 * FRAME_PADDING


@functools.lru_cache(maxsize=None)
def fonts() -> tuple[str, str]:
    """DejaVu Sans (shipped with matplotlib) for full Unicode: ±, ≥, –, †, any user's script."""
    base = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    pdfmetrics.registerFont(TTFont("DejaVuSans", str(base / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(base / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFontFamily("DejaVuSans", normal="DejaVuSans", bold="DejaVuSans-Bold",
                                  italic="DejaVuSans", boldItalic="DejaVuSans-Bold")
    return "DejaVuSans", "DejaVuSans-Bold"


def unsupported_text(texts) -> list[str]:
    """One sentence per piece of user text the PDF cannot show as written: characters the font
    (DejaVu Sans) has no glyph for are drawn as empty boxes, and right-to-left scripts (Hebrew,
    Arabic, ...) are drawn left to right, letter by letter, without Arabic joining — reportlab
    does no bidirectional layout or shaping. The CSVs keep such text exactly."""
    import unicodedata

    regular, _ = fonts()
    glyphs = pdfmetrics.getFont(regular).face.charToGlyph
    sentences = []
    for text in dict.fromkeys(str(t) for t in texts):
        missing = sorted({ch for ch in text if ord(ch) not in glyphs and not ch.isspace()
                          and unicodedata.category(ch)[0] != "C"})
        if missing:
            sentences.append(f"the PDF font has no glyph for {' '.join(missing)} (in {text!r}): drawn as "
                             f"boxes in report.pdf; the CSVs keep the text exactly")
        if any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text):
            sentences.append(f"{text!r} is right-to-left text: report.pdf draws it left to right (letters "
                             f"in reverse reading order, Arabic unjoined); the CSVs keep it exactly")
    return sentences


@functools.lru_cache(maxsize=None)
def styles() -> dict[str, ParagraphStyle]:
    regular, bold = fonts()
    return {
        "title": ParagraphStyle("title", fontName=bold, fontSize=15, leading=19, spaceAfter=6),
        "heading": ParagraphStyle("heading", fontName=bold, fontSize=11.5, leading=14, spaceBefore=8,
                                  spaceAfter=4),
        "caption": ParagraphStyle("caption", fontName=bold, fontSize=9, leading=11.5, spaceAfter=4),
        "body": ParagraphStyle("body", fontName=regular, fontSize=9, leading=12, alignment=TA_LEFT),
        "cell": ParagraphStyle("cell", fontName=regular, fontSize=7.6, leading=9.4),
        "cell_bold": ParagraphStyle("cell_bold", fontName=bold, fontSize=7.6, leading=9.4),
        "note": ParagraphStyle("note", fontName=regular, fontSize=7.2, leading=9, textColor=colors.HexColor("#333333")),
    }


def esc(text) -> str:
    """Escape user text for a reportlab paragraph (``&``, ``<``, ``>``, quotes)."""
    return escape(str(text), {'"': "&quot;", "'": "&#39;"})


def paragraph(text, style: str = "body", markup: bool = False) -> Paragraph:
    """A paragraph of plain text (escaped) — pass ``markup=True`` only for bagkit's own markup."""
    body = str(text) if markup else esc(text).replace("\n", "<br/>")
    return Paragraph(body, styles()[style])


#: the tallest a table cell may be: taller text (a 500-character group label, say) is shortened
#: with "…" so that no row outgrows a page; the CSVs keep every label whole
MAX_CELL_HEIGHT = CONTENT_HEIGHT / 8
CELL_PADDING = 2 * 2.5


def fitted_cell(text, style: str, width: float, max_height: float = MAX_CELL_HEIGHT) -> Paragraph:
    """A table cell of ``text`` (escaped) no taller than ``max_height`` at ``width``: text that
    would be taller is cut at the longest prefix that fits, ending in "…"."""
    text = str(text)
    cell = paragraph(text, style)
    inner = max(width - CELL_PADDING, 1.0)
    if cell.wrap(inner, CONTENT_HEIGHT)[1] <= max_height:
        return cell
    low, high = 0, len(text)  # the longest prefix that fits lies in [low, high)
    while high - low > 1:
        middle = (low + high) // 2
        if paragraph(text[:middle] + "…", style).wrap(inner, CONTENT_HEIGHT)[1] <= max_height:
            low = middle
        else:
            high = middle
    return paragraph(text[:low].rstrip() + "…", style)


def paper_table(rows: list[list[str]], col_widths: list[float], section_rows: set[int] = frozenset(),
                header_rows: int = 1) -> Table:
    """A three-line table as journals set them: rule above and below the header and at the end."""
    cells = []
    for i, row in enumerate(rows):
        style = "cell_bold" if i < header_rows or i in section_rows else "cell"
        cells.append([fitted_cell(value, style, width) for value, width in zip(row, col_widths)])
    table = Table(cells, colWidths=col_widths, repeatRows=header_rows, hAlign="LEFT")
    commands = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEABOVE", (0, 0), (-1, 0), 0.9, colors.black),
        ("LINEBELOW", (0, header_rows - 1), (-1, header_rows - 1), 0.6, colors.black),
        ("LINEBELOW", (0, -1), (-1, -1), 0.9, colors.black),
        ("TOPPADDING", (0, 0), (-1, -1), 1.6),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.6),
        ("LEFTPADDING", (0, 0), (-1, -1), 2.5),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2.5),
    ]
    for i in section_rows:
        commands.append(("BACKGROUND", (0, i), (-1, i), colors.HexColor("#EEF1F5")))
    table.setStyle(TableStyle(commands))
    return table


def group_table_widths(n_groups: int, label: float = 0.25, p: float = 0.21) -> list[float]:
    rest = CONTENT_WIDTH * (1 - label - p) / max(n_groups, 1)
    return [CONTENT_WIDTH * label, *([rest] * n_groups), CONTENT_WIDTH * p]


RASTERIZE_ABOVE = 2000  # points in one scatter; more are embedded as a 300-dpi image in the vector figure


def figure(fig, width: float = CONTENT_WIDTH, png_path: Path | None = None):
    """A matplotlib Figure as vector graphics (SVG → reportlab Drawing), scaled to ``width``;
    a PNG copy is written to ``png_path`` when given."""
    from svglib.svglib import svg2rlg

    for ax in fig.axes:  # big point clouds go in as an image: svglib caps an SVG at 10 000 <use> marks
        for collection in ax.collections:
            if len(getattr(collection, "get_offsets", lambda: ())()) > RASTERIZE_ABOVE:
                collection.set_rasterized(True)
    if png_path is not None:
        png_path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(png_path, format="png", dpi=150, bbox_inches="tight")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", dpi=300)
    buffer.seek(0)
    drawing = svg2rlg(buffer)
    scale = min(width / drawing.width, CONTENT_HEIGHT * 0.8 / drawing.height)
    drawing.width, drawing.height = drawing.width * scale, drawing.height * scale
    drawing.scale(scale, scale)
    drawing.hAlign = "CENTER"
    return drawing


def gap(height_mm: float = 3) -> Spacer:
    return Spacer(1, height_mm * mm)
