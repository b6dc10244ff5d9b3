"""Figure rendering: valid SVG and PNG, byte-identical across renders and processes, no global
matplotlib state in or out, cached bytes, and drawing failures located at the figure."""
from __future__ import annotations

import multiprocessing
import xml.etree.ElementTree as ET

import matplotlib
import numpy as np
import pytest

from engine.registry import Param, experiment, figure
from kb.run.cache import Cache
from kb.run.executor import Executor
from kb.run.figures import FORMATS, FigureError, figure_bytes, figure_key, render_figure
from kb.model import Demonstration, DemoResult, FigureSpec, Location

ANSWER_FILE = "answers/test-figures.md"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG = "{http://www.w3.org/2000/svg}"

DRAWN: list[str] = []  # one entry per call of draw_walk: shows when the cache saved a render


@experiment("test_figures_walk", params={"n": Param(int, 30, 2, 500)},
            figures=("walk", "panels", "broken"))
def walk(rng, n):
    return {"t": np.arange(n), "position": rng.normal(size=n).cumsum(), "label": "random walk"}


@figure("test_figures_walk", "walk")
def draw_walk(result, fig):
    DRAWN.append("walk")
    ax = fig.subplots()
    ax.plot(result["t"], result["position"], label=result["label"])
    ax.set_xlabel("step")
    ax.set_ylabel("position")
    ax.legend()


@figure("test_figures_walk", "panels")
def draw_panels(result, fig):
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    left.plot(result["t"], result["position"])
    right.hist(result["position"])
    fig.legend(["a", "b"], loc="outside lower center", ncols=2)
    fig.set_size_inches(9, 4)


@figure("test_figures_walk", "broken")
def draw_broken(result, fig):
    fig.subplots().plot(result["velocity"])


WALK = FigureSpec("walk", "walk", "A random walk.", Location(ANSWER_FILE, 14))
BROKEN = FigureSpec("walk-broken", "broken", "Never drawn.", Location(ANSWER_FILE, 17))
DEMO = Demonstration("walker", "test_figures_walk", {"n": 30}, {}, 0, (WALK, BROKEN),
                     Location(ANSWER_FILE, 10))


@pytest.fixture
def cache(tmp_path):
    return Cache(tmp_path / "cache")


@pytest.fixture
def result(cache):
    return Executor(cache).run_demo(DEMO)


def png_chunks(data: bytes) -> list[tuple[str, bytes]]:
    assert data[:8] == PNG_SIGNATURE
    chunks, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        chunks.append((data[pos + 4:pos + 8].decode("ascii"), data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return chunks


def render_both(values) -> dict[str, bytes]:
    return {fmt: render_figure("test_figures_walk", WALK, values, fmt) for fmt in FORMATS}


def test_svg_is_valid_deterministic_and_undated(result):
    svg = render_figure("test_figures_walk", WALK, result.values, "svg")
    assert render_figure("test_figures_walk", WALK, result.values, "svg") == svg

    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("width") == "460.8pt"  # 6.4 in at 72 pt/in
    assert root.find(".//{http://purl.org/dc/elements/1.1/}date") is None
    assert root.findall(f".//{SVG}path")
    assert root.find(f".//{SVG}text") is None  # glyphs are paths: no font needed to view it


def test_each_rendering_has_its_size_and_the_phone_stacks_the_panels(result):
    panels = FigureSpec("panels", "panels", "Two panels.", Location(ANSWER_FILE, 20))

    def size(fmt: str) -> tuple[float, float]:
        root = ET.fromstring(render_figure("test_figures_walk", panels, result.values, fmt))
        return float(root.get("width").removesuffix("pt")), float(root.get("height")[:-2])

    assert size("svg") == (648.0, 288.0)  # the page's: the drawer's own 9 x 4 in
    width, height = size("phone.svg")  # 3.9 in wide whatever the drawer asks, panels stacked
    assert width == 280.8 and height > 1.5 * 0.8 * 3.2 * 72
    png = render_figure("test_figures_walk", panels, result.values, "png")
    header = png_chunks(png)[0][1]
    assert (int.from_bytes(header[:4], "big"), int.from_bytes(header[4:8], "big")) == (1200, 630)


def test_png_is_valid_deterministic_and_carries_no_stamp(result):
    png = render_figure("test_figures_walk", WALK, result.values, "png")
    assert render_figure("test_figures_walk", WALK, result.values, "png") == png

    chunks = png_chunks(png)
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == "IHDR" and kinds[-1] == "IEND" and "IDAT" in kinds
    assert not {"tIME", "tEXt", "zTXt", "iTXt"} & set(kinds)
    header = chunks[0][1]
    width, height = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:8], "big")
    assert (width, height) == (1200, 630)  # a link preview's size: 6.0 x 3.15 in at 200 dpi


