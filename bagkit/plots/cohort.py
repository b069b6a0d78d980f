"""Figure 1 of the paper: brain age vs chronological age by group, BAG by group, BAG by center.

Plain functions that draw on a matplotlib ``Figure`` (no pyplot global state); they plot
the cohort's data and compute nothing that reaches a table.
"""
from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure

from bagkit.cohort import Cohort

PALETTE = ("#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")


def wrap(label, width: int = 18) -> str:
    """A user's label broken into lines for tick labels and legends (long group names wrap, never overlap)."""
    return textwrap.fill(str(label), width=width, break_long_words=False) or str(label)


def group_colors(cohort: Cohort) -> dict[str, str]:
    """Controls grey-green, patient groups in a colour-blind-safe palette, stable across figures."""
    colors = {}
    patients = iter(PALETTE)
    for group in cohort.groups:
        colors[group] = "#7F7F7F" if group == cohort.control else next(patients, "#444444")
    return colors


def figure1(cohort: Cohort) -> Figure:
    """(A) brain age vs age per group with the identity line; (B) BAG per group; (C) BAG per center."""
    has_center = cohort.has("center")
    fig = Figure(figsize=(10, 3.6 if not has_center else 3.4), layout="constrained")
    axes = fig.subplots(1, 3 if has_center else 2, gridspec_kw={"width_ratios": [1.1, 0.9, 1.3][:3 if has_center else 2]})
    colors = group_colors(cohort)
    data = cohort.data
    ax = axes[0]
    for group in cohort.groups:
        part = data[data["group"] == group]
        ax.scatter(part["age"], part["brain_age"], s=6, alpha=0.55, color=colors[group], label=wrap(group, 28),
                   linewidths=0)
    low = float(np.nanmin([data["age"].min(), data["brain_age"].min()]))
    high = float(np.nanmax([data["age"].max(), data["brain_age"].max()]))
    ax.plot([low, high], [low, high], color="black", lw=0.8, ls="--")
    ax.set(xlabel="Chronological age (years)", ylabel="Predicted brain age (years)")
    ax.set_title("A", loc="left", fontweight="bold")
    ax.legend(frameon=False, fontsize=7, markerscale=2)

    ax = axes[1]
    values = [data.loc[data["group"] == g, "bag"].dropna().to_numpy() for g in cohort.groups]
    parts = ax.boxplot(values, widths=0.55, showfliers=False, patch_artist=True)
    for patch, group in zip(parts["boxes"], cohort.groups):
        patch.set(facecolor=colors[group], alpha=0.35)
    rng = np.random.default_rng(0)
    for i, (group, v) in enumerate(zip(cohort.groups, values), start=1):
        ax.scatter(i + rng.uniform(-0.18, 0.18, len(v)), v, s=4, color=colors[group], alpha=0.5, linewidths=0)
    ax.set_xticks(range(1, len(cohort.groups) + 1), [wrap(g, 14) for g in cohort.groups], fontsize=8)
    ax.axhline(0, color="black", lw=0.6)
    ax.set(ylabel="Brain age gap (years)")
    ax.set_title("B", loc="left", fontweight="bold")

    if has_center:
        ax = axes[2]
        centers = sorted(data["center"].dropna().unique(), key=str)
        width = 0.8 / len(cohort.groups)
        for j, group in enumerate(cohort.groups):
            means, errors, xs = [], [], []
            for i, center in enumerate(centers):
                v = data.loc[(data["group"] == group) & (data["center"] == center), "bag"].dropna()
                if len(v) >= 2:
                    xs.append(i + (j - (len(cohort.groups) - 1) / 2) * width)
                    means.append(v.mean())
                    errors.append(v.std(ddof=1) / np.sqrt(len(v)))
            ax.bar(xs, means, width=width, yerr=errors, color=colors[group], alpha=0.75, label=wrap(group, 28),
                   error_kw={"lw": 0.7})
        ax.set_xticks(range(len(centers)), [str(c) for c in centers], fontsize=8)
        ax.axhline(0, color="black", lw=0.6)
        ax.set(ylabel="Mean BAG ± SE (years)", xlabel="Center")
        ax.set_title("C", loc="left", fontweight="bold")
    for ax in axes:
        ax.tick_params(labelsize=7)
    return fig
