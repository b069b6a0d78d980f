"""The "Brain-age model" section of the report: model performance on the controls (MAE, r, MAE by
center), predicted SD vs BAG, raw vs lesion-filled Bland–Altman, and the predictor comparison.
Formatting only: every number comes from the ``brain_age_model`` result (bagkit.analyses.performance)."""
from __future__ import annotations

import math

from bagkit.report import format as fmt
from bagkit.report.tables import Figure, Table, Text


def _r(value) -> str:
    return fmt.number(value, 3)


def _signed(value, decimals: int = 2) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:+.{decimals}f}"


def performance_table(model, label, corrected: bool = False) -> list:
    p = model.performance
    if p is None:
        return []
    rows = [["Subset", "N", "MAE, yr", "Mean error ± SD, yr", "Pearson r (brain age, age)", "p"],
            [f"{label} (all centers)", str(p.n), fmt.number(p.mae, 2), f"{_signed(p.mean_error)} ± {p.sd_error:.2f}",
             _r(p.pearson_r), fmt.p_value(p.pearson_p)]]
    for center, n, mae, mean_error in p.by_center:
        rows.append([f"center {center}", str(n), fmt.number(mae, 2), _signed(mean_error), "", ""])
    return [Table.of("model_performance", f"Brain-age model performance on the controls ({label}): mean absolute "
                     f"error (MAE) and Pearson correlation with chronological age, overall and by center",
                     rows[:1], rows[1:],
                     ["Error = predicted brain age − chronological age (the controls' BAG); MAE = mean |error| "
                      "(R: mean(abs(e)), by center tapply(abs(e), center, mean)); r and p from R's cor.test. "
                      + ("These are the uncorrected predictions; the age-bias correction and the controls' accuracy "
                         "after it follow." if corrected else
                         "bagkit applied no age-bias correction (--bias-correction none); any correction was applied "
                         "before bagkit read the table.")])]


def bias_section(summary) -> list:
    """The age-bias correction: its fit and the controls' accuracy before and after (R: lm)."""
    if summary is None:
        return []
    formula = ("brain_age = a·age + b; corrected brain age = (brain_age − b)/a" if summary.method == "linear"
               else "BAG = α·age + β; corrected BAG = BAG − (α·age + β)")
    where = ("a separate calibration table" if summary.fitted_on == "calibration"
             else f"the {summary.n} controls")
    rows = []
    for key, name, decimals in (("mae", "MAE, yr", 2), ("mean_bag", "Mean BAG, yr", 2),
                                ("r", "Pearson r (brain age, age)", 3), ("r_bag_age", "Pearson r (BAG, age)", 3)):
        rows.append([name, fmt.number(summary.before.get(key), decimals), fmt.number(summary.after.get(key), decimals)])
    return [Table.of("bias_correction", f"Age-bias correction ({summary.method}): slope {summary.slope:.4f}, "
                     f"intercept {summary.intercept:.3f}, fitted on {where}; every analysis uses the corrected BAG",
                     [["", "Before correction", "After correction"]], rows,
                     [f"{formula}; slope and intercept from R's lm on {where} (Cole et al. 2018 / de Lange et al. "
                      f"2019 for 'linear', Smith et al. 2019 / Beheshti et al. 2019 for 'bag'). The controls' own "
                      f"corrected values come from {summary.controls_values}: applied back to the controls it was "
                      f"fitted on, the correction would make their mean BAG 0 and its correlation with age 0 by "
                      f"construction (de Lange & Cole 2020). Controls: {summary.control or 'none'}, "
                      f"n = {summary.n_controls}; MAE and r as above (R: mean(abs(e)), cor.test)."])]


def sd_section(results, model) -> list:
    if not model.sd_vs_bag:
        return []
    rows = [["Subset", "N", "Pearson r (predicted SD, BAG)", "p"]]
    for c in model.sd_vs_bag:
        rows.append(["all subjects" if c.subset == "all" else c.subset, str(c.n), _r(c.pearson_r),
                     fmt.p_value(c.pearson_p)])
    overall = next((c for c in model.sd_vs_bag if c.subset == "all"), model.sd_vs_bag[0])
    from bagkit.plots.cohort import predicted_sd_figure

    cohort = results.cohort
    caption = (f"Predicted SD of brain age vs BAG (all subjects: r = {_r(overall.pearson_r)}, "
               f"p {'< 0.001' if overall.pearson_p < 0.001 else '= ' + fmt.p_value(overall.pearson_p)}, "
               f"n = {overall.n})")
    return [Figure("predicted_sd_bag", caption, lambda: predicted_sd_figure(cohort), width=0.62),
            Table.of("predicted_sd", "Predicted SD of brain age vs BAG, by subset", rows[:1], rows[1:],
                     ["The predicted SD is the spread of the predictor's output distribution (SFCN) or the GP's "
                      "predictive SD; r and p from R's cor.test(brain_age_sd, bag)."])]


