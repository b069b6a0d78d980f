"""Numbers as the paper prints them: 1 decimal for years, 3 for nbv, p < 0.001.

Formatting only; every value comes from a result object. Used by the PDF and by
``table1.csv`` so both read the same.
"""
from __future__ import annotations

import math

from bagkit.analyses.table1 import GroupTable, VariableSummary

DASH = "–"


def number(value, decimals: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{decimals}f}"


def p_value(p) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def cell(row: VariableSummary, group: str, values=None) -> str:
    """One group's cell of a Table-1-style row (``values``: another description, e.g. the overall)."""
    values = row.per_group.get(group) if values is None else values
    if not values:
        return "-"
    d = row.variable.decimals
    kind = row.variable.kind
    if kind == "proportion":
        return f"{values['count']:.0f}/{values['total']:.0f} ({number(values['percent'])})"
    if kind == "count":
        return f"{values['count']:.0f} ({number(values['percent'])})"
    if kind == "median":
        return (f"{number(values['median'], d)} ({number(values['iqr'], d)}) "
                f"[{number(values['min'], d)}{DASH}{number(values['max'], d)}]")
    text = f"{number(values['mean'], d)}±{number(values['sd'], d)}"
    if kind == "mean_ci" and "ci_low" in values:
        return f"{text} ({number(values['ci_low'], d)}, {number(values['ci_high'], d)})"
    return f"{text} [{number(values['min'], d)}{DASH}{number(values['max'], d)}]"


def p_cell(row: VariableSummary) -> list[str]:
    """The p-value lines of a row: one overall p, or the pairwise p's (a single '<0.001†' when all are)."""
    pairwise = [t for t in row.tests if t.contrast != "overall"]
    overall = [t for t in row.tests if t.contrast == "overall"]
    if len(pairwise) > 1:
        if all(t.p < 0.001 for t in pairwise):
            return ["<0.001†"]
        return [f"{t.contrast} {p_value(t.p)}" for t in pairwise]
    if pairwise:
        return [p_value(pairwise[0].p)]
    if overall:
        return [p_value(overall[0].p)]
    return ["-"]


ADJUSTED = {"holm": "Holm", "BH": "BH"}


def _with_n(text: str, row: VariableSummary, group: str) -> str:
    """A cell with ``n = …`` added when its group has missing values (the missing-count option)."""
    values = row.per_group.get(group) or {}
    if row.missing.get(group) and "n" in values and row.variable.kind != "proportion":
        return f"{text} n = {values['n']:.0f}"
    return text


def table_rows(table: GroupTable, sections: bool = True) -> list[list[str]]:
    """Header plus one row per variable (and a row per section heading): plain strings. The
    Table 1 options add an Overall column, an adjusted-p column, an SMD column and a missing column."""
    options = table.options
    header = ["", *table.groups] + (["Overall"] if options.overall else []) + ["p value"]
    if options.p_adjust:
        header.append(f"p ({ADJUSTED[options.p_adjust]})")
    if options.smd:
        header.append("SMD")
    if options.missing:
        header.append("Missing, n")
    extra = len(header) - 1 - len(table.groups)
    n_row = ["N", *(str(table.n[g]) for g in table.groups)] + (
        [str(sum(table.n.values()))] if options.overall else []) + [""] * (extra - int(options.overall))
    rows = [header] + ([] if sections else [n_row])
    current = None
    for row in table.rows:
        if sections and row.variable.section != current:
            current = row.variable.section
            rows.append([current, *([""] * (len(header) - 1))])
            if len(rows) == 2:
                rows.append(n_row)
        cells = [row.label, *(_with_n(cell(row, g), row, g) for g in table.groups)]
        if options.overall:
            cells.append(cell(row, "", row.overall))
        cells.append("\n".join(p_cell(row)))
        if options.p_adjust:
            cells.append(p_value(row.p_adjusted) if row.p_adjusted is not None else "-")
        if options.smd:
            cells.append(number(row.smd, 3) if row.smd is not None else "")
        if options.missing:
            cells.append(str(sum(row.missing.values())) if row.missing else "")
        rows.append(cells)
    return rows


def tests_used(table: GroupTable) -> list[str]:
    """The footnote naming each test used in a table, in the order first used."""
    methods = dict.fromkeys(t.method for row in table.rows for t in row.tests)
    return list(methods)
