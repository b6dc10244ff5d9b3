"""The real answers' figures speak the prose's notation: symbols in mathtext (``$\\sigma_B$``,
never "sigma_B", "gamma=1" or a bare "σ"), and no text smaller than the renderer's smallest
size (drawers set no font sizes of their own). How large that text is on a phone's screen is
measured in a real browser (tests/web/test_figure_legibility.py).

The figures are drawn from the answers' own results in the project's cache, as the pytest
plugin computes them; rendered figures are cached by the drawing code's hash."""
from __future__ import annotations

import pytest

from kb.answers.parse import load_answers
from kb.config import PROJECT_ROOT, Settings
from kb.run.cache import Cache
from kb.run.executor import Executor
from kb.run.figures import STYLE, drawn_figure, figure_bytes
from tests.figure_text import figure_texts, notation_problems

FIGURES = [(answer.slug, demo, spec) for answer in load_answers(PROJECT_ROOT / "answers")
           for demo in answer.demonstrations for spec in demo.figures]
SMALLEST = min(STYLE["legend.fontsize"], STYLE["xtick.labelsize"], STYLE["ytick.labelsize"])


@pytest.fixture(scope="module")
def cache():
    return Cache(Settings.from_env().cache_dir)


def test_notation_problems_are_found_outside_mathtext_only():
    assert notation_problems("sigma_B (batch std)") == ["sigma", "_"]
    assert notation_problems("started at gamma=1, beta=0") == ["gamma", "beta"]
    assert notation_problems("σ_B") == ["σ", "_"]
    assert notation_problems(r"$\sigma_B$ (batch std of $z$), started at $\gamma = 1$") == []
    assert notation_problems("the betas of a network") == []  # a word, not a symbol


@pytest.mark.parametrize("slug, demo, spec", FIGURES,
                         ids=[f"{slug}:{spec.name}" for slug, _, spec in FIGURES])
def test_figure_text_is_mathtext_and_no_smaller_than_the_style(cache, slug, demo, spec):
    result = Executor(cache).run_demo(demo)
    assert result.error is None, result.error
    for fmt in ("svg", "phone.svg"):
        texts = figure_texts(figure_bytes(cache, demo, result, spec, fmt))
        assert texts, f"{slug}: {spec.name}.{fmt} has no text"
        wrong = {text: found for text, _ in texts if (found := notation_problems(text))}
        assert not wrong, f"{slug}: {spec.name}.{fmt}: not in mathtext: {wrong}"
        small = {text: size for text, size in texts if size < SMALLEST}
        assert not small, f"{slug}: {spec.name}.{fmt}: text below {SMALLEST} pt: {small}"


@pytest.mark.parametrize("slug, demo, spec", FIGURES,
                         ids=[f"{slug}:{spec.name}" for slug, _, spec in FIGURES])
def test_phone_legends_and_y_labels_cover_nothing(cache, slug, demo, spec):
    """On a phone the axes are too small to hold a legend without hiding curves or labels,
    and a long y label beside a short panel runs into the titles."""
    result = Executor(cache).run_demo(demo)
    with drawn_figure(demo.experiment, spec, result.values, "phone.svg") as fig:
        fig.draw_without_rendering()
        renderer = fig.canvas.get_renderer()
        legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
        for legend in legends:
            box = legend.get_window_extent(renderer)
            for ax in fig.axes:
                covered = [name for name, area in (
                    ("data", ax.get_window_extent(renderer)),
                    ("x axis", ax.xaxis.get_tightbbox(renderer)),
                    ("title", ax.title.get_window_extent(renderer)))
                    if area is not None and area.width and box.overlaps(area)]
                assert not covered, f"{slug}: {spec.name}: a legend covers {covered}"
        titles = [fig._suptitle] + [ax.title for ax in fig.axes]
        for ax in fig.axes:
            label = ax.yaxis.label.get_window_extent(renderer)
            hit = [title.get_text() for title in titles if title is not None
                   and title.get_text() and label.overlaps(title.get_window_extent(renderer))]
            assert not hit, f"{slug}: {spec.name}: y label {ax.get_ylabel()!r} runs into {hit}"
