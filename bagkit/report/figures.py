"""Figures drawn once, saved once per encoding, shared by every renderer.

Each :class:`~bagkit.report.tables.Figure` block is drawn by matplotlib once, as a vector PDF
(for report.pdf); its PNG (figures/*.png, report.docx, report.html) is that PDF rendered at
150 dpi by PDFium (pypdfium2, ~35 ms a figure) instead of matplotlib drawing the figure a second
time (~140 ms): the PNG is the PDF's picture, pixel for pixel the same layout. Without pypdfium2
matplotlib's Agg draws the PNG.

Encoding a figure costs one drawing: its constrained layout runs once, measuring text as the PDF
does, and savefig then draws it once (savefig alone lays a laid-out figure out in a dry drawing
first). While a figure is laid out and saved, each axis's ticks and each text's extent are
computed once per state instead of ~17 times per axis, and Python's cycle collector waits. The
vector PDF is byte for byte matplotlib's own savefig's (``tests/test_figure_store.py``).

:meth:`FigureStore.encode_in_background` uses a second core: a forked child and this process take
the figures one at a time, whoever is free first (:class:`bagkit.analyses.background.Tokens`),
so this process can lay out report.pdf between figures. Where fork is unavailable, one core is
all there is, ``BAGKIT_NO_FORK`` is set, or the child fails, everything is encoded here; the
bytes are the same either way.
"""
from __future__ import annotations

import contextlib
import gc
import io
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from bagkit.analyses.background import Tokens, can_fork, fork

RASTERIZE_ABOVE = 2000  # points in one scatter; more go into the vector figure as a 300-dpi image
PNG_DPI = 150
_WRAPPING = threading.RLock()  # one thread at a time wraps matplotlib's methods (and puts them back)


def _unlocked_in_child() -> None:
    """A forked child starts with the lock free, whichever thread held it at the fork."""
    global _WRAPPING
    _WRAPPING = threading.RLock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_unlocked_in_child)


