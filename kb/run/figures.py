"""Renders a demonstration's declared figures, SVG for pages and PNG for sharing, reproducibly.

The same values give byte-identical files: every render starts from matplotlib's defaults plus
one fixed style (size, dpi, a font shipped with matplotlib, a fixed SVG hash salt), draws on a
fresh ``Figure`` with the Agg canvas (never pyplot's global figures), and writes no date or
software stamp. Rendered bytes are cached by the result's key, the drawing, the format and a
hash of the drawing code.
"""
from __future__ import annotations

import contextlib
import functools
import io
import re
import textwrap
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import ScaledTranslation

from engine.catalog import drawer
from kb.run.cache import ENGINE_DIR, Cache, digest, source_hash
from kb.model import AnswerError, Demonstration, DemoResult, FigureSpec

STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.constrained_layout.use": True,
    "font.family": "DejaVu Sans",  # ships with matplotlib: no system font can change the output
    "font.size": 10.0,
    "legend.fontsize": 9.0,  # the smallest text: drawers set no font sizes of their own
    "xtick.labelsize": 9.0,
    "ytick.labelsize": 9.0,
    "axes.titlesize": 10.0,
    "figure.titlesize": 10.5,
    "mathtext.fontset": "dejavusans",  # math in the text's own font
    "svg.fonttype": "path",  # glyphs as paths: the SVG looks the same without any font installed
    "svg.hashsalt": "bn-kb",  # fixed ids instead of random ones
}


@dataclass(frozen=True)
class Rendering:
    """One way a figure is rendered: its file format, size and layout."""

    fmt: str  # "svg" or "png"
    size: tuple[float, float] | None = None  # inches, fixed; None: the style's, or the drawer's
    dpi: float = 100
    stacked: bool = False  # panels side by side go one below the other (the height grows)


# Why three renderings: a figure laid out for a 46rem column, shrunk to a phone's 358 CSS px,
# has 4-5 px text. The page serves the phone its own rendering through <picture>: 3.9 in wide
# (374 CSS px, shown at about 0.95 of that), panels stacked, so the 9 pt text is 11 CSS px or
# more. Link previews want a large PNG of 1200x630.
RENDERINGS = {
    "svg": Rendering("svg"),  # the page, wide screens
    "phone.svg": Rendering("svg", size=(3.9, 3.2), stacked=True),  # the page, narrow screens
    "png": Rendering("png", size=(6.0, 3.15), dpi=200),  # sharing and link previews: 1200x630
}
FORMATS = tuple(RENDERINGS)
# Pixels of the "png" rendering, for og:image:width/height: (1200, 630).
CARD_SIZE = tuple(round(inches * RENDERINGS["png"].dpi) for inches in RENDERINGS["png"].size)


def _wrap(text, renderer, length: float) -> None:
    """Breaks ``text`` into lines no longer than ``length`` pixels along its direction (its
    width, or its height when turned upright), line by line. Hand-written: matplotlib wraps
    text only at the figure's edge, which a legend's entries or a y label beside a stacked
    panel never reach. Spaces inside mathtext are kept, so a formula is never cut."""
    extent = text.get_window_extent(renderer)
    longest = extent.height if text.get_rotation() % 180 == 90 else extent.width
    if longest <= length:
        return
    lines = text.get_text().split("\n")
    chars = max(10, int(max(map(len, lines)) * length / longest))
    text.set_text("\n".join(
        textwrap.fill(re.sub(r"\$[^$]*\$", lambda m: m.group().replace(" ", "\0"), line),
                      chars, break_long_words=False).replace("\0", " ")
        for line in lines))


