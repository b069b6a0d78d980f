"""report.html: the report model as one self-contained web page (no network, figures inline).

Tables are HTML tables (``thead`` repeated on each printed page), words never broken inside a
cell, figures embedded as PNG data; wide tables print on landscape pages (CSS named pages). In
print a heading or caption never ends a page, a figure or a short table is never split, and a
figure is at most 150 mm tall.
Every piece of text is escaped.
"""
from __future__ import annotations

import base64
from pathlib import Path
from xml.sax.saxutils import escape

from bagkit.report.layout import table_layout
from bagkit.report.tables import Document, Figure, Table, Text, Together, unbreakable

__all__ = ["build_html"]

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 "DejaVu Sans", Arial, Helvetica, sans-serif; color: #111; max-width: 70em;
       margin: 2em auto; padding: 0 1.2em; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { font-size: 1.3em; margin-top: 2em; }
h3 { font-size: 1.1em; margin-top: 1.6em; }
figure { margin: 1.6em 0; } figcaption { font-weight: bold; margin-bottom: .4em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 12px; border-top: 1.5px solid #000; border-bottom: 1.5px solid #000; }
th, td { padding: 2px 6px; text-align: left; vertical-align: top; word-break: keep-all; overflow-wrap: normal;
         hyphens: none; }
thead tr:last-child th { border-bottom: 1px solid #000; }
th.span { border-bottom: .6px solid #000; text-align: center; }
tr.section td { background: #eef1f5; font-weight: bold; }
.notes p, p.note { font-size: 11.5px; color: #333; margin: .25em 0; }
img { max-width: 100%; height: auto; }
section.part { break-before: page; }
@page { size: A4; margin: 16mm; }
@page wide { size: A4 landscape; margin: 16mm; }
@media print {
  body { max-width: none; margin: 0; padding: 0; font-size: 10pt; }
  figure { break-inside: avoid; } tr { break-inside: avoid; } thead { display: table-header-group; }
  figure.table { break-inside: auto; } figure.table.short { break-inside: avoid; }
  h1, h2, h3, figcaption { break-after: avoid; break-inside: avoid; }
  figure + p.note, p.note + p.note { break-before: avoid; }
  figure img { max-height: 150mm; object-fit: contain; object-position: left top; }
  figure.landscape { page: wide; } .scroll { overflow: visible; }
}
"""


SHORT_TABLE_ROWS = 20  # a printed page keeps a table this short whole (a longer one runs on, header repeated)


def _text(value: str) -> str:
    return escape(value).replace("\n", "<br>")


def _table(table: Table) -> str:
    n_header = len(table.header)
    spans = {(r, first): last for r, first, last in table.spans}
    out = []
    for r, row in enumerate(table.rows):
        if r == 0:
            out.append("<thead>")
        if r == n_header:
            out.append("</thead><tbody>")
        section = r >= n_header and (r - n_header) in table.section_rows
        cells, c = [], 0
        tag = "th" if r < n_header else "td"
        while c < len(row):
            last = spans.get((r, c), len(row) - 1 if section and c == 0 else c)
            attributes = f' colspan="{last - c + 1}"' if last > c else ""
            if (r, c) in spans:
                attributes += ' class="span"'
            cells.append(f"<{tag}{attributes}>{_text(unbreakable(row[c]))}</{tag}>")
            c = last + 1
        out.append(f'<tr{" class=section" if section else ""}>' + "".join(cells) + "</tr>")
    out.append("</tbody>")
    notes = "".join(f"<p>{_text(n)}</p>" for n in table.footnotes)
    landscape = " landscape" if table_layout(table).landscape else ""
    landscape += " short" if len(table.rows) <= SHORT_TABLE_ROWS else ""  # kept on one printed page
    return (f'<figure class="table{landscape}" id="{table.name}"><figcaption>{_text(table.caption)}</figcaption>'
            f'<div class="scroll"><table>{"".join(out)}</table></div><div class="notes">{notes}</div></figure>')


def _figure(block: Figure, store) -> str:
    data = base64.b64encode(store.png(block)).decode("ascii")
    # as small as report.pdf drew it when the PDF was laid out first (its packer shares pages)
    width = f"{100 * block.width * getattr(store, 'pdf_scales', {}).get(block.name, 1.0):.0f}%"
    return (f'<figure id="{block.name}"><figcaption>{_text(block.caption)}</figcaption>'
            f'<img style="width:{width}" alt="{escape(block.caption, {chr(34): "&quot;"})}" '
            f'src="data:image/png;base64,{data}"></figure>')


def _blocks(blocks, store) -> list[str]:
    out = []
    for block in blocks:
        if isinstance(block, Together):
            out += _blocks(block.blocks, store)
        elif isinstance(block, Table):
            out.append(_table(block))
        elif isinstance(block, Figure):
            out.append(_figure(block, store))
        elif isinstance(block, Text):
            if block.style == "heading":
                out.append(f"<h2>{_text(block.text)}</h2>")
            elif block.style == "caption":
                out.append(f"<h3>{_text(block.text)}</h3>")
            else:
                out.append(f'<p class="{block.style}">{_text(block.text)}</p>')
    return out


def build_html(document: Document, path: Path, store) -> None:
    body = [f"<h1>{_text(document.title)}</h1>", f"<p>{_text(document.subtitle)}</p>"]
    first = True
    for title, sections in document.parts():
        body.append('<section class="part">' if not first else "<section>")
        first = False
        if title:
            body.append(f"<h1>{_text(title)}</h1>")
        for section in sections:
            body += _blocks(section, store)
        body.append("</section>")
    page = ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_text(document.title)}'
            f"</title><style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    Path(path).write_text(page, encoding="utf-8")