class FigureStore:
    """Lazily draws and encodes figures, keyed by figure name."""

    def __init__(self):
        self._drawn: dict[str, object] = {}
        self._encoded: dict[tuple[str, str], bytes] = {}
        self._child: tuple | None = None  # pid, scratch folder, tokens, names of the blocks shared out
        self._mine: set[str] = set()  # the blocks this process took from the tokens

    def figure(self, block):
        if block.name not in self._drawn:
            with _no_cycle_collection():
                fig = block.draw()
            for ax in fig.axes:  # a big point cloud goes in as an image: vector PDFs stay light
                for collection in ax.collections:
                    if len(getattr(collection, "get_offsets", lambda: ())()) > RASTERIZE_ABOVE:
                        collection.set_rasterized(True)
            self._drawn[block.name] = fig
        return self._drawn[block.name]

    def size_inches(self, block) -> tuple[float, float]:
        width, height = self.figure(block).get_size_inches()
        return float(width), float(height)

    def encoded(self, block, kind: str) -> bytes:
        """``kind``: "pdf" (vector) or "png"."""
        key = (block.name, kind)
        if key not in self._encoded and self._child is not None and block.name not in self._mine:
            self.join()  # the child encodes this one, or encodes it if nobody has taken it yet
        if key not in self._encoded:
            if kind == "png" and _pdfium() is not None:
                pdf = self.encoded(block, "pdf")
                with _no_cycle_collection():
                    self._encoded[key] = _render_png(pdf)
            else:
                buffer = io.BytesIO()
                metadata = {"CreationDate": None} if kind == "pdf" else {}
                figure = self.figure(block)
                with _no_cycle_collection(), _remembered_ticks_and_text():
                    _lay_out_once(figure)
                    figure.savefig(buffer, format=kind, dpi=300 if kind == "pdf" else PNG_DPI, metadata=metadata)
                self._encoded[key] = buffer.getvalue()
        return self._encoded[key]

    def png(self, block) -> bytes:
        return self.encoded(block, "png")

    def pdf(self, block) -> bytes:
        return self.encoded(block, "pdf")

    def encode_in_background(self, blocks):
        """Start a forked child encoding blocks (vector PDF and PNG); returns an iterator of the
        blocks this process is to encode (all of them when nothing was forked).

        The two processes take the blocks one at a time, whoever is free first (a figure may take
        ten times another's time), so this process can do other work between taking blocks: the
        child takes more meanwhile. :meth:`pdf` and :meth:`png` of a block this process did not
        take (and :meth:`join`) wait for the child, which then encodes whatever is left."""
        blocks = [b for b in blocks if (b.name, "pdf") not in self._encoded or (b.name, "png") not in self._encoded]
        if self._child is not None or len(blocks) < 2 or len(blocks) > Tokens.LIMIT or not can_fork():
            return iter(blocks)
        # both processes encode vector PDFs: matplotlib's PDF backend (and fontTools, ~0.13 s) is
        # imported once, here, instead of in each
        from matplotlib.backends import backend_pdf  # noqa: F401

        tokens = Tokens(len(blocks))
        scratch = Path(tempfile.mkdtemp(prefix="bagkit-figures-"))
        sys.stdout.flush(), sys.stderr.flush()
        pid = fork()
        if pid == 0:  # the child: then leave without running the parent's exit handlers (R's)
            status = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                while (index := tokens.take()) is not None:
                    block = blocks[index]
                    for kind in ("pdf", "png"):  # whole files only: a child killed midway leaves none
                        part = scratch / f"{block.name}.{kind}.part"
                        part.write_bytes(self.encoded(block, kind))
                        os.replace(part, scratch / f"{block.name}.{kind}")
                status = 0
            finally:
                os._exit(status)
        self._child = (pid, scratch, tokens, [b.name for b in blocks])
        return self._taken_here(tokens, blocks)

    def _taken_here(self, tokens, blocks):
        while self._child is not None and self._child[2] is tokens and (index := tokens.take()) is not None:
            self._mine.add(blocks[index].name)
            yield blocks[index]

    def join(self) -> None:
        """Wait for the background child (which first encodes every block nobody took); what it
        did not make is made here when asked for."""
        if self._child is None:
            return
        pid, scratch, tokens, names = self._child
        self._child = None
        try:
            os.waitpid(pid, 0)
            for name in names:  # whatever the child finished, even if it failed later
                for kind in ("pdf", "png"):
                    path = scratch / f"{name}.{kind}"
                    if (name, kind) not in self._encoded and path.exists():
                        self._encoded[(name, kind)] = path.read_bytes()
        finally:
            tokens.close()
            shutil.rmtree(scratch, ignore_errors=True)

    def close(self) -> None:
        """Stop a background child that is still running (an error or interrupt in the parent)."""
        if self._child is not None:
            pid, scratch, tokens, _ = self._child
            self._child = None
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            tokens.close()
            shutil.rmtree(scratch, ignore_errors=True)


def _lay_out_once(figure) -> None:
    """Run the figure's layout engine once, as savefig to a vector PDF would (PDF text metrics), and
    switch it off: savefig then draws the figure once instead of twice (a dry drawing to lay it out,
    then the real one), and every later encoding keeps this layout."""
    engine = figure.get_layout_engine()
    if engine is None:
        return
    if figure.axes:
        from matplotlib.backends.backend_pdf import FigureCanvasPdf

        canvas, dpi = figure.canvas, figure.dpi
        FigureCanvasPdf(figure)  # the renderer the layout measures text with is the PDF's (72 dpi)
        try:
            engine.execute(figure)
        finally:
            figure.dpi = dpi
            figure.set_canvas(canvas)
    # set_layout_engine("none") leaves a placeholder engine, and savefig draws any figure with an
    # engine twice: no engine at all (matplotlib has no public way to say so)
    figure._layout_engine = None


