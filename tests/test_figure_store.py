"""FigureStore draws each figure once per encoding: its layout engine runs once, before savefig,
and savefig then draws the figure once (matplotlib's own savefig of a laid-out figure draws it
twice: a dry drawing to lay it out, then the real one). The vector PDF is byte for byte the one
matplotlib's plain savefig makes, also while FigureStore remembers each axis's ticks and each
text's extent for the length of one encoding (matplotlib's own methods are back afterwards, and
the cycle collector it pauses meanwhile runs again)."""
from __future__ import annotations

import gc
import io

import pytest

import bagkit
from bagkit.report.tables import Figure


@pytest.fixture
def cohort(small_cohort_csv):
    return bagkit.read_cohort(small_cohort_csv)


def _plain_pdf(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="pdf", dpi=300, metadata={"CreationDate": None})
    return buffer.getvalue()


def test_a_figure_is_drawn_once_per_encoding_and_the_pdf_is_matplotlibs(cohort, monkeypatch):
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure as MplFigure
    from matplotlib.layout_engine import ConstrainedLayoutEngine
    from matplotlib.text import Text

    from bagkit.plots.cohort import figure1
    from bagkit.report.figures import FigureStore

    block = Figure(name="figure1", caption="", draw=lambda: figure1(cohort))
    expected = _plain_pdf(figure1(cohort))  # matplotlib's savefig: layout in a dry drawing, then the drawing

    draws, layouts = [], []
    real_draw, real_execute = MplFigure.draw, ConstrainedLayoutEngine.execute
    monkeypatch.setattr(MplFigure, "draw", lambda self, renderer: draws.append(1) or real_draw(self, renderer))
    monkeypatch.setattr(ConstrainedLayoutEngine, "execute",
                        lambda self, fig: layouts.append(1) or real_execute(self, fig))
    methods = (Axis._update_ticks, Text._get_layout)
    store = FigureStore()
    assert store.pdf(block) == expected
    assert (Axis._update_ticks, Text._get_layout) == methods
    assert gc.isenabled(), "the cycle collector, paused while the figure was encoded, runs again"
    figure = store.figure(block)
    assert not [a for a in figure.findobj() if "_bagkit_ticks" in vars(a)]
    assert (len(draws), len(layouts)) == (1, 1)
    assert store.figure(block).get_layout_engine() is None, "laid out: later encodings keep the layout"
    monkeypatch.setattr("bagkit.report.figures._pdfium", lambda: None)  # matplotlib's Agg draws the PNG
    store.png(block)
    assert (len(draws), len(layouts)) == (2, 1)
