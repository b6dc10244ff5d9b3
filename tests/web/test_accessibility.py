"""Accessibility in a real browser: axe-core (bundled by axe-playwright-python, nothing
fetched) finds no serious or critical violation on any page, in the light and the dark colour
scheme, at a desktop's and a phone's width; the dark scheme is really applied; and a keyboard
reaches every control of an answer page with a visible focus indicator.

The project's own answers are checked (``real_live_url``), and the small answers of the web
conftest (``live_url``) for what the real ones do not show at their own settings: a rerun with
changed values, a broken demonstration, invalid input.
"""
from __future__ import annotations

import pytest

from tests.conftest import import_or_skip
from tests.web.browser import REAL_SLUGS, VIEWPORTS

pytestmark = pytest.mark.browser

SCHEMES = ("light", "dark")
REAL_PAGES = [
    "/",
    "/search?q=why+does+batch+norm+speed+up+training",
    "/search?q=batchnrom",  # a typo: the "did you mean" line
    "/search?q=qqqzzz",  # nothing found
    "/no/such/page",  # the site's 404 page
    "/a/no-such-answer",  # a 404 with suggestions
    "/a/bn-backward-gradient?seed=1",  # a rerun of a real answer (in its sample of seeds)
    *(f"/a/{slug}" for slug in REAL_SLUGS),
]
SMALL_PAGES = [
    "/a/noise?seed=3",  # a rerun: other values, the "back to the answer's own settings" link
    "/a/noise?d.n=7&seed=2",  # parameters changed
    "/a/broken",  # a demonstration that fails: the error box, ⚠ in place of values
    "/a/plain",  # no demonstrations: no rerun form
    "/a/noise?d.n=abc",  # invalid input
]


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical violations on the loaded page, one line per element."""
    axe = import_or_skip("axe_playwright_python.sync_playwright", "KB_REQUIRE_BROWSER")
    results = axe.Axe().run(page).response
    return [f"{v['impact']} {v['id']} at {node['target']}: {node['failureSummary']}"
            for v in results["violations"] if v["impact"] in ("serious", "critical")
            for node in v["nodes"]]


def check_pages(browser, base: str, paths: list[str], scheme: str, width: int) -> None:
    context = browser.new_context(viewport=VIEWPORTS[width], color_scheme=scheme)
    page = context.new_page()
    found = {}
    for path in paths:
        page.goto(base + path)
        assert page.locator("h1").count() == 1, path  # a real page, not a bare error
        if violations := serious_violations(page):
            found[path] = violations
    context.close()
    assert found == {}, "\n".join(f"{path}: {line}" for path, lines in found.items()
                                  for line in lines)


@pytest.mark.parametrize("width", VIEWPORTS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_real_pages_pass_axe(browser, real_live_url, scheme, width):
    check_pages(browser, real_live_url, REAL_PAGES, scheme, width)


@pytest.mark.parametrize("width", VIEWPORTS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_reruns_errors_and_bad_input_pass_axe(browser, live_url, scheme, width):
    check_pages(browser, live_url, SMALL_PAGES, scheme, width)


def test_dark_scheme_darkens_the_page_and_keeps_figures_on_a_light_panel(browser, live_url):
    """The reader's preference is followed: dark background, light text; the figures, drawn
    by matplotlib for white paper, keep their light panel so that their text stays readable."""
    colours = {}
    for scheme in SCHEMES:
        context = browser.new_context(color_scheme=scheme)
        page = context.new_page()
        page.goto(f"{live_url}/a/noise")
        colours[scheme] = page.evaluate("""() => {
            const luminance = (colour) => {  // relative luminance of "rgb(r, g, b)"
                const [r, g, b] = colour.match(/[\\d.]+/g).slice(0, 3).map(c => {
                    c = c / 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
                });
                return 0.2126 * r + 0.7152 * g + 0.0722 * b;
            };
            const style = (selector) => getComputedStyle(document.querySelector(selector));
            return {background: luminance(style("body").backgroundColor),
                    text: luminance(style("body").color),
                    figure: luminance(style(".figure img").backgroundColor)};
        }""")
        context.close()
    light, dark = colours["light"], colours["dark"]
    assert light["background"] > 0.9 and light["text"] < 0.05
    assert dark["background"] < 0.05 and dark["text"] > 0.5
    assert light["figure"] > 0.9 and dark["figure"] > 0.9


FOCUS_STATE = """() => {
    const el = document.activeElement;
    const style = getComputedStyle(el);
    const shown = (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0)
                  || style.boxShadow !== "none";
    return {tag: el.tagName.toLowerCase(), name: el.getAttribute("name"), id: el.id,
            text: el.textContent.trim().slice(0, 40),
            href: el.getAttribute("href"), inForm: !!el.closest("form.rerun-form"),
            inToc: !!el.closest("nav.toc"), shown: shown};
}"""


@pytest.mark.parametrize("scheme", SCHEMES)
def test_keyboard_reaches_every_control_with_a_visible_focus(browser, live_url, scheme):
    """Tab from the top of an answer page to its end: the skip link first, then the search
    box, the table of contents, every field and the button of the rerun form and the share
    box are reached, and every element that takes the focus shows it."""
    context = browser.new_context(color_scheme=scheme)
    page = context.new_page()
    page.goto(f"{live_url}/a/noise?seed=3")
    rerun_fields = page.locator("form.rerun-form input, form.rerun-form select,"
                                " form.rerun-form button, form.rerun-form a[href]").count()
    toc_links = page.locator("nav.toc a:visible").count()  # one of its two places shows
    reached = []
    for _ in range(200):
        page.keyboard.press("Tab")
        state = page.evaluate(FOCUS_STATE)
        if state["tag"] == "body" or (reached and state == reached[0]):
            break  # past the last element, or round again
        reached.append(state)
    context.close()
    hidden = [state for state in reached if not state["shown"]]
    assert hidden == [], f"focused without a visible indicator: {hidden}"
    assert reached[0]["href"] == "#content", "the first stop skips to the content"
    assert any(s["tag"] == "input" and s["name"] == "q" for s in reached), "search box"
    assert sum(s["inToc"] for s in reached) == toc_links > 0
    assert sum(s["inForm"] for s in reached) == rerun_fields > 0
    assert any(s["tag"] == "button" and s["inForm"] for s in reached), "the Rerun button"
    assert any(s["id"] == "share-link" for s in reached)
    assert any(s["id"] == "share-markdown" for s in reached)
    assert any(s["tag"] == "button" and s["text"] == "Copy link" for s in reached)
