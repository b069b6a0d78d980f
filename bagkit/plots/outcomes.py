"""Figure 2 of the paper and the ROC curves: drawn from result objects on a matplotlib ``Figure``.

(A) BAG vs baseline EDSS and (B) BAG vs normalized brain volume with the fitted line per patient
group; (C, D, ...) Kaplan–Meier curves above vs below the BAG cutoff per patient group, with the
numbers at risk under the axis. The lines, curves and numbers come from the results; nothing
here computes a statistic.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from bagkit.cohort import Cohort
from bagkit.plots.cohort import MARKERS, group_colors, wrap

__all__ = ["figure2", "figure2_panels", "roc_figure", "km_axes"]

STRATUM_STYLE = {"above": ("#D55E00", "-"), "below": ("#0072B2", "--")}
LINE_STYLES = ("-", "--", "-.", ":")  # curves told apart in a grey print


def _scatter_with_line(ax, cohort: Cohort, regressions, predictor: str, xlabel: str) -> None:
    colors = group_colors(cohort)
    for i, group in enumerate(cohort.patient_groups):
        part = cohort.group(group)[[predictor, "bag"]].dropna()
        ax.scatter(part[predictor], part["bag"], s=7, alpha=0.5, color=colors[group], linewidths=0,
                   marker=MARKERS[i % len(MARKERS)])
        model = regressions.model(group, f"bag ~ {predictor}") if regressions is not None else None
        if model is not None and len(part):
            xs = np.linspace(part[predictor].min(), part[predictor].max(), 50)
            ys = model.coefficient("(Intercept)").beta + model.coefficient(predictor).beta * xs
            ax.plot(xs, ys, color=colors[group], lw=1.4, ls=LINE_STYLES[i % len(LINE_STYLES)],
                    label=wrap(f"{group}: r = {model.r:.3f}, β = {model.coefficient(predictor).beta:.2f}", 30))
        else:
            ax.plot([], [], color=colors[group], label=wrap(group, 30))
    ax.set(xlabel=xlabel, ylabel="Brain age gap (years)")
    ax.axhline(0, color="black", lw=0.5)
    ax.legend(frameon=False, fontsize=6.5)


def km_axes(ax, comparison, title: str = "", max_time: float | None = None) -> None:
    """Kaplan–Meier curves of a StrataComparison with numbers at risk under the axis (each row
    named as its curve in the legend, so it reads without colour)."""
    labels = []
    for curve in comparison.curves:
        color, style = STRATUM_STYLE.get(curve.label, (None, "-"))
        x, y = curve.step()
        label = curve.label
        if comparison.threshold is not None:
            sign = ">" if curve.label == "above" else "≤"
            label = f"BAG {sign} {comparison.threshold:.1f}"
        labels.append(label)
        ax.step(x, y, where="post", color=color, ls=style, lw=1.3, label=label)
        censored = curve.n_censor > 0
        ax.plot(curve.time[censored], curve.surv[censored], "|", color=color, ms=4)
    ax.set_ylim(0, 1.03)
    if max_time is not None:
        ax.set_xlim(0, max_time)
    ax.set(xlabel="Years to EDSS worsening", ylabel="Free of EDSS worsening")
    ax.text(0.03, 0.05, f"log-rank p = {comparison.logrank_p:.3g}", transform=ax.transAxes, fontsize=7)
    ax.legend(frameon=False, fontsize=7, loc="upper right")
    if title:
        ax.set_title(title, fontsize=8)
    transform = blended_transform_factory(ax.transData, ax.transAxes)
    ax.text(0, -0.30, "At risk", transform=transform, fontsize=6.5, ha="right", fontweight="bold")
    for i, curve in enumerate(comparison.curves):
        color = STRATUM_STYLE.get(curve.label, ("black",))[0]
        for when, n in zip(comparison.at_risk_times, comparison.numbers_at_risk[i]):
            ax.text(when, -0.38 - 0.08 * i, str(n), transform=transform, fontsize=6.5, ha="center", color=color)
        ax.annotate(labels[i], (0, -0.38 - 0.08 * i), xycoords=transform, xytext=(-10, 0), textcoords="offset points",
                    fontsize=6.5, ha="right", va="baseline", color=color)


def figure2_panels(cohort: Cohort, outcomes=None) -> int:
    """How many panels Figure 2 has for these results (0: no Figure 2)."""
    kms = [g for g in (outcomes.groups if outcomes is not None else ()) if g.km is not None]
    top = [p for p in ("edss", "nbv") if cohort.has(p) and cohort.has("bag")]
    return len(kms) + len(top)


def figure2(cohort: Cohort, outcomes=None, regressions=None, axis_labels=None) -> Figure:
    """Figure 2: (A) BAG vs EDSS, (B) BAG vs nbv, then one Kaplan–Meier panel per group with a KM result.
    ``axis_labels``: {column: label} for the x axes (the report passes its label table's)."""
    kms = [g for g in (outcomes.groups if outcomes is not None else ()) if g.km is not None]
    top = [p for p in ("edss", "nbv") if cohort.has(p) and cohort.has("bag")]
    rows = (1 if top else 0) + (1 if kms else 0)
    if rows == 0:
        raise ValueError("nothing to draw for Figure 2")
    columns = max(len(top), len(kms), 1)
    fig = Figure(figsize=(4.2 * columns, 3.6 * rows), layout="constrained")
    grid = fig.add_gridspec(rows, columns)
    letters = iter("ABCDEFGH")
    if top:
        for j, predictor in enumerate(top):
            ax = fig.add_subplot(grid[0, j])
            label = (axis_labels or {}).get(predictor) or ("Baseline EDSS" if predictor == "edss"
                                                            else "Normalized brain volume")
            _scatter_with_line(ax, cohort, regressions, predictor, wrap(label, 48))
            ax.set_title(next(letters), loc="left", fontweight="bold")
    if kms:
        horizon = max(float(g.km.at_risk_times[-1]) if g.km.at_risk_times else 0 for g in kms)
        for j, g in enumerate(kms):
            ax = fig.add_subplot(grid[rows - 1, j])
            cut = g.roc.cutoff if g.roc is not None else None
            title = g.group + (f" ({cut.rule_text('BAG')} vs not: sens {cut.sensitivity:.1%}, "
                               f"spec {cut.specificity:.1%})" if cut is not None else "")
            km_axes(ax, g.km, wrap(title, 46), max_time=horizon + 0.5)  # a long group name wraps
            ax.set_title(next(letters), loc="left", fontweight="bold")
    for ax in fig.axes:
        ax.tick_params(labelsize=7)
    return fig


def roc_figure(outcomes) -> Figure:
    """ROC curve of BAG for worsening per patient group, the chosen cutoff marked."""
    groups = [g for g in outcomes.groups if g.roc is not None]
    if not groups:
        raise ValueError("no ROC to draw")
    fig = Figure(figsize=(3.8, 3.6), layout="constrained")
    ax = fig.add_subplot()
    palette = ("#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00")
    for i, (color, g) in enumerate(zip(palette, groups)):
        c = g.roc.curve
        ax.step(1 - c.specificities, c.sensitivities, where="post", color=color, ls=LINE_STYLES[i % len(LINE_STYLES)],
                label=wrap(f"{g.group}: AUC {c.auc:.3f} ({c.ci_low:.3f}–{c.ci_high:.3f}), "
                           f"{'higher' if c.direction == '<' else 'lower'} BAG = worse", 40))
        cut = g.roc.cutoff
        ax.plot(1 - cut.specificity, cut.sensitivity, MARKERS[i % len(MARKERS)], color=color, ms=5,
                markeredgecolor="black", markeredgewidth=0.5)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.6, ls=":")
    ax.set(xlabel="1 − specificity", ylabel="Sensitivity", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(frameon=False, fontsize=6.5, loc="lower right")
    ax.tick_params(labelsize=7)
    return fig