def agreement_rows(result) -> list[list[str]]:
    lo, hi = result.mean_difference_ci
    return [[f"{result.labels[0]} − {result.labels[1]}", str(result.n), _r(result.r_squared), _r(result.pearson_r),
             f"{result.mean_difference:.2f} ± {result.sd_difference:.2f} ({lo:.2f}, {hi:.2f})",
             f"{result.lower_limit:.2f} ({result.lower_limit_ci[0]:.2f}, {result.lower_limit_ci[1]:.2f})",
             f"{result.upper_limit:.2f} ({result.upper_limit_ci[0]:.2f}, {result.upper_limit_ci[1]:.2f})"]]


AGREEMENT_HEADER = ["Difference", "N", "R²", "Pearson r", "Mean difference ± SD (95% CI), yr",
                    "Lower limit of agreement (95% CI)", "Upper limit of agreement (95% CI)"]
AGREEMENT_NOTE = ("Bland–Altman (1999): limits of agreement = mean difference ± 1.96 SD; CIs of the mean difference "
                  "by t, of each limit by t·√(3 s²/n). R² and r from R's cor.test / lm.")


def filled_section(model) -> list:
    ba = model.filled
    if ba is None:
        return []

    def draw():
        from bagkit.plots.agreement import plot_bland_altman

        return plot_bland_altman(ba).figure

    return [Table.of("filled_agreement", "Brain age on the raw vs the lesion-filled T1 scans (subjects with both)",
                     [AGREEMENT_HEADER], agreement_rows(ba), [AGREEMENT_NOTE]),
            Figure("bland_altman_filled", f"Bland–Altman plot of raw minus lesion-filled brain age (n = {ba.n}; "
                                          f"shaded: 95% CIs of the mean difference and of the limits of agreement)",
                   draw, width=0.62)]


def comparison_section(model, label) -> list:
    c = model.comparison
    if c is None:
        return []
    rows = [["Predictor", f"N ({label})", "MAE, yr", "Pearson r (brain age, age)", "p"]]
    for name, row in c.accuracy.iterrows():
        rows.append([str(name), f"{row['n']:.0f}", fmt.number(row["mae"], 2), _r(row["pearson_r"]),
                     fmt.p_value(row["pearson_p"])])
    out = [Table.of("predictors_accuracy", f"Predictors compared: accuracy on the controls ({label})",
                    rows[:1], rows[1:])]
    names = list(c.accuracy.index)
    groups = list(c.bag_by_group.index)
    rows = [["Group", *(f"{n}: BAG mean ± SD (n)" for n in names)]]
    for group in groups:
        cells = []
        for name in names:
            mean, sd, n = (c.bag_by_group.loc[group, (name, s)] for s in ("mean_bag", "sd_bag", "n"))
            cells.append("-" if not n else f"{mean:.1f} ± {fmt.number(sd)} ({n:.0f})")
        rows.append([str(group), *cells])
    out.append(Table.of("predictors_bag", "Predictors compared: brain age gap per group", rows[:1], rows[1:]))
    if c.agreement:
        rows = [AGREEMENT_HEADER]
        for result in c.agreement.values():
            rows += agreement_rows(result)
        out.append(Table.of("predictors_agreement", "Predictors compared: Bland–Altman agreement of brain age, "
                            "every pair", rows[:1], rows[1:], [AGREEMENT_NOTE]))
    return out


def blocks(results) -> list:
    model = results.brain_age_model
    if model is None:
        return []
    label = model.control or "controls"
    out: list = [Text("Brain-age model", "heading")]
    for part in (performance_table(model, label, results.bias_correction is not None),
                 bias_section(results.bias_correction), sd_section(results, model), filled_section(model),
                 comparison_section(model, label)):
        out += part
    if model.notes:
        out += [Text("Notes on this section", "caption")] + [Text(f"• {n}", "note") for n in model.notes]
    return out


def supplementary(results) -> list:
    return []
