"""Renderers: report.pdf, report.docx, report.html, tables/<name>.csv, results.csv and figures/*.png,
all from one Results object, through one model.

The flow: each section module turns results into blocks (:mod:`bagkit.report.tables`: tables of
formatted cells with captions and footnotes, figures, text); :func:`document` puts the sections
in the paper's order (main part, then the supplementary part, then provenance); each renderer
lays the same document out. Renderers format; they never compute, open an input or call R.
Figures are drawn once and embedded in every format.
"""
from __future__ import annotations

import csv
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bagkit.analyses.background import Child, ChildFailed, can_fork
from bagkit.errors import BagkitError
from bagkit.io.outputs import output_folder
from bagkit.io.tables import spreadsheet_safe, spreadsheet_safe_frame
from bagkit.report import matching as matching_section
from bagkit.report import outcomes as outcomes_section
from bagkit.report import predictors as predictors_section
from bagkit.report import provenance as provenance_section
from bagkit.report import qc as qc_section
from bagkit.report import table1 as table1_section
from bagkit.report.tables import Document, Figure, csv_rows, figures_of, flatten, tables_of

__all__ = ["write_outputs", "document", "build_pdf", "check_formats", "Written", "SECTIONS", "FORMATS"]

# (title, module with blocks(results) and supplementary(results)), in the paper's order.
SECTIONS: list[tuple[str, object]] = [
    ("Table 1", table1_section),
    ("Table 2", matching_section),
    ("Outcomes", outcomes_section),
    ("Brain-age model", predictors_section),
    ("Preprocessing QC", qc_section),
]
FORMATS = ("pdf", "docx", "html")

#: The section modules whose blocks read no section that analyze() computes in R's child (its
#: R_SECTIONS: matching): their figures may be drawn from a partial Results while R still
#: computes (:func:`draw_ahead`). tests/test_report_model.py records every Results field each
#: section module reads.
SECTIONS_WITHOUT_R = (table1_section, outcomes_section, predictors_section, qc_section)


@dataclass(frozen=True)
class Written:
    """Where the outputs went (``None`` for a format not asked for)."""

    out: Path
    pdf: Path | None
    results_csv: Path
    table1_csv: Path
    figures: tuple[Path, ...]
    docx: Path | None = None
    html: Path | None = None
    tables: tuple[Path, ...] = ()


def document(results) -> Document:
    """The report as blocks: every table, figure and paragraph, in order, formatted once."""
    cohort = results.cohort
    source = Path(cohort.source).name if cohort.source else "in memory"
    subtitle = (f"Cohort: {source} · {len(cohort)} subjects · groups: {', '.join(cohort.groups)} · "
                f"control: {cohort.control or 'none'}")
    doc = Document("Brain age gap analysis", subtitle)
    for _, section in SECTIONS:
        doc.main.append(section.blocks(results))
        doc.supplementary.append(section.supplementary(results))
    doc.provenance = provenance_section.blocks(results)
    return doc.check_names()


def draw_ahead(partial, store, busy: Callable[[], bool]) -> list[str]:
    """Encode (vector PDF and PNG) into ``store`` the figures of :data:`SECTIONS_WITHOUT_R`, drawn
    from ``partial`` (see :func:`bagkit.analyses.analyze`'s ``while_waiting``), one after another
    while ``busy()``; returns the names encoded. The report written later from the whole Results
    takes them from the store: these sections' blocks are the same in both."""
    done = []
    for section in SECTIONS_WITHOUT_R:
        for part in (section.blocks(partial), section.supplementary(partial)):
            for block in flatten(part):
                if not isinstance(block, Figure):
                    continue
                if not busy():
                    return done
                store.pdf(block), store.png(block)
                done.append(block.name)
    return done


def build_pdf(results, path, figures_dir=None, progress: Callable[[str], None] | None = None, *,
              doc: Document | None = None, store=None, after_layout: Callable[[], None] | None = None) -> None:
    """report.pdf from ``results`` (and the figures' PNGs into ``figures_dir`` when given);
    ``doc`` and ``store``: the report model and drawn figures when the caller has them already;
    ``after_layout``: see :func:`bagkit.report.pdf.build_pdf`."""
    from bagkit.report.figures import FigureStore
    from bagkit.report.pdf import build_pdf as render

    doc = doc if doc is not None else document(results)
    store = store if store is not None else FigureStore()
    render(doc, Path(path), store, after_layout=after_layout)
    if figures_dir is not None:
        for block in figures_of(doc):
            (Path(figures_dir) / f"{block.name}.png").write_bytes(store.png(block))


def _inputs(results) -> list[Path]:
    files = list((getattr(results.cohort, "inputs", None) or {}).values()) or [results.cohort.source]
    return [Path(p).resolve() for p in files if p]


