"""Issue 14: pages are used. On the example cohort and on a cohort with long labels, no page of
the PDF holds only a figure (and its notes) on less than half of the page — the Bland–Altman plot
alone on the last page of the main part before — no figure is drawn below FIGURE_FLOOR of its
size, no page is blank, and a heading never ends a page. The layout engine's record of each page
is checked against the rendered pages (the lowest ink on each page, by pdftoppm)."""
from __future__ import annotations

import shutil
import subprocess
import warnings

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader
from rtools import EXAMPLE_COHORT, EXAMPLE_VISITS

import bagkit
from bagkit.report import document
from bagkit.report.figures import FigureStore
from bagkit.report.layout import FRAME_PADDING, MARGIN
from bagkit.report.pdf import FIGURE_FLOOR, LONE_PAGE_FRACTION, build_pdf
from bagkit.report.tables import Figure, Table, Text

DPI = 50


@pytest.fixture(scope="module")
def example():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bagkit.analyze(bagkit.read_cohort(EXAMPLE_COHORT, visits=EXAMPLE_VISITS))


@pytest.fixture(scope="module")
def long_labels(tmp_path_factory):
    from test_report_formats import _long_label_cohort

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bagkit.analyze(_long_label_cohort(tmp_path_factory.mktemp("long")))


@pytest.fixture
def results_of(request, example):
    return lambda name: example if name == "example" else request.getfixturevalue("long_labels")


def _lowest_ink(pdf, tmp_path) -> list[float]:
    """Per page, points from the frame's top to the lowest non-white pixel above the footer band."""
    assert shutil.which("pdftoppm"), "pdftoppm (poppler-utils) is needed; bash scripts/setup.sh installs it"
    subprocess.run(["pdftoppm", "-png", "-r", str(DPI), str(pdf), str(tmp_path / "page")], check=True)
    out = []
    for path in sorted(tmp_path.glob("page-*.png")):
        with Image.open(path) as image:
            gray = np.asarray(image.convert("L"), dtype=float)
        scale = DPI / 72
        top = int((MARGIN + FRAME_PADDING) * scale)
        foot = gray.shape[0] - int(MARGIN * scale)  # the page number sits below the frame
        rows = np.flatnonzero((gray[:foot] < 200).any(axis=1))
        out.append((rows.max() - top) / scale if rows.size else 0.0)
    return out


@pytest.mark.parametrize("cohort_name", ["example", "long labels"])
def test_no_page_holds_a_figure_alone(cohort_name, tmp_path, results_of):
    results = results_of(cohort_name)
    doc = document(results)
    pages: list = []
    build_pdf(doc, tmp_path / "report.pdf", FigureStore(), pages)
    n_pages = len(PdfReader(str(tmp_path / "report.pdf")).pages)
    assert [p.number for p in pages] == list(range(1, n_pages + 1)), "every page has content (none blank)"
    headings = {b.text for b in doc.blocks() if isinstance(b, Text) and b.style in ("heading", "caption")}
    ink = _lowest_ink(tmp_path / "report.pdf", tmp_path)
    for page, lowest in zip(pages, ink):
        # the record is what the page shows: its content ends where the ink ends (to a few points:
        # a paragraph's space after it, a table's padding)
        assert page.used - 14 <= lowest <= page.used + 2, (page.number, page.used, lowest)
        assert not page.lone_figure, (f"page {page.number} ({page.part}) holds only {page.kinds} on "
                                      f"{page.used / page.height:.0%} of the page")
        if page.figures_only:
            assert page.used >= LONE_PAGE_FRACTION * page.height
        for figure in page.figures:
            assert figure.scale >= FIGURE_FLOOR - 1e-9, (figure.key, figure.scale)
        if page.kinds[-1] == "text":
            assert page.texts[-1] not in headings, f"page {page.number} ends with the heading {page.texts[-1]!r}"
    parts = [p.part for p in pages]
    assert parts == sorted(parts, key=["main", "supplementary", "provenance"].index), \
        "supplementary material after the main part, provenance last"
    names = [b.name for b in doc.blocks() if isinstance(b, Figure)]
    placed = [f.key for p in pages for f in p.figures]
    assert placed == names, "every figure once, in the report's order"
    if cohort_name == "example":
        main = [p for p in pages if p.part == "main"]
        ba = next(p for p in main if "bland_altman_filled" in [f.key for f in p.figures])
        assert ba.kinds.count("table") >= 1, "the Bland–Altman plot shares its page with its table"


