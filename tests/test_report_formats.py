"""One table model, four renderings: the cell texts of Tables 1–3 are the same in report.docx (read
back with python-docx), report.html (parsed), the PDF and tables/*.csv; LibreOffice opens the docx
and Chromium renders the HTML; no table cell breaks inside a word or number, on the example cohort
and on a cohort with long labels; Figure 1C's means ± SE and the numbers at risk are results.csv
numbers (checked against R)."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader
from rtools import EXAMPLE_COHORT, EXAMPLE_VISITS, ROOT, rscript

import bagkit
from bagkit.report import document
from bagkit.report.figures import FigureStore
from bagkit.report.layout import words_broken
from bagkit.report.pdf import build_pdf
from bagkit.report.tables import plain, tables_of

MAIN_TABLES = ("table1", "table2", "table3")


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = bagkit.analyze(bagkit.read_cohort(EXAMPLE_COHORT, visits=EXAMPLE_VISITS))
        written = results.write(tmp_path_factory.mktemp("formats") / "out")
    return results, written, {t.name: t for t in tables_of(document(results))}


def _grid(table) -> list[list[str]]:
    """The table as a reader sees its grid: a spanning cell's text in every column it covers."""
    rows = [list(r) for r in table.rows]
    n_header = len(table.header)
    for r, first, last in table.spans:
        for c in range(first + 1, last + 1):
            rows[r][c] = rows[r][first]
    for i in table.section_rows:
        rows[n_header + i] = [rows[n_header + i][0]] * table.n_columns
    return rows


def test_tables_csv_hold_the_models_cells(example):
    _, written, tables = example
    assert {p.stem for p in written.tables} == set(tables)
    for name in MAIN_TABLES:
        with open(written.out / "tables" / f"{name}.csv", newline="", encoding="utf-8") as handle:
            cells = list(csv.reader(handle))
        assert cells == [[c.replace("\n", "; ") for c in row] for row in tables[name].rows], name


def test_docx_tables_equal_the_model(example):
    from docx import Document

    _, written, tables = example
    word = Document(str(written.docx))
    order = list(tables)
    assert len(word.tables) == len(order), "one Word table per table of the report"
    for name in MAIN_TABLES:
        got = [[plain(cell.text) for cell in row.cells] for row in word.tables[order.index(name)].rows]
        assert got == _grid(tables[name]), name
    captions = [p.text for p in word.paragraphs]
    for name in MAIN_TABLES:
        assert tables[name].caption in captions, f"caption of {name} in the docx"
        for note in tables[name].footnotes:
            assert note in captions, f"footnote of {name} in the docx"
    assert len(word.inline_shapes) == len(list((written.out / "figures").glob("*.png"))), "every figure embedded"


def _html_tables(path) -> dict[str, list[list[str]]]:
    from lxml import html

    tree = html.parse(str(path))
    out = {}
    for figure in tree.getroot().iter("figure"):
        table = figure.find(".//table")
        if table is None:
            continue
        grid = []
        for tr in table.iter("tr"):
            row = []
            for cell in tr:
                text = plain("\n".join(t for t in cell.xpath(".//text()")))
                row += [text] * int(cell.get("colspan", "1"))
            grid.append(row)
        out[figure.get("id")] = grid
    return out


def test_html_tables_equal_the_model_and_the_page_is_self_contained(example):
    _, written, tables = example
    parsed = _html_tables(written.html)
    assert list(parsed) == list(tables)
    for name in MAIN_TABLES:
        assert parsed[name] == _grid(tables[name]), name
    page = written.html.read_text(encoding="utf-8")
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page, "no network"
    assert page.count("data:image/png;base64,") == len(list((written.out / "figures").glob("*.png")))


def test_pdf_holds_every_cell_of_tables_1_to_3(example):
    _, written, tables = example
    words = set(" ".join(page.extract_text() for page in PdfReader(str(written.pdf)).pages).split())
    for name in MAIN_TABLES:
        missing = {w for row in tables[name].rows for cell in row for w in cell.split()} - words
        assert not missing, f"{name}: cell words not in the PDF: {sorted(missing)[:10]}"


