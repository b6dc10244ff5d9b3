"""Reading a long answer in a real browser (Chromium) at 1280 and 390 px: the page never
scrolls sideways, a formula wider than the text scrolls in its own box with a visible cue, the
table of contents sits beside the text on a wide screen and folds on a phone, and what a link
points to is marked. The real answers are read: their formulas and lengths are the point."""
from __future__ import annotations

import io

import pytest

from tests.web.browser import PHONE, save_screenshot

pytestmark = pytest.mark.browser

WIDE = {"width": 1280, "height": 900}
LONG_FORMULAS = "/a/bn-backward-gradient"  # the longest display formulas of the answers
CLAIM = "claim-engine-matches-finite-differences"


def open_page(browser, viewport: dict, url: str):
    page = browser.new_page(viewport=viewport)
    page.goto(url)
    return page


def no_sideways_scrolling(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def edge_shading(box) -> tuple[int, int]:
    """How much darker than its middle the left and right edges of a scrolling box are drawn,
    0 to 255, with its content hidden (what is left is the box's own cue)."""
    from PIL import Image  # matplotlib's dependency, always there

    box.evaluate("e => { e.firstElementChild.style.visibility = 'hidden'; }")
    image = Image.open(io.BytesIO(box.screenshot())).convert("L")
    box.evaluate("e => { e.firstElementChild.style.visibility = ''; }")
    width, height = image.size

    def darkest(x: int) -> int:
        return min(image.getpixel((x, y)) for y in range(height))

    middle = darkest(width // 2)
    return middle - darkest(1), middle - darkest(width - 2)


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280", "390"])
def test_wide_formulas_scroll_in_their_own_box_with_a_cue(browser, real_live_url, viewport,
                                                          tmp_path):
    page = open_page(browser, viewport, real_live_url + LONG_FORMULAS)
    no_sideways_scrolling(page)
    boxes = page.locator(".math-display")
    assert boxes.count() >= 3
    # Every display formula is in a box; none is cut off by anything but its own scroller.
    assert page.locator("math[display=block]").count() == boxes.count()
    wide = []
    for i in range(boxes.count()):
        box = boxes.nth(i)
        sizes = box.evaluate("e => [e.scrollWidth, e.clientWidth, getComputedStyle(e).overflowX]")
        assert sizes[2] == "auto"
        assert box.get_attribute("tabindex") == "0"  # keyboard users can scroll it
        if sizes[0] > sizes[1] + 1:
            wide.append(box)
    if viewport["width"] == PHONE["width"]:
        assert wide, "the gradient formula no longer overflows a phone: pick a wider one"
    for box in wide:
        box.scroll_into_view_if_needed()
        # The cue: a shadow at the right edge while more is to the right, none at the left.
        left, right = edge_shading(box)
        assert right > 25 and left < 5, (left, right)
        box.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function("e => e.scrollLeft > 0", arg=box.element_handle())
    save_screenshot(page, tmp_path, f"long-formulas-{viewport['width']}.png")
    page.close()


def test_contents_sit_beside_the_text_on_a_wide_screen(browser, real_live_url, tmp_path):
    page = open_page(browser, WIDE, real_live_url + LONG_FORMULAS)
    side = page.locator("nav.toc-side")
    assert side.is_visible() and not page.locator("nav.toc-inline").is_visible()
    text = page.locator("article.answer").bounding_box()
    contents = side.bounding_box()
    assert contents["x"] >= text["x"] + text["width"]  # beside it, not above
    links = side.locator("a")
    assert links.count() >= 6 and links.first.inner_text() == "Short answer"
    # Each entry leads to its heading; the contents stay in view while reading.
    target = links.nth(2).get_attribute("href")
    links.nth(2).click()
    page.wait_for_function("id => location.hash === id", arg=target)
    assert page.locator(target).bounding_box()["y"] < 200
    assert side.bounding_box()["y"] >= 0 and side.is_visible()
    no_sideways_scrolling(page)
    save_screenshot(page, tmp_path, "contents-1280.png")
    page.close()


def test_contents_fold_into_the_text_on_a_phone(browser, real_live_url, tmp_path):
    page = open_page(browser, PHONE, real_live_url + LONG_FORMULAS)
    inline = page.locator("nav.toc-inline")
    assert inline.is_visible() and not page.locator("nav.toc-side").is_visible()
    assert page.locator("nav.toc-inline details").get_attribute("open") is None
    assert not inline.locator("a").first.is_visible()  # folded
    inline.locator("summary").click()
    assert inline.locator("a").first.is_visible()
    # Placed after the short answer, before the text it lists.
    summary_y = page.locator("#short-answer").bounding_box()["y"]
    body_y = page.locator(".answer-body").bounding_box()["y"]
    assert summary_y < inline.bounding_box()["y"] < body_y
    no_sideways_scrolling(page)
    save_screenshot(page, tmp_path, "contents-390.png")
    page.close()


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280", "390"])
def test_the_claim_a_link_points_to_is_marked(browser, real_live_url, viewport, tmp_path):
    page = open_page(browser, viewport, f"{real_live_url}{LONG_FORMULAS}#{CLAIM}")
    claim = page.locator(f"#{CLAIM}")
    other = page.locator(".claim").nth(1)
    outline = "e => getComputedStyle(e).outlineStyle + ' ' + getComputedStyle(e).outlineWidth"
    assert claim.evaluate(outline) == "solid 3px"
    assert other.evaluate(outline) != "solid 3px"
    box = claim.bounding_box()
    assert 0 <= box["y"] < viewport["height"] / 2  # in view, near the top
    save_screenshot(page, tmp_path, f"claim-target-{viewport['width']}.png")
    # Following another claim's link on the same page moves the mark.
    other_id = other.get_attribute("id")
    other.locator(".claim-link").click()
    page.wait_for_function("id => location.hash === '#' + id", arg=other_id)
    assert other.evaluate(outline) == "solid 3px"
    assert claim.evaluate(outline) != "solid 3px"
    page.close()


def test_a_heading_link_of_before_greek_names_still_arrives(browser, real_live_url):
    page = open_page(browser, PHONE, real_live_url + "/a/why-gamma-beta-dont-undo-bn"
                     "#measured-does-not-follow-_b")
    heading = page.locator("h2#measured-gamma-does-not-follow-sigma-b")
    assert 0 <= heading.bounding_box()["y"] < 200
    assert heading.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
    page.close()


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280", "390"])
def test_home_and_the_share_box_fit(browser, real_live_url, viewport, tmp_path):
    page = open_page(browser, viewport, real_live_url + "/")
    no_sideways_scrolling(page)
    assert page.locator("input[name=q]").count() == 1
    assert page.locator("section.topic").count() >= 5
    save_screenshot(page, tmp_path, f"home-{viewport['width']}.png")
    page.goto(real_live_url + "/a/why-gamma-beta-dont-undo-bn")
    no_sideways_scrolling(page)
    share = page.locator("#share-markdown")
    # The whole Markdown shows, its link line included: nothing to scroll inside the box.
    assert share.evaluate("e => e.scrollHeight <= e.clientHeight + 1")
    page.close()


def test_the_keyboard_skips_to_the_content(browser, real_live_url):
    page = open_page(browser, WIDE, real_live_url + LONG_FORMULAS)
    page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    assert skip.evaluate("e => e === document.activeElement")
    assert skip.bounding_box()["y"] >= 0  # shown when focused
    assert skip.evaluate("e => getComputedStyle(e).outlineStyle") == "solid"
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.activeElement.id === 'content'")
    page.keyboard.press("Tab")  # the next stop is inside the content, not the header
    assert page.evaluate("() => document.activeElement.closest('main') !== null")
    page.close()
