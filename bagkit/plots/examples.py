"""Figure 1 D–G of the paper: example inputs beside their predicted age distributions.

Draws the ``example_subjects`` result (:class:`bagkit.analyses.examples.ExampleSubjects`) and
nothing else: the slices, the probabilities, the brain ages, SDs and the age range shown all come
from it. Each example is a cell of two axes: the mid sagittal, coronal and axial slices side by
side, and the distribution — bars per age bin (SFCN), or for a predictor without bins the Gaussian
of its predictive SD, outlined and labelled so; solid line: brain age; dashed lines: ± SD; dotted
line: chronological age (line styles, not only colours, so the figure reads in grey).
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bagkit.cohort.examples import PLANES

__all__ = ["example_subjects_figure", "panel_letters"]

FIRST_LETTER = "D"  # the paper's Figure 1 has A–C before these
HATCHES = ("", "///", "...", "xx", "\\\\", "++")


def panel_letters(n: int) -> list[str]:
    """D, E, F, … for ``n`` panels (after Z: D2, E2, …)."""
    start = ord(FIRST_LETTER) - ord("A")
    return [chr(ord("A") + (start + i) % 26) + ("" if start + i < 26 else str((start + i) // 26 + 1))
            for i in range(n)]


def _cropped(image: np.ndarray, margin: int = 2) -> np.ndarray:
    """The image cut to its non-zero part (the brain) and ``margin`` pixels around it (display only)."""
    rows, columns = np.nonzero(image)
    if len(rows) == 0:
        return image
    return image[max(rows.min() - margin, 0):rows.max() + margin + 1,
                 max(columns.min() - margin, 0):columns.max() + margin + 1]


def _tile(planes) -> np.ndarray:
    """The planes side by side (background cropped), each centred vertically on a common height, 4 blank
    columns apart."""
    images = [_cropped(np.asarray(planes[name], dtype=float)) for name in PLANES if name in planes]
    height = max(image.shape[0] for image in images)
    columns = []
    for i, image in enumerate(images):
        top = (height - image.shape[0]) // 2
        padded = np.zeros((height, image.shape[1]))
        padded[top:top + image.shape[0]] = image
        columns.append(padded)
        if i < len(images) - 1:
            columns.append(np.zeros((height, 4)))
    return np.concatenate(columns, axis=1)


def _plain(text: str) -> str:
    """A user's label as literal text (a "$" would start matplotlib's mathtext)."""
    return text.replace("$", r"\$")


def _signed(value: float) -> str:
    return f"{value:+.1f}".replace("-", "\u2212")


def example_subjects_figure(result, colors: dict | None = None) -> Figure:
    """One cell per example subject, two cells a row, in the order of ``result.subjects``."""
    subjects = result.subjects
    n = len(subjects)
    per_row = 1 if n == 1 else 2
    rows = int(np.ceil(n / per_row))
    fig = Figure(figsize=(3.7 * per_row, 0.4 + 1.3 * rows), layout="constrained")
    grid = fig.add_gridspec(rows, 2 * per_row, width_ratios=[1.45, 1.0] * per_row)
    colors = colors or {}
    groups = list(dict.fromkeys(s.group for s in subjects))
    letters = panel_letters(n)
    top = max((float(np.max(s.probabilities)) for s in subjects if s.has_distribution), default=None)
    for i, s in enumerate(subjects):
        row, column = divmod(i, per_row)
        color = colors.get(s.group, "#444444")
        ax = fig.add_subplot(grid[row, 2 * column])
        tile = _tile(s.planes)
        inside = tile[tile > 0]
        ax.imshow(tile, cmap="gray", vmin=0, vmax=float(np.percentile(inside, 99.5)) if inside.size else 1.0,
                  interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(f"{letters[i]}", loc="left", fontweight="bold", fontsize=9)
        ax.set_title(_plain(f"{s.group} · {s.subject_id} · {s.chosen_as}"), loc="right", fontsize=6.5)

        ax = fig.add_subplot(grid[row, 2 * column + 1])
        hatch = HATCHES[groups.index(s.group) % len(HATCHES)]
        if s.has_distribution:
            ax.bar(s.bin_centers, s.probabilities, width=s.bin_width or 1.0, color=color, alpha=0.45,
                   edgecolor="black", linewidth=0.3, hatch=hatch)
            ax.set_ylim(0, 1.12 * top)
            ax.set_ylabel("Probability", fontsize=6.5, labelpad=1)
        else:
            x = np.linspace(result.shown_from, result.shown_to, 400)
            density = np.exp(-0.5 * ((x - s.brain_age) / s.brain_age_sd) ** 2) / (s.brain_age_sd * np.sqrt(2 * np.pi))
            ax.fill_between(x, density, color=color, alpha=0.3, hatch=hatch, edgecolor="black", linewidth=0.0)
            ax.plot(x, density, color="black", lw=0.7)
            ax.set_ylim(0, 1.12 * float(density.max()))
            ax.set_ylabel("Density (Gaussian)", fontsize=6.5, labelpad=1)
        ax.axvline(s.brain_age, color="black", lw=1.2, ls="-")
        for side in (-1, 1):
            ax.axvline(s.brain_age + side * s.brain_age_sd, color="black", lw=0.9, ls="--")
        ax.axvline(s.age, color="0.35", lw=1.0, ls=":")
        ax.set_xlim(result.shown_from, result.shown_to)
        ax.set_xlabel("Age (years)", fontsize=6.5, labelpad=1)
        ax.tick_params(labelsize=5.5, length=2, pad=1)
        left = s.brain_age > (result.shown_from + result.shown_to) / 2  # the numbers where the bars are not
        ax.text(0.02 if left else 0.98, 0.97, f"{s.brain_age:.1f} ± {s.brain_age_sd:.1f} y\nage {s.age:.1f} y\nBAG {_signed(s.bag)} y",
                transform=ax.transAxes, va="top", ha="left" if left else "right", fontsize=5.5,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
    handles = [Line2D([], [], color="black", lw=1.2, ls="-", label="brain age (mean of the distribution)"),
               Line2D([], [], color="black", lw=0.9, ls="--", label="± SD"),
               Line2D([], [], color="0.35", lw=1.0, ls=":", label="chronological age")]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False, fontsize=6.5)
    return fig
