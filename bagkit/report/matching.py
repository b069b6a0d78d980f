"""Table 2 as the paper sets it: the propensity-score matched groups compared, the BAG difference,
the matching's description, its balance table and love plot, and the Supplementary-Table-4 variant
(predicted SD added to the covariates). Formatting only: every number comes from the
``matching`` result (:class:`bagkit.stats.matching.MatchingAnalysis`)."""
from __future__ import annotations

import math
from dataclasses import replace

from bagkit.analyses.table1 import BASELINE, BRAIN_AGE
from bagkit.report import format as fmt
from bagkit.report.labels import label
from bagkit.report.table1 import group_table
from bagkit.report.tables import Figure, Table, Text
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


def _covariate_labels(matching) -> list[str]:
    """The covariates as a sentence names them: the user's label, else the paper's words (one label table)."""
    cohort = getattr(matching, "matched_cohort", None) or getattr(matching, "cohort", None)
    user = dict(matching.labels or {})
    out = []
    for covariate in matching.covariates:
        if user.get(covariate):
            out.append(str(user[covariate]))
        elif cohort is not None:
            out.append(label(cohort, covariate, "prose"))
        else:
            from bagkit.report.labels import PROSE
            out.append(PROSE.get(covariate, str(covariate)))
    return out


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
    for key, name in named:
        if key in counts.index:
            rows.append([name, _count(counts.at[key, a]), _count(counts.at[key, b])])
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


def _test_note(table2) -> str:
    comparison = table2.difference("bag")
    welch = comparison is not None and comparison.method.startswith("Welch")
    return (f"Mean difference with its 95% CI and p from {'Welch' if welch else 'Student'}'s t-test on the "
            f"matched subjects (R: t.test(var.equal = {'FALSE' if welch else 'TRUE'})), each matched subject "
            f"counted once.")


def _effect_table(table2, name: str, title: str) -> Table:
    """The matched-set BAG effect by regression with pair-clustered SEs (MatchIt's guidance)."""
    rows = []
    for effect in table2.effects:
        rows.append([effect.formula, f"{_signed(effect.estimate)} ({_signed(effect.ci_low)} to "
                                     f"{_signed(effect.ci_high)})", f"{effect.se:.2f}", fmt.p_value(effect.p),
                     f"{effect.n} ({effect.clusters})"])
    return Table.of(f"{name}_effect", f"{title}: BAG difference on the matched set by regression with pair-clustered "
                    f"standard errors", [["Model", "Estimate (95% CI)", "Cluster-robust SE", "p", "n (pairs)"]], rows,
                    ["R: fit <- lm(bag ~ group [+ matching covariates], data = match.data(m), weights = weights); "
                     "lmtest::coeftest(fit, vcov. = sandwich::vcovCL(fit, cluster = ~subclass)) and "
                     "lmtest::coefci, as MatchIt's guidance on estimating effects after matching; t with the "
                     "residual degrees of freedom."])


def matching_blocks(table2, name: str, title: str, caption: str, figure_name: str) -> list:
    """One matching: Table 2 (or Supplementary Table 4), the difference, description, counts, balance, love plot."""
    matching = table2.matching
    a, b = table2.groups
    out: list = [group_table(_presented(table2.table), name, caption, [TABLE2_FOOTNOTE])]
    difference = _difference_rows(table2)
    if len(difference) > 1:
        sentence = difference_sentence(table2)
        notes = ([sentence] if sentence else []) + [_test_note(table2)]
        out.append(Table.of(f"{name}_difference", f"{title}: difference between the matched groups ({a} − {b})",
                            difference[:1], difference[1:], notes))
    if table2.effects:
        out.append(_effect_table(table2, name, title))
    out.append(Text(describe(matching), "body"))
    counts = counts_rows(matching)
    notes = []
    if matching.left_out:
        shown = ", ".join(matching.left_out[:20]) + (f" and {len(matching.left_out) - 20} more"
                                                     if len(matching.left_out) > 20 else "")
        notes.append(f"Left out for a missing covariate ({len(matching.left_out)}): {shown}.")
    out.append(Table.of(f"{name}_counts", f"{title}: subjects matched and unmatched", counts[:1], counts[1:], notes))
    rows, flagged = balance_rows(matching)
    balance_notes = [f"SMD: standardized mean difference ({a} − {b}) divided by the SD of {a} in the full sample, "
                     f"after matching with the matching weights; variance ratio {a}/{b}, not computed for binary "
                     "covariates ('-'); sex as proportion male. Both as R's summary(matchit(...))$sum.all and "
                     "$sum.matched."]
    if flagged:
        imbalanced = matching.balance.loc[matching.balance["term"].isin(matching.imbalanced_terms), "label"]
        balance_notes.append(f"* |SMD| ≥ {SMD_THRESHOLD:g} after matching: balance was NOT reached for "
                             f"{_join([str(t) for t in imbalanced])}. Interpret the matched comparison with care, "
                             "or adjust the matching (covariates, --caliper, --ratio).")
    else:
        balance_notes.append(f"Balance reached: every covariate's |SMD| < {SMD_THRESHOLD:g} after matching.")
    out.append(Table.of(f"{name}_balance", f"{title}: covariate balance before and after matching",
                        rows[:2], rows[2:], balance_notes, spans=((0, 1, 4), (0, 5, 8))))
    from bagkit.plots.matching import plot_love

    out.append(Figure(figure_name, f"{title}: love plot — absolute SMD per covariate before (open) and after "
                                   f"(filled) matching; dashed line at {SMD_THRESHOLD:g}.",
                      lambda: plot_love(matching), width=0.72))
    # the balance note above already says, explicitly, when balance was not reached
    notes = [n for n in dict.fromkeys(list(matching.notes) + list(table2.notes))
             if not n.startswith("balance not reached")]
    out += [Text(f"• {n}", "note") for n in notes]
    return out


def blocks(results) -> list:
    analysis = results.matching
    out: list = [Text("Propensity-score matching", "heading")]
    if analysis is None:
        return out + [Text("Propensity-score matching (Table 2) was skipped: "
                             f"{results.skip_reason('matching') or 'no matching result'}", "body")]
    primary = analysis.primary
    a, b = primary.groups
    covariates = _join(_covariate_labels(primary.matching))
    out += matching_blocks(primary, "table2", "Table 2",
                           f"Table 2. Comparison of BAG between propensity-score matched groups: {a} vs {b}, "
                           f"adjusted for {covariates} by 1:{primary.matching.options.get('ratio', 1)} "
                           f"nearest-neighbour propensity-score matching.", "love_plot")
    if analysis.notes:
        out += [Text("Notes on the matching", "caption")] + [Text(f"• {n}", "note") for n in analysis.notes]
    return out


def supplementary(results) -> list:
    """Supplementary Table 4: the matching with the predicted brain-age SD among the covariates."""
    analysis = results.matching
    if analysis is None or analysis.with_sd is None:
        return []
    sd = analysis.with_sd
    a, b = analysis.primary.groups
    return matching_blocks(
        sd, "supplementary_table4", "Supplementary Table 4",
        f"Supplementary Table 4. Comparison of BAG between propensity-score matched groups ({a} vs {b}) "
        f"with the predicted brain-age SD added to the covariates: {_join(_covariate_labels(sd.matching))}.",
        "love_plot_sd")