def test_a_heading_goes_with_its_landscape_table(tmp_path):
    """A heading right before a table that needs a landscape page is set on that page."""
    from bagkit.report.tables import Document

    wide = Table.of("wide", "A wide table", [[f"column number {i}" for i in range(14)]],
                    [[f"value-{i}-{j}-long" for i in range(14)] for j in range(5)])
    doc = Document("t", "s", main=[[Text("A long body paragraph. " * 40, "body")] * 14 +
                                   [Text("The wide section", "heading"), wide]])
    pages: list = []
    build_pdf(doc, tmp_path / "r.pdf", FigureStore(), pages)
    with_table = next(p for p in pages if "table" in p.kinds)
    assert with_table.height < 600, "the wide table is on a landscape page"
    assert with_table.texts[0] == "The wide section", "its heading is on the same page, above it"
    assert all("The wide section" not in p.texts for p in pages if p is not with_table)


def test_word_keeps_short_tables_whole_and_draws_figures_as_the_pdf(example, tmp_path):
    """report.docx: a short table's rows keep with the next and never split (so its caption, or a
    heading, never ends a page alone), and a figure the PDF drew smaller is as small in Word."""
    from docx import Document as WordDocument
    from docx.oxml.ns import qn

    from bagkit.report.word import KEEP_ROWS, build_docx

    doc = document(example)
    store = FigureStore()
    pages: list = []
    build_pdf(doc, tmp_path / "r.pdf", store, pages)
    scaled = {f.key: f.scale for p in pages for f in p.figures if f.scale < 1}
    assert "bland_altman_filled" in scaled
    build_docx(doc, tmp_path / "r.docx", store)
    word = WordDocument(str(tmp_path / "r.docx"))
    short = [t for t in word.tables if len(t.rows) <= KEEP_ROWS]
    assert short
    for table in short:
        for row in table.rows:
            assert row._tr.trPr.find(qn("w:cantSplit")) is not None
        for row in table.rows[:-1]:
            assert all(p.paragraph_format.keep_with_next for c in row.cells for p in c.paragraphs)
    widths = [shape.width for shape in word.inline_shapes]
    names = [b.name for b in doc.blocks() if isinstance(b, Figure)]
    unscaled = FigureStore()
    build_docx(doc, tmp_path / "plain.docx", unscaled)  # no PDF laid out first: figures at full size
    full = [shape.width for shape in WordDocument(str(tmp_path / "plain.docx")).inline_shapes]
    for name, width, whole in zip(names, widths, full):
        assert width == pytest.approx(whole * scaled.get(name, 1.0), rel=1e-3), name


def test_numbers_at_risk_rows_are_named_for_grey_printing(example):
    """Each row of numbers at risk under a Kaplan–Meier panel carries its curve's legend label
    (the rows were told apart by colour only)."""
    from matplotlib.figure import Figure as MplFigure

    from bagkit.plots.outcomes import km_axes

    km = example.outcomes.groups[0].km
    ax = MplFigure().subplots()
    km_axes(ax, km)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    beside = [t.get_text() for t in ax.texts if t.get_text().startswith("BAG")]
    assert len(legend) == 2 and beside == legend


