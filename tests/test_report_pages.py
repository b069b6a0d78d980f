"""The PDF as a reader gets it: the example cohort's report has Tables 1–3 and Figures 1–2 in the
paper's order, every group label where it belongs, nothing drawn beyond the margins, a provenance
page; partial cohorts still get a report with a note saying what was skipped and why; the same
inputs give the same numbers; the README documents every option of ``bagkit report``."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image
from pypdf import PdfReader
from rtools import EXAMPLE_COHORT, EXAMPLE_VISITS, ROOT

import bagkit
from bagkit.cli import cli
from bagkit.report.layout import LANDSCAPE, MARGIN, PAGE

GROUPS = ("NMOSD", "RRMS", "HC")


def _pages(pdf) -> list[str]:
    """Each page's text with whitespace runs made one space (labels wrap inside table cells)."""
    return [" ".join(page.extract_text().split()) for page in PdfReader(str(pdf)).pages]


def _first_page_with(pages: list[str], text: str) -> int:
    found = [i for i, page in enumerate(pages) if text in page]
    assert found, f"{text!r} is on no page of the report"
    return found[0]


@pytest.fixture(scope="module")
def example_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    result = CliRunner().invoke(cli, ["report", str(EXAMPLE_COHORT), "--visits", str(EXAMPLE_VISITS),
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_tables_and_figures_in_the_papers_order(example_report):
    out, _ = example_report
    pages = _pages(out / "report.pdf")
    at = {name: _first_page_with(pages, name) for name in
          ("Table 1.", "Figure 1.", "Table 2.", "Table 3.", "Figure 2.", "Notes and provenance")}
    assert at["Table 1."] == 0, "Table 1 opens the report"
    # pages are packed: a figure and the next table may share a page
    assert at["Table 1."] <= at["Figure 1."] <= at["Table 2."] < at["Table 3."] <= at["Figure 2."]
    assert at["Notes and provenance"] == len(pages) - 1, "provenance is the last page"
    for group in GROUPS:
        assert group in pages[at["Table 1."]], f"group {group} on the Table 1 page"
    for group in ("NMOSD", "RRMS"):
        assert group in pages[at["Table 2."]] and group in pages[at["Table 3."]]
    table1_page = pages[0]
    for row in ("Age at baseline, yr", "Female, n (%)", "EDSS at baseline, median (IQR)", "Brain age gap, yr",
                "Follow-up time, yr", "EDSS worsening, n (%)"):
        assert row in table1_page, f"Table 1 row {row!r}"


def test_figures_are_written_as_png(example_report):
    out, output = example_report
    for name in ("figure1.png", "figure2.png"):
        path = out / "figures" / name
        assert path.is_file(), name
        with Image.open(path) as image:
            assert min(image.size) > 300, f"{name} is {image.size}"
    assert "wrote" in output and str(out / "report.pdf") in output


def test_provenance_names_versions_inputs_and_options(example_report):
    out, _ = example_report
    last = _pages(out / "report.pdf")[-1]
    import hashlib
    for path in (EXAMPLE_COHORT, EXAMPLE_VISITS):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest in last.replace(" ", ""), f"SHA-256 of {path.name} on the provenance page"
    for item in ("bagkit", "Python", "MatchIt", "survival", "R version", "Control group", "Random seed",
                 "Matching covariates", "BAG cutoff rule", "sex, age_at_diagnosis, edss, nbv"):
        assert item in last, f"{item!r} on the provenance page"


def test_nothing_is_drawn_beyond_the_margins(example_report, tmp_path):
    """Every page rendered at 50 dpi: the left, right and top margin bands are blank (the page
    number sits in the bottom band, which is not checked). A table too wide or a figure too big
    for the frame would print into them."""
    out, _ = example_report
    assert shutil.which("pdftoppm"), "pdftoppm (poppler-utils) is needed; bash scripts/setup.sh installs it"
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(out / "report.pdf"), str(tmp_path / "page")], check=True)
    images = sorted(tmp_path.glob("page-*.png"))
    assert len(images) == len(PdfReader(str(out / "report.pdf")).pages)
    for path in images:
        with Image.open(path) as image:
            gray = np.asarray(image.convert("L"), dtype=float)
        height, width = gray.shape
        page = PAGE if height > width else LANDSCAPE  # wide tables sit on landscape pages
        band = int(MARGIN / page[0] * width) - 3  # a little inside the margin (antialiasing)
        for name, strip in (("left", gray[:, :band]), ("right", gray[:, width - band:]),
                            ("top", gray[:int(MARGIN / page[1] * height) - 3, :])):
            assert strip.min() > 245, f"{path.name}: something is drawn in the {name} margin"
        assert gray[band:-band, band:-band].min() < 100, f"{path.name} is empty"


PARTIAL = {
    "no follow-up": ([], "outcomes: no follow-up data"),
    "two groups": (["--visits", str(EXAMPLE_VISITS), "--groups", "NMOSD,HC"], "matching needs two groups"),
    "no control group": (["--visits", str(EXAMPLE_VISITS), "--groups", "NMOSD,RRMS", "--no-control"],
                         "control group: none"),
}


@pytest.mark.parametrize("name", list(PARTIAL))
def test_partial_cohorts_get_a_report_with_skip_notes(name, tmp_path):
    args, note = PARTIAL[name]
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["report", str(EXAMPLE_COHORT), *args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    pages = _pages(out / "report.pdf")
    assert "Table 1." in pages[0]
    last = pages[-1]
    assert "What was skipped or partial, and why" in last
    assert note in last, f"skip note {note!r} on the last page of the {name} report"
    tidy = pd.read_csv(out / "results.csv")
    assert (tidy["analysis"] == "table1").any()
    if name == "no follow-up":
        assert not tidy["analysis"].isin(["km", "cox_univariable", "roc"]).any()
        assert "Table 2." in " ".join(pages), "matching does not need follow-up"
    if name == "two groups":
        assert set(tidy.loc[tidy["analysis"] == "table1", "subset"]) - {"", "all"} <= {"NMOSD", "HC"}
        assert "Table 3." in " ".join(pages), "outcomes need only the patient group's follow-up"
    if name == "no control group":
        assert "HC" not in pages[0]


def test_same_inputs_give_the_same_numbers():
    runs = []
    for _ in range(2):
        cohort = bagkit.read_cohort(EXAMPLE_COHORT, visits=EXAMPLE_VISITS)
        runs.append(bagkit.analyze(cohort).tidy())
    pd.testing.assert_frame_equal(runs[0], runs[1], check_exact=True)


def test_readme_and_help_show_every_report_option():
    report = cli.commands["report"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    help_text = CliRunner().invoke(cli, ["report", "--help"], terminal_width=200).output
    missing_readme, missing_help = [], []
    for param in report.params:
        for name in param.opts:
            if not name.startswith("--"):
                continue
            if not re.search(re.escape(name) + r"(?![\w-])", readme):
                missing_readme.append(name)
            if name not in help_text:
                missing_help.append(name)
    assert not missing_help, f"bagkit report --help lacks {missing_help}"
    assert not missing_readme, f"README.md does not document bagkit report option(s) {missing_readme}"
