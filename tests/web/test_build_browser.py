"""The static build in a real browser: built into tmp, served by ``python -m http.server`` on
loopback (a process of its own) and driven by headless Chromium. Search finds an answer and
opens it, figures and math show, anchors work, and no page asks for anything outside the
site; at the site's root and under a sub-path. And the search index the build writes is the
one the vendored MiniSearch makes of the same documents."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kb.answers.parse import load_answers
from kb.build.build import build_site
from kb.build.searchindex import documents, search_index
from kb.config import PROJECT_ROOT

pytestmark = pytest.mark.browser


@pytest.fixture
def served(tmp_path):
    """A folder served by ``python -m http.server`` on a free loopback port: (folder, URL)."""
    root = tmp_path / "www"
    root.mkdir()
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
         "--directory", str(root)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 40123 (...) ..."
        port = re.search(r" port (\d+)", line)
        assert port, line
        yield root, f"http://127.0.0.1:{port[1]}/"
    finally:
        server.terminate()
        server.wait(timeout=10)


def visit_site(browser, site_url: str) -> None:
    """From the home page: search, open the answer found, look at its figure, math and
    anchors, its search page's own links; every request stays under ``site_url``."""
    page = browser.new_page()
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    page.goto(site_url)
    assert page.locator("h1").first.inner_text().startswith("Questions about batch norm")
    page.fill("header input[name=q]", "noisy samples")
    page.press("header input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"search\.html\?q=noisy\+samples$"))
    first = page.locator("ol.results li a").first
    first.wait_for()
    assert first.inner_text() == "How noisy are the samples?"
    assert re.fullmatch(r"\d answers? for noisy samples",
                        page.locator("p.result-count").inner_text())
    assert page.locator("header input[name=q]").input_value() == "noisy samples"
    first.click()

    page.wait_for_url(site_url + "a/noise.html")
    assert page.locator("h1").inner_text() == "How noisy are the samples?"
    figure = page.locator("#figure-samples-plot img")
    figure.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                           arg=figure.element_handle())
    math = page.locator(".answer-body math").first  # MathML, laid out by the browser
    assert math.bounding_box()["height"] > 5
    assert page.locator("#claim-spread-positive").count() == 1
    assert page.locator("p.rerun-note").count() == 1

    page.click('a.figure-link[href="#figure-samples-plot"]')
    assert page.evaluate("location.hash") == "#figure-samples-plot"
    assert page.evaluate("""() => { const r = document.getElementById('figure-samples-plot')
                                    .getBoundingClientRect(); return r.top >= -1 &&
                                    r.top < window.innerHeight; }""")
    page.goto(site_url + "a/noise.html#claim-mean-huge")
    assert page.evaluate("""() => { const r = document.getElementById('claim-mean-huge')
                                    .getBoundingClientRect(); return r.top >= -1 &&
                                    r.top < window.innerHeight; }""")
    page.click(".thread-line a")  # to the home page's section of the answer's topic
    page.wait_for_url(re.compile(re.escape(site_url + "index.html#topic-")))
    page.goto(site_url + "search.html?q=zzzzqqq")
    page.locator("main p", has_text="No answer matches").wait_for()

    assert requests, "no request recorded"
    outside = [url for url in requests if not url.startswith(site_url)]
    assert outside == []
    assert problems == []  # no CSP violation, no script error, nothing missing
    page.close()


def test_the_built_site_works_in_a_browser(browser, settings, served):
    root, url = served
    build_site(settings, root, base_url=url, progress=lambda line: None)
    visit_site(browser, url)


def test_the_built_site_works_under_a_sub_path(browser, settings, served):
    root, url = served
    site_url = url + "course/kb/"
    build_site(settings, root / "course" / "kb", base_url=site_url, progress=lambda line: None)
    visit_site(browser, site_url)


def test_the_prebuilt_index_is_the_one_minisearch_makes(browser, tmp_path):
    """The real answers' documents (Greek letters, symbols, every kind of punctuation)
    indexed by the vendored MiniSearch in Chromium, compared with what the build wrote."""
    answers = load_answers(PROJECT_ROOT / "answers")
    built = search_index(answers)
    script = (PROJECT_ROOT / "kb/web/static/vendor/minisearch/minisearch.js").read_text()
    page = browser.new_page()
    page.set_content("<!doctype html><title>index</title>")
    page.add_script_tag(content=script)
    made = page.evaluate(
        "([docs, options]) => { const ms = new MiniSearch(options); ms.addAll(docs);"
        " return JSON.parse(JSON.stringify(ms)); }",
        [documents(answers), built["options"]])
    ours = json.loads(json.dumps(built["index"]))
    assert dict(map(tuple, made.pop("index"))) == dict(map(tuple, ours.pop("index")))
    assert made.pop("averageFieldLength") == pytest.approx(ours.pop("averageFieldLength"))
    assert made == ours
    # And it answers queries as MiniSearch does with its own index.
    query = "why does batch norm make training faster"
    hits = page.evaluate(
        "([index, options, q]) => MiniSearch.loadJSON(JSON.stringify(index), options)"
        ".search(q, options.searchOptions).map(h => h.id)",
        [built["index"], built["options"], query])
    assert hits[0] == "why-bn-speeds-up-training"
    page.close()
