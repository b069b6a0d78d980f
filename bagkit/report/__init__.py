"""Renderers: the PDF report, table1.csv, results.csv and figure PNGs, all from one Results object.

Renderers format; they never compute. Each section module exposes
``flowables(results, figures_dir) -> list`` of reportlab flowables and is listed
in :data:`SECTIONS` in the order the paper presents them.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from reportlab.platypus import KeepTogether, PageBreak, Paragraph, SimpleDocTemplate

from bagkit.io.outputs import output_folder
from bagkit.io.tables import spreadsheet_safe, spreadsheet_safe_frame
from bagkit.report import format as fmt
from bagkit.report import matching as matching_section
from bagkit.report import outcomes as outcomes_section
from bagkit.report import predictors as predictors_section
from bagkit.report import provenance as provenance_section
from bagkit.report import qc as qc_section
from bagkit.report import table1 as table1_section
from bagkit.report.layout import CONTENT_HEIGHT, CONTENT_WIDTH, MARGIN, PAGE, fonts, gap, paragraph, unsupported_text

__all__ = ["write_outputs", "build_pdf", "Written", "SECTIONS"]

# (title, module with flowables(results, figures_dir)); later sections are appended in paper order.
SECTIONS: list[tuple[str, object]] = [
    ("Table 1", table1_section),
    ("Table 2", matching_section),
    ("Outcomes", outcomes_section),
    ("Brain-age model", predictors_section),
    ("Preprocessing QC", qc_section),
]


@dataclass(frozen=True)
class Written:
    """Where the outputs went."""

    out: Path
    pdf: Path
    results_csv: Path
    table1_csv: Path
    figures: tuple[Path, ...]


def _on_page(canvas, doc):
    regular, _ = fonts()
    canvas.saveState()
    canvas.setFont(regular, 7)
    canvas.drawRightString(PAGE[0] - MARGIN, MARGIN / 2, f"bagkit report · page {doc.page}")
    canvas.restoreState()


def _keep_captions(flow: list) -> list:
    """Keep every caption on the page of the table or figure it introduces (never orphaned at a
    page's foot): a caption paragraph and the flowable after it become one KeepTogether."""
    out: list = []
    i = 0
    while i < len(flow):
        item = flow[i]
        if (isinstance(item, Paragraph) and item.style.name == "caption" and i + 1 < len(flow)
                and not isinstance(flow[i + 1], PageBreak)
                and flow[i + 1].wrap(CONTENT_WIDTH, CONTENT_HEIGHT)[1] < 0.6 * CONTENT_HEIGHT):
            # a caption moves with what follows, unless that is taller than most of a page: a long
            # table starts under its caption where it is and splits, header rows repeated
            out.append(KeepTogether([item, flow[i + 1]]))
            i += 2
        else:
            out.append(item)
            i += 1
    return out


def build_pdf(results, path: Path, figures_dir: Path, progress: Callable[[str], None] | None = None) -> None:
    say = progress or (lambda message: None)
    cohort = results.cohort
    for sentence in unsupported_text([*cohort.groups, cohort.control or ""]):
        warnings.warn(sentence, stacklevel=2)
    story = [paragraph("Brain age gap analysis", "title"),
             paragraph(f"Cohort: {Path(cohort.source).name if cohort.source else 'in memory'} · "
                       f"{len(cohort)} subjects · groups: {', '.join(cohort.groups)} · control: "
                       f"{cohort.control or 'none'}", "body"), gap(3)]
    for title, section in SECTIONS:
        say(f"report: {title}")
        flow = _keep_captions(section.flowables(results, figures_dir))
        if flow:
            if len(story) > 3:
                story.append(PageBreak())
            story += flow
    say("report: provenance")
    story += [PageBreak(), *_keep_captions(provenance_section.flowables(results, figures_dir))]
    doc = SimpleDocTemplate(str(path), pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                            bottomMargin=MARGIN, title="bagkit report", author="bagkit")
    doc.build(story, onFirstPage=_on_page, onLaterPages=_on_page)


def _inputs(results) -> list[Path]:
    files = list((getattr(results.cohort, "inputs", None) or {}).values()) or [results.cohort.source]
    return [Path(p).resolve() for p in files if p]


def write_outputs(results, out, force: bool = False, progress: Callable[[str], None] | None = None) -> Written:
    """Write report.pdf, table1.csv, results.csv and figures/*.png into ``out``, atomically.

    Everything is written into a hidden sibling folder first and swapped into place at the end
    (:func:`bagkit.io.outputs.output_folder`), so a failure or an interrupt leaves any earlier
    ``out`` untouched. An existing ``out`` is replaced only with ``force=True`` and only when
    bagkit wrote it (its ``.bagkit-output`` marker lists everything in it, unchanged); never the
    current folder or one holding it, never a folder with an input inside. Text cells of the
    CSVs are escaped against spreadsheet formulas (:func:`bagkit.io.tables.spreadsheet_safe`).
    """
    import csv

    out = Path(out)
    notes: list[str] = []
    with output_folder(out, inputs=_inputs(results), force=force, written_by=f"bagkit {_version()}",
                       notes=notes) as staging:
        for note in notes:  # what killed runs had left beside out
            warnings.warn(note, stacklevel=2)
        figures_dir = staging / "figures"
        figures_dir.mkdir()
        spreadsheet_safe_frame(results.tidy()).to_csv(staging / "results.csv", index=False, float_format="%.17g")
        rows = fmt.table_rows(results.table1)
        with open(staging / "table1.csv", "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([[spreadsheet_safe(v.replace("\n", "; ")) for v in row] for row in rows])
        build_pdf(results, staging / "report.pdf", figures_dir, progress)
    figures = tuple(sorted((out / "figures").glob("*.png")))
    return Written(out, out / "report.pdf", out / "results.csv", out / "table1.csv", figures)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bagkit")
    except PackageNotFoundError:
        return "(version unknown)"
