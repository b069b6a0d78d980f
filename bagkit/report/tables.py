"""The one model every renderer reads: tables of formatted cells, figures, text, in report order.

A section module turns result objects into a list of *blocks* — :class:`Table`, :class:`Figure`,
:class:`Text`, :class:`Together` — and nothing else. The PDF (reportlab), Word (python-docx), HTML
and ``tables/<name>.csv`` renderers only lay those blocks out; none of them formats a number,
opens an input file, calls R or computes a statistic. So the cell texts are the same in every
output by construction (and the tests check that they are).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Union

from bagkit.errors import BagkitError

__all__ = ["Table", "Figure", "Text", "Together", "Block", "Document", "tables_of", "figures_of", "csv_rows",
           "unbreakable", "plain"]


@dataclass(frozen=True)
class Table:
    """A paper table: caption, header rows, body rows of formatted cells, footnotes.

    ``spans`` are ``(header row, first column, last column)`` of a header cell spanning columns
    (the cells it covers are ""); ``section_rows`` are body rows that head a group of rows (only
    their first cell holds text). ``landscape`` asks for a landscape page where the format has
    pages. ``name`` is the file stem of ``tables/<name>.csv`` and must be unique in a report.
    """

    name: str
    caption: str
    header: tuple[tuple[str, ...], ...]
    body: tuple[tuple[str, ...], ...]
    footnotes: tuple[str, ...] = ()
    spans: tuple[tuple[int, int, int], ...] = ()
    section_rows: frozenset[int] = frozenset()
    landscape: bool = False

    def __post_init__(self):
        width = len(self.header[0]) if self.header else (len(self.body[0]) if self.body else 0)
        for kind, rows in (("header", self.header), ("body", self.body)):
            for i, row in enumerate(rows):
                if len(row) != width:
                    raise ValueError(f"table {self.name}: {kind} row {i} has {len(row)} cells, expected {width}")
        if not re.fullmatch(r"[a-z0-9_]+", self.name):
            raise ValueError(f"table name {self.name!r}: use lower-case letters, digits and '_' (a file stem)")

    @classmethod
    def of(cls, name: str, caption: str, header: Iterable[Iterable[Any]], body: Iterable[Iterable[Any]],
           footnotes: Iterable[str] = (), **options) -> "Table":
        """Build from lists (cells made ``str``; ``None`` becomes "")."""
        def cells(rows):
            return tuple(tuple("" if v is None else str(v) for v in row) for row in rows)
        return cls(name, caption, cells(header), cells(body), tuple(footnotes), **options)

    @property
    def n_columns(self) -> int:
        return len(self.header[0]) if self.header else len(self.body[0])

    @property
    def rows(self) -> tuple[tuple[str, ...], ...]:
        return self.header + self.body


@dataclass(frozen=True, eq=False)
class Figure:
    """A figure drawn once (``draw()`` returns a matplotlib Figure) and embedded in every format.

    ``width`` is the fraction of the text width the figure takes; ``name`` is the stem of
    ``figures/<name>.png``.
    """

    name: str
    caption: str
    draw: Callable[[], Any]
    width: float = 1.0


@dataclass(frozen=True)
class Text:
    """A paragraph of plain text: style is one of title, heading, caption, body, note, bullet."""

    text: str
    style: str = "body"


@dataclass(frozen=True)
class Together:
    """Blocks a page format keeps on one page (a caption with its table, a figure with its caption)."""

    blocks: tuple

    def __init__(self, *blocks):
        object.__setattr__(self, "blocks", tuple(blocks))


Block = Union[Table, Figure, Text, Together]


@dataclass
class Document:
    """The report: title lines, the main part, the supplementary part, the provenance part."""

    title: str
    subtitle: str
    main: list = field(default_factory=list)  # list of sections, each a list of blocks
    supplementary: list = field(default_factory=list)
    provenance: list = field(default_factory=list)

    def parts(self) -> Iterator[tuple[str, list]]:
        """(part title or "", list of sections); empty parts left out."""
        yield "", [s for s in self.main if s]
        if any(self.supplementary):
            yield "Supplementary material", [s for s in self.supplementary if s]
        yield "", [self.provenance]

    def blocks(self) -> Iterator:
        """Every block, flattened (``Together`` opened), in report order."""
        for _, sections in self.parts():
            for section in sections:
                yield from flatten(section)

    def check_names(self) -> "Document":
        """The document itself, once every table name (the stem of ``tables/<name>.csv``) and every
        figure name (``figures/<name>.png``) is unique; a :class:`BagkitError` naming both blocks
        otherwise — they would overwrite each other's file."""
        for kind, folder, suffix in ((Table, "tables", "csv"), (Figure, "figures", "png")):
            seen: dict[str, Any] = {}
            for block in self.blocks():
                if not isinstance(block, kind):
                    continue
                if block.name in seen:
                    first = seen[block.name]
                    raise BagkitError(
                        f"two report {folder} are both named {block.name!r} and would both be written to "
                        f"{folder}/{block.name}.{suffix}: {_short(first.caption)!r} and {_short(block.caption)!r}; "
                        f"give each {kind.__name__.lower()} its own name")
                seen[block.name] = block
        return self


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def flatten(blocks) -> Iterator:
    for block in blocks:
        if isinstance(block, Together):
            yield from flatten(block.blocks)
        else:
            yield block


def tables_of(document: Document) -> list[Table]:
    return [b for b in document.blocks() if isinstance(b, Table)]


def figures_of(document: Document) -> list[Figure]:
    return [b for b in document.blocks() if isinstance(b, Figure)]


WORD_JOINER = "\u2060"
_BREAKABLE_DASH = re.compile(r"(?<=\S)([-–—/])(?=\S)")


def unbreakable(text: str) -> str:
    """The text with a word joiner (U+2060, invisible) after every dash or slash inside a word, so
    Word, LibreOffice and browsers — which may break a line after a dash — keep "[845.6–1340.6]"
    or "AQP4-IgG" whole, as the PDF does. Only the Word and HTML renderers use it."""
    return _BREAKABLE_DASH.sub(lambda m: m.group(1) + WORD_JOINER, text)


def plain(text: str) -> str:
    """``unbreakable`` undone: the text as the model holds it."""
    return text.replace(WORD_JOINER, "")


def csv_rows(table: Table) -> list[list[str]]:
    """A table as ``tables/<name>.csv`` holds it: header rows then body rows, cells as printed
    (a line break inside a cell becomes "; ")."""
    return [[cell.replace("\n", "; ") for cell in row] for row in table.rows]
