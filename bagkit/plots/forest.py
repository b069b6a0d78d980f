"""A forest plot of Table 3: hazard ratio with its 95% CI per covariate, univariable and
multivariable, one panel per patient group, drawn from the same Cox results as the table
(``bagkit.analyses.outcomes.Outcomes``; R: ``exp(coef)`` and ``exp(confint)`` of ``coxph``).
Nothing here computes a statistic: :func:`forest_rows` reads the fitted models and
:func:`forest_figure` draws what it read.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from bagkit.plots.cohort import wrap

__all__ = ["forest_rows", "forest_figure"]

TICKS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
KIND_STYLE = {"univariable": ("o", "#0072B2", -0.17), "multivariable": ("s", "#D55E00", 0.17)}


def forest_rows(outcomes) -> pd.DataFrame:
    """One row per (group, covariate, kind) that Table 3 shows: hr, ci_low, ci_high, p, label."""
    rows = []
    for g in outcomes.groups:
        for covariate in outcomes.covariates:
            label = outcomes.labels.get(covariate, covariate)
            model = g.univariable(covariate)
            term = model.terms[0] if model is not None else None
            if term is not None:
                rows.append((g.group, covariate, label, "univariable", term.hr, term.ci_low, term.ci_high, term.p))
            term = g.cox_multivariable.term(covariate) if g.cox_multivariable is not None else None
            if term is not None:
                rows.append((g.group, covariate, label, "multivariable", term.hr, term.ci_low, term.ci_high, term.p))
    return pd.DataFrame(rows, columns=["group", "term", "label", "kind", "hr", "ci_low", "ci_high", "p"])


def forest_figure(outcomes) -> Figure:
    """HR [95% CI] on a log axis, covariates down, univariable (circles) and multivariable (squares)."""
    rows = forest_rows(outcomes)
    finite = rows[np.isfinite(rows[["hr", "ci_low", "ci_high"]]).all(axis=1) & (rows["ci_low"] > 0)]
    if finite.empty:
        raise ValueError("no Cox model to draw")
    groups = list(dict.fromkeys(finite["group"]))
    covariates = [c for c in outcomes.covariates if c in set(finite["term"])]
    labels = [wrap(outcomes.labels.get(c, c), 26) for c in covariates]
    fig = Figure(figsize=(3.0 * len(groups) + 1.6, 0.42 * len(covariates) + 1.3), layout="constrained")
    axes = fig.subplots(1, len(groups), sharey=True, squeeze=False)[0]
    low, high = finite["ci_low"].min(), finite["ci_high"].max()
    for ax, group in zip(axes, groups):
        part = finite[finite["group"] == group]
        for kind, (marker, color, offset) in KIND_STYLE.items():
            mine = part[part["kind"] == kind]
            y = np.array([covariates.index(t) for t in mine["term"]], dtype=float) + offset
            ax.errorbar(mine["hr"], y, xerr=[mine["hr"] - mine["ci_low"], mine["ci_high"] - mine["hr"]],
                        fmt=marker, color=color, ms=4, lw=1, capsize=2, label=kind)
        ax.axvline(1.0, color="0.4", lw=0.7, ls="--")
        ax.set_xscale("log")
        left, right = min(low, 0.9) / 1.15, max(high, 1.1) * 1.15
        ax.set_xlim(left, right)
        ax.xaxis.set_major_locator(FixedLocator([t for t in TICKS if left <= t <= right] or [1.0]))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(group, fontsize=8)
        ax.set_xlabel("Hazard ratio (95% CI, log scale)", fontsize=7)
        ax.tick_params(which="both", labelsize=7)
    axes[0].set_yticks(range(len(covariates)), labels)
    axes[0].invert_yaxis()
    axes[-1].legend(frameon=False, fontsize=6.5, loc="best")
    return fig
