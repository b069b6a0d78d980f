"""The report model: every table name (tables/<name>.csv) and figure name (figures/<name>.png) is
unique, checked when the model is built, with an error naming both blocks; nothing is written."""
from __future__ import annotations

import types
import warnings

import pytest

import bagkit
import bagkit.report as report
from bagkit.errors import BagkitError
from bagkit.report.tables import Document, Figure, Table, Text


def _section(*blocks):
    return types.SimpleNamespace(blocks=lambda results: list(blocks), supplementary=lambda results: [])


def _results(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bagkit.analyze(bagkit.read_cohort(path))


def test_two_tables_with_one_name_are_refused_naming_both(small_cohort_csv, tmp_path, monkeypatch):
    results = _results(small_cohort_csv)
    assert "table1" in {t.name for t in report.tables_of(report.document(results))}
    clash = Table.of("table1", "Subgroup table that reused the name", [["a"]], [["1"]])
    monkeypatch.setattr(report, "SECTIONS", report.SECTIONS + [("extra", _section(Text("x"), clash))])
    with pytest.raises(BagkitError) as error:
        report.document(results)
    message = str(error.value)
    assert "'table1'" in message and "tables/table1.csv" in message
    assert "Table 1. Demographic characteristics" in message, "the first table is named by its caption"
    assert "Subgroup table that reused the name" in message, "and the second"
    out = tmp_path / "out"
    with pytest.raises(BagkitError):
        results.write(out)
    assert not out.exists(), "nothing is written"


def test_two_figures_with_one_name_are_refused():
    first = Figure("roc", "ROC curves", lambda: None)
    second = Figure("roc", "Another ROC", lambda: None)
    doc = Document("t", "s", main=[[first]], supplementary=[[second]])
    with pytest.raises(BagkitError, match=r"figures/roc\.png: 'ROC curves' and 'Another ROC'"):
        doc.check_names()
    assert Document("t", "s", main=[[first]]).check_names().main == [[first]]
