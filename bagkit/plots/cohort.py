"""Figure 1 of the paper: brain age vs chronological age by group, BAG by group, BAG by center.

Plain functions that draw on a matplotlib ``Figure`` (no pyplot global state); they plot
the cohort's data and compute nothing that reaches a table.
"""
from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure

from bagkit.cohort import Cohort

HATCHES = ("", "///", "...", "xx", "\\\\", "++")  # bars told apart in grey print
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # points told apart in grey print
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


def figure1(cohort: Cohort, centers=None) -> Figure:
    """(A) brain age vs age per group with the identity line; (B) BAG per group; (C) mean BAG ± SE per
    center, read from the ``center_means`` result (:class:`bagkit.analyses.centers.CenterMeans`)."""
    has_center = centers is not None and len(centers.table) > 0
    fig = Figure(figsize=(10, 3.6 if not has_center else 3.4), layout="constrained")
    axes = fig.subplots(1, 3 if has_center else 2, gridspec_kw={"width_ratios": [1.1, 0.9, 1.3][:3 if has_center else 2]})
    colors = group_colors(cohort)
    data = cohort.data
    ax = axes[0]
    for i, group in enumerate(cohort.groups):
        part = data[data["group"] == group]
        ax.scatter(part["age"], part["brain_age"], s=7, alpha=0.55, color=colors[group], label=wrap(group, 28),
                   marker=MARKERS[i % len(MARKERS)], linewidths=0)
    low = float(np.nanmin([data["age"].min(), data["brain_age"].min()]))
    high = float(np.nanmax([data["age"].max(), data["brain_age"].max()]))
    ax.plot([low, high], [low, high], color="black", lw=0.8, ls="--")
    ax.set(xlabel="Chronological age (years)", ylabel="Predicted brain age (years)")
    ax.set_title("A", loc="left", fontweight="bold")
    ax.legend(frameon=False, fontsize=9, markerscale=1.5)  # readable when report.pdf draws it at 72 %

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
        table = centers.table
        centers_shown = sorted(table["center"].unique(), key=str)
        width = 0.8 / len(cohort.groups)
        for j, group in enumerate(cohort.groups):
            part = table[table["group"] == group]
            xs = [centers_shown.index(c) + (j - (len(cohort.groups) - 1) / 2) * width for c in part["center"]]
            means, errors = list(part["mean"]), list(part["se"])
            ax.bar(xs, means, width=width, yerr=errors, color=colors[group], alpha=0.75, label=wrap(group, 28),
                   hatch=HATCHES[j % len(HATCHES)], edgecolor="black", linewidth=0.4, error_kw={"lw": 0.7})
        centers = centers_shown
        ax.set_xticks(range(len(centers)), [str(c) for c in centers], fontsize=8)
        ax.axhline(0, color="black", lw=0.6)
        ax.set(ylabel="Mean BAG ± SE (years)", xlabel="Center")
        ax.set_title("C", loc="left", fontweight="bold")
    for ax in axes:
        ax.tick_params(labelsize=7)
    return fig


def predicted_sd_figure(cohort: Cohort) -> Figure:
    """Predicted SD of brain age against BAG, one marker and colour per group."""
    data = cohort.data
    colors = group_colors(cohort)
    fig = Figure(figsize=(5.6, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for i, group in enumerate(cohort.groups):
        part = data[data["group"] == group]
        # shape and fill tell the groups apart in grey print: every other group's markers are hollow
        face = "none" if i % 2 else colors[group]
        ax.scatter(part["bag"], part["brain_age_sd"], s=14, alpha=0.7, facecolors=face, edgecolors=colors[group],
                   label=wrap(group, 28), marker=MARKERS[i % len(MARKERS)], linewidths=0.6)
    ax.axvline(0, color="0.6", lw=0.6)
    ax.set(xlabel="Brain age gap (years)", ylabel="Predicted SD of brain age (years)")
    ax.legend(frameon=False, fontsize=9, markerscale=1.5)  # readable when report.pdf draws it at 72 %
    return fig
