"""The preprocessing QC montage: the QC pictures preprocessing wrote (registered T1, brain mask,
template brain), two per row with their subject and verdict."""
from __future__ import annotations

from matplotlib.figure import Figure


def qc_montage(pictures) -> Figure:
    """``pictures``: (subject, label, path to the QC PNG) of every picture to show."""
    from matplotlib.image import imread

    rows = (len(pictures) + 1) // 2
    fig = Figure(figsize=(7.0, 2.4 * rows), layout="constrained")
    axes = fig.subplots(rows, 2, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (subject, label, path) in zip(axes.flat, pictures):
        ax.imshow(imread(str(path)))
        ax.set_title(f"{subject}: {label}", fontsize=7)
    return fig
