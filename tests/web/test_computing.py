"""Views at an answer's own settings never compute in their request: what is not computed yet
shows as computing (page, JSON and figures), the sampler computes it in the background, and
the next view shows it. Reruns are jobs (tests/web/test_reruns.py)."""
from __future__ import annotations

import threading

import pytest

import kb.run.executor
import kb.web.site


@pytest.fixture
def held(app, monkeypatch):
    """Computations wait until the test sets the returned event (the sampler's too)."""
    release, compute = threading.Event(), kb.run.executor.compute_isolated

    def wait_then_compute(*args, **kwargs):
        assert release.wait(60), "never released"
        return compute(*args, **kwargs)

    monkeypatch.setattr(kb.run.executor, "compute_isolated", wait_then_compute)
    yield release
    release.set()
    assert app.extensions["kb"].sampler.idle.wait(60)


def changed_noise(answers_dir) -> None:
    """The noise answer with other parameters of its own: nothing of it is computed."""
    path = answers_dir / "noise.md"
    path.write_text(path.read_text().replace("params: {n: 50}", "params: {n: 51}"))


def fresh_view(app, client, url: str):
    site = app.extensions["kb"]
    for memo in (site.outcomes, site.pages, site.figures):
        memo.clear()
    return client.get(url)


def test_a_view_at_own_settings_shows_computing_and_the_sampler_computes_it(
        app, client, answers_dir, held):
    changed_noise(answers_dir)
    page = client.get("/a/noise")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Computing d:" in html and 'http-equiv="refresh"' in html
    assert "is being computed; its figures appear here" in html
    body = client.get("/api/answers/noise").get_json()
    assert body["computing"] == ["d"] and body["errors"] == []
    assert body["demonstrations"][0]["error"] is None
    figure = client.get("/a/noise/figures/samples-plot.png")
    assert figure.status_code == 503 and figure.headers["Retry-After"] == "5"
    assert "still being computed" in figure.get_data(as_text=True)
    assert client.get("/a/plain").status_code == 200  # other pages as ever

    held.set()  # the background computation may go on now
    assert app.extensions["kb"].sampler.idle.wait(60)
    body = fresh_view(app, client, "/api/answers/noise").get_json()
    assert body["computing"] == [] and body["demonstrations"][0]["params"]["n"]["value"] == 51
    assert 'http-equiv="refresh"' not in fresh_view(app, client, "/a/noise").get_data(
        as_text=True)
    assert fresh_view(app, client, "/a/noise/figures/samples-plot.png").status_code == 200


def test_a_page_being_computed_is_looked_at_again_within_seconds(app, client, answers_dir,
                                                                 held):
    changed_noise(answers_dir)
    site = app.extensions["kb"]
    answers = site.answers.current()
    outcome = site.outcome(answers.get("noise"), kb.web.site.View(), answers.generation)
    assert outcome.computing == ["d"] and outcome.keep_for() == kb.web.site.COMPUTING_RECHECK


def test_a_quick_rerun_is_shown_in_its_own_response(client):
    body = client.get("/api/answers/noise?seed=11").get_json()
    assert body["computing"] == [] and body["demonstrations"][0]["seed"] == 11
    assert body["demonstrations"][0]["error"] is None
    assert body["rerun"]["state"] == "done" and body["rerun"]["settings"] == "seed 11"
