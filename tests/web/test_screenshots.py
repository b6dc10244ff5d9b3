"""Screenshots of the home page, a search and every answer of the project, at a desktop's and
a phone's width, for people to look at: in CI they are kept as artifacts
($KB_SCREENSHOT_DIR, set by .ci/run to artifacts/screenshots). A few pages are taken in the
dark colour scheme too.

What is asserted is what a screenshot alone would not tell: every page answers 200 with its
heading, and every figure on it loads and decodes.
"""
from __future__ import annotations

import pytest

from tests.web.browser import REAL_SLUGS, VIEWPORTS, load_every_figure, save_screenshot

pytestmark = pytest.mark.browser

PAGES = [("home", "/"), ("search", "/search?q=why+does+batch+norm+speed+up+training"),
         *((f"answer-{slug}", f"/a/{slug}") for slug in REAL_SLUGS)]
# The dark scheme on pages with figures, tables, display math and claim boxes.
DARK_PAGES = [("home", "/"), ("answer-covariate-shift", "/a/covariate-shift"),
              ("answer-bn-backward-gradient", "/a/bn-backward-gradient"),
              ("answer-batchnorm-vs-layernorm", "/a/batchnorm-vs-layernorm")]


@pytest.mark.parametrize("scheme, pages", [("light", PAGES), ("dark", DARK_PAGES)],
                         ids=["light", "dark"])
@pytest.mark.parametrize("width", VIEWPORTS)
def test_screenshots(browser, real_live_url, tmp_path, width, scheme, pages):
    context = browser.new_context(viewport=VIEWPORTS[width], color_scheme=scheme)
    page = context.new_page()
    for name, path in pages:
        response = page.goto(real_live_url + path)
        assert response.status == 200 and page.locator("h1").count() == 1, path
        if path.startswith("/a/"):
            assert load_every_figure(page) > 0, path  # every answer has figures
        save_screenshot(page, tmp_path, f"{name}-{width}{'-dark' if scheme == 'dark' else ''}.png")
    context.close()
