"""Renders a demonstration's declared figures, SVG for pages and PNG for sharing, reproducibly.

The same values give byte-identical files: every render starts from matplotlib's defaults plus
one fixed style (size, dpi, a font shipped with matplotlib, a fixed SVG hash salt), draws on a
fresh ``Figure`` with the Agg canvas (never pyplot's global figures), and writes no date or
software stamp. Rendered bytes are cached by the result's key, the drawing, the format and a
hash of the drawing code.
"""
from __future__ import annotations

import functools
import io
import threading
from pathlib import Path
from typing import Any

import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from engine.catalog import drawer
from kb.run.cache import ENGINE_DIR, Cache, digest, source_hash
from kb.model import AnswerError, Demonstration, DemoResult, FigureSpec

FORMATS = ("svg", "png")

STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.constrained_layout.use": True,
    "font.family": "DejaVu Sans",  # ships with matplotlib: no system font can change the output
    "font.size": 10.0,
    "svg.fonttype": "path",  # glyphs as paths: the SVG looks the same without any font installed
    "svg.hashsalt": "bn-kb",  # fixed ids instead of random ones
}

# A date or version stamp would make identical figures differ in bytes.
_SAVE_OPTIONS = {
    "svg": {"metadata": {"Date": None}},
    "png": {"metadata": {"Software": None}},
}

# rcParams are process-wide, so renders in concurrent threads would see each other's style.
_RENDER_LOCK = threading.Lock()


class FigureError(AnswerError):
    """A declared figure that could not be drawn; located at its declaration."""


@functools.cache
def drawing_source_hash() -> str:
    """Hash of the drawing code: ``engine/figures/`` and this renderer."""
    figures_dir = ENGINE_DIR / "figures"
    this_file = Path(__file__).resolve()
    return digest([
        source_hash(figures_dir, figures_dir.rglob("*.py")),
        source_hash(this_file.parent, [this_file]),
    ])


def looks_whole(fmt: str, data: bytes) -> bool:
    """Whether ``data`` is a whole file of its format, from its first and last bytes (a file
    cut short, e.g. by a full disk, is not)."""
    if fmt == "png":
        return data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")
    head, tail = data[:100].lstrip(), data[-100:].rstrip()
    return head.startswith((b"<?xml", b"<svg")) and tail.endswith(b"</svg>")


def figure_key(result_key: str, drawing: str, fmt: str) -> str:
    return digest(
        {"result": result_key, "drawing": drawing, "format": fmt, "code": drawing_source_hash()}
    )


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"figure format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def render_figure(experiment: str, spec: FigureSpec, values: dict[str, Any], fmt: str) -> bytes:
    """Draw ``spec`` from ``values`` and return the file's bytes; FigureError if drawing fails."""
    _check_format(fmt)
    buffer = io.BytesIO()
    try:
        draw = drawer(experiment, spec.drawing)
        with _RENDER_LOCK, matplotlib.style.context(STYLE, after_reset=True):
            fig = Figure()
            FigureCanvasAgg(fig)
            draw(values, fig)
            fig.savefig(buffer, format=fmt, **_SAVE_OPTIONS[fmt])
    except Exception as exc:  # drawing code of any kind: report it, located, to the caller
        raise FigureError(
            spec.location,
            f"figure '{spec.name}' ({experiment}: {spec.drawing}) could not be drawn: "
            f"{type(exc).__name__}: {exc}",
        ) from exc
    return buffer.getvalue()


def figure_bytes(
    cache: Cache | None, demo: Demonstration, result: DemoResult, spec: FigureSpec, fmt: str
) -> bytes:
    """The figure ``spec`` of ``demo`` drawn from ``result``, as SVG or PNG bytes (cached).

    Raises FigureError (with the figure's file:line) when the demonstration failed or the
    drawing fails; ValueError for an unknown format.
    """
    _check_format(fmt)
    if result.values is None:
        raise FigureError(
            spec.location, f"figure '{spec.name}' cannot be drawn: {result.error}"
        )

    def render() -> bytes:
        return render_figure(demo.experiment, spec, result.values, fmt)

    if cache is None or result.key is None:
        return render()
    return cache.get_or_render(figure_key(result.key, spec.drawing, fmt), fmt, render,
                               valid=lambda data: looks_whole(fmt, data))
