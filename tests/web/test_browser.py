"""End to end in a real browser: headless Chromium (Debian's) driven by Playwright, against the
app served over loopback by a real threaded WSGI server.

Skipped with a reason when Chromium or Playwright is missing, unless KB_REQUIRE_BROWSER=1
(CI), where that is a failure. Screenshots go to the test's tmp folder, and also to
$KB_SCREENSHOT_DIR when set.
"""
from __future__ import annotations

import pytest

from tests.web.browser import PHONE, save_screenshot, wait_for_figure

pytestmark = pytest.mark.browser


def test_search_open_answer_and_rerun_with_another_seed(browser, live_url, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    refused = []  # what the Content-Security-Policy blocked: nothing the site needs
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.goto(f"{live_url}/")
    page.fill("header input[name=q]", "noisy samples")
    page.press("header input[name=q]", "Enter")
    page.wait_for_url("**/search?q=noisy+samples")
    assert page.locator("ol.results mark").count() > 0  # highlighted snippet
    page.click("text=How noisy are the samples?")
    page.wait_for_url("**/a/noise")

    # The figure is loaded and shown, the math is MathML laid out by the browser itself.
    wait_for_figure(page)
    assert page.locator("math").count() >= 3
    assert page.locator("math[display=block]").first.bounding_box()["width"] > 20
    assert page.locator("#claim-mean-huge .claim-mark").inner_text() == "✗"
    first_mean = page.locator("#claim-mean-huge .claim-reading").inner_text()
    save_screenshot(page, tmp_path, "answer-desktop.png")

    # Rerun with seed 3: the URL says so (without the unchanged parameters), values change.
    page.fill("input[name=seed]", "3")
    page.click("form.rerun-form button[type=submit]")
    page.wait_for_url("**/a/noise?seed=3#first-change")
    assert page.locator("#claim-mean-huge .claim-seeds").inner_text() == "3"
    assert page.locator("#claim-mean-huge .claim-reading").inner_text() != first_mean
    assert page.locator("#claim-spread-positive .claim-mark").inner_text() == "✓"
    assert page.locator("#figure-samples-plot img").get_attribute("src").endswith("?seed=3")
    assert page.locator("#share-link").input_value().endswith("/a/noise?seed=3")

    # The copy buttons appear with the script and confirm the copy.
    copy = page.locator("button[data-copy=share-link]")
    assert copy.is_visible()
    copy.click()
    page.wait_for_function("b => b.textContent === 'Copied'", arg=copy.element_handle())
    page.close()
    assert refused == []


def test_answer_page_fits_a_phone(browser, live_url, tmp_path):
    page = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    page.goto(f"{live_url}/a/noise?seed=3")
    wait_for_figure(page)
    # Nothing wider than the screen: no sideways scrolling of the page.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    figure_box = page.locator("#figure-samples-plot img").bounding_box()
    assert figure_box["width"] <= PHONE["width"]
    save_screenshot(page, tmp_path, "answer-phone.png")
    page.close()


def test_pages_work_without_javascript(browser, live_url):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_url}/a/noise")
    assert not page.locator("button.copy").first.is_visible()  # nothing to click without JS
    page.fill("input[name=seed]", "2")
    page.click("form.rerun-form button[type=submit]")
    page.wait_for_url("**/a/noise?seed=2*")
    assert page.locator("#claim-mean-huge .claim-seeds").inner_text() == "2"
    context.close()
