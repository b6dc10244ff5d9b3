"""Addresses readers type or paste: other letter cases and a trailing slash redirect to the
answer, unknown paths get the site's own 404 page, and settings that cannot be run are named
next to their field in the form."""
from __future__ import annotations

import pytest

from tests.web.test_web import Page, page


@pytest.mark.parametrize("asked, location", [
    ("/a/Noise", "/a/noise"),
    ("/a/NOISE?seed=3&d.n=9", "/a/noise?seed=3&d.n=9"),
    ("/a/noise/", "/a/noise"),
    ("/a/noise/?seed=2&utm_source=forum", "/a/noise?seed=2&utm_source=forum"),
    ("/a/Sample-Noise?seed=1", "/a/noise?seed=1"),  # an alias, in other letters
    ("/a/sample-noise/", "/a/noise"),
    ("/api/answers/Noise?seed=4", "/api/answers/noise?seed=4"),
    ("/a/Noise/figures/samples-plot.png?seed=1", "/a/noise/figures/samples-plot.png?seed=1"),
])
def test_case_variants_and_a_trailing_slash_redirect_permanently(client, asked, location):
    response = client.get(asked)
    assert response.status_code == 301, asked
    assert response.headers["Location"] == location
    assert client.get(location).status_code == 200


def test_an_unknown_slug_with_a_trailing_slash_is_the_404_page(client):
    missing = page(client, "/a/noisy-samples/", status=404)
    assert "/a/noise" in {a.rsplit("localhost", 1)[-1] for a in missing.anchors}


def test_an_unknown_path_is_the_sites_404_page_with_suggestions(client):
    missing = page(client, "/questions/noisy-samples", status=404)
    assert "There is no page at /questions/noisy-samples." in missing.text
    # The site's page: its header, a search box holding the path's words, suggestions.
    assert missing.find("a", class_="site-name", href="/")
    assert missing.find("input", name="q", value="questions noisy samples")
    assert "http://localhost/a/noise" in missing.anchors
    assert missing.meta["robots"] == "noindex"


def test_an_unknown_api_path_stays_json(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.get_json() == {"error": "There is nothing at /api/nothing-here.",
                                   "status": 404}


def test_a_refused_field_is_named_next_to_it_with_what_was_typed(client):
    response = client.get("/a/noise?d.n=abc&d.scale=2.5")
    assert response.status_code == 400
    shown = Page(response.get_data(as_text=True))
    field = shown.find("input", name="d.n")[0]
    assert field["aria-invalid"] == "true"
    message = "parameter 'n' must be a whole number between 2 and 1000, got 'abc'"
    error = next(a for t, a in shown.elements if a.get("id") == field["aria-describedby"])
    assert error["class"] == "field-error"
    html = response.get_data(as_text=True)
    at = html.index(f'id="{field["aria-describedby"]}"')
    assert message in Page(html[at - 200:at + 300]).text
    # What else was asked for stays in the form; the other fields are not marked.
    assert shown.find("input", name="d.scale")[0]["value"] == "2.5"
    assert "aria-invalid" not in shown.find("input", name="d.scale")[0]
    assert "aria-invalid" not in shown.find("input", name="seed")[0]
    # The page shows the answer's own results, and is not kept by caches.
    assert response.headers["Cache-Control"] == "no-store"
    assert shown.find("a", href="#rerun")


def test_a_refused_seed_is_named_next_to_the_seed_field(client):
    shown = page(client, "/a/noise?seed=-4", status=400)
    seed = shown.find("input", name="seed")[0]
    assert seed["value"] == "-4" and seed["aria-invalid"] == "true"
    assert shown.element_by_id("error-seed")


def test_settings_refused_for_no_single_field_are_said_above_the_form(client):
    shown = page(client, "/a/noise?x.n=3", status=400)
    assert shown.element_by_id("rerun-error")
    assert "answer 'noise' has no demonstration 'x' (it has: d)" in shown.text
    assert not [a for _, a in shown.elements if a.get("aria-invalid")]


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999"])
def test_non_finite_numbers_are_refused_with_a_readers_reason(client, text):
    reason = f"parameter 'scale' must be a finite number between 0.0 and 10.0, got '{text}'"
    shown = page(client, f"/a/noise?d.scale={text}", status=400)
    assert reason in shown.text
    api = client.get(f"/api/answers/noise?d.scale={text}")
    assert api.status_code == 400 and reason in api.get_json()["error"]


def test_number_fields_carry_their_html5_rules(client):
    shown = page(client, "/a/noise")
    n = shown.find("input", name="d.n")[0]
    assert (n["type"], n["min"], n["max"], n["step"]) == ("number", "2", "1000", "1")
    assert "required" in n  # an emptied field is refused by the browser, not replaced
    scale = shown.find("input", name="d.scale")[0]
    assert (scale["step"], scale["min"], scale["max"]) == ("any", "0.0", "10.0")
    assert "required" not in shown.find("input", name="seed")[0]  # blank: the answer's own


def test_refused_pages_render_the_answers_body_once_and_each_their_own_form(client,
                                                                           monkeypatch):
    """A stream of bad links must not cost a full rendering each: the answer at its own
    settings is rendered once, the form with each request's values and reason every time."""
    import kb.web.pages

    bodies = []
    render = kb.web.pages.answer_body
    monkeypatch.setattr(kb.web.pages, "answer_body",
                        lambda outcome: bodies.append(outcome.view) or render(outcome))
    first = page(client, "/a/noise?d.n=abc", status=400)
    second = page(client, "/a/noise?d.n=xyz", status=400)
    assert len(bodies) == 1
    assert first.find("input", name="d.n")[0]["value"] == "abc"
    assert second.find("input", name="d.n")[0]["value"] == "xyz"
    assert "got 'xyz'" in second.text and "got 'abc'" not in second.text
    assert first.find("a", href="#rerun") and second.find("a", href="#rerun")
