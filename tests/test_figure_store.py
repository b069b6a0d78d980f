"""FigureStore draws each figure once per encoding: its layout engine runs once, before savefig,
and savefig then draws the figure once (matplotlib's own savefig of a laid-out figure draws it
twice: a dry drawing to lay it out, then the real one). The vector PDF is byte for byte the one
matplotlib's plain savefig makes, also while FigureStore remembers each axis's ticks and each
text's extent for the length of one encoding (matplotlib's own methods are back afterwards, and
the cycle collector it pauses meanwhile runs again)."""
from __future__ import annotations

import gc
import io
import sys

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


def test_figures_encoded_by_two_threads_at_once_are_matplotlibs(cohort):
    """Threads encoding side by side take turns wrapping matplotlib's methods: each PDF is
    matplotlib's own, and the methods are matplotlib's again afterwards."""
    import threading

    from matplotlib.axis import Axis
    from matplotlib.text import Text

    from bagkit.plots.cohort import figure1, predicted_sd_figure
    from bagkit.report.figures import FigureStore

    # the quicker figure first: without turns, it would put matplotlib's methods back while the
    # other thread still wraps them, and that thread would then leave its wrappers in place
    blocks = [Figure(name="predicted_sd_bag", caption="", draw=lambda: predicted_sd_figure(cohort)),
              Figure(name="figure1", caption="", draw=lambda: figure1(cohort))]
    expected = [_plain_pdf(block.draw()) for block in blocks]
    methods = (Axis._update_ticks, Text._get_layout)
    store = FigureStore()
    for block in blocks:
        store.figure(block)
    made = {}
    threads = [threading.Thread(target=lambda b=block: made.update({b.name: store.pdf(b)})) for block in blocks]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the threads take turns often: both are inside savefig at once
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert [made[block.name] for block in blocks] == expected
    assert (Axis._update_ticks, Text._get_layout) == methods
