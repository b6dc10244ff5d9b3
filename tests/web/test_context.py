"""Each page and its JSON twin come from one context: the JSON is its data, the page the rest."""
from __future__ import annotations

from kb.web.context import answer_context, index_context, search_context
from kb.web.site import View


def answer_view(app, slug: str, view: View = View()):
    site = app.extensions["kb"]
    answers = site.answers.current()
    return answer_context(site.outcome(answers.get(slug), view, answers.generation))


def test_each_json_twin_is_its_contexts_data(app, client):
    with app.test_request_context("/"):  # the same host as the test client's requests
        twins = {
            "/api/answers": index_context(),
            "/api/search?q=noise&limit=10": search_context("noise", 10),
            "/api/answers/noise": answer_view(app, "noise"),
            "/api/answers/noise?seed=3": answer_view(app, "noise", View(seed=3)),
            "/api/answers/plain": answer_view(app, "plain"),
            "/api/answers/broken": answer_view(app, "broken"),
        }
    for url, context in twins.items():
        assert client.get(url).get_json() == context.data, url
        assert not set(context.data) & set(context.extra), f"{url}: a key in both hides one"


def test_the_page_shows_its_contexts_values(app, client):
    with app.test_request_context("/"):
        data = answer_view(app, "noise").data
    html = client.get("/a/noise").get_data(as_text=True)
    assert f'<meta property="og:url" content="{data["url"]}">' in html
    assert f'<meta property="og:image" content="{data["figures"][0]["png"]}">' in html
    holding = sum(1 for claim in data["claims"] if claim["holds"])
    assert f"{holding} of {len(data['claims'])} claims hold" in html
