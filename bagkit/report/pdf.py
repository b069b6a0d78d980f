"""report.pdf: the report model laid out with reportlab; figures embedded as vector graphics.

Tables are sized by :func:`bagkit.report.layout.table_layout` (no cell breaks inside a word;
landscape pages where a table needs them). Pages are packed: a heading keeps with what follows
it, a figure is drawn a little smaller rather than leaving a page's foot empty, and when a page
still ends up holding nothing but a figure pushed off the page before, the figures of both
pages are scaled down together (never below :data:`FIGURE_FLOOR` of their size) so they share
one page (:func:`pack`; the layout engine's own record of each page is :class:`PageRecord`). Figures are saved once by matplotlib as vector PDF
and stamped, still vector, into the places reportlab reserved for them (pypdf), which is many
times faster than converting each figure to reportlab drawings.
"""
from __future__ import annotations

import functools
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

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


#: the smallest a figure is drawn, as a fraction of its size, to share a page
FIGURE_FLOOR = 0.7  # the same as the shrink a figure takes by itself at a page foot (legibility)
#: a page holding only figures and less than this fraction of the page is "a figure alone"
LONE_PAGE_FRACTION = 0.5


class CaptionedFigure(Flowable):
    """A caption over the room for a figure. Where the room lands is recorded and the vector figure
    stamped there once the PDF is built. When the page has less room left than the figure needs but
    at least ``SHRINK`` of it (and never less than :data:`FIGURE_FLOOR`), the figure is drawn that
    much smaller rather than leaving the page's foot empty. ``cap`` scales the figure's size before
    that (the packer's choice, see :func:`pack`)."""

    SHRINK = 0.7
    GAP = 3

    def __init__(self, caption: Paragraph, key: str, width: float, height: float, placed: list,
                 cap: float = 1.0):
        super().__init__()
        self.caption, self.key, self.placed = caption, key, placed
        self.figure_width, self.figure_height = width, height
        self.cap = cap
        self.scale = cap

    def wrap(self, available_width, available_height):
        self.available_width = available_width
        _, self.caption_height = self.caption.wrap(available_width, available_height)
        fixed = self.caption_height + self.GAP
        self.scale = self.cap
        smallest = max(self.SHRINK * self.cap, min(FIGURE_FLOOR, self.cap))
        if fixed + self.figure_height * self.cap > available_height >= fixed + smallest * self.figure_height:
            self.scale = (available_height - fixed) / self.figure_height
        return available_width, fixed + self.figure_height * self.scale

    @property
    def drawn_height(self) -> float:
        return self.figure_height * self.scale

    def split(self, available_width, available_height):
        return []

    def draw(self):
        width, height = self.figure_width * self.scale, self.figure_height * self.scale
        self.caption.drawOn(self.canv, 0, height + self.GAP)
        x, y = self.canv.absolutePosition((self.available_width - width) / 2, 0)
        self.placed.append((self.canv.getPageNumber(), x, y, width, height, self.key))


SPACE_AFTER = 4 * mm  # below each table and figure


class Gap(Spacer):
    """Vertical space that shrinks to what the frame has left: a gap at a page's foot never spills
    onto the next page (where a page break would then leave that page blank)."""

    _ZEROSIZE = True

    def wrap(self, available_width, available_height):
        return self.width, max(0.0, min(self.height, available_height))


class PartStart(Flowable):
    """An invisible mark where a part of the report (main, supplementary, provenance) begins."""

    def __init__(self, part: str):
        super().__init__()
        self.part = part

    def wrap(self, available_width, available_height):
        return 0, 0

    def draw(self):
        pass


