"""Figures drawn once, saved once per encoding, shared by every renderer.

Each :class:`~bagkit.report.tables.Figure` block is drawn by matplotlib the first time a
renderer asks for it; its vector PDF (for report.pdf) and its PNG (figures/*.png, report.docx,
report.html) are each saved once from that drawing.
"""
from __future__ import annotations

import io

RASTERIZE_ABOVE = 2000  # points in one scatter; more go into the vector figure as a 300-dpi image
PNG_DPI = 150


class FigureStore:
    """Lazily draws and encodes figures, keyed by figure name."""

    def __init__(self):
        self._drawn: dict[str, object] = {}
        self._encoded: dict[tuple[str, str], bytes] = {}

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
        return self.encoded(block, "png")

    def pdf(self, block) -> bytes:
        return self.encoded(block, "pdf")