class _Figure(Figure):
    """The figure a drawer draws on. A rendering of fixed size ignores the drawer's own
    ``set_size_inches``; a stacked one turns a row of panels into a column (every legend
    below its panel or below the panels, in one column, and long text wraps), growing the
    figure to fit them."""

    def __init__(self, rendering: Rendering):
        super().__init__(figsize=rendering.size)
        self._rendering = rendering

    def set_size_inches(self, w, h=None, forward=True):
        if self._rendering.size is None:
            super().set_size_inches(w, h, forward)

    def subplots(self, nrows=1, ncols=1, *, squeeze=True, gridspec_kw=None, **kwargs):
        rendering = self._rendering
        if not (rendering.stacked and nrows == 1 and ncols > 1):
            return super().subplots(nrows, ncols, squeeze=squeeze, gridspec_kw=gridspec_kw,
                                    **kwargs)
        width, height = rendering.size
        Figure.set_size_inches(self, width, height * (0.2 + 0.8 * ncols))
        gridspec_kw = {k: v for k, v in (gridspec_kw or {}).items() if k != "width_ratios"}
        axes = super().subplots(ncols, 1, squeeze=squeeze, gridspec_kw=gridspec_kw, **kwargs)
        return axes if squeeze else axes.reshape(1, ncols)

    def wrap_titles(self) -> None:
        """Titles and axis labels wrap at the figure's edge instead of running off it."""
        texts = [self._suptitle] + [
            text for ax in self.axes for text in (ax.title, ax._left_title, ax._right_title,
                                                  ax.xaxis.label, ax.yaxis.label)]
        for text in texts:
            if text is not None:
                text.set_wrap(True)

    def wrap_y_labels(self) -> None:
        """A y label longer than its panel is high wraps to the panel's height, instead of
        running into the title or the panel above."""
        self.draw_without_rendering()
        renderer = self.canvas.get_renderer()
        for ax in self.axes:
            _wrap(ax.yaxis.label, renderer, ax.get_window_extent(renderer).height)

    def legends_below_axes(self) -> None:
        """Each axes' legend moves under its axes' x label, in one column, and the figure
        grows by the legends' height. On a phone the axes are too small for a legend inside
        them: wherever it goes it covers curves or labels."""
        legends = [ax.get_legend() for ax in self.axes if ax.get_legend() is not None]
        for legend in legends:  # laid out as if they were not there, to find the x labels
            legend.set_in_layout(False)
        self.draw_without_rendering()
        renderer = self.canvas.get_renderer()
        inches = 1 / self.dpi
        grown = 0.0
        for ax in self.axes:
            legend = ax.get_legend()
            if legend is None:
                continue
            # The x label's distance below the spine is set in points, not by the axes'
            # size, so an anchor that far below the spine stays clear of it after re-layout.
            below = (ax.get_window_extent(renderer).y0
                     - ax.xaxis.get_tightbbox(renderer).y0) * inches + 0.05
            legend.set_loc("upper center")
            legend.set_bbox_to_anchor(
                (0.5, 0), ax.transAxes + ScaledTranslation(0, -below, self.dpi_scale_trans))
            legend.set_ncols(1)
            legend.set_in_layout(True)
            # About as wide as the axes at most: a legend overhanging them would make the
            # layout narrow the axes to keep it inside the figure.
            for text in legend.get_texts():
                _wrap(text, renderer, 0.65 * self.get_size_inches()[0] * self.dpi)
            grown += legend.get_window_extent(renderer).height * inches + 0.1
        if grown:
            width, height = self.get_size_inches()
            Figure.set_size_inches(self, width, height + grown)

    def legend(self, *args, **kwargs):
        if self._rendering.stacked:
            kwargs.pop("ncol", None)
            kwargs["ncols"] = 1
        return super().legend(*args, **kwargs)


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
    if fmt not in RENDERINGS:
        raise ValueError(f"figure format must be one of {', '.join(FORMATS)}, got {fmt!r}")


@contextlib.contextmanager
def drawn_figure(experiment: str, spec: FigureSpec, values: dict[str, Any],
                 fmt: str) -> Iterator[Figure]:
    """``spec`` drawn from ``values`` in rendering ``fmt`` and laid out, within the style;
    FigureError if drawing fails."""
    _check_format(fmt)
    rendering = RENDERINGS[fmt]
    try:
        draw = drawer(experiment, spec.drawing)
        with _RENDER_LOCK, matplotlib.style.context(STYLE, after_reset=True):
            fig = _Figure(rendering)
            FigureCanvasAgg(fig)
            draw(values, fig)
            if rendering.stacked:
                fig.wrap_titles()
                fig.wrap_y_labels()
                fig.legends_below_axes()
            yield fig
    except Exception as exc:  # drawing code of any kind: report it, located, to the caller
        raise FigureError(
            spec.location,
            f"figure '{spec.name}' ({experiment}: {spec.drawing}) could not be drawn: "
            f"{type(exc).__name__}: {exc}",
        ) from exc


def render_figure(experiment: str, spec: FigureSpec, values: dict[str, Any], fmt: str) -> bytes:
    """Draw ``spec`` from ``values`` and return the file's bytes; FigureError if drawing fails."""
    buffer = io.BytesIO()
    with drawn_figure(experiment, spec, values, fmt) as fig:
        rendering = RENDERINGS[fmt]
        fig.savefig(buffer, format=rendering.fmt, dpi=rendering.dpi,
                    **_SAVE_OPTIONS[rendering.fmt])
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
    file_format = RENDERINGS[fmt].fmt
    return cache.get_or_render(figure_key(result.key, spec.drawing, fmt), file_format, render,
                               valid=lambda data: looks_whole(file_format, data))
