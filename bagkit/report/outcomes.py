"""Outcome sections of the report: Table 3 (Cox), the cutoff table, Figure 2, the ROC curves, the
regression / subgroup / center summaries and the notes. Formatting only: every number comes from
the ``outcomes`` and ``regressions`` results (see bagkit.analyses.outcomes)."""
from __future__ import annotations

import math

from bagkit.report import format as fmt
from bagkit.report.labels import label
from bagkit.report.tables import Figure, Table, Text

TABLE3_CAPTION = ("Table 3. Univariable and multivariable Cox proportional hazards model analysis for predicting "
                  "EDSS worsening by BAG, age at diagnosis, sex, duration between first onset to diagnosis, "
                  "baseline EDSS and normalized brain volume.")


def _hr(term) -> tuple[str, str]:
    if term is None:
        return "-", "-"
    return f"{term.hr:.2f} [{term.ci_low:.2f}, {term.ci_high:.2f}]", fmt.p_value(term.p)


def _years(value, low=None, high=None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        text = "not reached"
    else:
        text = f"{value:.2f}"
    if low is not None:
        text += f" ({fmt.number(low, 2)}, {'NR' if high is None or math.isnan(high) else fmt.number(high, 2)})"
    return text


def table3(outcomes, cohort) -> list:
    groups = [g for g in outcomes.groups if g.cox_univariable or g.cox_multivariable]
    if not groups:
        return []
    names = [g.group for g in groups]
    header1 = [""] + ["Univariable"] + [""] * (2 * len(names) - 1) + ["Multivariable"] + [""] * (2 * len(names) - 1)
    header2 = [""]
    for _ in range(2):
        for n in names:
            header2 += [f"{n}: HR [95% CI]", "p"]
    rows = [header1, header2]
    n_row, e_row = ["N"], ["Number of events, n (%)"]
    for kind in ("uni", "multi"):
        for g in groups:
            model = g.cox_multivariable if kind == "multi" else (g.cox_univariable[0] if g.cox_univariable else None)
            n = model.n if model is not None else g.n_followup
            events = model.events if model is not None else g.events
            n_row += [str(n), ""]
            e_row += [f"{events} ({100 * events / n:.1f})" if n else "-", ""]
    rows += [n_row, e_row]
    for covariate in outcomes.covariates:
        row = [label(cohort, covariate, "cox")]
        for g in groups:
            model = g.univariable(covariate)
            row += list(_hr(model.terms[0] if model else None))
        for g in groups:
            model = g.cox_multivariable
            row += list(_hr(model.term(covariate) if model else None))
        rows.append(row)
    notes = ["Hazard ratios [95% CI] and Wald p from Cox models with Efron ties (R: coxph). Sex coded male = 1; "
             "normalized brain volume per 1 % of intracranial volume; '-': not in the model."]
    if outcomes.cox_selection == "univariable_p05":
        notes.append("Multivariable models include the covariates with univariable p < 0.05 (BAG always), as the "
                     "paper's Table 3.")
    else:
        notes.append("Multivariable models include every covariate listed.")
    zph = []
    for g in groups:
        m = g.cox_multivariable
        if m is not None:
            zph.append(f"{g.group}: global cox.zph p = {fmt.p_value(m.zph_global_p)}, "
                       f"{m.events_per_variable:.1f} events per variable"
                       + ("" if m.converged else ", DID NOT CONVERGE"))
    if zph:
        notes.append("Proportional-hazards check (Schoenfeld residuals, R: cox.zph) — " + "; ".join(zph) + ".")
    width = 1 + 4 * len(names)
    spans = ((0, 1, 2 * len(names)), (0, 2 * len(names) + 1, width - 1))
    return [Table.of("table3", TABLE3_CAPTION, rows[:2], rows[2:], notes, spans=spans, landscape=len(names) > 2)]


def cutoff_table(outcomes) -> list:
    groups = [g for g in outcomes.groups if g.roc is not None]
    if not groups:
        return []
    rows = [["Group", "N (events)", "AUC (95% CI)", "Rule", "Positive when", "Sensitivity", "Specificity",
             "Median time, above (95% CI)", "Median time, below (95% CI)", "Log-rank p"]]
    for g in groups:
        c = g.roc.curve
        for cut in g.roc.cutoffs:
            chosen = cut.rule == g.roc.rule
            km = g.km if chosen else None
            above = km.curve("above") if km is not None and any(k.label == "above" for k in km.curves) else None
            below = km.curve("below") if km is not None and any(k.label == "below" for k in km.curves) else None
            threshold = cut.rule_text("BAG")
            if cut.ci_low is not None:
                threshold += f" ({cut.ci_low:.1f}, {cut.ci_high:.1f})"
            rows.append([g.group, f"{g.n_followup} ({g.events})",
                         f"{c.auc:.3f} ({c.ci_low:.3f}, {c.ci_high:.3f})",
                         ("specificity ≥ " + f"{100 * outcomes.specificity_at_least:.0f}%" if cut.rule == "spec80"
                          else "Youden") + (" *" if chosen else ""),
                         threshold, f"{100 * cut.sensitivity:.1f}%", f"{100 * cut.specificity:.1f}%",
                         _years(above.median, above.median_ci_low, above.median_ci_high) if above else "-",
                         _years(below.median, below.median_ci_low, below.median_ci_high) if below else "-",
                         fmt.p_value(km.logrank_p) if km is not None else "-"])
    return [Table.of("cutoffs", "Cutoffs of BAG for EDSS worsening (ROC) and time to worsening above vs below "
                     "the cutoff", rows[:1], rows[1:],
                     [_direction_note(groups),
                      "AUC with DeLong 95% CI (R: pROC ci.auc); thresholds are midpoints between observed values "
                      "(pROC). * the rule used for the Kaplan–Meier strata; 'above' the cutoff means positive "
                      "(the comparison in 'Positive when'). Median time to worsening in years "
                      "(Kaplan–Meier, R survfit's default log-transformed CI; NR: not reached); log-rank test "
                      "(R: survdiff)."])]


def _direction_note(groups) -> str:
    """The ROC direction in words, per group where it differs (R: pROC roc(direction = ...))."""
    from bagkit.stats.cutoffs import direction_words

    said = {}
    for g in groups:
        words = direction_words(g.roc.curve.direction, event="EDSS worsening")
        how = ("chosen by pROC's direction = \"auto\" from the group medians" if g.roc.requested_direction == "auto"
               else f"stated in advance (pROC direction = \"{g.roc.curve.direction}\")")
        said.setdefault(f"{words[0].upper()}{words[1:]}, {how}", []).append(g.group)
    if len(said) == 1:
        return f"ROC direction: {next(iter(said))}."
    return "ROC direction: " + "; ".join(f"{', '.join(v)}: {k}" for k, v in said.items()) + "."


def regression_tables(regressions) -> list:
    out = []
    rows = [["Group", "Model", "Term", "n", "r", "β (95% CI)", "p"]]
    for m in regressions.models:
        for term in m.predictors:
            k = m.coefficient(term)
            rows.append([m.subset, m.formula, term, str(m.n), fmt.number(m.r, 3) if len(m.predictors) == 1 else "",
                         f"{k.beta:.3g} ({k.ci_low:.3g}, {k.ci_high:.3g})", fmt.p_value(k.p)])
    if len(rows) > 1:
        out.append(Table.of("regressions", "Linear regressions (R: lm, cor.test): BAG on baseline EDSS and "
                            "normalized brain volume (β per unit), EDSS on BAG, nbv and disease duration "
                            "(Supplementary Table 3), predicted SD on BAG", rows[:1], rows[1:]))
    if regressions.subgroups:
        rows = [["Group", "Comparison", "Mean ± SD (n), first", "Mean ± SD (n), second", "Difference (95% CI)", "p"]]
        for s in regressions.subgroups:
            c = s.comparison
            rows.append([s.subset, c.contrast,
                         f"{s.mean[0]:.1f} ± {s.sd[0]:.1f} ({s.n[0]})", f"{s.mean[1]:.1f} ± {s.sd[1]:.1f} ({s.n[1]})",
                         f"{c.diff:.1f} ({c.ci_low:.1f}, {c.ci_high:.1f})", fmt.p_value(c.p)])
        welch = regressions.subgroups[0].comparison.method.startswith("Welch")
        out.append(Table.of("subgroups", "BAG in subgroups (" + ("Welch's t-test; R: t.test(var.equal = FALSE))"
                                                                 if welch else
                                                                 "Student's t-test; R: t.test(var.equal = TRUE))"),
                            rows[:1], rows[1:]))
    if regressions.centers:
        rows = [["Subset", "Test", "Centers", "n", "F (df)", "p"]]
        for c in regressions.centers:
            rows.append([c.subset, "one-way ANOVA" if c.subset != "all" else "center after group (type I)",
                         str(c.n_centers), str(c.n), f"{c.f:.2f} ({c.df_between:.0f}, {c.df_within:.0f})",
                         fmt.p_value(c.p)])
        out.append(Table.of("centers", "BAG across centers (R: aov(bag ~ center) per group; "
                            "anova(lm(bag ~ group + center)) over all groups)", rows[:1], rows[1:]))
    return out


def _figure2_caption(outcomes) -> str:
    rule = ("specificity ≥ %.0f%%" % (100 * outcomes.specificity_at_least)
            if outcomes is not None and outcomes.rule == "spec80" else "Youden")
    return ("Figure 2. Brain age gap (BAG) and clinical variables, and its prognostic value. (A) BAG vs baseline "
            "EDSS and (B) vs normalized brain volume with the fitted line per group. (C, D) Time to EDSS worsening "
            f"above vs below the BAG cutoff ({rule}), numbers at risk under each panel.")


def blocks(results) -> list:
    from bagkit.plots.outcomes import figure2_panels, roc_figure

    outcomes = results.outcomes
    regressions = results.regressions
    if outcomes is None and regressions is None:
        return []
    cohort = results.cohort
    out: list = [Text("Outcomes: cutoffs, time to EDSS worsening and Cox models", "heading")]
    if outcomes is not None:
        out += table3(outcomes, cohort)
        if _has_forest(outcomes):
            from bagkit.plots.forest import forest_figure

            out.append(Figure("forest", "Figure. Forest plot of Table 3: hazard ratio with its 95% CI per covariate, "
                                        "univariable (circles) and multivariable (squares), per group; dashed line "
                                        "at HR = 1. The same Cox models as Table 3 (R: exp(coef(fit)), "
                                        "exp(confint(fit)) of coxph(..., ties = \"efron\")).",
                              lambda: forest_figure(outcomes)))
        out += cutoff_table(outcomes)
    if figure2_panels(cohort, outcomes):
        out.append(Figure("figure2", _figure2_caption(outcomes), lambda: figure2(cohort, outcomes, regressions)))
    if outcomes is not None and any(g.roc is not None for g in outcomes.groups):
        rocs = [g for g in outcomes.groups if g.roc is not None]
        out.append(Figure("roc", "ROC curves of BAG for EDSS worsening (dot: the cutoff used). "
                          + _direction_note(rocs),
                          lambda: roc_figure(outcomes), width=0.5))
    if regressions is not None:
        out += regression_tables(regressions)
    notes = (list(outcomes.all_notes) if outcomes is not None else []) + \
            (list(regressions.all_notes) if regressions is not None else [])
    if notes:
        out += [Text("Notes on these analyses", "caption")] + [Text(f"• {n}", "note") for n in notes]
    return out


def _has_forest(outcomes) -> bool:
    """Whether the forest plot has anything to draw (it raises ValueError when not)."""
    import numpy as np

    from bagkit.plots.forest import forest_rows

    rows = forest_rows(outcomes)
    finite = np.isfinite(rows[["hr", "ci_low", "ci_high"]].to_numpy(dtype=float)).all(axis=1) & (rows["ci_low"] > 0)
    return bool(finite.any())


def figure2(cohort, outcomes, regressions):
    from bagkit.plots.outcomes import figure2 as draw

    return draw(cohort, outcomes, regressions, {c: label(cohort, c, "axis") for c in ("edss", "nbv")})


def supplementary(results) -> list:
    return []
