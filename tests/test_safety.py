"""A user's files and a user's mistakes (issue 11): nothing of theirs is lost, every mistake gets
a message naming the file and what was expected, never a traceback.

Each test hashes the user's folder before and after (``tree``) to show nothing of theirs changed.
"""
from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from pypdf import PdfReader
from rtools import ROOT

import bagkit
from bagkit.cli import cli
from bagkit.io.outputs import OUTPUT_MARKER
from bagkit.io.tables import spreadsheet_safe

FORMULA = '=HYPERLINK("http://example.org/x","click")'
LONG = "L" * 500
HEBREW = "מחלה"


def tree(folder) -> dict[str, str]:
    """Every file (SHA-256) and folder under ``folder``."""
    return {p.relative_to(folder).as_posix(): "<dir>" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))}


def _staging_left(parent) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".bagkit-" in p.name or ".old." in p.name)


def _cohort(path, labels: dict[str, float], n: int = 24, seed: int = 11):
    """A small cohort with every Table 1 column; ``labels`` maps group labels to a BAG shift."""
    rng = np.random.default_rng(seed)
    rows = []
    for group, shift in labels.items():
        patient = group != "HC"
        for i in range(n):
            age = float(rng.uniform(18, 65))
            rows.append(dict(
                subject_id=f"s{len(rows):04d}", group=group, age=round(age, 1), sex=rng.choice(["F", "M"]),
                edss=float(rng.choice(np.arange(0, 9.5, 0.5))) if patient else None,
                age_at_diagnosis=round(age - rng.uniform(0, 3), 1) if patient else None,
                disease_duration=round(abs(rng.normal(4, 4)), 1) if patient else None,
                dmt=int(rng.integers(0, 2)) if patient else None,
                brain_volume_ml=round(rng.normal(1100, 100), 1), icv_ml=round(rng.normal(1450, 80), 1),
                brain_age=round(age + rng.normal(shift, 8), 2), brain_age_sd=round(abs(rng.normal(5, 2)), 2)))
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """One report of a cohort whose labels are a spreadsheet formula, 500 characters, a negative
    'number' with an operator, and Hebrew: (cohort_csv, out folder, CLI result)."""
    folder = tmp_path_factory.mktemp("hostile")
    cohort = _cohort(folder / "cohort.csv", {FORMULA: 6.0, LONG: 12.0, "-2+3": 3.0, HEBREW: 4.0, "HC": 0.5})
    out = folder / "report"
    result = CliRunner().invoke(cli, ["report", str(cohort), "-o", str(out), "-q"])
    return cohort, out, result


# ----------------------------------------------------------------------------- report folders
def test_force_replaces_only_a_folder_bagkit_wrote(hostile, tmp_path):
    cohort, out, result = hostile
    assert result.exit_code == 0, result.output
    assert (out / OUTPUT_MARKER).is_file()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    (mine / "match.R").write_text("library(MatchIt)")
    before = tree(mine)
    result = CliRunner().invoke(cli, ["report", str(cohort), "-o", str(mine), "--force", "-q"])
    assert result.exit_code == 1, result.output
    assert "notes.txt" in result.output and "match.R" in result.output and "did not write" in result.output
    assert "Traceback" not in result.output
    assert tree(mine) == before and _staging_left(tmp_path) == []


@pytest.mark.parametrize("given", [".", "<cwd>", "..", "./"])
def test_report_never_replaces_the_current_folder_or_an_ancestor(hostile, tmp_path, monkeypatch, given):
    cohort = hostile[0]
    work = tmp_path / "study"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    (tmp_path / "protocol.docx").write_text("mine too")
    monkeypatch.chdir(work)
    before = tree(tmp_path)
    result = CliRunner().invoke(cli, ["report", str(cohort), "-o", str(work) if given == "<cwd>" else given,
                                      "--force", "-q"])
    assert result.exit_code == 1, result.output
    assert "current folder" in result.output and "never replaces it" in result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    assert tree(tmp_path) == before  # nothing emptied, no stray ..old.* folder


