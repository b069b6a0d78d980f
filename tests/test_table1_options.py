"""Table 1 options (gtsummary / tableone conventions), each checked against R:
SMD column (the pooled-SD formula of tableone's ExtractSmd and cobalt), missing counts, overall
column, Holm and Benjamini–Hochberg adjustment of the variable-level p values (R's p.adjust).
Reference: r/reference/table1_options_reference.R, run here on the data the test writes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rtools import EXAMPLE_COHORT, EXAMPLE_VISITS, ROOT, rscript

import bagkit
from bagkit.analyses import Table1Options
from bagkit.report.table1 import group_table

ALL = Table1Options(smd=True, missing=True, overall=True, p_adjust="holm")


@pytest.fixture(scope="module")
def cohort():
    return bagkit.read_cohort(EXAMPLE_COHORT, visits=EXAMPLE_VISITS)


@pytest.fixture(scope="module")
def with_r(cohort, tmp_path_factory):
    """bagkit's tidy rows with every option (Holm and BH) and R's reference rows."""
    tmp = tmp_path_factory.mktemp("t1opts")
    holm = bagkit.table1(cohort, ALL)
    bh = bagkit.table1(cohort, Table1Options(p_adjust="BH"))
    data = cohort.data
    frame = pd.DataFrame({"group": data["group"]})
    terms = []
    for row in holm.rows:
        test = row.variable_test
        if row.variable.kind == "count" or row.variable.followup_only:
            # described on a subset: given to R for its p value only (p.adjust's family is every row)
            terms.append({"term": row.term, "binary": 0, "median": 0, "p": test.p if test is not None else np.nan})
            continue
        column = data[row.variable.column]
        binary = row.variable.kind == "proportion"
        frame[row.term] = np.where(column.isna(), np.nan, (column == row.variable.level).astype(float)) \
            if binary else column
        terms.append({"term": row.term, "binary": int(binary), "median": int(row.variable.kind == "median"),
                      "p": test.p if test is not None else np.nan})
    frame.to_csv(tmp / "data.csv", index=False)
    pd.DataFrame(terms).to_csv(tmp / "p.csv", index=False)
    rscript(str(ROOT / "r" / "reference" / "table1_options_reference.R"), str(tmp / "data.csv"),
            str(tmp / "p.csv"), str(tmp / "r.csv"))
    return holm, bh, pd.read_csv(tmp / "r.csv"), list(frame.columns[1:])


def _mine(table, term, statistic, contrast=None, subset=None):
    tidy = table.tidy()
    hit = tidy[(tidy["analysis"] == "table1") & (tidy["term"] == term) & (tidy["statistic"] == statistic)]
    if contrast is not None:
        hit = hit[hit["contrast"] == contrast]
    if subset is not None:
        hit = hit[hit["subset"] == subset]
    assert len(hit) == 1, (term, statistic, contrast, subset, hit)
    return float(hit["value"].iloc[0])


def test_smd_matches_the_pooled_sd_formula_in_r(with_r):
    """Tolerance 1e-12: the same closed formula on the same doubles."""
    holm, _, r, terms = with_r
    reference = r[r["statistic"].isin(["smd", "abs_smd"])]
    assert len(reference) > 10
    mine_rows = holm.tidy()
    mine_rows = mine_rows[mine_rows["statistic"].isin(["smd", "abs_smd"]) & mine_rows["term"].isin(terms)]
    assert len(mine_rows) == len(reference), "the same (term, pair) SMDs on both sides"
    for row in reference.itertuples(index=False):
        assert _mine(holm, row.term, row.statistic, row.contrast) == pytest.approx(row.value, abs=1e-12), row


def test_missing_counts_and_overall_match_r(with_r):
    holm, _, r, _ = with_r
    for row in r[r["statistic"] == "missing"].itertuples(index=False):
        assert _mine(holm, row.term, "missing", subset=row.contrast) == row.value, row
    for row in r[r["contrast"] == "overall"].itertuples(index=False):
        assert _mine(holm, row.term, row.statistic, contrast="", subset="all") == pytest.approx(row.value,
                                                                                               rel=1e-12), row


@pytest.mark.parametrize("method", ["holm", "BH"])
def test_p_adjustment_matches_p_adjust(with_r, method):
    """R's p.adjust on the same variable-level p values; tolerance 1e-12."""
    holm, bh, r, _ = with_r
    table = holm if method == "holm" else bh
    reference = r[r["statistic"] == f"p_{method.lower()}"]
    assert len(reference) >= 5
    for row in reference.itertuples(index=False):
        test = table.row(row.term).variable_test
        assert _mine(table, row.term, f"p_{method.lower()}", contrast=test.contrast) == pytest.approx(
            row.value, abs=1e-12), row


def test_options_are_off_by_default_and_add_columns_when_asked(cohort):
    plain = group_table(bagkit.table1(cohort), "table1", "Table 1.", [])
    assert plain.header[0][-1] == "p value" and len(plain.header[0]) == 1 + len(cohort.groups) + 1
    rich = group_table(bagkit.table1(cohort, ALL), "table1", "Table 1.", [])
    assert rich.header[0][1:] == (*cohort.groups, "Overall", "p value", "p (Holm)", "SMD", "Missing, n")
    assert any("SMD: absolute standardized mean difference" in n for n in rich.footnotes)
    assert any("p.adjust(p, \"holm\")" in n for n in rich.footnotes)
    age = next(r for r in rich.body if r[0] == "Age at baseline, yr")
    ages = cohort.data["age"]
    assert age[len(cohort.groups) + 1].startswith(f"{ages.mean():.1f}±{ages.std():.1f}"), "overall column"


def test_bad_p_adjust_is_refused():
    with pytest.raises(ValueError, match="holm or BH"):
        Table1Options(p_adjust="bonferroni")
