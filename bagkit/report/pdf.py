"""report.pdf: the report model laid out with reportlab; figures embedded as vector graphics.

Tables are sized by :func:`bagkit.report.layout.table_layout` (no cell breaks inside a word;
landscape pages where a table needs them). Figures are saved once by matplotlib as vector PDF
and stamped, still vector, into the places reportlab reserved for them (pypdf), which is many
times faster than converting each figure to reportlab drawings.
"""
from __future__ import annotations

import functools
import io
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    KeepTogether,
    NextPageTemplate,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    TableStyle,
)
from reportlab.platypus import Table as RLTable

from bagkit.report.layout import (
    CONTENT_HEIGHT,
    CONTENT_WIDTH,
    LANDSCAPE,
    LANDSCAPE_HEIGHT,
    MARGIN,
    PAGE,
    TableLayout,
    esc,
    fonts,
    table_layout,
)
from bagkit.report.tables import Document, Figure, Table, Text, Together

__all__ = ["build_pdf"]


@functools.lru_cache(maxsize=None)
def styles() -> dict[str, ParagraphStyle]:
    regular, bold = fonts()
    return {
        "title": ParagraphStyle("title", fontName=bold, fontSize=15, leading=19, spaceAfter=6),
        "part": ParagraphStyle("part", fontName=bold, fontSize=13.5, leading=17, spaceAfter=6),
        "heading": ParagraphStyle("heading", fontName=bold, fontSize=11.5, leading=14, spaceBefore=8, spaceAfter=4),
        "caption": ParagraphStyle("caption", fontName=bold, fontSize=9, leading=11.5, spaceAfter=4),
        "body": ParagraphStyle("body", fontName=regular, fontSize=9, leading=12, alignment=TA_LEFT, spaceAfter=4),
        "note": ParagraphStyle("note", fontName=regular, fontSize=7.2, leading=9,
                               textColor=colors.HexColor("#333333")),
    }


@functools.lru_cache(maxsize=None)
def cell_style(size: float, bold: bool, split: bool = False) -> ParagraphStyle:
    regular, heavy = fonts()
    # splitLongWords=0: a word is never cut; the layout makes every column wide enough for its words
    # (only a word wider than a landscape page — a 500-character label — is split, see _cell)
    return ParagraphStyle(f"cell{size}{bold}{split}", fontName=heavy if bold else regular, fontSize=size,
                          leading=size * 1.24, splitLongWords=int(split))


MAX_CELL_HEIGHT = CONTENT_HEIGHT / 8  # taller cell text is cut with "…" (the CSVs keep it whole)


def _cell(text: str, size: float, bold: bool, width: float) -> Paragraph:
    """A cell's paragraph; a word wider than the column (only in the last-resort layout) may be
    split, and text taller than MAX_CELL_HEIGHT is cut at the longest prefix that fits, ending "…"."""
    from bagkit.report.layout import CELL_PADDING, text_width

    inner = max(width - 2 * CELL_PADDING, 1.0)
    split = any(text_width(w, size, bold) > inner for w in text.split())
    style = cell_style(size, bold, split)

    def make(value):
        return Paragraph(esc(value).replace("\n", "<br/>"), style)

    cell = make(text)
    if not split or cell.wrap(inner, CONTENT_HEIGHT)[1] <= MAX_CELL_HEIGHT:
        return cell
    low, high = 0, len(text)
    while high - low > 1:
        middle = (low + high) // 2
        if make(text[:middle] + "…").wrap(inner, CONTENT_HEIGHT)[1] <= MAX_CELL_HEIGHT:
            low = middle
        else:
            high = middle
    return make(text[:low].rstrip() + "…")


def paragraph(text, style: str = "body") -> Paragraph:
    return Paragraph(esc(text).replace("\n", "<br/>"), styles()[style])


