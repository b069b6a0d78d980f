"""Renderers: the PDF report, table1.csv, results.csv and figure PNGs, all from one Results object.

Renderers format; they never compute. Each section module exposes
``flowables(results, figures_dir) -> list`` of reportlab flowables and is listed
in :data:`SECTIONS` in the order the paper presents them.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from reportlab.platypus import PageBreak, SimpleDocTemplate

from bagkit.errors import OutputExistsError
from bagkit.report import format as fmt
from bagkit.report import matching as matching_section
from bagkit.report import outcomes as outcomes_section
from bagkit.report import table1 as table1_section
from bagkit.report.layout import MARGIN, PAGE, fonts, gap, paragraph

__all__ = ["write_outputs", "build_pdf", "Written", "SECTIONS"]

# (title, module with flowables(results, figures_dir)); later sections are appended in paper order.
SECTIONS: list[tuple[str, object]] = [
    ("Table 1", table1_section),
    ("Table 2", matching_section),
    ("Outcomes", outcomes_section),
]


@dataclass(frozen=True)
class Written:
    """Where the outputs went."""

    out: Path
    pdf: Path
    results_csv: Path
    table1_csv: Path
    figures: tuple[Path, ...]


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(results) -> list[tuple[str, str]]:
    import bagkit
    items = [("bagkit", bagkit.__version__), ("Python", platform.python_version())]
    source = results.cohort.source
    if source and Path(source).is_file():
        items.append(("Cohort file", f"{Path(source).name} (sha256 {_sha256(source)[:16]}…)"))
    items.append(("Control group", str(results.cohort.control)))
    items += [(name.replace("_", " "), str(value)) for name, value in results.options.as_dict().items()]
    items.append(("Date", _dt.date.today().isoformat()))
    return items


def _on_page(canvas, doc):
    regular, _ = fonts()
    canvas.saveState()
    canvas.setFont(regular, 7)
    canvas.drawRightString(PAGE[0] - MARGIN, MARGIN / 2, f"bagkit report · page {doc.page}")
    canvas.restoreState()


def build_pdf(results, path: Path, figures_dir: Path, progress: Callable[[str], None] | None = None) -> None:
    say = progress or (lambda message: None)
    cohort = results.cohort
    story = [paragraph("Brain age gap analysis", "title"),
             paragraph(f"Cohort: {Path(cohort.source).name if cohort.source else 'in memory'} · "
                       f"{len(cohort)} subjects · groups: {', '.join(cohort.groups)} · control: "
                       f"{cohort.control or 'none'}", "body"), gap(3)]
    for title, section in SECTIONS:
        say(f"report: {title}")
        flow = section.flowables(results, figures_dir)
        if flow:
            if len(story) > 3:
                story.append(PageBreak())
            story += flow
    story += [PageBreak(), paragraph("Notes and provenance", "heading")]
    if results.skipped:
        story.append(paragraph("Skipped or partial analyses:", "caption"))
        story += [paragraph(f"• {note}", "body") for note in results.skipped]
        story.append(gap(3))
    story += [paragraph(f"{name}: {value}", "body") for name, value in provenance(results)]
    doc = SimpleDocTemplate(str(path), pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                            bottomMargin=MARGIN, title="bagkit report", author="bagkit")
    doc.build(story, onFirstPage=_on_page, onLaterPages=_on_page)


def _inputs(results) -> list[Path]:
    return [Path(p).resolve() for p in (results.cohort.source,) if p]


def write_outputs(results, out, force: bool = False, progress: Callable[[str], None] | None = None) -> Written:
    """Write report.pdf, table1.csv, results.csv and figures/*.png into ``out``, atomically.

    Everything is written into a fresh sibling folder first and moved into place at the end, so a
    failure leaves any earlier ``out`` untouched. An existing ``out`` is replaced only with
    ``force=True``, and never when an input file lies inside it.
    """
    out = Path(out)
    if out.exists():
        if not force:
            raise OutputExistsError(f"output folder {out} already exists; choose another with -o, or "
                                    f"replace it with --force")
        if not out.is_dir():
            raise OutputExistsError(f"{out} exists and is not a folder; refusing to replace it")
        resolved = out.resolve()
        inside = [p for p in _inputs(results) if resolved in p.parents]
        if inside:
            raise OutputExistsError(f"refusing to replace {out}: it holds the input {inside[0]}")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        figures_dir = staging / "figures"
        figures_dir.mkdir()
        results.tidy().to_csv(staging / "results.csv", index=False, float_format="%.17g")
        rows = fmt.table_rows(results.table1)
        import csv
        with open(staging / "table1.csv", "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([[v.replace("\n", "; ") for v in row] for row in rows])
        build_pdf(results, staging / "report.pdf", figures_dir, progress)
        if out.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, trash / out.name)
            os.replace(staging, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    figures = tuple(sorted((out / "figures").glob("*.png")))
    return Written(out, out / "report.pdf", out / "results.csv", out / "table1.csv", figures)
