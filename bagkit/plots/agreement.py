"""The Bland–Altman plot."""
from __future__ import annotations

import numpy as np

from bagkit.stats.agreement import BlandAltman


def plot_bland_altman(result: BlandAltman, ax=None):
    """Draw the Bland–Altman plot on ``ax`` (a new ``matplotlib.figure.Figure`` when None,
    never pyplot's global state). Returns the Axes."""
    if ax is None:
        from matplotlib.figure import Figure

        ax = Figure(figsize=(5.5, 4.0), layout="constrained").add_subplot()
    means, differences = np.asarray(result.means), np.asarray(result.differences)
    ax.scatter(means, differences, s=14, alpha=0.7, color="#33658a", edgecolors="none")
    x_low, x_high = (means.min(), means.max()) if means.size else (0, 1)
    # the three lines are named in a legend (never printed over each other, whatever their spacing)
    # and told apart by line style as well as colour, so a grey print reads the same
    for value, ci, style, color, label in (
        (result.upper_limit, result.upper_limit_ci, "--", "#1f6f9f", f"+1.96 SD: {result.upper_limit:.2f}"),
        (result.mean_difference, result.mean_difference_ci, "-", "#2f4858", f"mean: {result.mean_difference:.2f}"),
        (result.lower_limit, result.lower_limit_ci, ":", "#1f6f9f", f"−1.96 SD: {result.lower_limit:.2f}"),
    ):
        ax.axhline(value, color=color, linestyle=style, linewidth=1.3, label=label)
        ax.axhspan(ci[0], ci[1], color="#86bbd8", alpha=0.18, linewidth=0)
    # 9 pt: report.pdf may draw this figure at 72 % to share its page with its table (6.5 pt then)
    ax.legend(frameon=False, fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), handlelength=2.6)
    ax.axhline(0.0, color="0.6", linewidth=0.6)
    ax.set_xlim(x_low - 0.02 * (x_high - x_low + 1), x_high + 0.02 * (x_high - x_low + 1))
    ax.set_xlabel(f"mean of {result.labels[0]} and {result.labels[1]} (years)")
    ax.set_ylabel(f"{result.labels[0]} − {result.labels[1]} (years)")
    ax.set_title(f"Bland–Altman (n = {result.n}, R² = {result.r_squared:.3f})", fontsize=10)
    return ax