class CaptionedFigure(Flowable):
    """A caption over the room for a figure. Where the room lands is recorded and the vector figure
    stamped there once the PDF is built. When the page has less room left than the figure needs but
    at least ``SHRINK`` of it, the figure is drawn that much smaller rather than leaving the page's
    foot empty (so pages are used, and no page holds a lone figure that could have shared one)."""

    SHRINK = 0.7
    GAP = 3

    def __init__(self, caption: Paragraph, key: str, width: float, height: float, placed: list):
        super().__init__()
        self.caption, self.key, self.placed = caption, key, placed
        self.figure_width, self.figure_height = width, height
        self.scale = 1.0

    def wrap(self, available_width, available_height):
        self.available_width = available_width
        _, self.caption_height = self.caption.wrap(available_width, available_height)
        fixed = self.caption_height + self.GAP
        self.scale = 1.0
        if fixed + self.figure_height > available_height >= fixed + self.SHRINK * self.figure_height:
            self.scale = (available_height - fixed) / self.figure_height
        return available_width, fixed + self.figure_height * self.scale

    def split(self, available_width, available_height):
        return []

    def draw(self):
        width, height = self.figure_width * self.scale, self.figure_height * self.scale
        self.caption.drawOn(self.canv, 0, height + self.GAP)
        x, y = self.canv.absolutePosition((self.available_width - width) / 2, 0)
        self.placed.append((self.canv.getPageNumber(), x, y, width, height, self.key))


def _rl_table(table: Table, layout: TableLayout) -> RLTable:
    n_header = len(table.header)
    cells = []
    for r, row in enumerate(table.rows):
        bold = r < n_header or (r - n_header) in table.section_rows
        cells.append([_cell(v, layout.font_size, bold, w) for v, w in zip(row, layout.widths)])
    out = RLTable(cells, colWidths=list(layout.widths), repeatRows=n_header, hAlign="LEFT")
    commands = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEABOVE", (0, 0), (-1, 0), 0.9, colors.black),
        ("LINEBELOW", (0, n_header - 1), (-1, n_header - 1), 0.6, colors.black),
        ("LINEBELOW", (0, -1), (-1, -1), 0.9, colors.black),
        ("TOPPADDING", (0, 0), (-1, -1), 1.6),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.6),
        ("LEFTPADDING", (0, 0), (-1, -1), 2.5),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2.5),
    ]
    for r, first, last in table.spans:
        commands += [("SPAN", (first, r), (last, r)), ("LINEBELOW", (first, r), (last, r), 0.4, colors.black)]
    for i in table.section_rows:
        commands += [("SPAN", (0, n_header + i), (-1, n_header + i)),
                     ("BACKGROUND", (0, n_header + i), (-1, n_header + i), colors.HexColor("#EEF1F5"))]
    out.setStyle(TableStyle(commands))
    return out


class _Builder:
    def __init__(self, store):
        self.store = store
        self.placed: list = []
        self.layouts: list[TableLayout] = []

    def table(self, table: Table, landscape_page: bool) -> list:
        layout = table_layout(table)
        self.layouts.append(layout)
        body = _rl_table(table, layout)
        head = [paragraph(table.caption, "caption")]
        notes = [Spacer(1, 1.5 * mm)] + [paragraph(n, "note") for n in table.footnotes]
        height = CONTENT_HEIGHT if not landscape_page else LANDSCAPE_HEIGHT
        width = CONTENT_WIDTH if not layout.landscape else layout.total
        tall = body.wrap(width, height)[1] > 0.7 * height
        # a caption, its table and its notes stay on one page unless the table is most of a page
        flow = head + [body] + notes if tall else [KeepTogether(head + [body] + notes)]
        return flow + [Spacer(1, 4 * mm)]

    def figure(self, block: Figure, landscape_page: bool) -> list:
        inches_w, inches_h = self.store.size_inches(block)
        box_w = (CONTENT_WIDTH if not landscape_page else LANDSCAPE[0] - 2 * MARGIN - 12) * block.width
        box_h = (CONTENT_HEIGHT if not landscape_page else LANDSCAPE_HEIGHT) * 0.72
        scale = min(box_w / (inches_w * 72), box_h / (inches_h * 72))
        return [CaptionedFigure(paragraph(block.caption, "caption"), block.name, inches_w * 72 * scale,
                                inches_h * 72 * scale, self.placed), Spacer(1, 4 * mm)]

    def blocks(self, blocks, landscape_page: bool = False) -> list:
        out: list = []
        for block in blocks:
            if isinstance(block, Together):
                inner = self.blocks(block.blocks, landscape_page)
                out.append(KeepTogether(inner) if len(block.blocks) > 1 else inner[0])
                out += inner[1:] if len(block.blocks) == 1 else []
            elif isinstance(block, Table):
                if table_layout(block).landscape and not landscape_page:
                    out += [NextPageTemplate("landscape"), PageBreak(), *self.table(block, True),
                            NextPageTemplate("portrait"), PageBreak()]
                else:
                    out += self.table(block, landscape_page)
            elif isinstance(block, Figure):
                out += self.figure(block, landscape_page)
            elif isinstance(block, Text):
                style = "note" if block.style == "bullet" else block.style
                if block.style == "heading":
                    out.append(CondPageBreak(0.3 * CONTENT_HEIGHT))  # a heading never sits alone at a page foot
                out.append(paragraph(block.text, style))
        return out


