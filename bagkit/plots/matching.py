"""The love plot of a matching."""
from __future__ import annotations

import textwrap

import numpy as np

from bagkit.stats.matching import SMD_THRESHOLD, Matching


def plot_love(matching: Matching, ax=None, absolute: bool = True):
    """A love plot: |SMD| per covariate before (open) and after (filled) matching, with the 0.1 line.

    Draws on ``ax`` (a matplotlib Axes) or on a new ``Figure`` (no pyplot state); returns the Figure.
    """
    from matplotlib.figure import Figure

    balance = matching.balance[matching.balance["covariate"] != "distance"].iloc[::-1]
    # long labels (a user's own) wrap, so the axes keep their width and the title and ticks fit
    labels = [textwrap.fill(str(label), 30) for label in balance["label"]]
    lines = max((label.count("\n") + 1 for label in labels), default=1)
    if ax is None:
        fig = Figure(figsize=(5.2, 0.9 + max(0.32, 0.14 * lines + 0.06) * len(balance)), layout="constrained")
        ax = fig.add_subplot()
    fig = ax.figure
    before = balance["smd_before"].to_numpy(dtype=float)
    after = balance["smd_after"].to_numpy(dtype=float)
    if absolute:
        before, after = np.abs(before), np.abs(after)
    y = np.arange(len(balance))
    for yi, b, a in zip(y, before, after):
        ax.plot([b, a], [yi, yi], color="#BBBBBB", lw=0.8, zorder=1)
    ax.scatter(before, y, facecolors="white", edgecolors="#D55E00", s=28, label="All", zorder=2)
    ax.scatter(after, y, color="#0072B2", s=28, label="Matched", zorder=3)
    ax.axvline(SMD_THRESHOLD, color="black", ls="--", lw=0.7)
    if not absolute:
        ax.axvline(-SMD_THRESHOLD, color="black", ls="--", lw=0.7)
        ax.axvline(0, color="black", lw=0.5)
    from matplotlib.ticker import MaxNLocator

    ax.set_yticks(y, labels, fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.set_xlabel(("Absolute s" if absolute else "S") + "tandardized mean difference")
    ax.set_title(textwrap.fill(f"Covariate balance: {matching.groups[0]} vs {matching.groups[1]}", 48), fontsize=9)
    ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside, never over points
    return fig