def check_formats(formats) -> tuple[str, ...]:
    """The formats asked for, in order, once each; a BagkitError naming any unknown one."""
    formats = tuple(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise BagkitError(f"unknown report format(s) {', '.join(unknown) or '(none given)'}; "
                          f"choose from {', '.join(FORMATS)}")
    return formats


def write_outputs(results, out, force: bool = False, progress: Callable[[str], None] | None = None,
                  formats=FORMATS, figures=None) -> Written:
    """Write the report (``formats``: any of pdf, docx, html), tables/*.csv, table1.csv, results.csv
    and figures/*.png into ``out``, atomically.

    Everything is written into a hidden sibling folder first and swapped into place at the end
    (:func:`bagkit.io.outputs.output_folder`), so a failure or an interrupt leaves any earlier
    ``out`` untouched. An existing ``out`` is replaced only with ``force=True`` and only when
    bagkit wrote it (its ``.bagkit-output`` marker lists everything in it, unchanged); never the
    current folder or one holding it, never a folder with an input inside. Text cells of the
    CSVs are escaped against spreadsheet formulas (:func:`bagkit.io.tables.spreadsheet_safe`).
    ``figures``: a FigureStore holding figures encoded already (:func:`draw_ahead`).
    """
    from bagkit.report.figures import FigureStore

    formats = check_formats(formats)
    say = progress or (lambda message: None)
    out = Path(out)
    cohort = results.cohort
    if "pdf" in formats:
        from bagkit.report.layout import unsupported_text

        for sentence in unsupported_text([*cohort.groups, cohort.control or ""]):
            warnings.warn(sentence, stacklevel=2)
    notes: list[str] = []
    with output_folder(out, inputs=_inputs(results), force=force, written_by=f"bagkit {_version()}",
                       notes=notes) as staging:
        for note in notes:  # what killed runs had left beside out
            warnings.warn(note, stacklevel=2)
        say("report: tables")
        doc = document(results)
        store = figures if figures is not None else FigureStore()
        try:
            _write_all(results, doc, store, staging, formats, say)
        finally:
            store.close()
    figures = tuple(sorted((out / "figures").glob("*.png")))
    tables = tuple(sorted((out / "tables").glob("*.csv")))
    return Written(out, out / "report.pdf" if "pdf" in formats else None, out / "results.csv",
                   out / "table1.csv", figures, out / "report.docx" if "docx" in formats else None,
                   out / "report.html" if "html" in formats else None, tables)


def _write_all(results, doc: Document, store, staging: Path, formats, say) -> None:
    """The order makes both cores work: a forked child encodes figures (vector PDF, and the PNG
    rendered from it) while this process writes the CSVs and lays out report.pdf (which needs the
    figures' sizes only), then takes the figures the child has not; once report.pdf's layout has
    settled the scale of each figure, a second child writes report.docx and report.html while this
    process stamps the figures into report.pdf."""
    (staging / "figures").mkdir()
    blocks = figures_of(doc)
    say("report: figures")
    mine = store.encode_in_background(blocks)
    spreadsheet_safe_frame(results.tidy()).to_csv(staging / "results.csv", index=False, float_format="%.17g")
    (staging / "tables").mkdir()
    for table in tables_of(doc):
        with open(staging / "tables" / f"{table.name}.csv", "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([[spreadsheet_safe(v) for v in row] for row in csv_rows(table)])
    shutil.copyfile(staging / "tables" / "table1.csv", staging / "table1.csv")
    documents = [f for f in ("docx", "html") if f in formats]
    child = None

    def figures_done() -> None:
        nonlocal child
        for block in mine:  # the figures the child has not taken yet
            store.pdf(block), store.png(block)
        store.join()
        for block in blocks:
            store.png(block)
        if "pdf" in formats and documents and can_fork():
            # report.docx and report.html (each figure at report.pdf's scale) on the second core
            child = Child(lambda: _write_documents(doc, staging, store, documents, say))

    try:
        if "pdf" in formats:
            say("report: PDF")
            build_pdf(results, staging / "report.pdf", doc=doc, store=store, after_layout=figures_done)
        else:
            figures_done()
        for block in blocks:
            (staging / "figures" / f"{block.name}.png").write_bytes(store.png(block))
        if child is not None:
            try:
                _, caught = child.result()
                for category, message in caught:
                    warnings.warn(message, category, stacklevel=2)
                return
            except ChildFailed:
                pass  # written here instead, over whatever the child left
        _write_documents(doc, staging, store, documents, say)
    finally:
        if child is not None:
            child.close()  # an error or interrupt here: the child stops before staging is removed


def _write_documents(doc: Document, staging: Path, store, documents, say) -> None:
    """report.docx and/or report.html (``documents``) into ``staging``."""
    if "docx" in documents:
        from bagkit.report.word import build_docx

        say("report: Word")
        build_docx(doc, staging / "report.docx", store)
    if "html" in documents:
        from bagkit.report.html import build_html

        say("report: HTML")
        build_html(doc, staging / "report.html", store)
    sys.stderr.flush()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bagkit")
    except PackageNotFoundError:
        return "(version unknown)"
