"""report.docx: the report model as a Word document a manuscript can take (python-docx).

Tables are real, editable Word tables (header rows repeat on each page, spanning headers merged,
three-line rules as journals set them), each with its caption above and its footnotes below;
figures are embedded (PNG, 150 dpi); tables the layout sets landscape get a landscape section.
A table of up to :data:`KEEP_ROWS` rows stays on one page with its caption and notes (Word's
keep-with-next on every row, rows never split), so a heading or caption never ends a page alone;
a figure is as large as in report.pdf when the PDF was laid out first (the PDF's packer may have
drawn it smaller to share a page). Nothing here formats a number: cells are the model's strings.
"""
from __future__ import annotations

import io
from pathlib import Path

from docx import Document as WordDocument
from docx.enum.section import WD_ORIENT, WD_SECTION
from docx.enum.text import WD_BREAK
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
from docx.shared import Mm, Pt, RGBColor

from bagkit.report.layout import CELL_FONT_SIZE, CELL_PADDING, MARGIN, table_layout
from bagkit.report.tables import Document, Figure, Table, Text, Together, unbreakable

__all__ = ["build_docx"]

FONT = "Arial"
CELL_PT = 8
A4_MM = (210, 297)
KEEP_ROWS = 20  # longer tables may run over a page (their header rows repeat)


def _set_page(section, landscape: bool) -> None:
    width, height = (Mm(A4_MM[1]), Mm(A4_MM[0])) if landscape else (Mm(A4_MM[0]), Mm(A4_MM[1]))
    section.orientation = WD_ORIENT.LANDSCAPE if landscape else WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = width, height
    margin = Mm(MARGIN / 72 * 25.4)
    section.left_margin = section.right_margin = section.top_margin = section.bottom_margin = margin


def _rule(edge: str, size: int) -> str:
    """A single rule on one edge of a cell (size in eighths of a point)."""
    return f'<w:{edge} w:val="single" w:sz="{size}" w:space="0" w:color="000000"/>'


def _paragraph_xml(text: str, bold: bool, size: float, keep: bool) -> str:
    """A cell's paragraph: one run per line of ``text`` (a line break after each but the last),
    bold or not, ``size`` points, no space after, kept with the next paragraph when ``keep``."""
    properties = f"<w:rPr>{'<w:b/>' if bold else ''}<w:sz w:val=\"{round(size * 2)}\"/></w:rPr>"
    lines = unbreakable(text).split("\n")
    runs = []
    for i, line in enumerate(lines):
        space = ' xml:space="preserve"' if line != line.strip() else ""
        body = f"<w:t{space}>{_xml_text(line)}</w:t>" if line else ""
        runs.append(f"<w:r>{properties}{body}{'<w:br/>' if i < len(lines) - 1 else ''}</w:r>")
    return (f"<w:p><w:pPr>{'<w:keepNext/>' if keep else ''}<w:spacing w:after=\"0\"/></w:pPr>"
            f"{''.join(runs)}</w:p>")


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _table_xml(table: Table, widths_pt, size: float) -> str:
    """The whole Word table as one piece of XML: fixed column widths (the PDF's), the PDF's cell
    padding, header rows repeated on each page, spanning cells merged, section rows shaded, three
    rules (above the header, under it, under the last row); a table of up to :data:`KEEP_ROWS`
    rows kept on one page with its notes (no row split, every paragraph kept with the next).

    Written at once rather than cell by cell through python-docx, whose per-property calls took
    ~0.4 s for the example report's 850 cells; the XML is what those calls wrote, element for
    element."""
    rows = table.rows
    twips = [Pt(w).twips for w in widths_pt]
    n_header = len(table.header)
    keep = len(rows) <= KEEP_ROWS
    spans = {(r, first): last for r, first, last in table.spans}
    margins = "".join(f'<w:{edge} w:w="{round(CELL_PADDING * 20)}" w:type="dxa"/>' for edge in ("left", "right"))
    out = [f"<w:tbl {nsdecls('w')}><w:tblPr><w:tblW w:type=\"auto\" w:w=\"0\"/><w:tblLayout w:type=\"fixed\"/>"
           f"<w:tblCellMar>{margins}</w:tblCellMar>"
           '<w:tblLook w:firstColumn="1" w:firstRow="1" w:lastColumn="0" w:lastRow="0" w:noHBand="0" '
           'w:noVBand="1" w:val="04A0"/></w:tblPr><w:tblGrid>',
           "".join(f'<w:gridCol w:w="{w}"/>' for w in twips), "</w:tblGrid>"]
    for r, row in enumerate(rows):
        section = r >= n_header and (r - n_header) in table.section_rows
        row_properties = ("<w:tblHeader w:val=\"true\"/>" if r < n_header else "") + ("<w:cantSplit/>" if keep else "")
        out.append(f"<w:tr><w:trPr>{row_properties}</w:trPr>" if row_properties else "<w:tr>")
        c = 0
        while c < len(row):
            last = spans.get((r, c), len(row) - 1 if section and c == 0 else c)
            width = sum(twips[c:last + 1]) if last > c else twips[c]
            properties = [f'<w:tcW w:type="dxa" w:w="{width}"/>']
            if last > c:
                properties.append(f'<w:gridSpan w:val="{last - c + 1}"/>')
            if section:
                properties.append('<w:shd w:val="clear" w:color="auto" w:fill="EEF1F5"/>')
            rules = []
            if r == 0:
                rules.append(_rule("top", 8))
            if r == n_header - 1 or (r < n_header and (r, c) in spans):
                rules.append(_rule("bottom", 4))
            if r == len(rows) - 1:
                rules.append(_rule("bottom", 8))
            if rules:
                properties.append(f"<w:tcBorders>{''.join(rules)}</w:tcBorders>")
            paragraph = _paragraph_xml(row[c], bold=r < n_header or section, size=size,
                                       keep=keep and (r < len(rows) - 1 or bool(table.footnotes)))
            out.append(f"<w:tc><w:tcPr>{''.join(properties)}</w:tcPr>{paragraph}</w:tc>")
            c = last + 1
        out.append("</w:tr>")
    out.append("</w:tbl>")
    return "".join(out)


