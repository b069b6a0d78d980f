"""Table 2 as the paper sets it: the propensity-score matched groups compared, the BAG difference,
the matching's description, its balance table and love plot, and the Supplementary-Table-4 variant
(predicted SD added to the covariates). Formatting only: every number comes from the
``matching`` result (:class:`bagkit.stats.matching.MatchingAnalysis`)."""
from __future__ import annotations

import math
from dataclasses import replace

from reportlab.lib import colors
from reportlab.platypus import KeepTogether, PageBreak, TableStyle

from bagkit.analyses.table1 import BASELINE, BRAIN_AGE
from bagkit.plots.matching import plot_love
from bagkit.report import format as fmt
from bagkit.report.layout import CONTENT_WIDTH, figure, gap, paper_table, paragraph
from bagkit.report.table1 import group_table_flowables
from bagkit.stats.matching import SMD_THRESHOLD

TABLE2_FOOTNOTE = ("Continuous variables other than EDSS are reported as the mean ± standard deviation "
                   "[min–max]; EDSS as the median (IQR) [min–max]; categorical variables as n/N (%). "
                   "Only the matched subjects are described.")
_BRAIN_AGE_TERMS = ("brain_age", "bag", "brain_age_sd")
_ORDER = {"data": "in the cohort's order", "largest": "largest propensity score first",
          "smallest": "smallest propensity score first", "random": "in random order"}


def _signed(value, decimals: int = 1) -> str:
    return fmt.number(value, decimals)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


_PROSE = {"sex": "sex", "age": "age", "age_at_diagnosis": "age at diagnosis", "edss": "baseline EDSS",
          "nbv": "normalized brain volume", "disease_duration": "first onset to diagnosis",
          "brain_age_sd": "predicted brain-age SD"}


def _covariate_labels(matching) -> list[str]:
    """The covariates as a sentence names them: the paper's words for bagkit's columns, else the user's label."""
    labels = []
    for covariate in matching.covariates:
        rows = matching.balance[matching.balance["covariate"] == covariate]
        user = matching.labels.get(covariate) if matching.labels else None
        if user:
            labels.append(str(user))
        elif covariate in _PROSE:
            labels.append(_PROSE[covariate])
        elif len(rows) and rows.iloc[0]["level"] is None:
            labels.append(str(rows.iloc[0]["label"]))
        else:
            labels.append(str(covariate))
    return labels


def _presented(table):
    """The matched GroupTable with the brain-age rows under Table 1's brain-age heading (labels only)."""
    rows = tuple(replace(row, variable=replace(row.variable, section=BRAIN_AGE if row.term in _BRAIN_AGE_TERMS
                                                else BASELINE)) for row in table.rows)
    return replace(table, rows=rows)


def _difference_rows(table2) -> list[list[str]]:
    a, b = table2.groups
    rows = [["", f"Difference {a} − {b}, yr", "95% CI", "t (df)", "p value"]]
    for term in ("brain_age", "bag"):
        comparison = table2.difference(term)
        if comparison is None or comparison.diff is None:
            continue
        label = table2.table.row(term).label
        df = f" ({comparison.df:.0f})" if comparison.df is not None else ""
        rows.append([label, _signed(comparison.diff), f"{_signed(comparison.ci_low)} to {_signed(comparison.ci_high)}",
                     f"{comparison.statistic:.2f}{df}", fmt.p_value(comparison.p)])
    return rows


def difference_sentence(table2) -> str | None:
    """'The mean BAG was … in A and … in B, an estimated difference of … years [95% CI … to …], p = …'."""
    comparison = table2.difference("bag")
    if comparison is None or comparison.diff is None:
        return None
    a, b = table2.groups
    row = table2.table.row("bag")
    means = [row.per_group.get(g, {}) for g in (a, b)]
    p = fmt.p_value(comparison.p)
    return (f"In the matched sets the mean BAG was {fmt.number(means[0].get('mean'))}±{fmt.number(means[0].get('sd'))} "
            f"years in {a} and {fmt.number(means[1].get('mean'))}±{fmt.number(means[1].get('sd'))} years in {b}, "
            f"an estimated difference of {_signed(comparison.diff)} years [95% CI {_signed(comparison.ci_low)} to "
            f"{_signed(comparison.ci_high)}], p {'<' if p.startswith('<') else '='} {p.lstrip('<')} "
            f"({comparison.method}).")


