"""The matching section of the PDF (Table 2, balance, love plot, Supplementary Table 4) as a user gets it.

The matching numbers themselves are checked against MatchIt run by Rscript in tests/test_matching.py;
here the question is whether the report prints what results.csv holds, where the paper puts it, and
whether it survives cohorts that cannot be matched the default way and hostile labels.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest
from pypdf import PdfReader

import bagkit
from bagkit.analyses import AnalysisOptions
from bagkit.report import SECTIONS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_COHORT = ROOT / "examples" / "cohort.csv"
EXAMPLE_VISITS = ROOT / "examples" / "visits.csv"


def _pages(pdf) -> list[str]:
    return [page.extract_text() for page in PdfReader(str(pdf)).pages]


def _first_page(pages: list[str], needle: str) -> int:
    return next(i for i, text in enumerate(pages) if needle in text)


def _report(cohort_csv, out, visits=None, options=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = bagkit.analyze(bagkit.read_cohort(cohort_csv, visits=visits), options)
        written = results.write(out)
    return results, written


@pytest.fixture(scope="module")
def example_report(tmp_path_factory):
    results, written = _report(EXAMPLE_COHORT, tmp_path_factory.mktemp("matching") / "out", visits=EXAMPLE_VISITS)
    return results, written, _pages(written.pdf)


def test_table2_section_sits_between_table1_and_outcomes():
    titles = [title for title, _ in SECTIONS]
    assert titles.index("Table 1") < titles.index("Table 2") < titles.index("Outcomes")


def test_table2_is_on_a_page_after_table1_with_every_group_label(example_report):
    results, _, pages = example_report
    assert "matching" in results.sections, results.skipped
    table1_page = _first_page(pages, "Table 1.")
    table2_page = _first_page(pages, "Table 2. Comparison of BAG between propensity-score matched groups")
    assert table2_page > table1_page
    text = pages[table2_page]
    for group in results.matching.primary.groups:
        assert group in text
    for row in ("Age at diagnosis", "Female", "EDSS at baseline", "Normalized brain volume",
                "Predicted brain age", "Brain age gap"):
        assert row in text, row
    outcomes_page = _first_page(pages, "Outcomes:")
    assert outcomes_page > table2_page


def test_love_plots_are_written_as_png(example_report):
    results, written, _ = example_report
    figures = written.out / "figures"
    assert (figures / "love_plot.png").is_file()
    assert (figures / "love_plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if results.matching.with_sd is not None:
        assert (figures / "love_plot_sd.png").is_file()


def _difference(tidy: pd.DataFrame, analysis: str, contrast: str, term: str = "bag") -> dict[str, float]:
    rows = tidy[(tidy["analysis"] == analysis) & (tidy["subset"] == "matched") & (tidy["term"] == term)]
    values = {s: float(v) for s, v in zip(rows.loc[rows["contrast"] == contrast.replace(" vs ", " - "), "statistic"],
                                          rows.loc[rows["contrast"] == contrast.replace(" vs ", " - "), "value"])}
    values["p"] = float(rows.loc[(rows["contrast"] == contrast) & (rows["statistic"] == "p"), "value"].iloc[0])
    return values


@pytest.mark.parametrize("analysis, title", [("psm", "Table 2"), ("psm_sd", "Supplementary Table 4")])
def test_bag_difference_printed_equals_results_csv_rounded(example_report, analysis, title):
    results, written, pages = example_report
    table = results.matching.primary if analysis == "psm" else results.matching.with_sd
    if table is None:
        pytest.skip("the cohort has no brain_age_sd")
    tidy = pd.read_csv(written.results_csv, keep_default_na=False, na_values=[""])
    a, b = table.groups
    d = _difference(tidy, analysis, f"{a} vs {b}")
    p = "<0.001" if d["p"] < 0.001 else f"{d['p']:.3f}"
    page = _first_page(pages, f"{title}: difference between the matched groups")
    text = pages[page]
    section = text[text.index(f"{title}: difference between the matched groups"):]
    # the row's cells, one per extracted line: 'Brain age gap, yr', '-7.7', '-10.0 to -5.3', '-6.41 (396)', '<0.001'
    lines = [line.strip() for line in section.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("Brain age gap"))
    row = lines[start + 1:start + 5]
    assert row[0] == f"{d['diff']:.1f}", row
    assert row[1] == f"{d['ci_low']:.1f} to {d['ci_high']:.1f}", row
    assert row[3] == p, row
    sentence = " ".join(section.split())
    assert (f"an estimated difference of {d['diff']:.1f} years [95% CI {d['ci_low']:.1f} to {d['ci_high']:.1f}]"
            in sentence)


def test_balance_table_flags_imbalance_explicitly(example_report):
    results, _, pages = example_report
    matching = results.matching.primary.matching
    page = _first_page(pages, "Table 2: covariate balance before and after matching")
    text = " ".join(pages[page].split())
    # caption and table stay together: the caption's page holds the table's rows
    assert "Propensity score" in text and "Var. ratio" in text
    if matching.balanced:
        assert "Balance reached" in text
    else:
        assert "balance was NOT reached" in text
        assert "*" in text


def test_matching_description_names_method_and_counts(example_report):
    results, _, pages = example_report
    text = " ".join(" ".join(pages).split())
    matching = results.matching.primary.matching
    assert 'method = "nearest"' in text and 'distance = "glm"' in text
    assert "Table 2: subjects matched and unmatched" in text
    assert "Left out: a covariate missing" in text
    a, b = matching.groups
    assert f"{a} was matched to {b}" in text


def test_one_patient_group_and_controls_still_get_a_report(tmp_path):
    frame = pd.read_csv(EXAMPLE_COHORT)
    frame = frame[frame["group"].isin(["NMOSD", "HC"])]
    path = tmp_path / "one_group.csv"
    frame.to_csv(path, index=False)
    # default: no second patient group -> the section says matching was skipped, and why
    results, written = _report(path, tmp_path / "default")
    assert "matching" not in results.sections
    text = " ".join(" ".join(_pages(written.pdf)).split())
    assert "Propensity-score matching (Table 2) was skipped: matching needs two groups" in text
    assert "--match" in text
    # the patients matched to the controls on covariates the controls have
    options = AnalysisOptions(match_groups=("NMOSD", "HC"), match_covariates=("sex", "age", "nbv"))
    results, written = _report(path, tmp_path / "vs_controls", options=options)
    assert "matching" in results.sections, results.skipped
    pages = _pages(written.pdf)
    page = _first_page(pages, "Table 2. Comparison of BAG")
    assert "NMOSD" in pages[page] and "HC" in pages[page]
    assert (written.out / "figures" / "love_plot.png").is_file()


def test_hostile_group_label_renders_as_text(tmp_path):
    frame = pd.read_csv(EXAMPLE_COHORT)
    frame["group"] = frame["group"].replace({"NMOSD": "<b>NMOSD & co</b>"})
    path = tmp_path / "hostile.csv"
    frame.to_csv(path, index=False)
    results, written = _report(path, tmp_path / "out")
    assert "matching" in results.sections, results.skipped
    pages = _pages(written.pdf)
    page = _first_page(pages, "Table 2. Comparison of BAG")
    text = pages[page]
    assert "<b>NMOSD & co</b>" in text
    assert "&amp;" not in text and "&lt;" not in text
