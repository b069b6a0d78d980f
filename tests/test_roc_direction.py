"""The ROC direction stated in advance (issue 13, section 2), checked against pROC.

R (``r/reference/corners_reference.R roc``)::

    r <- roc(event, marker, direction = D, levels = c(0, 1)); auc(r); ci.auc(r, method = "delong")
    coords(r, x = "all")   # spec80: highest sensitivity with specificity >= 0.8
    coords(r, "best", best.method = "youden")

Tolerances as tests/test_cutoffs.py: AUC and CI 1e-9 relative, thresholds 1e-9 absolute,
sensitivity/specificity 1e-12.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_r_corners import r_corner

from bagkit.analyses import AnalysisOptions
from bagkit.analyses.outcomes import run_outcomes
from bagkit.cohort import read_cohort
from bagkit.errors import AnalysisError
from bagkit.stats.cutoffs import roc_analysis


def _weak_marker(seed: int = 21) -> pd.DataFrame:
    """A marker whose median is slightly lower in those with the event (17 of 30 just below the
    controls' centre) while 13 cases lie far above: pROC's "auto" flips to ">" by the medians."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"marker": np.r_[rng.normal(-0.6, 0.3, 17), rng.normal(4, 1, 13),
                                         rng.normal(0, 1.0, 60)].round(2),
                         "event": np.r_[np.ones(30), np.zeros(60)]})


@pytest.mark.parametrize("direction", ["<", ">", "auto"])
def test_direction_matches_proc(direction, tmp_path):
    frame = _weak_marker()
    ours = roc_analysis(frame.marker, frame.event, direction=direction)
    theirs = r_corner("roc", frame, tmp_path, direction)
    assert ours.curve.auc == pytest.approx(theirs["auc"], rel=1e-9)
    assert ours.curve.ci_low == pytest.approx(theirs["ci_low"], rel=1e-9)
    assert ours.curve.ci_high == pytest.approx(theirs["ci_high"], rel=1e-9)
    assert (ours.curve.direction == "<") == bool(theirs["direction_higher_is_event"])
    spec80 = next(c for c in ours.cutoffs if c.rule == "spec80")
    assert spec80.threshold == pytest.approx(theirs["threshold_spec80"], abs=1e-9)
    assert spec80.sensitivity == pytest.approx(theirs["sensitivity_spec80"], abs=1e-12)
    assert spec80.specificity == pytest.approx(theirs["specificity_spec80"], abs=1e-12)
    youden = next(c for c in ours.cutoffs if c.rule == "youden")
    assert youden.threshold == pytest.approx(theirs["threshold_youden"], abs=1e-9)


def test_default_is_higher_bag_marks_the_event(tmp_path):
    """The default is the study's hypothesis ("<"). On this weak marker pROC's "auto" looks at the
    medians (lower in the cases) and flips to ">", which here even gives an AUC below 0.5 and a
    cutoff read as "BAG <" — the issue's example; the stated direction keeps "BAG >"."""
    frame = _weak_marker()
    default = roc_analysis(frame.marker, frame.event)
    auto = roc_analysis(frame.marker, frame.event, direction="auto")
    assert default.curve.direction == "<" and default.curve.auc > 0.5
    assert auto.curve.direction == ">" and auto.curve.auc < 0.5
    assert auto.curve.auc == pytest.approx(1 - default.curve.auc)
    cut = default.cutoff
    assert cut.rule_text("BAG") == f"BAG > {cut.threshold:.1f}"
    assert auto.cutoff.rule_text("BAG") == f"BAG < {auto.cutoff.threshold:.1f}"
    rows = default.tidy().set_index("statistic")["value"]
    assert rows["direction_higher_is_event"] == 1 and rows["direction_auto"] == 0


def _cohort_with_followup(small_cohort_csv, tmp_path):
    rng = np.random.default_rng(4)
    frame = pd.read_csv(small_cohort_csv)
    frame["followup_years"] = np.where(frame.group != "HC", np.round(rng.uniform(1, 8, len(frame)), 2), np.nan)
    frame["worsening"] = np.where(frame.group != "HC", (rng.uniform(size=len(frame)) < 0.4).astype(float), np.nan)
    path = tmp_path / "c.csv"
    frame.to_csv(path, index=False)
    return read_cohort(path)


@pytest.mark.parametrize("choice, direction", [("higher", "<"), ("lower", ">")])
def test_option_reaches_every_group(choice, direction, small_cohort_csv, tmp_path):
    outcomes = run_outcomes(_cohort_with_followup(small_cohort_csv, tmp_path),
                            AnalysisOptions(roc_direction=choice))
    for group in outcomes.groups:
        assert group.roc.curve.direction == direction
        assert group.roc.cutoff.comparison == (">" if direction == "<" else "<")


def test_unknown_direction_is_named(small_cohort_csv, tmp_path):
    with pytest.raises(AnalysisError, match="unknown roc_direction 'up'.*higher, lower, auto"):
        run_outcomes(_cohort_with_followup(small_cohort_csv, tmp_path), AnalysisOptions(roc_direction="up"))


@pytest.mark.parametrize("direction", ["<", ">"])
def test_direction_on_asah_matches_proc(direction, tmp_path):
    """pROC::aSAH, s100b for a poor outcome: ``roc(outcome, s100b, direction = "<" | ">")`` — with ">"
    (against the data) the AUC is 1 − the "<" AUC, below 0.5, as pROC says."""
    from rtools import ROOT, rscript

    rscript(str(ROOT / "r" / "reference" / "cutoffs_reference.R"), "export-asah", str(tmp_path / "asah.csv"))
    data = pd.read_csv(tmp_path / "asah.csv")
    frame = data[data.subset == "s100b"][["marker", "event"]]
    ours = roc_analysis(frame.marker, frame.event, direction=direction)
    theirs = r_corner("roc", frame, tmp_path, direction)
    assert ours.curve.auc == pytest.approx(theirs["auc"], rel=1e-9)
    assert (ours.curve.auc < 0.5) == (direction == ">")
    assert ours.curve.ci_low == pytest.approx(theirs["ci_low"], rel=1e-9)
    spec80 = next(c for c in ours.cutoffs if c.rule == "spec80")
    assert spec80.threshold == pytest.approx(theirs["threshold_spec80"], abs=1e-9)
    assert spec80.sensitivity == pytest.approx(theirs["sensitivity_spec80"], abs=1e-12)