def test_every_page_of_the_pdf_draws_in_pdfium_as_in_poppler(example):
    """Chrome's PDF viewer is PDFium: each page of report.pdf must draw there, text and stamped
    figures alike (a page whose content array held a stream itself drew blank in PDFium while
    poppler drew it). Ink per page (pixels darker than 200 at 50 dpi): PDFium's within 25 % of
    poppler's (pdftoppm); their anti-aliasing differs by ~15 %, a blank page by 100 %."""
    import shutil
    import subprocess

    import numpy as np
    import pypdfium2
    from PIL import Image

    _, written, _ = example
    document = pypdfium2.PdfDocument(str(written.pdf))
    try:
        pdfium = []
        for page in document:
            assert len(list(page.get_objects())) > 0
            pdfium.append(float((np.asarray(page.render(scale=50 / 72).to_pil().convert("L")) < 200).mean()))
    finally:
        document.close()
    assert min(pdfium) > 0.02, pdfium
    if shutil.which("pdftoppm"):
        out = written.pdf.parent / "poppler"
        subprocess.run(["pdftoppm", "-r", "50", "-gray", "-png", str(written.pdf), str(out)], check=True)
        poppler = [float((np.asarray(Image.open(p).convert("L")) < 200).mean())
                   for p in sorted(written.pdf.parent.glob("poppler*.png"))]
        for p in written.pdf.parent.glob("poppler*.png"):
            p.unlink()
        assert len(poppler) == len(pdfium)
        assert all(0.75 < a / b < 1.33 for a, b in zip(pdfium, poppler)), list(zip(pdfium, poppler))