@contextlib.contextmanager
def _no_cycle_collection():
    """Python's cycle collector paused while one figure is drawn or encoded: matplotlib makes tens
    of thousands of objects, and each time the collector ran it walked every object the analysis
    left behind as well (~0.2 s of the 8 report figures). What became garbage meanwhile is
    collected when the collector next runs."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


@contextlib.contextmanager
def _remembered_ticks_and_text():
    """While laying out and drawing, matplotlib asks an axis for its ticks (locator, formatter, a
    Tick per location) and a text for its extent many times over (~17 times per axis in one
    layout: for the axis, its label, its spines, the title, shared axes); the answers change only
    when what they are computed from changes. Here each is computed once per state and remembered
    for the duration of the block: the same ticks, extents and bytes, less CPU."""
    with _WRAPPING:  # another thread encoding meanwhile waits (it would only share the GIL)
        yield from _remembering()


def _remembering():
    from matplotlib.axis import Axis
    from matplotlib.text import Text

    update_ticks, get_layout = getattr(Axis, "_update_ticks", None), getattr(Text, "_get_layout", None)
    if update_ticks is None or get_layout is None:  # another matplotlib's insides: nothing remembered
        yield
        return
    remembered = []  # axes carrying remembered ticks, cleared on the way out

    def ticks(axis):
        try:
            major, minor = axis.major, axis.minor
            state = (tuple(axis.get_view_interval()), axis.axes.bbox.bounds, axis.figure.dpi,
                     id(major.locator), id(major.formatter), id(minor.locator), id(minor.formatter),
                     axis._tick_group_visible(axis._major_tick_kw), axis._tick_group_visible(axis._minor_tick_kw))
        except (AttributeError, TypeError):
            return update_ticks(axis)
        memo = axis.__dict__.get("_bagkit_ticks")
        if memo is None or memo[0] != state:
            if memo is None:
                remembered.append(axis)
            memo = axis._bagkit_ticks = (state, update_ticks(axis))
        return list(memo[1])

    extents = {}  # texts alike in everything the extent depends on share it (tick labels of many axes)

    def layout(text, renderer):
        try:
            if text.get_wrap():  # wrapped lines depend on where the text is
                return get_layout(text, renderer)
            # renderers of one kind measure text alike (the layout's PDF renderer and savefig's)
            state = (type(renderer), type(getattr(renderer, "_renderer", None)), text.get_text(),
                     hash(text._fontproperties), text.get_usetex(), text._parse_math, text.figure.dpi,
                     text._linespacing, text._get_multialignment(), text._horizontalalignment,
                     text._verticalalignment, text.get_rotation(), text.get_rotation_mode())
        except (AttributeError, TypeError):
            return get_layout(text, renderer)
        if state not in extents:
            extents[state] = get_layout(text, renderer)
        bbox, lines, rest = extents[state]
        return bbox.frozen(), list(lines), rest

    Axis._update_ticks, Text._get_layout = ticks, layout
    try:
        yield
    finally:
        Axis._update_ticks, Text._get_layout = update_ticks, get_layout
        for axis in remembered:
            axis.__dict__.pop("_bagkit_ticks", None)


def _pdfium():
    try:
        import pypdfium2
    except ImportError:
        return None
    return pypdfium2


def _render_png(pdf: bytes) -> bytes:
    """The one-page vector PDF as a PNG at PNG_DPI (PDFium, white background)."""
    document = _pdfium().PdfDocument(pdf)
    try:
        image = document[0].render(scale=PNG_DPI / 72).to_pil()
    finally:
        document.close()
    buffer = io.BytesIO()
    # zlib level 3: the size of level 6 (the default) to 0.1 %, in 2/3 of the time
    image.save(buffer, format="png", dpi=(PNG_DPI, PNG_DPI), compress_level=3)
    return buffer.getvalue()
