"""Figures legible on a phone, measured in a real browser (headless Chromium, Playwright).

At 390 CSS px wide, every figure of every real answer is shown in its phone rendering (chosen
by the browser through <picture>), and its smallest text, the font size the SVG gives it
times the scale at which the browser draws the image, is at least 11 CSS px. On a wide screen
the page's wide rendering is shown. The figures come from the answers' own results in the
project's cache (``real_live_url``, as the pytest plugin computes them)."""
from __future__ import annotations

import pytest

from kb.answers.parse import load_answers
from tests.figure_text import figure_texts, viewbox_width
from tests.web.browser import DESKTOP, PHONE, REAL_ANSWERS, save_screenshot

pytestmark = pytest.mark.browser

MIN_CSS_PX = 11.0
SLUGS = sorted(a.slug for a in load_answers(REAL_ANSWERS) if any(
    d.figures for d in a.demonstrations))

# The image's content box (the SVG is drawn into it, the border is outside) and its source.
_SHOWN = """img => {
  const style = getComputedStyle(img), box = img.getBoundingClientRect();
  const edges = ['border-left-width', 'border-right-width', 'padding-left', 'padding-right']
    .reduce((sum, name) => sum + parseFloat(style.getPropertyValue(name)), 0);
  return {src: img.currentSrc, width: box.width - edges};
}"""


def shown_figures(page, url: str) -> list[dict]:
    """Every figure of the page at ``url``, loaded: its image's source and drawn width."""
    page.goto(url)
    shown = []
    images = page.locator("figure.figure img")
    for i in range(images.count()):
        image = images.nth(i)
        image.scroll_into_view_if_needed()  # they load lazily
        page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                               arg=image.element_handle(), timeout=120_000)
        shown.append(image.evaluate(_SHOWN))
    return shown


def test_every_figure_text_is_at_least_11_css_px_on_a_phone(browser, real_live_url, tmp_path):
    live_url = real_live_url
    page = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    smallest: dict[str, float] = {}
    for slug in SLUGS:
        figures = shown_figures(page, f"{live_url}/a/{slug}")
        assert figures, slug
        for figure in figures:
            assert ".phone.svg" in figure["src"], figure
            svg = page.request.get(figure["src"]).body()
            scale = figure["width"] / viewbox_width(svg)
            texts = figure_texts(svg)
            assert texts, figure["src"]
            text, size = min(texts, key=lambda item: item[1])
            smallest[figure["src"].removeprefix(live_url)] = round(size * scale, 1)
            assert size * scale >= MIN_CSS_PX, (
                f"{figure['src']}: {text!r} is {size * scale:.1f} CSS px at {PHONE['width']} px")
        if slug == "why-gamma-beta-dont-undo-bn":
            save_screenshot(page, tmp_path, "figures-phone.png")
    print(f"smallest figure text at {PHONE['width']} px (CSS px):", smallest)
    page.close()


def test_a_wide_screen_shows_the_wide_rendering(browser, real_live_url):
    page = browser.new_page(viewport=DESKTOP)
    figures = shown_figures(page, f"{real_live_url}/a/why-gamma-beta-dont-undo-bn")
    assert figures and all(".phone.svg" not in f["src"] and f["src"].split("?")[0].endswith(".svg")
                           for f in figures)
    page.close()
