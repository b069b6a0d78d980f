"""Table 1: per-group descriptions and the paper's tests, for whatever columns a cohort has.

The same engine makes Table 2 (the matched comparison): :func:`compare_groups`
takes the variables to describe and the names to give the rows in the tidy table.

Tests, as the paper's Methods: continuous variables by one-way ANOVA with Tukey
HSD pairwise p (Student's t-test when two groups), categorical by chi-square,
EDSS by Wilcoxon rank-sum (Kruskal–Wallis overall when more than two groups).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from bagkit.cohort import Cohort
from bagkit.results import tidy_frame
from bagkit.stats.comparisons import (
    Comparison,
    anova_tukey,
    chi_square,
    kruskal,
    mean_ci,
    p_adjust,
    pairs_for,
    rank_sum,
    standardized_difference,
    student_t,
    welch_t,
)

__all__ = ["Variable", "TABLE1_VARIABLES", "VariableSummary", "GroupTable", "Table1Options", "compare_groups",
           "table1"]

BASELINE, BRAIN_AGE, FOLLOWUP = "Baseline", "Deep-learning derived brain age", "Follow up"


@dataclass(frozen=True)
class Variable:
    """A row of a group table.

    kind: ``mean`` (mean ± SD [min–max]), ``mean_ci`` (mean ± SD (95% CI)), ``median``
    (median (IQR) [min–max]), ``proportion`` (n/N (%) of ``level``) or ``count`` (n (%) of the
    group having a value, e.g. follow-up). ``followup_only``: describe only subjects with follow-up.
    """

    column: str
    kind: str
    section: str = BASELINE
    level: object = None
    followup_only: bool = False
    decimals: int = 1


TABLE1_VARIABLES: tuple[Variable, ...] = (
    Variable("age", "mean"),
    Variable("sex", "proportion", level="F"),
    Variable("aqp4", "proportion", level="pos"),
    Variable("age_at_diagnosis", "mean"),
    Variable("disease_duration", "mean"),
    Variable("dmt", "proportion", level=1.0),
    Variable("edss", "median"),
    Variable("brain_volume_ml", "mean"),
    Variable("nbv", "mean", decimals=3),
    Variable("lesion_volume_ml", "mean"),
    Variable("brain_age", "mean", section=BRAIN_AGE),
    Variable("bag_uncorrected", "mean_ci", section=BRAIN_AGE),  # only after an age-bias correction
    Variable("bag", "mean_ci", section=BRAIN_AGE),
    Variable("brain_age_sd", "mean_ci", section=BRAIN_AGE),
    Variable("followup_years", "count", section=FOLLOWUP),
    Variable("followup_total_years", "mean", section=FOLLOWUP, followup_only=True),
    Variable("followup_years", "mean", section=FOLLOWUP, followup_only=True),
    Variable("worsening", "proportion", section=FOLLOWUP, level=1.0, followup_only=True),
)


@dataclass(frozen=True)
class Table1Options:
    """The Table 1 conventions of gtsummary / tableone, each off by default (the paper's Table 1).

    smd: a column of standardized mean differences (two groups: |SMD|; more: the mean of the
    pairwise |SMD|s, as tableone prints it); missing: a column of missing counts per variable (and
    ``n`` in a cell whose group has missing values); overall: a column describing all subjects;
    p_adjust: ``"holm"`` or ``"BH"``, R's ``p.adjust`` of the variable-level p values (the overall
    test, or the one test of two groups) across the table's rows, shown beside the p values.
    """

    smd: bool = False
    missing: bool = False
    overall: bool = False
    p_adjust: str | None = None

    def __post_init__(self):
        if self.p_adjust not in (None, "holm", "BH"):
            raise ValueError(f"Table 1 p adjustment {self.p_adjust!r}: choose holm or BH")


@dataclass(frozen=True)
class VariableSummary:
    """One described variable: statistics per group and the tests between groups; with the
    Table 1 options, its SMD, missing counts per group, the overall description and adjusted p."""

    variable: Variable
    label: str
    per_group: Mapping[str, Mapping[str, float]]
    tests: tuple[Comparison, ...]
    smd: float | None = None
    smd_pairs: Mapping[str, float] = field(default_factory=dict)
    missing: Mapping[str, int] = field(default_factory=dict)
    overall: Mapping[str, float] = field(default_factory=dict)
    p_adjusted: float | None = None

    @property
    def variable_test(self) -> Comparison | None:
        """The variable-level test: the overall one, else the single test of two groups."""
        overall = [t for t in self.tests if t.contrast == "overall"]
        if overall:
            return overall[0]
        return self.tests[0] if len(self.tests) == 1 else None

    @property
    def term(self) -> str:
        return "followup" if self.variable.kind == "count" else self.variable.column

    def test(self, contrast: str) -> Comparison | None:
        return next((t for t in self.tests if t.contrast == contrast), None)


@dataclass(frozen=True)
class GroupTable:
    """A Table-1-style comparison of groups: ``rows`` in display order, ``n`` per group."""

    analysis: str
    subset: str
    groups: tuple[str, ...]
    control: str | None
    n: Mapping[str, int]
    rows: tuple[VariableSummary, ...]
    options: Table1Options = Table1Options()

    def row(self, term: str) -> VariableSummary:
        for row in self.rows:
            if row.term == term:
                return row
        raise KeyError(term)

    def tidy(self) -> pd.DataFrame:
        records = [(self.analysis, g, "n", "", "n", self.n[g]) for g in self.groups]
        for row in self.rows:
            for group, values in row.per_group.items():
                records += [(self.analysis, group, row.term, "", stat, v) for stat, v in values.items()]
            for test in row.tests:
                records += test.rows(self.analysis, self.subset, row.term)
            records += [(self.analysis, self.subset, row.term, pair, "smd", v) for pair, v in row.smd_pairs.items()]
            if row.smd is not None:
                records.append((self.analysis, self.subset, row.term, "mean of pairs" if len(row.smd_pairs) > 1
                                else next(iter(row.smd_pairs)), "abs_smd", row.smd))
            records += [(self.analysis, group, row.term, "", "missing", v) for group, v in row.missing.items()]
            records += [(self.analysis, self.subset, row.term, "", stat, v) for stat, v in row.overall.items()]
            if row.p_adjusted is not None:
                test = row.variable_test
                records.append((self.analysis, self.subset, row.term, test.contrast if test else "",
                                f"p_{self.options.p_adjust.lower()}", row.p_adjusted))
        if self.options.overall:
            records.append((self.analysis, self.subset, "n", "", "n", sum(self.n.values())))
        return tidy_frame(records)


def _describe(values: np.ndarray, variable: Variable, group_n: int) -> dict[str, float]:
    if variable.kind == "count":
        count = int(np.isfinite(values).sum())
        return {"count": count, "total": group_n, "percent": 100 * count / group_n}
    if variable.kind == "proportion":
        return {}
    out = {"n": len(values)}
    if variable.kind == "median":
        q1, median, q3 = np.percentile(values, [25, 50, 75])  # R's quantile type 7
        out.update(median=median, q1=q1, q3=q3, iqr=q3 - q1)
    else:
        out.update(mean=values.mean(), sd=values.std(ddof=1) if len(values) > 1 else np.nan)
        if variable.kind == "mean_ci" and len(values) > 1:
            out["ci_low"], out["ci_high"] = mean_ci(values)
    out.update(min=values.min(), max=values.max())
    return {k: float(v) for k, v in out.items()}


def _proportion(series: pd.Series, level) -> dict[str, float]:
    known = series.dropna()
    count = int((known == level).sum())
    return {"count": count, "total": len(known), "percent": 100 * count / len(known) if len(known) else np.nan}


def _tests(variable: Variable, samples: dict[str, np.ndarray], control: str | None,
           table: np.ndarray | None, welch: bool = False) -> tuple[Comparison, ...]:
    names = list(samples)
    if variable.kind == "count" or len(names) < 2:
        return ()
    if variable.kind == "proportion":
        if len(names) > 2:
            return (chi_square(table, "overall"),)
        a, b = pairs_for(names, control)[0]
        return (chi_square(table, f"{a} vs {b}"),)
    if len(names) == 2:
        # named as the paper names pairs (patient vs control), whatever the file order
        a, b = pairs_for(names, control)[0]
        test = rank_sum if variable.kind == "median" else (welch_t if welch else student_t)
        return (test(samples[a], samples[b], f"{a} vs {b}"),)
    pairs = pairs_for(names, control)
    if variable.kind == "median":
        return (kruskal(list(samples.values())),
                *(rank_sum(samples[a], samples[b], f"{a} vs {b}") for a, b in pairs))
    return tuple(anova_tukey(list(samples.values()), names, pairs))


def compare_groups(cohort: Cohort, variables: Sequence[Variable] = TABLE1_VARIABLES,
                   analysis: str = "table1", subset: str = "all", welch: bool = False) -> GroupTable:
    """Describe each variable per group and test between groups; rows only for columns the cohort has.

    ``welch``: Welch's t-test (``t.test(a, b)``, unequal variances) instead of Student's for a
    continuous variable compared between two groups (more groups keep ANOVA + Tukey)."""
    data = cohort.data
    groups = cohort.groups
    n = {g: int((data["group"] == g).sum()) for g in groups}
    rows = []
    for variable in variables:
        if not cohort.has(variable.column):
            continue
        rows_of = data
        if variable.followup_only:
            rows_of = data[data["followup_years"].notna()] if "followup_years" in data else data.iloc[:0]
        per_group, samples, table = {}, {}, []
        for g in groups:
            column = rows_of.loc[rows_of["group"] == g, variable.column]
            if variable.kind == "proportion":
                described = _proportion(column, variable.level)
                if described["total"] == 0:
                    continue
                per_group[g] = described
                samples[g] = column.dropna().to_numpy()
                table.append([described["count"], described["total"] - described["count"]])
                continue
            values = column.dropna().to_numpy(dtype=float)
            if variable.kind == "count":
                if len(values) == 0:
                    continue
                per_group[g] = _describe(column.to_numpy(dtype=float), variable, n[g])
                continue
            if len(values) == 0:
                continue
            per_group[g] = _describe(values, variable, n[g])
            if len(values) >= 2:
                samples[g] = values
        if not per_group:
            continue
        tests = _tests(variable, samples, cohort.control, np.array(table) if table else None, welch)
        rows.append(VariableSummary(variable, cohort.label(variable.column) if variable.kind != "count"
                                    else "N with follow-up data, n (%)", per_group, tests))
    return GroupTable(analysis, subset, groups, cohort.control, n, tuple(rows))


def _smd_pairs(variable: Variable, columns: dict[str, pd.Series]) -> dict[str, float]:
    out = {}
    for a, b in combinations(list(columns), 2):
        x, y = columns[a].dropna(), columns[b].dropna()
        if variable.kind == "proportion":
            x, y = (x == variable.level).astype(float), (y == variable.level).astype(float)
        if len(x) >= 2 and len(y) >= 2:
            out[f"{a} vs {b}"] = standardized_difference(x, y, binary=variable.kind == "proportion")
    return out


def with_options(table: GroupTable, cohort: Cohort, options: Table1Options) -> GroupTable:
    """The table with the columns ``options`` ask for, computed from ``cohort``."""
    if options == Table1Options():
        return table
    data = cohort.data
    rows = []
    for row in table.rows:
        variable = row.variable
        rows_of = data
        if variable.followup_only:
            rows_of = data[data["followup_years"].notna()] if "followup_years" in data else data.iloc[:0]
        rows_of = rows_of[rows_of["group"].isin(table.groups)]
        columns = {g: rows_of.loc[rows_of["group"] == g, variable.column] for g in table.groups}
        changes = {}
        if options.smd and variable.kind != "count":
            pairs = _smd_pairs(variable, columns)
            if pairs:
                changes.update(smd_pairs=pairs, smd=float(np.mean([abs(v) for v in pairs.values()])))
        if options.missing and variable.kind != "count":
            changes["missing"] = {g: int(c.isna().sum()) for g, c in columns.items()}
        if options.overall:
            pooled = rows_of[variable.column]
            if variable.kind == "proportion":
                changes["overall"] = _proportion(pooled, variable.level)
            elif variable.kind == "count":
                changes["overall"] = _describe(pooled.to_numpy(dtype=float), variable, len(rows_of))
            elif pooled.notna().any():
                changes["overall"] = _describe(pooled.dropna().to_numpy(dtype=float), variable, len(rows_of))
        rows.append(replace(row, **changes))
    if options.p_adjust:
        tests = [row.variable_test for row in rows]
        adjusted = p_adjust([t.p if t is not None else np.nan for t in tests], options.p_adjust)
        rows = [replace(row, p_adjusted=float(q)) if t is not None and np.isfinite(q) else row
                for row, t, q in zip(rows, tests, adjusted)]
    return replace(table, rows=tuple(rows), options=options)


def table1(cohort: Cohort, options: Table1Options | None = None, welch: bool = False) -> GroupTable:
    """The paper's Table 1 for this cohort (with the extra columns ``options`` ask for; ``welch``: see
    :func:`compare_groups`)."""
    table = compare_groups(cohort, TABLE1_VARIABLES, analysis="table1", subset="all", welch=welch)
    return with_options(table, cohort, options or Table1Options())
