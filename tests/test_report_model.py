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


class _Recording:
    """A Results that records which of its fields are read."""

    def __init__(self, results):
        object.__setattr__(self, "_results", results)
        object.__setattr__(self, "read", set())

    def __getattr__(self, name):
        self.read.add(name)
        return getattr(self._results, name)


def test_sections_drawn_while_r_computes_read_nothing_r_computes():
    """report.draw_ahead draws the figures of SECTIONS_WITHOUT_R from a Results without R's
    sections: those modules' blocks, and their figures' drawings, must read none of them."""
    from rtools import EXAMPLE_COHORT, EXAMPLE_VISITS

    from bagkit.analyses.run import R_SECTIONS
    from bagkit.report.tables import flatten

    results = bagkit.analyze(bagkit.read_cohort(EXAMPLE_COHORT, visits=EXAMPLE_VISITS))
    assert results.matching is not None
    for section in report.SECTIONS_WITHOUT_R:
        recording = _Recording(results)
        for block in flatten(section.blocks(recording) + section.supplementary(recording)):
            if isinstance(block, Figure):
                block.draw()
        assert not recording.read & set(R_SECTIONS), (section.__name__, recording.read)
    recording = _Recording(results)  # the recorder sees what the matching section reads
    report.matching_section.blocks(recording)
    assert "matching" in recording.read


def test_figures_drawn_ahead_are_those_of_the_whole_report():
    """The figures draw_ahead encodes from the partial Results (what analyze() passes to
    while_waiting) are byte for byte those the whole Results' report draws; it stops as soon as
    busy() says R is done."""
    from rtools import EXAMPLE_COHORT, EXAMPLE_VISITS

    from bagkit.analyses.run import _PENDING, R_SECTIONS, Results
    from bagkit.report.figures import FigureStore

    results = bagkit.analyze(bagkit.read_cohort(EXAMPLE_COHORT, visits=EXAMPLE_VISITS))
    here = {name: getattr(results, name) for name in results.sections if name not in R_SECTIONS}
    partial = Results(results.cohort, results.options, results.table1, **here, provenance=_PENDING)
    ahead = FigureStore()
    names = report.draw_ahead(partial, ahead, lambda: True)
    assert {"figure1", "figure2", "roc", "forest"} <= set(names)
    assert not {"love_plot", "love_plot_sd"} & set(names)
    fresh = FigureStore()
    for block in report.figures_of(report.document(results)):
        if block.name in names:
            assert ahead.pdf(block) == fresh.pdf(block) and ahead.png(block) == fresh.png(block), block.name
    calls = iter([True, False])
    assert len(report.draw_ahead(partial, FigureStore(), lambda: next(calls))) == 1
