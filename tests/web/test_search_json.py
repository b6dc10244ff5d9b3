"""Search results as JSON: ``/api/search`` and ``kb search --json`` agree, ``snippet`` is plain
text and ``snippet_html`` the highlighted HTML the search page shows."""
from __future__ import annotations

import html
import json
import re

import pytest

from kb.cli import main
from tests.web.test_indexing import write_answer

QUERY = "cat's fur measured"
BASE = "https://kb.example"


@pytest.fixture
def settings(settings):
    return settings.replace(base_url=BASE)


@pytest.fixture
def answers_dir(answers_dir):
    """The web tests' answers and one whose text needs escaping in HTML, links another
    answer by its title and writes math."""
    write_answer(answers_dir, "cat-fur", "Why is a cat's fur not normal?",
                 "A cat's fur isn't \"normal\" & <b>never</b> was: it is measured in\n"
                 "[If γ and β keep changing, how can it work?](/a/noise) with $\\sigma_B^2$.\n",
                 summary="Grooming is not the point.")
    return answers_dir


def api_hit(client, slug: str) -> dict:
    body = client.get("/api/search", query_string={"q": QUERY}).get_json()
    return next(hit for hit in body["results"] if hit["slug"] == slug)


def test_api_snippet_is_plain_text_and_snippet_html_is_highlighted(client):
    hit = api_hit(client, "cat-fur")
    assert list(hit) == ["slug", "title", "url", "score", "snippet", "snippet_html"]
    # Plain text: no markup, no entities; math in Unicode, the linked title quoted.
    assert hit["snippet"] == ("A cat's fur isn't \"normal\" & <b>never</b> was: it is measured "
                              "in “If γ and β keep changing, how can it work?” with σB².")
    # HTML: everything escaped, the matches marked, the same text.
    assert "<mark>fur</mark>" in hit["snippet_html"]
    assert "&lt;b&gt;never&lt;/b&gt;" in hit["snippet_html"]
    assert re.sub(r"</?mark>", "", hit["snippet_html"]) == html.escape(hit["snippet"])


def test_the_search_page_shows_the_highlighted_snippet(client):
    hit = api_hit(client, "cat-fur")
    page = client.get("/search", query_string={"q": QUERY}).get_data(as_text=True)
    item = re.search(rf'<a href="{re.escape(hit["url"])}">.*?<p class="snippet">(.*?)</p>',
                     page, re.DOTALL)
    assert item is not None, page
    assert item[1] == hit["snippet_html"]
    assert "<mark>cat</mark>" in item[1] and "<b>" not in item[1]


def test_cli_json_is_the_api_json(client, settings, monkeypatch, capsys):
    """The same answers, index and public base URL: the same results, with the same
    absolute URLs."""
    monkeypatch.setenv("KB_BASE_URL", BASE)
    api = client.get("/api/search", query_string={"q": QUERY, "limit": 5}).get_json()
    assert main(["--answers", str(settings.answers_dir), "--data", str(settings.data_dir),
                 "search", QUERY, "--json", "--limit", "5"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert cli["results"] and cli == api
    assert all(hit["url"] == f"{BASE}/a/{hit['slug']}" for hit in cli["results"])
