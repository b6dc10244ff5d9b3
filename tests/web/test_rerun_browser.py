"""In a real browser: a rerun that is still computing shows the answer with a status that
updates itself, then the new results replace it and the page lands on the first changed one."""
from __future__ import annotations

import re

import pytest

from tests.web.hold import Hold


@pytest.fixture
def settings(settings):
    return settings.replace(rerun_wait=0.0)  # every rerun answers with its state at once


def test_the_rerun_status_updates_itself_to_the_results_and_lands_on_the_first_change(
        browser, live_url, monkeypatch):
    held = Hold(monkeypatch)
    held.engage()
    try:
        page = browser.new_page()
        page.goto(f"{live_url}/a/noise")
        page.fill("input[name=seed]", "7")
        page.click("form.rerun-form button[type=submit]")
        page.wait_for_url("**/a/noise?seed=7#first-change")
        status = page.locator(".rerun-status .rerun-text")
        assert held.started.wait(30)
        # The script keeps the status current: the seconds count up while it computes.
        page.wait_for_function(
            "el => /^Computing with seed 7: [1-9][0-9]* s …$/.test(el.textContent)",
            arg=status.element_handle(), timeout=15000)
        assert page.locator("mark.value-changed").count() == 0  # the answer's own meanwhile
    finally:
        held.set()
    page.wait_for_selector("mark.value-changed", timeout=30000)
    assert page.locator(".rerun-status").count() == 0
    assert page.url.endswith("/a/noise?seed=7#first-change")
    # Landed on the first changed value, which is marked in words too (not colour alone).
    first = page.locator("#first-change + mark.value-changed")
    assert re.fullmatch(r"[−-]?\d\.\d+ \(was [−-]?\d\.\d+\)", first.inner_text())
    box, height = first.bounding_box(), page.viewport_size["height"]
    assert 0 <= box["y"] and box["y"] + box["height"] <= height
    assert page.locator("#claim-mean-huge .claim-seeds").inner_text() == "7"
    page.close()
