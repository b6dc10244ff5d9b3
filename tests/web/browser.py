"""Browser fixtures shared by the real-browser tests: headless Chromium (Debian's) driven by
Playwright, against the app served over loopback by a real threaded WSGI server: ``live_url``
serves the small answers of the web conftest, ``real_live_url`` the project's own answers.

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

from kb.config import PROJECT_ROOT, Settings
from kb.web.app import create_app
from tests.conftest import import_or_skip

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
VIEWPORTS = {1280: DESKTOP, 390: PHONE}  # the two widths every page is checked at
REAL_ANSWERS = PROJECT_ROOT / "answers"
REAL_SLUGS = sorted(path.stem for path in REAL_ANSWERS.glob("*.md"))


def _serve(settings: Settings, figures: bool = False):
    """The app over ``settings``, warmed up as at a server's start (the answers' own settings
    computed, and their figures drawn if ``figures``), served on a free loopback port in a
    thread; yields its URL."""
    app = create_app(settings)
    app.extensions["kb"].warm(samples=False, figures=figures)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def live_url(settings):
    """The small answers of the web conftest, served."""
    yield from _serve(settings)


@pytest.fixture(scope="session")
def real_live_url(tmp_path_factory):
    """The project's own answers, served with the shared demonstration cache (the one the
    knowledge-base tests and `kb check` fill, so their results are computed once) and a
    search index of its own in a tmp data folder. The figures are drawn before serving: a
    page's first load must not wait for them, however busy the machine."""
    data = tmp_path_factory.mktemp("real-data")
    cache = Settings.from_env().cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    (data / "cache").symlink_to(cache.resolve(), target_is_directory=True)
    yield from _serve(Settings(answers_dir=REAL_ANSWERS, data_dir=data), figures=True)


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


def load_every_figure(page) -> int:
    """Load the lazily loaded images now (a full-page screenshot does not scroll) and wait
    until each is decoded; returns how many there are."""
    count = page.evaluate("""() => {
        const images = [...document.images];
        images.forEach(img => { img.loading = "eager"; });
        return images.length;
    }""")
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    return count


def save_screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a real rendering, not a blank page
    if os.environ.get("KB_SCREENSHOT_DIR"):
        target = Path(os.environ["KB_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / name)
    return path
