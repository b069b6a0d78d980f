"""Page geometry and column sizing shared by the page formats (PDF, Word): fonts, the content box,
and column widths measured from the cells' own text with reportlab's ``stringWidth``.

The rule the layout keeps: **no cell breaks inside a word or a number**. A column is at least as
wide as its longest word (plus padding); a table whose columns cannot all fit the portrait
text width goes on a landscape page, and only if it does not fit there either is its font made
smaller. Every piece of user text reaching reportlab goes through :func:`esc`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

PAGE = A4
LANDSCAPE = landscape(A4)
MARGIN = 16 * mm
FRAME_PADDING = 6  # reportlab's default padding inside a Frame, on every side
CONTENT_WIDTH = PAGE[0] - 2 * MARGIN - 2 * FRAME_PADDING
CONTENT_HEIGHT = PAGE[1] - 2 * MARGIN - 2 * FRAME_PADDING
LANDSCAPE_WIDTH = LANDSCAPE[0] - 2 * MARGIN - 2 * FRAME_PADDING
LANDSCAPE_HEIGHT = LANDSCAPE[1] - 2 * MARGIN - 2 * FRAME_PADDING

CELL_FONT_SIZE = 7.6
SMALLEST_FONT_SIZE = 6.0
CELL_PADDING = 2.5  # left and right, points


def _font_dir() -> Path:
    import matplotlib  # DejaVu ships with matplotlib: full Unicode (±, ≥, –, †, any user's script)

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@functools.lru_cache(maxsize=None)
def fonts() -> tuple[str, str]:
    """DejaVu Sans regular and bold, registered with reportlab once."""
    base = _font_dir()
    pdfmetrics.registerFont(TTFont("DejaVuSans", str(base / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(base / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFontFamily("DejaVuSans", normal="DejaVuSans", bold="DejaVuSans-Bold",
                                  italic="DejaVuSans", boldItalic="DejaVuSans-Bold")
    return "DejaVuSans", "DejaVuSans-Bold"


def esc(text) -> str:
    """Escape user text for a reportlab paragraph (``&``, ``<``, ``>``, quotes)."""
    return escape(str(text), {'"': "&quot;", "'": "&#39;"})


@functools.lru_cache(maxsize=65536)  # the same words are measured by every table, pass and renderer
def text_width(text: str, size: float = CELL_FONT_SIZE, bold: bool = False) -> float:
    regular, heavy = fonts()
    return pdfmetrics.stringWidth(text, heavy if bold else regular, size)


def _widths(cell: str, size: float, bold: bool) -> tuple[float, float]:
    """(longest word, longest line) of a cell, in points."""
    lines = cell.split("\n")
    words = [w for line in lines for w in line.split()] or [""]
    return (max(text_width(w, size, bold) for w in words), max(text_width(line, size, bold) for line in lines))


@dataclass(frozen=True)
class TableLayout:
    """How a table is set on a page: column widths (points), font size, orientation."""

    name: str
    widths: tuple[float, ...]
    font_size: float
    landscape: bool

    @property
    def total(self) -> float:
        return sum(self.widths)


def column_widths(table, available: float, size: float) -> tuple[float, ...] | None:
    """Columns sized from their content so no word breaks; None when even that cannot fit.

    Each column needs its longest word and would like its longest line; the width left once every
    column has its need is shared in proportion to what each still wants, and any rest spreads
    evenly so the table spans the text width. Spanning header cells are left out of the measure.
    """
    n = table.n_columns
    need = [0.0] * n
    want = [0.0] * n
    covered = {(r, c) for r, first, last in table.spans for c in range(first, last + 1)}
    first_cells = {(r, first) for r, first, _ in table.spans}
    for r, row in enumerate(table.rows):
        header = r < len(table.header)
        section = not header and (r - len(table.header)) in table.section_rows
        for c, cell in enumerate(row):
            if (r, c) in covered and (r, c) in first_cells or (section and c == 0):
                continue  # spanning headers and section headings run across the row
            word, line = _widths(cell, size, bold=header)
            need[c] = max(need[c], word + 2 * CELL_PADDING + 0.5)
            want[c] = max(want[c], line + 2 * CELL_PADDING + 0.5)
    if sum(need) > available:
        return None
    if sum(want) <= available:
        spare = available - sum(want)
        return tuple(w + spare * w / sum(want) for w in want)
    # water-filling: every column is clamp(level, its need, its want) for the one level that fills
    # the width, so short columns (p values, counts, estimates) keep their whole line, alike columns
    # get alike widths, and only the widest (labels, long text) wrap — between words
    low, high = 0.0, max(want)
    for _ in range(60):
        level = (low + high) / 2
        if sum(min(max(level, m), w) for m, w in zip(need, want)) > available:
            high = level
        else:
            low = level
    widths = [min(max(low, m), w) for m, w in zip(need, want)]
    widths[0] += available - sum(widths)  # rounding left over
    return tuple(widths)


@functools.lru_cache(maxsize=512)
def table_layout(table) -> TableLayout:
    """Portrait at the cell font if it fits, else landscape, else a smaller font (landscape).
    Cached (a :class:`~bagkit.report.tables.Table` is frozen): every renderer and every PDF pass
    asks for the same table's layout."""
    if not table.landscape:
        widths = column_widths(table, CONTENT_WIDTH, CELL_FONT_SIZE)
        if widths is not None:
            return TableLayout(table.name, widths, CELL_FONT_SIZE, False)
    size = CELL_FONT_SIZE
    while size >= SMALLEST_FONT_SIZE:
        widths = column_widths(table, LANDSCAPE_WIDTH, size)
        if widths is not None:
            return TableLayout(table.name, widths, size, True)
        size -= 0.4
    # a cell with one enormous word: give every column an equal share and let reportlab wrap
    n = table.n_columns
    return TableLayout(table.name, tuple([LANDSCAPE_WIDTH / n] * n), SMALLEST_FONT_SIZE, True)


def words_broken(table, layout: TableLayout) -> list[tuple[int, int, str]]:
    """(row, column, word) of every word wider than its column at this layout — words that a
    renderer would have to break. Empty for every layout :func:`table_layout` returns unless a
    single word is wider than a landscape page."""
    covered = {(r, c) for r, first, last in table.spans for c in range(first, last + 1)}
    out = []
    for r, row in enumerate(table.rows):
        header = r < len(table.header)
        section = not header and (r - len(table.header)) in table.section_rows
        for c, cell in enumerate(row):
            if (r, c) in covered or (section and c == 0):
                continue
            room = layout.widths[c] - 2 * CELL_PADDING
            for word in cell.split():
                if text_width(word, layout.font_size, header) > room:
                    out.append((r, c, word))
    return out


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
