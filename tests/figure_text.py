"""The text of a rendered SVG figure, as the figure tests read it: matplotlib writes each text
(``svg.fonttype: path``) as a group holding the source string in a comment and its glyphs
scaled by the font size in points / 100."""
from __future__ import annotations

import html
import re

_TEXT = re.compile(r'<g id="text_\d+">\s*<!-- (?P<text>.*?) -->\s*'
                   r'<g transform="[^"]*?scale\((?P<scale>[\d.]+) -[\d.]+\)"', re.S)
_VIEWBOX = re.compile(r'viewBox="0 0 (?P<width>[\d.]+) (?P<height>[\d.]+)"')
_MATH = re.compile(r"(?<!\\)\$.*?(?<!\\)\$")
# Outside mathtext: Greek letters (by name or as characters) and an index written "_".
_NOT_MATHTEXT = re.compile(
    r"(?<![a-z])(?:alpha|beta|gamma|delta|epsilon|eps|eta|theta|lambda|mu|sigma|sqrt)(?![a-z])"
    r"|_|[α-ωΑ-Ω]",
    re.IGNORECASE)


def figure_texts(svg: bytes) -> list[tuple[str, float]]:
    """Every text of the figure with its font size in the SVG's units (points)."""
    source = svg.decode()
    return [(html.unescape(m["text"]), round(float(m["scale"]) * 100, 3))
            for m in _TEXT.finditer(source)]


def viewbox_width(svg: bytes) -> float:
    return float(_VIEWBOX.search(svg.decode())["width"])


def notation_problems(text: str) -> list[str]:
    """What in ``text`` is written outside mathtext that belongs inside (``sigma_B``,
    ``gamma=1``, ``σ_B``)."""
    return _NOT_MATHTEXT.findall(_MATH.sub("", text))
