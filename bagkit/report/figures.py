"""Figures drawn once, saved once per encoding, shared by every renderer.

Each :class:`~bagkit.report.tables.Figure` block is drawn by matplotlib the first time a
renderer asks for it; its vector PDF (for report.pdf) and its PNG (figures/*.png, report.docx,
report.html) are each saved once from that drawing.

:meth:`FigureStore.pngs_in_background` uses a second core: a forked child draws the figures
again and writes their PNGs into a folder while this process draws the vector PDFs and lays out
report.pdf (on the example cohort: 1.6 s of PNG encoding beside 1.7 s of PDF work). Where fork
is unavailable, one core is all there is, ``BAGKIT_NO_FORK`` is set, or the child fails, the PNGs are made here as before;
the bytes are the same either way.
"""
from __future__ import annotations

import io
import os
import signal
import sys
from pathlib import Path

from bagkit.analyses.background import can_fork, fork

RASTERIZE_ABOVE = 2000  # points in one scatter; more go into the vector figure as a 300-dpi image
PNG_DPI = 150


class FigureStore:
    """Lazily draws and encodes figures, keyed by figure name."""

    def __init__(self):
        self._drawn: dict[str, object] = {}
        self._encoded: dict[tuple[str, str], bytes] = {}
        self._child: tuple[int, Path, list] | None = None

    def figure(self, block):
        if block.name not in self._drawn:
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
        if key not in self._encoded:
            buffer = io.BytesIO()
            metadata = {"CreationDate": None} if kind == "pdf" else {}
            figure = self.figure(block)
            figure.savefig(buffer, format=kind, dpi=300 if kind == "pdf" else PNG_DPI, metadata=metadata)
            # the layout is settled by the first drawing: later encodings reuse it instead of redoing it
            if figure.get_layout_engine() is not None:
                figure.set_layout_engine("none")
            self._encoded[key] = buffer.getvalue()
        return self._encoded[key]

    def png(self, block) -> bytes:
        self.join()
        return self.encoded(block, "png")

    def pdf(self, block) -> bytes:
        return self.encoded(block, "pdf")

    def pngs_in_background(self, blocks, folder) -> bool:
        """Start a forked child writing ``folder/<name>.png`` for each block; True if started.
        :meth:`png` (or :meth:`join`) waits for it and reads what it wrote."""
        blocks = [b for b in blocks if (b.name, "png") not in self._encoded]
        if self._child is not None or len(blocks) < 2 or not can_fork():
            return False
        folder = Path(folder)
        sys.stdout.flush(), sys.stderr.flush()
        pid = fork()
        if pid == 0:  # the child: PNGs only, then leave without running the parent's exit handlers (R's)
            status = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                for block in blocks:
                    part = folder / f".{block.name}.png.part"
                    part.write_bytes(self.encoded(block, "png"))
                    part.replace(folder / f"{block.name}.png")
                status = 0
            finally:
                os._exit(status)
        self._child = (pid, folder, blocks)
        return True

    def join(self) -> None:
        """Wait for the background PNGs; make here whatever the child did not."""
        if self._child is None:
            return
        pid, folder, blocks = self._child
        self._child = None
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) == 0:
            for block in blocks:
                self._encoded[(block.name, "png")] = (folder / f"{block.name}.png").read_bytes()
        for part in folder.glob(".*.png.part"):
            part.unlink()

    def close(self) -> None:
        """Stop a background child that is still running (an error or interrupt in the parent)."""
        if self._child is not None:
            pid = self._child[0]
            self._child = None
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
