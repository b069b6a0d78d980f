"""The "Brain-age model" section of the PDF: model performance on the controls (MAE, r, MAE by
center), predicted SD vs BAG, raw vs lesion-filled Bland–Altman, and the predictor comparison.
Formatting only: every number comes from the ``brain_age_model`` result (bagkit.analyses.performance)."""
from __future__ import annotations

import math

from matplotlib.figure import Figure
from reportlab.platypus import KeepTogether

from bagkit.plots.agreement import plot_bland_altman
from bagkit.plots.cohort import group_colors, wrap
from bagkit.report import format as fmt
from bagkit.report.layout import CONTENT_WIDTH, figure, gap, paper_table, paragraph


def _r(value) -> str:
    return fmt.number(value, 3)


def _signed(value, decimals: int = 2) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:+.{decimals}f}"


def performance_table(model, label) -> list:
    p = model.performance
    if p is None:
        return []
    rows = [["Subset", "N", "MAE, yr", "Mean error ± SD, yr", "Pearson r (brain age, age)", "p"],
            [f"{label} (all centers)", str(p.n), fmt.number(p.mae, 2), f"{_signed(p.mean_error)} ± {p.sd_error:.2f}",
             _r(p.pearson_r), fmt.p_value(p.pearson_p)]]
    for center, n, mae, mean_error in p.by_center:
        rows.append([f"center {center}", str(n), fmt.number(mae, 2), _signed(mean_error), "", ""])
    widths = [w * CONTENT_WIDTH for w in (0.24, 0.08, 0.12, 0.2, 0.22, 0.1)]
    return [paragraph(f"Brain-age model performance on the controls ({label}): mean absolute error (MAE) and "
                      f"Pearson correlation with chronological age, overall and by center", "caption"),
            paper_table(rows, widths), gap(1.5),
            paragraph("Error = predicted brain age − chronological age (the controls' BAG); MAE = mean |error| "
                      "(R: mean(abs(e)), by center tapply(abs(e), center, mean)); r and p from R's cor.test. "
                      "Age-bias correction, if any, was applied before bagkit read the table.", "note")]