def describe(matching) -> str:
    """The matching in one paragraph: groups, covariates, ratio, caliper, method, order, MatchIt version."""
    a, b = matching.groups
    options = matching.options
    ratio = int(options.get("ratio", 1))
    caliper = options.get("caliper")
    parts = [f"{a} was matched to {b} ({a} is the treated group, estimand ATT) 1:{ratio} by nearest-neighbour "
             f"matching (method = \"{options.get('method', 'nearest')}\") on the propensity score, estimated by "
             f"logistic regression (distance = \"{options.get('distance', 'glm')}\") on "
             f"{_join(_covariate_labels(matching))}"]
    parts.append(f"{'with' if options.get('replace') else 'without'} replacement")
    parts.append("no caliper" if caliper is None else f"caliper {caliper:g} SD of the propensity score")
    exact = tuple(options.get("exact") or ())
    if exact:
        parts.append(f"exact matching on {_join([str(e) for e in exact])}")
    parts.append(f"treated subjects matched {_ORDER.get(options.get('m_order', 'data'), options.get('m_order'))} "
                 f"(m.order = \"{options.get('m_order', 'data')}\")")
    seed = options.get("seed")
    text = ", ".join(parts) + (f"; R seed {seed}" if seed is not None else "") + "."
    version = f"MatchIt {matching.matchit_version}" if matching.matchit_version else "MatchIt"
    return text + f" Computed by R {version} (matchit, summary)."


