"""Browser fixtures shared by the real-browser tests: headless Chromium (Debian's) driven by
Playwright, against the app served over loopback by a real threaded WSGI server.

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