def _text_defects(fig) -> list[tuple]:
    """Texts of a drawn figure that lie outside it or overlap another text (titles, axis and tick
    labels, legends, annotations, numbers at risk); tick labels of ticks outside the view, which
    matplotlib keeps but never draws, are left out."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text as MplText

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    hidden = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            slack = 1e-9 * abs(high - low)
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not low - slack <= tick.get_loc() <= high + slack:
                    hidden.update({id(tick.label1), id(tick.label2)})
    texts = [(t, t.get_window_extent(renderer)) for t in fig.findobj(MplText)
             if t.get_visible() and t.get_text().strip() and id(t) not in hidden]
    box = fig.bbox
    defects = [("outside", t.get_text()) for t, e in texts
               if e.x0 < box.x0 - 1 or e.x1 > box.x1 + 1 or e.y0 < box.y0 - 1 or e.y1 > box.y1 + 1]
    for i, (first, a) in enumerate(texts):
        for second, b in texts[i + 1:]:
            if a.overlaps(b):
                defects.append(("overlap", first.get_text(), second.get_text()))
    return defects


@pytest.mark.parametrize("cohort_name", ["example", "long labels"])
def test_figure_texts_stay_inside_and_apart(cohort_name, results_of):
    """Every figure of the report: no title, label, legend entry or number drawn outside the figure
    or over another (long group names and labels wrap: the love plot's title and ticks, Figure 2's
    axis labels and Kaplan–Meier titles ran off the figure or into each other before)."""
    doc = document(results_of(cohort_name))
    figures = [b for b in doc.blocks() if isinstance(b, Figure)]
    assert len(figures) >= 6
    found = {b.name: _text_defects(b.draw()) for b in figures}
    assert not any(found.values()), {name: d[:3] for name, d in found.items() if d}


def test_printed_html_keeps_headings_with_what_follows(example, tmp_path):
    """report.html printed by headless Chromium: the title page holds Table 1's start, no page
    ends with a heading or a caption, and the Bland–Altman plot (drawn as small as in the PDF)
    shares its page with its table."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium (Debian chromium) is not installed; bash scripts/setup.sh installs it")
    written = example.write(tmp_path / "out", formats=("pdf", "html"))
    printed = tmp_path / "printed.pdf"
    from test_report_formats import _clean_env

    env = _clean_env(tmp_path)
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}",
                    "--no-pdf-header-footer", f"--print-to-pdf={printed}", written.html.as_uri()],
                   capture_output=True, timeout=180, env=env, check=True)
    import unicodedata

    pages = [[line for line in unicodedata.normalize("NFKC", page.extract_text()).split("\n") if line.strip()]
             for page in PdfReader(str(printed)).pages]  # NFKC: Chromium sets "fi" as a ligature
    assert "Table 1." in " ".join(pages[0]), "Table 1 starts on the title page"
    doc = document(example)
    headings = {" ".join(b.text.split()) for b in doc.blocks() if isinstance(b, Text) and b.style in ("heading",
                                                                                                    "caption")}
    for number, lines in enumerate(pages[:-1], start=1):
        assert " ".join(lines[-1].split()) not in headings, f"printed page {number} ends with {lines[-1]!r}"
    ba = next(i for i, lines in enumerate(pages) if any(line.startswith("Bland–Altman plot") for line in lines))
    assert any("lesion-filled T1 scans" in line for line in pages[ba]), "the plot shares a page with its table"


def test_libreoffice_sets_no_figure_alone_on_a_page(example, tmp_path):
    """report.docx as LibreOffice lays it out: a figure's caption and picture are one paragraph (never
    on two pages), and no page but the last holds nothing but a figure's caption (the Bland–Altman
    plot had a page to itself)."""
    import unicodedata

    from docx import Document as WordDocument

    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.skip("LibreOffice (Debian libreoffice-writer) is not installed; bash scripts/setup.sh installs it")
    written = example.write(tmp_path / "out", formats=("pdf", "docx"))
    word = WordDocument(str(written.docx))
    with_picture = [p for p in word.paragraphs if p._p.xpath(".//pic:pic")]
    names = [b.name for b in document(example).blocks() if isinstance(b, Figure)]
    assert len(with_picture) == len(names)
    assert all(p.text.strip() and p.paragraph_format.keep_together for p in with_picture), "caption beside picture"
    from test_report_formats import _clean_env

    env = _clean_env(tmp_path)  # R's variables (set by the bridge in this process) upset LibreOffice
    subprocess.run([soffice, f"-env:UserInstallation=file://{tmp_path}/profile", "--headless", "--convert-to",
                    "pdf", "--outdir", str(tmp_path), str(written.docx)], capture_output=True, timeout=180,
                   env=env, check=True)
    pages = [[line for line in unicodedata.normalize("NFKC", page.extract_text()).split("\n") if line.strip()]
             for page in PdfReader(str(tmp_path / "report.pdf")).pages]
    for number, lines in enumerate(pages[:-1], start=1):
        assert len(lines) > 4, f"LibreOffice page {number} holds only {lines}"