@dataclass
class PageRecord:
    """What the layout engine put on one page: the part it belongs to, the height its content
    uses (points, from the frame's top to the foot of its last table, paragraph or figure) out of
    the frame's ``height``, the kind of each thing on it in order ("table", "text", "figure") and
    its figures (with the scale each was drawn at) and the text of its paragraphs. A note is a paragraph in the note style (the
    bullets under a figure or a section)."""

    number: int
    part: str
    height: float
    used: float = 0.0
    kinds: list = field(default_factory=list)
    figures: list = field(default_factory=list)
    texts: list = field(default_factory=list)

    @property
    def figures_only(self) -> bool:
        """Figures and their notes, no table, heading or text."""
        return "figure" in self.kinds and all(kind in ("figure", "note") for kind in self.kinds)

    @property
    def lone_figure(self) -> bool:
        """Only figures (and notes), on less than :data:`LONE_PAGE_FRACTION` of the page."""
        return self.figures_only and self.used < LONE_PAGE_FRACTION * self.height


class _RecordingDoc(BaseDocTemplate):
    """reportlab's document template, keeping a :class:`PageRecord` per page."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.record: list[PageRecord] = []
        self.part = "main"

    def afterFlowable(self, flowable):
        if isinstance(flowable, PartStart):
            self.part = flowable.part
            return
        kind = ("figure" if isinstance(flowable, CaptionedFigure) else "table" if isinstance(flowable, RLTable)
                else None if not isinstance(flowable, Paragraph)
                else "note" if flowable.style.name == "note" else "text")
        if kind is None:  # spacers, page breaks, template switches
            return
        frame = self.frame
        top = frame._y1 + frame._height - frame._topPadding
        height = frame._height - frame._topPadding - frame._bottomPadding
        if not self.record or self.record[-1].number != self.page:
            self.record.append(PageRecord(self.page, self.part, height))
        page = self.record[-1]
        page.used = max(page.used, top - frame._y)
        page.kinds.append(kind)
        if kind == "figure":
            page.figures.append(flowable)
        elif kind in ("text", "note"):
            page.texts.append(flowable.getPlainText())


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
    def __init__(self, store, packing: "Packing | None" = None):
        self.store = store
        self.packing = packing or Packing()
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
        return flow + [Gap(1, SPACE_AFTER)]

    def figure(self, block: Figure, landscape_page: bool) -> list:
        inches_w, inches_h = self.store.size_inches(block)
        box_w = (CONTENT_WIDTH if not landscape_page else LANDSCAPE[0] - 2 * MARGIN - 12) * block.width
        box_h = (CONTENT_HEIGHT if not landscape_page else LANDSCAPE_HEIGHT) * 0.72
        scale = min(box_w / (inches_w * 72), box_h / (inches_h * 72))
        return [CaptionedFigure(paragraph(block.caption, "caption"), block.name, inches_w * 72 * scale,
                                inches_h * 72 * scale, self.placed, self.packing.scales.get(block.name, 1.0)),
                Gap(1, SPACE_AFTER)]

    def blocks(self, blocks, landscape_page: bool = False) -> list:
        out: list = []
        blocks = list(blocks)
        pending: list = []  # heading paragraphs that go on the page of what follows them
        consumed: set[int] = set()  # blocks already laid out on a landscape page before them
        for i, block in enumerate(blocks):
            if i in consumed:
                continue
            following = blocks[i + 1] if i + 1 < len(blocks) else None
            if isinstance(block, Together):
                inner = self.blocks(block.blocks, landscape_page)
                flow = [KeepTogether(inner)] if len(block.blocks) > 1 else inner
            elif isinstance(block, Table):
                if table_layout(block).landscape and not landscape_page:
                    turn = [] if pending else [NextPageTemplate("landscape"), PageBreak()]
                    tail, k = [], i + 1
                    # figures the packer keeps at this landscape page's foot (sized as on a portrait
                    # page), with the notes under them
                    while k < len(blocks) and isinstance(blocks[k], Figure) and blocks[k].name in self.packing.landscape:
                        tail += self.figure(blocks[k], False)
                        k += 1
                        while k < len(blocks) and isinstance(blocks[k], Text) and blocks[k].style in ("note", "bullet"):
                            tail.append(paragraph(blocks[k].text, "note"))
                            k += 1
                    consumed.update(range(i + 1, k))
                    flow = [*turn, *self.table(block, True), *tail, NextPageTemplate("portrait"), PageBreak()]
                else:
                    flow = self.table(block, landscape_page)
            elif isinstance(block, Figure):
                flow = self.figure(block, landscape_page)
            elif isinstance(block, Text):
                text = paragraph(block.text, "note" if block.style == "bullet" else block.style)
                if block.style not in ("heading", "caption") or following is None:
                    flow = [text]
                elif not landscape_page and isinstance(following, Table) and table_layout(following).landscape:
                    # the heading turns the page with its table (never alone at a portrait page's foot)
                    out += [NextPageTemplate("landscape"), PageBreak()]
                    pending.append(text)
                    continue
                else:
                    if block.style == "heading" and not pending:
                        out.append(CondPageBreak(0.3 * CONTENT_HEIGHT))  # room for a heading and a start
                    pending.append(text)
                    continue
            else:
                continue
            if pending:
                out += _keep_with(pending, flow)
                pending = []
            else:
                out += flow
        return out + pending

    def story(self, document: Document) -> list:
        story: list = [PartStart("main"), paragraph(document.title, "title"), paragraph(document.subtitle, "body"),
                       Spacer(1, 3 * mm)]
        for title, sections in document.parts():
            if title:
                story += [PageBreak(), PartStart("supplementary"), paragraph(title, "part")]
            elif len(story) > 4:
                story += [PageBreak(), PartStart("provenance")]  # the provenance part starts a page
            for section in sections:
                story += self.blocks(section)
        return _without_blank_pages(story)


def _without_blank_pages(story: list) -> list:
    """The story without a page break that directly follows another (with only template switches
    or spaces between): reportlab would leave that page blank. The later template switch wins."""
    out: list = []
    for item in story:
        if isinstance(item, PageBreak):
            k = len(out) - 1
            while k >= 0 and isinstance(out[k], (NextPageTemplate, CondPageBreak, Spacer)):
                k -= 1
            if k >= 0 and isinstance(out[k], PageBreak):
                del out[k]
        out.append(item)
    return out


def _keep_with(headings: list, flow: list) -> list:
    """``flow`` with ``headings`` kept on the page of its first table or paragraph (a figure, which
    may shrink to fit a page's foot, is left free: the heading's conditional page break keeps room)."""
    first = next((i for i, f in enumerate(flow) if isinstance(f, (KeepTogether, Paragraph, RLTable,
                                                                       CaptionedFigure))), None)
    if first is None or isinstance(flow[first], CaptionedFigure):
        return headings + flow
    item = flow[first]
    content = list(item._content) if isinstance(item, KeepTogether) else [item]
    return flow[:first] + [KeepTogether(headings + content)] + flow[first + 1:]


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
    from pypdf.generic import (
        ArrayObject,
        DecodedStreamObject,
        DictionaryObject,
        FloatObject,
        IndirectObject,
        NameObject,
    )

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
        # the page's content stream by reference (page["/Contents"] would resolve it): a stream
        # must stay an indirect object, and PDFium (Chrome's viewer) draws nothing of a page whose
        # content array holds a stream itself
        existing = page.raw_get("/Contents")
        if isinstance(existing.get_object(), ArrayObject):
            parts = existing.get_object()
        else:
            parts = ArrayObject([existing if isinstance(existing, IndirectObject) else writer._add_object(existing)])
        parts.append(writer._add_object(stamp))
        page[NameObject("/Contents")] = parts
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _layout(document: Document, store, packing: "Packing") -> tuple[bytes, _Builder, list[PageRecord]]:
    """One reportlab pass: the PDF without its figures, the builder (tables' layouts, figures'
    places) and the record of each page."""
    builder = _Builder(store, packing)
    story = builder.story(document)
    frame = Frame(MARGIN, MARGIN, PAGE[0] - 2 * MARGIN, PAGE[1] - 2 * MARGIN, id="portrait")
    wide = Frame(MARGIN, MARGIN, LANDSCAPE[0] - 2 * MARGIN, LANDSCAPE[1] - 2 * MARGIN, id="landscape")
    buffer = io.BytesIO()
    doc = _RecordingDoc(buffer, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                        bottomMargin=MARGIN, title="bagkit report", author="bagkit", invariant=1)
    doc.addPageTemplates([PageTemplate("portrait", [frame], onPage=_footer, pagesize=PAGE),
                          PageTemplate("landscape", [wide], onPage=_footer, pagesize=LANDSCAPE)])
    doc.build(story)
    return buffer.getvalue(), builder, doc.record


@dataclass
class Packing:
    """The packer's choices for a second pass: figures drawn smaller (name → scale of their size)
    and figures kept at the foot of the landscape page before them (names)."""

    scales: dict = field(default_factory=dict)
    landscape: set = field(default_factory=set)

    def __bool__(self):
        return bool(self.scales or self.landscape)


def pack(record: list[PageRecord]) -> Packing:
    """What to change so that no page holds only a figure pushed off the page before it (see
    :attr:`PageRecord.lone_figure`). After a page of the same part and size, the figures of both
    pages are scaled down alike until the lone page's content fits the foot of the page before;
    after a landscape page (a wide table) with room left, the lone page's figures go there. Never
    below :data:`FIGURE_FLOOR` of a figure's size; nothing changes when that is not enough."""
    packing = Packing()
    for before, page in zip(record, record[1:]):
        if not page.lone_figure or before.part != page.part:
            continue
        need = page.used + SPACE_AFTER + 2 - (before.height - before.used)  # points the figures must give
        same_size = abs(before.height - page.height) <= 1
        if not same_size and before.height > page.height:
            continue  # a landscape page's figures stay there (only a landscape page takes a portrait one's)
        figures = (before.figures if same_size else []) + page.figures
        total = sum(f.drawn_height for f in figures)
        shrink = 1.0 if need <= 0 else (total - need) / total if total > need else 0.0
        if not all(f.scale * shrink >= FIGURE_FLOOR for f in figures):
            continue
        if shrink < 1:
            packing.scales.update({f.key: f.scale * shrink for f in figures})
        if not same_size:
            packing.landscape.update(f.key for f in page.figures)
    return packing


