"""End to end in a real browser: headless Chromium (Debian's) driven by Playwright, against the
app served over loopback by a real threaded WSGI server.

Skipped with a reason when Chromium or Playwright is missing, unless KB_REQUIRE_BROWSER=1
(CI), where that is a failure. Screenshots go to the test's tmp folder, and also to
$KB_SCREENSHOT_DIR when set.
"""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from kb.web.app import create_app
from tests.conftest import import_or_skip

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def live_url(settings):
    """The app over the tmp answers, warmed up as at a server's start, served on a free
    loopback port in a thread."""
    app = create_app(settings)
    app.extensions["kb"].warm(samples=False, figures=False)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def browser():
    sync_api = import_or_skip("playwright.sync_api", "KB_REQUIRE_BROWSER")
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("KB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason}, but KB_REQUIRE_BROWSER=1 requires it", pytrace=False)
        pytest.skip(f"{reason}; set KB_REQUIRE_BROWSER=1 to make this a failure")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def wait_for_figure(page) -> None:
    """Scroll the (lazily loaded) figure into view and wait until its image is decoded."""
    figure = page.locator("#figure-samples-plot img")
    figure.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                           arg=figure.element_handle())


def save_screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a real rendering, not a blank page
    if os.environ.get("KB_SCREENSHOT_DIR"):
        target = Path(os.environ["KB_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / name)
    return path


def test_search_open_answer_and_rerun_with_another_seed(browser, live_url, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    refused = []  # what the Content-Security-Policy blocked: nothing the site needs
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.goto(f"{live_url}/")
    page.fill("main input[name=q]", "noisy samples")
    page.press("main input[name=q]", "Enter")
    page.wait_for_url("**/search?q=noisy+samples")
    assert page.locator("ol.results mark").count() > 0  # highlighted snippet
    page.click("text=How noisy are the samples?")
    page.wait_for_url("**/a/noise")

    # The figure is loaded and shown, the math is MathML laid out by the browser itself.
    wait_for_figure(page)
    assert page.locator("math").count() >= 3
    assert page.locator("math[display=block]").first.bounding_box()["width"] > 20
    assert page.locator("#claim-mean-huge .claim-mark").inner_text() == "✗"
    first_mean = page.locator("#claim-mean-huge .claim-detail").inner_text()
    save_screenshot(page, tmp_path, "answer-desktop.png")

    # Rerun with seed 3: the URL says so (without the unchanged parameters), values change.
    page.fill("input[name=seed]", "3")
    page.click("form.rerun-form button[type=submit]")
    page.wait_for_url("**/a/noise?seed=3#rerun")
    assert page.locator("#claim-mean-huge .claim-seeds").inner_text() == "3"
    assert page.locator("#claim-mean-huge .claim-detail").inner_text() != first_mean
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