def _sd_figure(cohort) -> Figure:
    data = cohort.data
    colors = group_colors(cohort)
    fig = Figure(figsize=(5.6, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for group in cohort.groups:
        part = data[data["group"] == group]
        ax.scatter(part["bag"], part["brain_age_sd"], s=7, alpha=0.55, color=colors[group], label=wrap(group, 28),
                   linewidths=0)
    ax.axvline(0, color="0.6", lw=0.6)
    ax.set(xlabel="Brain age gap (years)", ylabel="Predicted SD of brain age (years)")
    ax.legend(frameon=False, fontsize=7, markerscale=2)
    return fig


def sd_section(results, model, figures_dir) -> list:
    if not model.sd_vs_bag:
        return []
    rows = [["Subset", "N", "Pearson r (predicted SD, BAG)", "p"]]
    for c in model.sd_vs_bag:
        rows.append(["all subjects" if c.subset == "all" else c.subset, str(c.n), _r(c.pearson_r),
                     fmt.p_value(c.pearson_p)])
    overall = next((c for c in model.sd_vs_bag if c.subset == "all"), model.sd_vs_bag[0])
    widths = [w * CONTENT_WIDTH for w in (0.3, 0.1, 0.3, 0.12)]
    return [KeepTogether([
                paragraph(f"Predicted SD of brain age vs BAG (all subjects: r = {_r(overall.pearson_r)}, "
                          f"p {'< 0.001' if overall.pearson_p < 0.001 else '= ' + fmt.p_value(overall.pearson_p)}, "
                          f"n = {overall.n})", "caption"),
                figure(_sd_figure(results.cohort), width=CONTENT_WIDTH * 0.62,
                       png_path=figures_dir / "predicted_sd_bag.png")]),
            gap(2), paper_table(rows, widths), gap(1.5),
            paragraph("The predicted SD is the spread of the predictor's output distribution (SFCN) or the GP's "
                      "predictive SD; r and p from R's cor.test(brain_age_sd, bag).", "note")]


def agreement_rows(result) -> list[list[str]]:
    lo, hi = result.mean_difference_ci
    return [[f"{result.labels[0]} − {result.labels[1]}", str(result.n), _r(result.r_squared), _r(result.pearson_r),
             f"{result.mean_difference:.2f} ± {result.sd_difference:.2f} ({lo:.2f}, {hi:.2f})",
             f"{result.lower_limit:.2f} ({result.lower_limit_ci[0]:.2f}, {result.lower_limit_ci[1]:.2f})",
             f"{result.upper_limit:.2f} ({result.upper_limit_ci[0]:.2f}, {result.upper_limit_ci[1]:.2f})"]]


AGREEMENT_HEADER = ["Difference", "N", "R²", "Pearson r", "Mean difference ± SD (95% CI), yr",
                    "Lower limit of agreement (95% CI)", "Upper limit of agreement (95% CI)"]
AGREEMENT_WIDTHS = [w * CONTENT_WIDTH for w in (0.15, 0.06, 0.07, 0.09, 0.23, 0.2, 0.2)]
AGREEMENT_NOTE = ("Bland–Altman (1999): limits of agreement = mean difference ± 1.96 SD; CIs of the mean difference "
                  "by t, of each limit by t·√(3 s²/n). R² and r from R's cor.test / lm.")


def filled_section(model, figures_dir) -> list:
    ba = model.filled
    if ba is None:
        return []
    axes = plot_bland_altman(ba)
    return [paragraph("Brain age on the raw vs the lesion-filled T1 scans (subjects with both)", "caption"),
            paper_table([AGREEMENT_HEADER, *agreement_rows(ba)], AGREEMENT_WIDTHS), gap(1.5),
            paragraph(AGREEMENT_NOTE, "note"), gap(3),
            KeepTogether([
                paragraph(f"Bland–Altman plot of raw minus lesion-filled brain age (n = {ba.n}; shaded: 95% CIs of "
                          f"the mean difference and of the limits of agreement)", "caption"),
                figure(axes.figure, width=CONTENT_WIDTH * 0.62, png_path=figures_dir / "bland_altman_filled.png")])]


def comparison_section(model, label) -> list:
    c = model.comparison
    if c is None:
        return []
    rows = [["Predictor", f"N ({label})", "MAE, yr", "Pearson r (brain age, age)", "p"]]
    for name, row in c.accuracy.iterrows():
        rows.append([str(name), f"{row['n']:.0f}", fmt.number(row["mae"], 2), _r(row["pearson_r"]),
                     fmt.p_value(row["pearson_p"])])
    out = [paragraph(f"Predictors compared: accuracy on the controls ({label})", "caption"),
           paper_table(rows, [w * CONTENT_WIDTH for w in (0.3, 0.12, 0.12, 0.24, 0.1)]), gap(3)]
    names = list(c.accuracy.index)
    groups = list(c.bag_by_group.index)
    rows = [["Group", *(f"{n}: BAG mean ± SD (n)" for n in names)]]
    for group in groups:
        cells = []
        for name in names:
            mean, sd, n = (c.bag_by_group.loc[group, (name, s)] for s in ("mean_bag", "sd_bag", "n"))
            cells.append("-" if not n else f"{mean:.1f} ± {fmt.number(sd)} ({n:.0f})")
        rows.append([str(group), *cells])
    first = CONTENT_WIDTH * 0.16
    out += [paragraph("Predictors compared: brain age gap per group", "caption"),
            paper_table(rows, [first, *([(CONTENT_WIDTH - first) / max(len(names), 1)] * len(names))]), gap(3)]
    if c.agreement:
        rows = [AGREEMENT_HEADER]
        for result in c.agreement.values():
            rows += agreement_rows(result)
        out += [paragraph("Predictors compared: Bland–Altman agreement of brain age, every pair", "caption"),
                paper_table(rows, AGREEMENT_WIDTHS), gap(1.5), paragraph(AGREEMENT_NOTE, "note")]
    return out


def flowables(results, figures_dir) -> list:
    model = results.brain_age_model
    if model is None:
        return []
    label = model.control or "controls"
    out = [paragraph("Brain-age model", "heading")]
    parts = [performance_table(model, label), sd_section(results, model, figures_dir),
             filled_section(model, figures_dir), comparison_section(model, label)]
    for part in parts:
        if part:
            out += part + [gap(5)]
    if model.notes:
        out += [paragraph("Notes on this section", "caption")] + [paragraph(f"• {n}", "note") for n in model.notes]
    return out