def build_pdf(document: Document, path: Path, store, pages: list | None = None,
              after_layout: Callable[[], None] | None = None) -> list[TableLayout]:
    """Write ``document`` to ``path``; returns the layout chosen for each table (for the layout test)
    and, when ``pages`` is a list, fills it with the :class:`PageRecord` of every page.

    A second reportlab pass runs only when :func:`pack` finds a figure alone on a page; it is kept
    when it has fewer such pages and no more pages. The layout needs the figures' sizes only;
    their vector PDFs are stamped in afterwards. ``after_layout`` is called between the two, once
    ``store.pdf_scales`` (what report.docx and report.html follow) is settled."""
    data, builder, record = _layout(document, store, Packing())
    packing = pack(record)
    if packing:
        packed = _layout(document, store, packing)
        lone = sum(p.lone_figure for p in record)
        if sum(p.lone_figure for p in packed[2]) < lone and packed[2][-1].number <= record[-1].number:
            data, builder, record = packed
    # the figures drawn smaller to share a page are as small in report.docx (bagkit.report.word)
    store.pdf_scales = {f.key: f.scale for page in record for f in page.figures if f.scale < 1}
    if after_layout is not None:
        after_layout()
    figures = {b.name: b for b in document.blocks() if isinstance(b, Figure)}
    data = _stamp_figures(data, builder.placed, store, figures) if builder.placed else data
    Path(path).write_bytes(data)
    if pages is not None:
        pages[:] = record
    return builder.layouts