def test_report_under_a_file_or_an_uncreatable_path_is_a_message(hostile, tmp_path):
    cohort = hostile[0]
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    result = CliRunner().invoke(cli, ["report", str(cohort), "-o", str(afile / "report"), "-q"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"cannot create the output folder {afile / 'report'}" in result.output and "is a file" in result.output
    assert afile.read_text() == "mine"


def test_ctrl_c_while_r_matches_exits_130_and_keeps_the_previous_report(hostile, tmp_path):
    """SIGINT while R runs MatchIt (made slow by a copy of r/ whose bagkit_match spins before it
    matches): exit 130, the previous report unchanged, no staging folder left."""
    cohort, out, result = hostile
    assert result.exit_code == 0, result.output
    r_copy = tmp_path / "r"
    r_copy.mkdir()
    for script in (ROOT / "r").glob("*.R"):
        text = script.read_text()
        if script.name == "matching.R":
            text, count = re.subn(r"(bagkit_match <- function\([^{]*\{)",
                                  r'\1\n  writeLines("matching", Sys.getenv("BAGKIT_TEST_STARTED"))\n'
                                  r"  repeat { spin <- sum(seq_len(1000)) }\n", text, count=1)
            assert count == 1
        (r_copy / script.name).write_text(text)
    runner = tmp_path / "slow_bagkit.py"
    # SIGINT handled as a terminal's Ctrl-C even where the tests run with it ignored (in the background)
    runner.write_text("import pathlib, signal, sys\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
                      "import bagkit.rbridge as rbridge\n"
                      f"rbridge.r_scripts_dir = lambda: pathlib.Path({str(r_copy)!r})\n"
                      "from bagkit.cli import cli\ncli(prog_name='bagkit')\n")
    started = tmp_path / "started"
    env = {**os.environ, "BAGKIT_TEST_STARTED": str(started),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    before = tree(out)
    process = subprocess.Popen([sys.executable, str(runner), "report", str(cohort), "-o", str(out), "--force",
                                "-q"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not started.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert started.exists(), process.communicate(timeout=30)
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Exception ignored" not in stderr and "Traceback" not in stderr
    assert tree(out) == before and _staging_left(out.parent) == []


def test_interrupt_while_writing_keeps_the_previous_report(hostile, tmp_path, monkeypatch):
    cohort, out, _ = hostile
    import bagkit.report as report

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "build_pdf", interrupted)
    before = tree(out)
    result = CliRunner().invoke(cli, ["report", str(cohort), "-o", str(out), "--force", "-q"])
    assert result.exit_code == 130, result.output
    assert tree(out) == before and _staging_left(out.parent) == []


# ----------------------------------------------------------------------------- CSVs and the PDF
def test_formula_labels_are_escaped_in_the_csvs_and_numbers_are_not(hostile):
    cohort, out, result = hostile
    assert result.exit_code == 0, result.output
    tidy = pd.read_csv(out / "results.csv", keep_default_na=False)
    subsets = set(tidy["subset"])
    assert "'" + FORMULA in subsets and FORMULA not in subsets
    assert "'-2+3" in subsets and "-2+3" not in subsets
    assert not any(str(v).startswith(("=", "+", "@")) for column in ("subset", "term", "contrast")
                   for v in tidy[column])
    assert any(c.startswith("'" + FORMULA + " vs") or c.startswith("'" + FORMULA + " -") for c in tidy["contrast"])
    api = bagkit.analyze(bagkit.read_cohort(cohort)).tidy()  # values: numbers, negative ones untouched
    assert (tidy["value"].replace("", np.nan).astype(float).to_numpy()
            == pytest.approx(api["value"].to_numpy(), rel=1e-15, nan_ok=True))
    assert (tidy["value"].replace("", np.nan).astype(float) < 0).any()
    table1 = (out / "table1.csv").read_text(encoding="utf-8")
    header = pd.read_csv(out / "table1.csv", nrows=0).columns
    assert "'" + FORMULA in header and "'-2+3" in header
    assert "\n=" not in table1 and ",=" not in table1 and ',"=' not in table1


def test_spreadsheet_safe_follows_owasp():
    for formula in ("=1+1", "+cmd", "-2+3", "@SUM(A1)", "\t=1", "\r=1", '=HYPERLINK("x")'):
        assert spreadsheet_safe(formula) == "'" + formula
    for kept in ("-1.5", "+3e-4", "-", "HC", "NMOSD vs HC", 1.5, -2, None, "", "a=b"):
        assert spreadsheet_safe(kept) == kept


def test_a_500_character_label_still_gives_a_report(hostile):
    cohort, out, result = hostile
    assert result.exit_code == 0, result.output  # was: reportlab LayoutError, no report
    text = "".join(page.extract_text() for page in PdfReader(str(out / "report.pdf")).pages[:2])
    assert "L" * 40 in text and "…" in text
    table1 = pd.read_csv(out / "table1.csv", nrows=0).columns
    assert LONG in table1  # the CSV keeps the label whole


def test_right_to_left_labels_are_announced_not_silently_mirrored(hostile):
    result = hostile[2]
    assert f"warning: {HEBREW!r} is right-to-left text" in result.output


# ----------------------------------------------------------------------------- predictor files
@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    pytest.importorskip("nilearn")
    from bagkit._testing.phantoms import write_phantom_cohort

    return write_phantom_cohort(tmp_path_factory.mktemp("phantoms"), n=8, seed=5)


def test_train_never_overwrites_the_model_file_it_would_write(phantoms, tmp_path):
    existing = tmp_path / "mymodel.npz"
    existing.write_bytes(b"my earlier model")
    shape = ["--input-shape", "40,48,40", "--param", "downsample=1", "--param", "n_components=3"]
    for given in ("mymodel", "mymodel.npz"):
        result = CliRunner().invoke(cli, ["train", str(phantoms), "-p", "gpr", "-o", str(tmp_path / given), *shape])
        assert result.exit_code == 1, result.output
        assert f"{existing} exists" in result.output and "--force" in result.output
    assert existing.read_bytes() == b"my earlier model"


def test_an_empty_or_wrong_model_file_is_named_not_a_traceback(phantoms, tmp_path):
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    result = CliRunner().invoke(cli, ["predict", str(phantoms), "-p", "gpr", "--model", str(empty),
                                      "-o", str(tmp_path / "p.csv")])
    assert result.exit_code == 1 and "Traceback" not in result.output and "Aborted" not in result.output
    assert str(empty) in result.output and "gpr" in result.output
    torch = pytest.importorskip("torch")
    from bagkit_sfcn.predictor import SFCN

    state = {f"module.{k}": v for k, v in SFCN().state_dict().items()}
    first = next(k for k in state if k.endswith("weight"))
    state[first] = torch.zeros(2, 2)
    wrong = tmp_path / "wrong_shape.pt"
    torch.save(state, wrong)
    result = CliRunner().invoke(cli, ["predict", str(phantoms), "-p", "sfcn", "--model", str(wrong),
                                      "-o", str(tmp_path / "p.csv")])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert str(wrong) in result.output and "has shape (2, 2)" in result.output
    assert not (tmp_path / "p.csv").exists()


def test_compare_with_text_in_a_number_column_names_file_column_and_line(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("subject_id,brain_age\ns1,50\ns2,abc\ns3,61\ns4,70\n")
    b.write_text("subject_id,brain_age\ns1,51\ns2,52\ns3,60\ns4,71\n")
    result = CliRunner().invoke(cli, ["compare", str(a), str(b)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    # the one table reader's wording: the file, the column, the value and its line
    assert f"{a}: column 'brain_age' must hold numbers; found 'abc' on line(s) 3" in result.output


def test_compare_csv_escapes_formula_labels(tmp_path):
    a, b, out = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "agreement.csv"
    a.write_text("subject_id,brain_age\ns1,50\ns2,55\ns3,61\ns4,70\n")
    b.write_text("subject_id,brain_age\ns1,51\ns2,52\ns3,60\ns4,71\n")
    result = CliRunner().invoke(cli, ["compare", str(a), str(b), "--labels", "=1+1,@SUM(A1)", "--out", str(out)])
    assert result.exit_code == 0, result.output
    contrasts = set(pd.read_csv(out)["contrast"])
    assert all(c.startswith("'=1+1") for c in contrasts), contrasts


# ----------------------------------------------------------------------------- the CLI's last line of defence
def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(tmp_path, monkeypatch):
    cohort = _cohort(tmp_path / "c.csv", {"MS": 5.0, "HC": 0.0}, n=5)

    def broken(*args, **kwargs):
        raise TypeError("something bagkit did not foresee")

    monkeypatch.setattr(bagkit, "read_cohort", broken)
    result = CliRunner().invoke(cli, ["report", str(cohort), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "unexpected TypeError: something bagkit did not foresee" in result.output and "--debug" in result.output
    result = CliRunner().invoke(cli, ["--debug", "report", str(cohort), "-o", str(tmp_path / "o")])
    assert isinstance(result.exception, TypeError)
