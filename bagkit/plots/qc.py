"""The preprocessing QC montage: the QC pictures preprocessing wrote (registered T1, brain mask,
template brain), two per row with their subject and verdict. Drawn from the pixels the analysis
carries (read once when the cohort was built); nothing here opens a file."""
from __future__ import annotations

from matplotlib.figure import Figure


def qc_montage(pictures) -> Figure:
    """``pictures``: (subject, label, RGB pixels as an array) of every picture to show."""
    rows = (len(pictures) + 1) // 2
    fig = Figure(figsize=(7.0, 2.4 * rows), layout="constrained")
    axes = fig.subplots(rows, 2, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (subject, label, pixels) in zip(axes.flat, pictures):
        ax.imshow(pixels, interpolation="antialiased")
        ax.set_title(f"{subject}: {label}", fontsize=7)
    return fig