def _count(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def counts_rows(matching) -> list[list[str]]:
    a, b = matching.groups
    counts = matching.counts
    left = {g: sum(1 for x in matching.left_out_groups.values() if x == g) for g in (a, b)}
    rows = [["Subjects", a, b]]
    named = [("all", "With every covariate (sent to MatchIt)"), ("matched", "Matched"),
             ("unmatched", "Unmatched"), ("discarded", "Discarded")]
    if not matching.uniform_weights:
        named.insert(2, ("matched_ess", "Matched, effective sample size"))
    for key, label in named:
        if key in counts.index:
            rows.append([label, _count(counts.at[key, a]), _count(counts.at[key, b])])
    rows.append(["Left out: a covariate missing", str(left[a]), str(left[b])])
    return rows


def _mean(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"


def _ratio(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.2f}"


def balance_rows(matching) -> tuple[list[list[str]], bool]:
    """Header rows and one row per balance term; True when a covariate is flagged (|SMD| ≥ 0.1 after)."""
    a, b = matching.groups
    rows = [["", "Before matching (all)", "", "", "", "After matching", "", "", ""],
            ["Covariate", f"Mean {a}", f"Mean {b}", "SMD", "Var. ratio", f"Mean {a}", f"Mean {b}", "SMD",
             "Var. ratio"]]
    flagged = False
    for _, term in matching.balance.iterrows():
        smd_after = term["smd_after"]
        flag = term["covariate"] != "distance" and not (abs(smd_after) < SMD_THRESHOLD)
        flagged |= flag
        rows.append([str(term["label"]), _mean(term["mean_treated_before"]), _mean(term["mean_control_before"]),
                     fmt.number(term["smd_before"], 3), _ratio(term["variance_ratio_before"]),
                     _mean(term["mean_treated_after"]), _mean(term["mean_control_after"]),
                     fmt.number(smd_after, 3) + (" *" if flag else ""), _ratio(term["variance_ratio_after"])])
    return rows, flagged


def _caption(text: str) -> list:
    return [paragraph(text, "caption")]


def _together(items: list) -> KeepTogether:
    return KeepTogether(items)


def matching_flowables(table2, figures_dir, title: str, caption: str, png_name: str) -> list:
    """One matching: Table 2 (or Supplementary Table 4), the difference, description, counts, balance, love plot."""
    matching = table2.matching
    a, b = table2.groups
    table_flow = group_table_flowables(_presented(table2.table), caption, [TABLE2_FOOTNOTE])
    # caption and table (and their footnotes) stay on one page
    out = [_together(table_flow)]
    difference = _difference_rows(table2)
    if len(difference) > 1:
        widths = [CONTENT_WIDTH * w for w in (0.25, 0.24, 0.22, 0.14, 0.15)]
        sentence = difference_sentence(table2)
        out += [gap(3), _together([paragraph(f"{title}: difference between the matched groups ({a} − {b})",
                                             "caption"),
                                   paper_table(difference, widths), gap(1.5)]
                                  + ([paragraph(sentence, "note")] if sentence else [])
                                  + [paragraph("Mean difference with its 95% CI and p from Student's t-test on the "
                                               "matched subjects (R: t.test(var.equal = TRUE)), each matched "
                                               "subject counted once.", "note")])]
    out += [gap(4), paragraph(describe(matching), "body"), gap(2)]
    widths = [CONTENT_WIDTH * w for w in (0.4, 0.2, 0.2)]
    out.append(_together([paragraph(f"{title}: subjects matched and unmatched", "caption"),
                          paper_table(counts_rows(matching), widths)]))
    if matching.left_out:
        shown = ", ".join(matching.left_out[:20]) + (f" and {len(matching.left_out) - 20} more"
                                                     if len(matching.left_out) > 20 else "")
        out += [gap(1), paragraph(f"Left out for a missing covariate ({len(matching.left_out)}): {shown}.", "note")]
    rows, flagged = balance_rows(matching)
    widths = [CONTENT_WIDTH * 0.24] + [CONTENT_WIDTH * 0.095] * 8
    balance_table = paper_table(rows, widths, header_rows=2)
    balance_table.setStyle(TableStyle([("SPAN", (1, 0), (4, 0)), ("SPAN", (5, 0), (8, 0)),
                                       ("LINEBELOW", (1, 0), (4, 0), 0.4, colors.black),
                                       ("LINEBELOW", (5, 0), (8, 0), 0.4, colors.black)]))
    balance_notes = [f"SMD: standardized mean difference ({a} − {b}) divided by the SD of {a} in the full sample, "
                     f"after matching with the matching weights; variance ratio {a}/{b}, not computed for binary "
                     "covariates ('-'); sex as proportion male. Both as R's summary(matchit(...))$sum.all and "
                     "$sum.matched."]
    if flagged:
        balance_notes.append(f"* |SMD| ≥ {SMD_THRESHOLD:g} after matching: balance was NOT reached for "
                             f"{_join([str(t) for t in matching.balance.loc[matching.balance['term'].isin(matching.imbalanced_terms), 'label']])}. "
                             "Interpret the matched comparison with care, or adjust the matching (covariates, "
                             "--caliper, --ratio).")
    else:
        balance_notes.append(f"Balance reached: every covariate's |SMD| < {SMD_THRESHOLD:g} after matching.")
    out += [gap(3), _together([paragraph(f"{title}: covariate balance before and after matching", "caption"),
                               balance_table, gap(1.5)]
                              + [paragraph(n, "note") for n in balance_notes])]
    fig = plot_love(matching)
    out += [gap(4), _together([paragraph(f"{title}: love plot — absolute SMD per covariate before (open) and after "
                                         f"(filled) matching; dashed line at {SMD_THRESHOLD:g}.", "caption"),
                               figure(fig, width=CONTENT_WIDTH * 0.72, png_path=figures_dir / png_name)])]
    # the balance note above already says, explicitly, when balance was not reached
    notes = [n for n in dict.fromkeys(list(matching.notes) + list(table2.notes))
             if not n.startswith("balance not reached")]
    if notes:
        out += [gap(2)] + [paragraph(f"• {n}", "note") for n in notes]
    return out


def flowables(results, figures_dir) -> list:
    analysis = results.matching
    out = [paragraph("Propensity-score matching", "heading")]
    if analysis is None:
        return out + [paragraph(f"Propensity-score matching (Table 2) was skipped: {results.skip_reason('matching') or 'no matching result'}", "body")]
    primary = analysis.primary
    a, b = primary.groups
    covariates = _join(_covariate_labels(primary.matching))
    out += matching_flowables(primary, figures_dir, "Table 2",
                              f"Table 2. Comparison of BAG between propensity-score matched groups: {a} vs {b}, "
                              f"adjusted for {covariates} by 1:{primary.matching.options.get('ratio', 1)} "
                              f"nearest-neighbour propensity-score matching.", "love_plot.png")
    if analysis.with_sd is not None:
        sd = analysis.with_sd
        out += [PageBreak()] + matching_flowables(
            sd, figures_dir, "Supplementary Table 4",
            f"Supplementary Table 4. Comparison of BAG between propensity-score matched groups ({a} vs {b}) "
            f"with the predicted brain-age SD added to the covariates: {_join(_covariate_labels(sd.matching))}.",
            "love_plot_sd.png")
    if analysis.notes:
        out += [gap(3), paragraph("Notes on the matching", "caption")]
        out += [paragraph(f"• {n}", "note") for n in analysis.notes]
    return out
