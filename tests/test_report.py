"""The report as a user gets it: files written, PDF text, no clobbering, escaping of user text."""
from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner
from pypdf import PdfReader

import bagkit
from bagkit.cli import cli
from bagkit.errors import OutputExistsError


def _pdf_text(path) -> list[str]:
    return [page.extract_text() for page in PdfReader(str(path)).pages]


def test_report_writes_pdf_csvs_and_figures(small_cohort_csv, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["report", str(small_cohort_csv), "-o", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("report.pdf", "table1.csv", "results.csv", "figures/figure1.png"):
        assert (out / name).is_file(), name
    pages = _pdf_text(out / "report.pdf")
    assert "Table 1." in pages[0]
    for group in ("NMOSD", "RRMS", "HC"):
        assert group in pages[0]
    tidy = pd.read_csv(out / "results.csv")
    assert list(tidy.columns) == ["analysis", "subset", "term", "contrast", "statistic", "value"]
    assert {"table1"} <= set(tidy["analysis"])
    assert f"wrote {out / 'report.pdf'}" in result.output


def test_results_csv_holds_the_same_numbers_as_the_api(small_cohort_csv, tmp_path):
    cohort = bagkit.read_cohort(small_cohort_csv)
    results = bagkit.analyze(cohort)
    written = results.write(tmp_path / "out")
    from_file = pd.read_csv(written.results_csv, keep_default_na=False, na_values=[""])
    from_api = results.tidy()
    assert len(from_file) == len(from_api)
    assert (from_file["value"].to_numpy() == pytest.approx(from_api["value"].to_numpy(), rel=1e-15,
                                                           nan_ok=True))


def test_existing_output_is_not_clobbered_without_force(small_cohort_csv, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["report", str(small_cohort_csv), "-o", str(out)])
    assert result.exit_code != 0
    assert "already exists" in result.output and "--force" in result.output
    assert (out / "keep.txt").read_text() == "mine"
    # --force replaces only a folder bagkit wrote: one holding a file of the user's is refused
    result = CliRunner().invoke(cli, ["report", str(small_cohort_csv), "-o", str(out), "--force", "-q"])
    assert result.exit_code == 1 and "keep.txt" in result.output and "did not write" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"


def test_force_never_replaces_a_folder_holding_the_input(small_cohort_csv):
    cohort = bagkit.read_cohort(small_cohort_csv)
    results = bagkit.analyze(cohort)
    with pytest.raises(OutputExistsError, match="holds the input"):
        results.write(small_cohort_csv.parent, force=True)
    assert small_cohort_csv.is_file()


def test_user_labels_are_escaped_in_the_pdf(small_cohort_csv, tmp_path):
    frame = pd.read_csv(small_cohort_csv)
    frame["group"] = frame["group"].replace({"NMOSD": "<b>NMO & co</b>", "HC": "HC"})
    path = tmp_path / "hostile.csv"
    frame.to_csv(path, index=False)
    results = bagkit.analyze(bagkit.read_cohort(path))
    written = results.write(tmp_path / "out")
    text = _pdf_text(written.pdf)[0]
    assert "<b>NMO & co</b>" in text


def test_cli_error_is_a_clear_message_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("subject_id,group\ns1,HC\ns2,HC\n")
    result = CliRunner().invoke(cli, ["report", str(bad), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "Error:" in result.output and "'age'" in result.output
    assert "Traceback" not in result.output