def _footer(canvas, doc):
    regular, _ = fonts()
    canvas.saveState()
    canvas.setFont(regular, 7)
    canvas.drawRightString(canvas._pagesize[0] - MARGIN, MARGIN / 2, f"bagkit report · page {doc.page}")
    canvas.restoreState()


def _stamp_figures(pdf: bytes, placed: list, store, blocks: dict) -> bytes:
    """Each figure's vector PDF page becomes a form XObject drawn into the room reserved for it.

    The figure's content stream is copied as it is (never parsed), so this costs milliseconds."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, FloatObject, NameObject

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    for i, (page_number, x, y, width, height, key) in enumerate(placed):
        figure = PdfReader(io.BytesIO(store.pdf(blocks[key]))).pages[0]
        contents = figure["/Contents"].get_object()
        if isinstance(contents, ArrayObject):  # matplotlib writes one stream; join several if ever
            data = b"".join(part.get_object().get_data() for part in contents)
            form = DecodedStreamObject()
            form.set_data(data)
        else:
            form = contents.clone(writer)
        box = [float(v) for v in figure.mediabox]
        form[NameObject("/Type")] = NameObject("/XObject")
        form[NameObject("/Subtype")] = NameObject("/Form")
        form[NameObject("/BBox")] = ArrayObject(FloatObject(v) for v in box)
        form[NameObject("/Resources")] = figure["/Resources"].get_object().clone(writer)
        reference = writer._add_object(form)
        page = writer.pages[page_number - 1]
        resources = page["/Resources"].get_object()
        if "/XObject" not in resources:
            resources[NameObject("/XObject")] = DictionaryObject()
        name = NameObject(f"/BagkitFigure{i}")
        resources["/XObject"].get_object()[name] = reference
        scale = width / (box[2] - box[0])
        stamp = DecodedStreamObject()
        stamp.set_data(f"q {scale:.6f} 0 0 {scale:.6f} {x - box[0] * scale:.3f} {y - box[1] * scale:.3f} cm "
                       f"{name} Do Q".encode("ascii"))
        existing = page["/Contents"]
        parts = existing.get_object() if isinstance(existing.get_object(), ArrayObject) else ArrayObject([existing])
        parts.append(writer._add_object(stamp))
        page[NameObject("/Contents")] = parts
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def build_pdf(document: Document, path: Path, store) -> list[TableLayout]:
    """Write ``document`` to ``path``; returns the layout chosen for each table (for the layout test)."""
    builder = _Builder(store)
    story: list = [paragraph(document.title, "title"), paragraph(document.subtitle, "body"), Spacer(1, 3 * mm)]
    for title, sections in document.parts():
        if title:
            story += [PageBreak(), paragraph(title, "part")]
        elif story and len(story) > 3:
            story.append(PageBreak())  # the provenance part starts a page
        for section in sections:
            story += builder.blocks(section)
    frame = Frame(MARGIN, MARGIN, PAGE[0] - 2 * MARGIN, PAGE[1] - 2 * MARGIN, id="portrait")
    wide = Frame(MARGIN, MARGIN, LANDSCAPE[0] - 2 * MARGIN, LANDSCAPE[1] - 2 * MARGIN, id="landscape")
    buffer = io.BytesIO()
    doc = BaseDocTemplate(buffer, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                          bottomMargin=MARGIN, title="bagkit report", author="bagkit", invariant=1)
    doc.addPageTemplates([PageTemplate("portrait", [frame], onPage=_footer, pagesize=PAGE),
                          PageTemplate("landscape", [wide], onPage=_footer, pagesize=LANDSCAPE)])
    doc.build(story)
    figures = {b.name: b for b in document.blocks() if isinstance(b, Figure)}
    data = _stamp_figures(buffer.getvalue(), builder.placed, store, figures) if builder.placed else buffer.getvalue()
    Path(path).write_bytes(data)
    return builder.layouts