def _clean_env(tmp_path) -> dict:
    """The environment a user's desktop program sees: not the R variables the bridge set in this process."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8"}


def test_libreoffice_opens_the_docx_and_finds_the_tables(example, tmp_path):
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.skip("LibreOffice (Debian libreoffice-writer) is not installed; bash scripts/setup.sh installs it")
    _, written, tables = example
    run = subprocess.run([soffice, f"-env:UserInstallation=file://{tmp_path}/profile", "--headless", "--convert-to",
                          "pdf", "--outdir", str(tmp_path), str(written.docx)], capture_output=True, text=True,
                         timeout=180, env=_clean_env(tmp_path))
    assert run.returncode == 0, run.stderr[-2000:]
    text = plain(" ".join(" ".join(p.extract_text().split()) for p in PdfReader(str(tmp_path / "report.pdf")).pages))
    words = set(text.split())
    for name in MAIN_TABLES:
        assert tables[name].caption[:40] in text, f"{name} caption in LibreOffice's rendering"
        # a number or word broken across lines inside a Word cell would be missing whole here
        broken = {w for row in tables[name].rows for cell in row for w in cell.split()} - words
        assert not broken, f"{name}: cell words LibreOffice broke or lost: {sorted(broken)[:10]}"
    for cell in ("Age at baseline, yr", "Number of events, n (%)", "Multivariable"):
        assert cell in text


def test_chromium_renders_the_html_without_errors(example, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium (Debian chromium) is not installed; bash scripts/setup.sh installs it")
    _, written, _ = example
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             "--hide-scrollbars"]
    shot = tmp_path / "page.png"
    run = subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1200,3000",
                          written.html.as_uri()], capture_output=True, text=True, timeout=120,
                         env=_clean_env(tmp_path))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "net::ERR" not in run.stderr, "the page asked for something outside itself"
    from PIL import Image

    with Image.open(shot) as image:
        gray = np.asarray(image.convert("L"))
    assert gray.min() < 60 and (gray < 200).mean() > 0.01, "the screenshot shows the report"


def _long_label_cohort(tmp_path):
    data = pd.read_csv(EXAMPLE_COHORT)
    data["group"] = data["group"].map({"NMOSD": "Neuromyelitis optica spectrum disorder (AQP4 any)",
                                       "RRMS": "Relapsing-remitting multiple sclerosis", "HC": "Healthy controls"})
    path = tmp_path / "long.csv"
    data.to_csv(path, index=False)
    labels = {"edss": "Expanded Disability Status Scale score at the baseline visit",
              "age_at_diagnosis": "Age when the diagnosis was first established, years",
              "nbv": "Normalized whole-brain volume (brain/intracranial)"}
    return bagkit.read_cohort(path, visits=EXAMPLE_VISITS, control="Healthy controls", labels=labels)


@pytest.mark.parametrize("cohort_name", ["example", "long labels"])
def test_no_table_cell_breaks_inside_a_word_or_number(cohort_name, example, tmp_path):
    if cohort_name == "example":
        results = example[0]
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = bagkit.analyze(_long_label_cohort(tmp_path))
    doc = document(results)
    layouts = build_pdf(doc, tmp_path / "report.pdf", FigureStore())
    tables = tables_of(doc)
    assert len(layouts) == len(tables)
    broken = {t.name: words_broken(t, layout) for t, layout in zip(tables, layouts)}
    assert not any(broken.values()), {k: v[:3] for k, v in broken.items() if v}
    if cohort_name == "long labels":
        table3 = next(t for t in tables if t.name == "table3")
        assert "Expanded Disability Status Scale score at the baseline visit" in [r[0] for r in table3.body], \
            "the user's label for edss reaches Table 3"
        assert any(layout.landscape for layout in layouts), "wide tables are turned to landscape"
        user = "Expanded Disability Status Scale score at the baseline visit"
        for name in ("table1", "table2"):
            table = next(t for t in tables if t.name == name)
            assert user in [r[0] for r in table.body], f"the user's label for edss reaches {name}"
        figure2 = next(b for b in doc.blocks() if getattr(b, "name", "") == "figure2")
        assert user in [" ".join(ax.get_xlabel().split()) for ax in figure2.draw().axes], \
            "and Figure 2's axis (wrapped onto lines)"


def test_words_broken_sees_a_column_too_narrow(example):
    from bagkit.report.layout import TableLayout

    table = example[2]["table1"]
    squeezed = TableLayout("table1", tuple([20.0] * table.n_columns), 7.6, False)
    assert words_broken(table, squeezed), "a 20-pt column must break '41.0±13.0'"


def test_figure_numbers_are_results_numbers_and_agree_with_r(example, tmp_path):
    """Figure 1C's bars are the center_bag rows; the KM numbers at risk are the km at_risk rows.
    R: r/reference/center_means_reference.R (aggregate(bag ~ group + center, mean, sd / sqrt(n)));
    tolerance 1e-10 (double precision, same data)."""
    results, written, _ = example
    tidy = pd.read_csv(written.results_csv, keep_default_na=False, na_values=[""])
    centers = tidy[tidy["analysis"] == "center_bag"]
    assert len(centers), "Figure 1C's numbers are in results.csv"
    data = results.cohort.data[["group", "center", "bag"]].dropna()
    data.to_csv(tmp_path / "bag.csv", index=False)
    rscript(str(ROOT / "r" / "reference" / "center_means_reference.R"), str(tmp_path / "bag.csv"),
            str(tmp_path / "r.csv"))
    reference = pd.read_csv(tmp_path / "r.csv")
    assert len(reference) * 4 == len(centers), "same (group, center) cells on both sides"
    for row in reference.itertuples(index=False):
        mine = centers[(centers["subset"] == row.group) & (centers["contrast"] == f"center {row.center}")]
        values = dict(zip(mine["statistic"], mine["value"]))
        assert values["n"] == row.n
        assert values["mean"] == pytest.approx(row.mean, abs=1e-10)
        assert values["se"] == pytest.approx(row.se, abs=1e-10)
    km = results.outcomes.groups[0].km
    at_risk = tidy[(tidy["analysis"] == "km") & (tidy["subset"] == km.subset)
                   & tidy["statistic"].str.startswith("at_risk_")]
    shown = [n for counts in km.numbers_at_risk for n in counts]
    assert sorted(at_risk["value"].astype(int)) == sorted(shown), "the numbers under the KM plot are results.csv's"


def test_formats_option_writes_only_what_is_asked(small_cohort_csv, tmp_path):
    from click.testing import CliRunner

    from bagkit.cli import cli

    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["report", str(small_cohort_csv), "-o", str(out), "--formats", "html", "-q"])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").is_file() and not (out / "report.pdf").exists()
    assert not (out / "report.docx").exists()
    assert (out / "tables" / "table1.csv").is_file() and (out / "results.csv").is_file()
    bad = CliRunner().invoke(cli, ["report", str(small_cohort_csv), "-o", str(tmp_path / "bad"),
                                   "--formats", "pdf,odt"])
    assert bad.exit_code != 0 and "unknown report format(s) odt" in bad.output
    assert not (tmp_path / "bad").exists(), "nothing written when a format cannot be honoured"


def test_bland_altman_lines_are_named_once_each_in_a_legend(example):
    """The three lines' values are legend entries (never annotations printed over each other)."""
    from bagkit.plots.agreement import plot_bland_altman

    ba = example[0].brain_age_model.filled
    ax = plot_bland_altman(ba)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(labels) == 3 and len(set(labels)) == 3, labels
    assert not [t for t in ax.texts if t.get_text().startswith(("mean", "+1.96", "−1.96"))]
    styles = {line.get_linestyle() for line in ax.get_lines()[:3]}
    assert len(styles) == 3, "each line has its own style, readable in grey"
