"""Views at an answer's own settings never compute in their request: what is not computed yet
shows as computing (page, JSON and figures), the sampler computes it in the background, and
the next view shows it. Reruns compute in their own request."""
from __future__ import annotations

import threading

import pytest

import kb.run.executor
import kb.web.app
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


def test_a_rerun_computes_in_its_own_request(client):
    body = client.get("/api/answers/noise?seed=11").get_json()
    assert body["computing"] == [] and body["demonstrations"][0]["seed"] == 11
    assert body["demonstrations"][0]["error"] is None


@pytest.mark.parametrize("slots, status", [(1, 503), (2, 200)])
def test_requests_for_a_rerun_being_computed_do_not_wait_for_it(settings, monkeypatch, slots,
                                                                status):
    app = kb.web.app.create_app(settings.replace(compute_slots=slots), TESTING=True)
    app.extensions["kb"].warm(samples=False, figures=False)
    started, release = threading.Event(), threading.Event()
    compute = kb.run.executor.compute_isolated

    def held(*args, **kwargs):
        started.set()
        assert release.wait(60), "never released"
        return compute(*args, **kwargs)

    monkeypatch.setattr(kb.run.executor, "compute_isolated", held)
    first = threading.Thread(target=app.test_client().get, args=("/a/noise?seed=5",))
    first.start()
    try:
        assert started.wait(60)
        for url in ("/a/noise?seed=5", "/api/answers/noise?seed=5",
                    "/a/noise/figures/samples-plot.png?seed=5"):
            response = app.test_client().get(url)  # answered while the first still computes
            assert first.is_alive()
            # Busy (no slot), or computing elsewhere: a figure cannot be drawn yet either way.
            assert response.status_code == (503 if ".png" in url else status), url
            if response.status_code == 200:
                assert "is being computed" in response.get_data(as_text=True)
    finally:
        release.set()
        first.join(60)
    # Computing pages are kept COMPUTING_RECHECK seconds; looked at afresh, it is there.
    assert "is being computed" not in fresh_view(app, app.test_client(), "/a/noise?seed=5"
                                                 ).get_data(as_text=True)