def test_renders_are_byte_identical_in_a_fresh_process(result):
    # "spawn": a new interpreter, with its own hash seed, font cache state and ids.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        elsewhere = pool.apply(render_both, (dict(result.values),))
    assert elsewhere == render_both(result.values)


def test_the_figure_follows_the_data(cache):
    executor = Executor(cache)
    one, other = executor.run_demo(DEMO, seed=1), executor.run_demo(DEMO, seed=2)
    for fmt in ("svg", "png"):
        assert (render_figure("test_figures_walk", WALK, one.values, fmt)
                != render_figure("test_figures_walk", WALK, other.values, fmt))


def test_global_matplotlib_settings_neither_leak_in_nor_get_changed(result):
    plain = render_figure("test_figures_walk", WALK, result.values, "svg")
    with matplotlib.rc_context({"lines.linewidth": 7.0, "font.size": 30.0}):
        assert render_figure("test_figures_walk", WALK, result.values, "svg") == plain
        assert matplotlib.rcParams["lines.linewidth"] == 7.0
        assert matplotlib.rcParams["font.size"] == 30.0


def test_figure_bytes_are_cached_by_result_drawing_and_format(cache, result):
    DRAWN.clear()
    svg = figure_bytes(cache, DEMO, result, WALK, "svg")
    assert figure_bytes(cache, DEMO, result, WALK, "svg") == svg
    assert Executor(cache).run_demo(DEMO).cached
    assert figure_bytes(cache, DEMO, Executor(cache).run_demo(DEMO), WALK, "svg") == svg
    assert DRAWN == ["walk"]
    assert svg == render_figure("test_figures_walk", WALK, result.values, "svg")

    png = figure_bytes(cache, DEMO, result, WALK, "png")
    assert png.startswith(PNG_SIGNATURE) and len(DRAWN) == 3  # 2nd: the direct render above

    other = Executor(cache).run_demo(DEMO, seed=4)
    assert figure_bytes(cache, DEMO, other, WALK, "svg") != svg and len(DRAWN) == 4
    keys = {figure_key(result.key, "walk", "svg"), figure_key(result.key, "walk", "png"),
            figure_key(result.key, "broken", "svg"), figure_key(other.key, "walk", "svg")}
    assert len(keys) == 4


def test_without_a_cache_figures_are_rendered_each_time(result):
    DRAWN.clear()
    assert figure_bytes(None, DEMO, result, WALK, "svg") == figure_bytes(
        None, DEMO, result, WALK, "svg")
    assert DRAWN == ["walk", "walk"]


def test_a_drawing_failure_is_reported_at_the_figures_file_line(cache, result):
    with pytest.raises(FigureError) as caught:
        figure_bytes(cache, DEMO, result, BROKEN, "svg")
    assert str(caught.value) == (
        f"{ANSWER_FILE}:17: figure 'walk-broken' (test_figures_walk: broken) could not be drawn: "
        "KeyError: 'velocity'"
    )
    assert caught.value.location == BROKEN.location
    assert not list((cache.root / "figures").rglob("*.svg"))


def test_a_failed_demonstration_has_no_figure(cache):
    failed = DemoResult("walker", 0, {"n": 30}, None,
                        f"{ANSWER_FILE}:10: demonstration 'walker' timed out after 60 s", 0.0, False)
    with pytest.raises(FigureError, match=(
            f"^{ANSWER_FILE}:14: figure 'walk' cannot be drawn: "
            f"{ANSWER_FILE}:10: demonstration 'walker' timed out after 60 s$")):
        figure_bytes(cache, DEMO, failed, WALK, "png")


def test_an_unknown_format_is_refused(cache, result):
    with pytest.raises(ValueError,
                       match="figure format must be one of svg, phone.svg, png, got 'jpg'"):
        figure_bytes(cache, DEMO, result, WALK, "jpg")