class _Writer:
    def __init__(self, store):
        self.store = store
        # the scale report.pdf drew each figure at, when it was laid out first (bagkit.report.pdf.pack)
        self.scales = dict(getattr(store, "pdf_scales", {}))
        self.doc = WordDocument()
        normal = self.doc.styles["Normal"]
        normal.font.name = FONT
        normal.font.size = Pt(9.5)
        _set_page(self.doc.sections[0], False)
        self.landscape = False

    def _orientation(self, landscape: bool) -> None:
        if landscape != self.landscape:
            section = self.doc.add_section(WD_SECTION.NEW_PAGE)
            _set_page(section, landscape)
            self.landscape = landscape

    def text(self, text: str, style: str):
        """Add a paragraph in ``style``; returns it."""
        if style == "title":
            return self.doc.add_heading(text, level=0)
        elif style == "part":
            return self.doc.add_heading(text, level=1)
        elif style == "heading":
            return self.doc.add_heading(text, level=2)
        else:
            paragraph = self.doc.add_paragraph()
            run = paragraph.add_run(text)
            if style == "caption":
                run.bold = True
                paragraph.paragraph_format.keep_with_next = True
            elif style in ("note", "bullet"):
                run.font.size = Pt(7.5)
                run.font.color.rgb = RGBColor(0x33, 0x33, 0x33)
                paragraph.paragraph_format.space_after = Pt(1)
            return paragraph

    def table(self, table: Table) -> None:
        layout = table_layout(table)
        self._orientation(layout.landscape)
        self.text(table.caption, "caption")
        # the PDF's column widths (measured from the cells' words), so no word breaks here either
        size = min(CELL_PT, layout.font_size + CELL_PT - CELL_FONT_SIZE)  # Arial 8 pt is no wider than DejaVu 7.6
        placeholder = self.doc.add_table(rows=0, cols=table.n_columns)._tbl
        placeholder.getparent().replace(placeholder, parse_xml(_table_xml(table, layout.widths, size)))

        note = None
        for i, text in enumerate(table.footnotes):
            note = self.text(text, "note")
            if i < len(table.footnotes) - 1 and len(table.rows) <= KEEP_ROWS:
                note.paragraph_format.keep_with_next = True
        if note is not None:  # the gap below a table is its last note's space after, not an empty line
            note.paragraph_format.space_after = Pt(9)
        else:
            self.doc.add_paragraph()

    def figure(self, block: Figure) -> None:
        # the caption and the picture are one paragraph: no word processor sets them on two pages
        paragraph = self.doc.add_paragraph()
        paragraph.paragraph_format.keep_together = True
        caption = paragraph.add_run(block.caption)
        caption.bold = True
        caption.add_break(WD_BREAK.LINE)
        width_mm = (A4_MM[1] if self.landscape else A4_MM[0]) - 2 * MARGIN / 72 * 25.4
        inches_w, inches_h = self.store.size_inches(block)
        width = Mm(min(width_mm * block.width, 0.6 * (A4_MM[0] if self.landscape else A4_MM[1]) * inches_w / inches_h)
                   * self.scales.get(block.name, 1.0))
        paragraph.add_run().add_picture(io.BytesIO(self.store.png(block)), width=width)

    def blocks(self, blocks) -> None:
        for block in blocks:
            if isinstance(block, Together):
                self.blocks(block.blocks)
            elif isinstance(block, Table):
                self.table(block)
            elif isinstance(block, Figure):
                self._orientation(False)
                self.figure(block)
            elif isinstance(block, Text):
                self._orientation(False)
                self.text(block.text, block.style)


def build_docx(document: Document, path: Path, store) -> None:
    writer = _Writer(store)
    writer.text(document.title, "title")
    writer.text(document.subtitle, "body")
    first = True
    for title, sections in document.parts():
        if not first:
            writer._orientation(False)
            writer.doc.add_page_break()
        first = False
        if title:
            writer.text(title, "part")
        for section in sections:
            writer.blocks(section)
    buffer = io.BytesIO()
    writer.doc.save(buffer)
    Path(path).write_bytes(buffer.getvalue())
