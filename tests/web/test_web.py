"""The HTTP surface, through Flask's test client: every route, its JSON twin and error paths."""
from __future__ import annotations

import gzip
import os
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

import kb.run.executor
from engine.catalog import get_experiment
from kb.config import PROJECT_ROOT, Settings
from kb.web.app import create_app


class Page(HTMLParser):
    """The parts of a page the tests look at."""

    def __init__(self, html: str):
        super().__init__()
        self.meta: dict[str, str] = {}
        self.links: list[dict] = []
        self.ids: list[str] = []
        self.anchors: list[str] = []  # hrefs
        self.elements: list[tuple[str, dict]] = []
        self.text_parts: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.elements.append((tag, attrs))
        if tag == "meta" and "content" in attrs:
            self.meta[attrs.get("property") or attrs.get("name")] = attrs["content"]
        if tag == "link":
            self.links.append(attrs)
        if tag == "a" and "href" in attrs:
            self.anchors.append(attrs["href"])
        if "id" in attrs:
            self.ids.append(attrs["id"])

    def handle_data(self, data):
        self.text_parts.append(data)

    @property
    def text(self) -> str:
        return " ".join("".join(self.text_parts).split())

    def find(self, tag: str, **attrs) -> list[dict]:
        return [a for t, a in self.elements
                if t == tag and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())]

    def element_by_id(self, id_: str) -> dict:
        return next(a for _, a in self.elements if a.get("id") == id_)


def page(client, url: str, status: int = 200) -> Page:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    assert response.mimetype == "text/html"
    return Page(response.get_data(as_text=True))


def noise_values(seed: int = 0, **params) -> dict:
    experiment = get_experiment("test_web_noise")
    return experiment.run(experiment.resolve({"n": 50, **params}), seed)


# --- the simple routes --------------------------------------------------------------------


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_index_has_one_search_box_and_every_question_grouped_by_topic(client):
    index = page(client, "/")
    assert len(index.find("form", action="/search", method="get")) == 1
    assert len(index.find("input", name="q", type="search")) == 1
    assert "viewport" in index.meta and "width=device-width" in index.meta["viewport"]
    # Topics in the order of kb.answers.parse.TOPICS; an answer without one comes last.
    sections = [i for i in index.ids if i.startswith("topic-") and not i.endswith("-title")]
    assert sections == ["topic-what-batch-norm-computes", "topic-noise-and-regularization",
                        "topic-more-questions"]
    html = client.get("/").get_data(as_text=True)
    first = html[html.index('id="topic-what-batch-norm-computes"'):
                 html.index('id="topic-noise-and-regularization"')]
    assert "/a/plain" in first and "/a/noise" not in first and "/a/broken" not in first
    assert "/a/broken" in html[html.index('id="topic-more-questions"'):]
    assert "Batch Normalization Intuition" not in index.text  # threads are not sections


def test_index_describes_the_site_for_link_previews(client):
    index = page(client, "/")
    assert index.meta["og:type"] == "website"
    assert index.meta["og:url"] == "http://localhost/"
    assert index.meta["og:title"] == "Batch norm, answered"
    assert index.meta["description"] == index.meta["og:description"]
    assert "batch normalization" in index.meta["description"]
    assert {"rel": "canonical", "href": "http://localhost/"} in index.links


def test_index_json_twin_groups_the_same_answers(client):
    topics = client.get("/api/answers").get_json()["topics"]
    assert [(t["topic"], [a["slug"] for a in t["answers"]]) for t in topics] == [
        ("What batch norm computes", ["plain"]),
        ("Noise and regularization", ["noise"]),
        ("More questions", ["broken"]),
    ]
    assert topics[0]["answers"][0]["url"] == "http://localhost/a/plain"
    assert topics[0]["answers"][0]["thread"] == "Batch Normalization Intuition"


def test_pages_fetch_nothing_from_elsewhere(client):
    for url in ("/", "/a/noise", "/search?q=noise", "/a/missing"):
        html = client.get(url).get_data(as_text=True)
        for tag in ("script", "link", "img"):
            for attrs in Page(html).find(tag):
                source = attrs.get("src") or attrs.get("href") or ""
                if tag == "link" and attrs.get("rel") == "canonical":
                    continue
                assert not urlsplit(source).netloc, f"{url}: {tag} loads {source}"


def test_static_files_are_served(client):
    assert client.get("/static/style.css").status_code == 200
    assert b"font-family: math" in client.get("/static/style.css").data
    assert client.get("/static/answer.js").status_code == 200


# --- search -------------------------------------------------------------------------------


def test_search_page_shows_highlighted_results(client):
    results = page(client, "/search?q=samples")
    html = client.get("/search?q=samples").get_data(as_text=True)
    assert results.find("a", href="http://localhost/a/noise")
    assert "<mark>" in html
    assert "Did you mean" not in results.text


def test_search_page_offers_did_you_mean(client):
    results = page(client, "/search?q=nosie")
    assert "Did you mean noise?" in results.text
    assert results.find("a", href="/search?q=noise")


def test_search_json_shape(client):
    body = client.get("/api/search?q=noisy+samples&limit=5").get_json()
    assert body["query"] == "noisy samples"
    assert body["results"], body
    for hit in body["results"]:
        assert set(hit) == {"slug", "title", "url", "score", "snippet", "snippet_html"}
        assert hit["url"] == f"http://localhost/a/{hit['slug']}"
        assert isinstance(hit["score"], float)
    assert body["results"][0]["slug"] == "noise"


def test_search_limit_caps_the_results(client):
    assert len(client.get("/api/search?q=answer&limit=1").get_json()["results"]) == 1


@pytest.mark.parametrize("limit", ["0", "101", "abc", "1.5", "-3", ""])
def test_search_limit_is_validated(client, limit):
    for prefix in ("/api", ""):
        response = client.get(f"{prefix}/search?q=noise&limit={limit}")
        assert response.status_code == 400
        reason = (response.get_json()["error"] if prefix
                  else Page(response.get_data(as_text=True)).text)
        assert "limit must be an integer in [1, 100]" in reason


def test_empty_search_shows_a_prompt(client):
    assert "Type a few words" in page(client, "/search?q=").text
    assert client.get("/api/search?q=").get_json()["results"] == []


KNOWN_SLUGS = {"noise", "plain", "broken"}  # the fixtures' answers (tests/web/conftest.py)


@hypothesis_settings(max_examples=40, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=300))
def test_any_search_query_gives_ranked_known_answers(client, query):
    page_response = client.get("/search", query_string={"q": query})
    assert page_response.status_code == 200
    body = client.get("/api/search", query_string={"q": query}).get_json()
    assert body["query"] == query.strip()
    slugs = [hit["slug"] for hit in body["results"]]
    assert set(slugs) <= KNOWN_SLUGS and len(slugs) == len(set(slugs)) <= 10
    scores = [hit["score"] for hit in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert all(hit["url"] == f"http://localhost/a/{hit['slug']}" for hit in body["results"])
    assert body["suggestion"] is None or body["suggestion"] != query


# --- answer pages -------------------------------------------------------------------------


def test_answer_page_shows_question_summary_math_values_and_claims(client):
    answer = page(client, "/a/noise")
    html = client.get("/a/noise").get_data(as_text=True)
    assert "How noisy are the samples?" in answer.text
    assert "how far is their mean from zero?" in answer.text  # the question
    assert "typical distance is one over the square root" in answer.text  # the summary
    assert answer.find("math", display="inline") and answer.find("math", display="block")
    assert answer.find("code", class_="math-error")  # $x^$
    values = noise_values()
    assert f"The mean of the samples is {values['mean']:.3f} and their spread " \
           f"{values['spread']:.2f}." in answer.text
    assert "{{" not in html
    holds = answer.element_by_id("claim-spread-positive")
    fails = answer.element_by_id("claim-mean-huge")
    assert "claim-holds" in holds["class"] and "claim-fails" in fails["class"]
    box = html[html.index('id="claim-mean-huge"'):]
    assert "✗" in box[:200] and f"d.mean = {values['mean']:.4g} (needs &gt; 10)" in box
    assert 'seed <span class="claim-seeds">0</span>' in box
    assert "1 of 2 claims hold with the answer's own seeds" in answer.text


def test_answer_page_has_stable_anchors(client):
    ids = page(client, "/a/noise").ids
    for anchor in ("why-the-mean-moves-with-n", "costs-5-and-code-x", "claim-spread-positive",
                   "claim-mean-huge", "figure-samples-plot", "rerun", "share"):
        assert anchor in ids
    assert page(client, "/a/noise").ids == ids


def test_answer_page_shows_its_figure_with_svg_and_png_links(client):
    answer = page(client, "/a/noise")
    assert answer.find("img", src="/a/noise/figures/samples-plot.svg")
    assert "/a/noise/figures/samples-plot.png" in answer.anchors


def test_figures_are_served_as_png_and_svg(client):
    png = client.get("/a/noise/figures/samples-plot.png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.data.startswith(b"\x89PNG\r\n\x1a\n")
    svg = client.get("/a/noise/figures/samples-plot.svg")
    assert svg.mimetype == "image/svg+xml" and b"<svg" in svg.data[:1000]
    again = client.get("/a/noise/figures/samples-plot.png",
                       headers={"If-None-Match": png.headers["ETag"].strip('"')})
    assert again.status_code == 304 and again.headers["Cache-Control"] == "public, max-age=300"



def test_svg_figures_are_gzipped_for_browsers_that_ask(client):
    plain = client.get("/a/noise/figures/samples-plot.svg")
    packed = client.get("/a/noise/figures/samples-plot.svg", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed.vary
    assert gzip.decompress(packed.data) == plain.data and len(packed.data) < len(plain.data) / 2
    assert packed.headers["ETag"] != plain.headers["ETag"]  # other bytes, another validator
    png = client.get("/a/noise/figures/samples-plot.png", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in png.headers  # compressed already

def test_figure_urls_honour_seed_and_parameters(client):
    plain = client.get("/a/noise/figures/samples-plot.png").data
    seeded = client.get("/a/noise/figures/samples-plot.png?seed=4").data
    fewer = client.get("/a/noise/figures/samples-plot.png?d.n=10").data
    assert len({plain, seeded, fewer}) == 3
    assert client.get("/a/noise/figures/samples-plot.png?seed=4").data == seeded


@pytest.mark.parametrize("url", ["/a/noise/figures/nope.png", "/a/plain/figures/samples-plot.png",
                                 "/a/noise/figures/samples-plot.gif", "/a/nope/figures/x.png"])
def test_unknown_figures_are_404(client, url):
    assert client.get(url).status_code == 404


def test_figure_of_a_failed_demonstration_is_404_with_the_reason(client, answers_dir):
    path = answers_dir / "noise.md"
    text = path.read_text().replace("experiment: test_web_noise\n", "experiment: test_web_broken\n")
    path.write_text(text.replace("params: {n: 50}\n", ""))
    response = client.get("/a/noise/figures/samples-plot.png")
    assert response.status_code == 404
    assert "answers/noise.md" in response.get_data(as_text=True)


def test_rerun_with_another_seed_changes_values_and_claims(client):
    default, seeded = page(client, "/a/noise"), page(client, "/a/noise?seed=3")
    values = noise_values(seed=3)
    assert f"The mean of the samples is {values['mean']:.3f}" in seeded.text
    assert f"{noise_values()['mean']:.3f}" != f"{values['mean']:.3f}"
    assert "1 of 2 claims hold with seed 3" in seeded.text
    html = client.get("/a/noise?seed=3").get_data(as_text=True)
    assert 'seed <span class="claim-seeds">3</span>' in html
    assert seeded.find("img", src="/a/noise/figures/samples-plot.svg?seed=3")
    assert default.text != seeded.text


def test_rerun_form_is_a_get_form_over_every_parameter(client):
    answer = page(client, "/a/noise?d.n=20")
    form = answer.find("form", class_="rerun-form")[0]
    assert form["method"] == "get" and form["action"].startswith("/a/noise")
    assert answer.find("input", name="seed", type="number")
    n_field = answer.find("input", name="d.n")[0]
    assert (n_field["value"], n_field["min"], n_field["max"], n_field["data-default"]) == (
        "20", "2", "1000", "50")
    assert answer.find("select", name="d.kind")


def test_parameters_change_the_demonstration(client):
    body = client.get("/api/answers/noise?d.n=20&d.kind=uniform").get_json()
    params = body["demonstrations"][0]["params"]
    assert params["n"]["value"] == 20 and params["kind"]["value"] == "uniform"
    values = noise_values(n=20, kind="uniform")
    claim = next(c for c in body["claims"] if c["id"] == "mean-huge")
    assert claim["value"] == values["mean"]
    assert body["url"] == "http://localhost/a/noise?d.kind=uniform&d.n=20"


def test_equivalent_urls_show_the_same_normalized_view(client):
    plain = page(client, "/a/noise")
    spelled_out = page(client, "/a/noise?d.n=50&d.scale=1&utm_source=forum&seed=")
    assert plain.meta["og:url"] == spelled_out.meta["og:url"] == "http://localhost/a/noise"
    assert plain.text == spelled_out.text


@pytest.mark.parametrize("query, reason", [
    ("d.n=5000", "parameter 'n' = 5000 is outside its range [2, 1000]"),
    ("d.n=abc", "parameter 'n' must be a whole number between 2 and 1000, got 'abc'"),
    ("d.scale=nan", "parameter 'scale' must be a finite number between 0.0 and 10.0, got 'nan'"),
    ("d.kind=triangle", "parameter 'kind' = 'triangle' is not allowed: one of 'normal', 'uniform'"),
    ("d.depth=3", "experiment 'test_web_noise' has no parameter 'depth'"),
    ("x.n=3", "answer 'noise' has no demonstration 'x' (it has: d)"),
    ("seed=-1", "seed must be an integer in [0, 4294967295], got '-1'"),
    ("seed=abc", "seed must be an integer in [0, 4294967295], got 'abc'"),
    ("seed=99999999999999999999999", "seed must be an integer in [0, 4294967295]"),
])
def test_bad_parameters_give_400_with_the_reason(client, query, reason):
    html = client.get(f"/a/noise?{query}")
    assert html.status_code == 400
    shown = Page(html.get_data(as_text=True))
    # The answer with its own settings, saying why these cannot be run and where to fix them.
    assert reason in shown.text and shown.find("a", href="#rerun")
    assert shown.meta["og:url"] == "http://localhost/a/noise"
    api = client.get(f"/api/answers/noise?{query}")
    assert api.status_code == 400 and reason in api.get_json()["error"]
    assert client.get(f"/a/noise/figures/samples-plot.png?{query}").status_code == 400


def test_aliases_redirect_permanently_keeping_the_view(client):
    for old, new in [("/a/sample-noise", "/a/noise"),
                     ("/a/sample-noise?seed=2&d.n=9", "/a/noise?seed=2&d.n=9"),
                     ("/api/answers/sample-noise?seed=2", "/api/answers/noise?seed=2"),
                     ("/a/sample-noise/figures/samples-plot.png?seed=1",
                      "/a/noise/figures/samples-plot.png?seed=1")]:
        response = client.get(old)
        assert response.status_code == 301, old
        assert response.headers["Location"] == new


def test_unknown_answer_is_404_with_search_suggestions(client):
    missing = page(client, "/a/noisy-samples", status=404)
    assert "There is no answer at 'noisy-samples'." in missing.text
    assert "http://localhost/a/noise" in missing.anchors
    body = client.get("/api/answers/noisy-samples")
    assert body.status_code == 404
    assert [s["slug"] for s in body.get_json()["suggestions"]][:1] == ["noise"]


def test_unknown_routes_are_404_pages(client):
    assert "Not found" in page(client, "/nowhere", status=404).text
    assert client.get("/api/nowhere").get_json()["status"] == 404
    assert client.post("/a/noise").status_code == 405


def test_answer_json_twin(client):
    body = client.get("/api/answers/noise?seed=2").get_json()
    assert {"title", "question", "summary", "url", "figures", "demonstrations",
            "claims"} <= set(body)
    assert body["title"] == "How noisy are the samples?" and body["seed"] == 2
    assert body["url"] == "http://localhost/a/noise?seed=2"
    assert body["figures"] == [{
        "name": "samples-plot", "caption": "The samples, one dot each.", "demonstration": "d",
        "svg": "http://localhost/a/noise/figures/samples-plot.svg?seed=2",
        "svg_phone": "http://localhost/a/noise/figures/samples-plot.phone.svg?seed=2",
        "png": "http://localhost/a/noise/figures/samples-plot.png?seed=2",
    }]
    demo = body["demonstrations"][0]
    assert demo["seed"] == 2 and demo["error"] is None
    assert demo["params"]["n"] == {"value": 50, "default": 50, "range": "[2, 1000]", "query": "d.n"}
    claims = {c["id"]: c for c in body["claims"]}
    assert claims["spread-positive"]["holds"] is True and claims["mean-huge"]["holds"] is False
    assert claims["mean-huge"]["value"] == noise_values(seed=2)["mean"]
    assert claims["mean-huge"]["seeds"] == [2] and claims["mean-huge"]["text"]
    assert [r["slug"] for r in body["related"]] == ["plain", "broken"]


@hypothesis_settings(max_examples=30, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.dictionaries(
    st.sampled_from(["seed", "d.n", "d.scale", "d.kind", "x.n", "d.", ".n"]) | st.text(max_size=8),
    st.integers(-5, 2000).map(str) | st.sampled_from(["1e3", "nan", "uniform", "0x10"])
    | st.text(max_size=10),
    max_size=3))
def test_any_answer_query_gives_the_page_or_a_400(client, query):
    for url in ("/a/noise", "/api/answers/noise"):
        response = client.get(url, query_string=query)
        assert response.status_code in (200, 400), (query, response.status_code)


# --- link previews and sharing ------------------------------------------------------------


def test_link_preview_tags(client):
    answer = page(client, "/a/noise?seed=3")
    meta = answer.meta
    assert meta["og:title"] == "How noisy are the samples?"
    assert meta["og:description"].startswith("The mean of fifty standard normal samples")
    assert len(meta["og:description"]) <= 250
    assert meta["og:url"] == "http://localhost/a/noise?seed=3"
    assert meta["og:image"] == "http://localhost/a/noise/figures/samples-plot.png?seed=3"
    assert meta["twitter:card"] == "summary_large_image"
    assert [link["href"] for link in answer.links if link.get("rel") == "canonical"] == [
        "http://localhost/a/noise"]
    image = urlsplit(meta["og:image"])
    png = client.get(f"{image.path}?{image.query}")
    assert png.status_code == 200 and png.mimetype == "image/png"


def test_link_previews_use_the_configured_public_url(settings):
    behind_proxy = Settings(settings.answers_dir, settings.data_dir, "https://kb.example.org/")
    client = create_app(behind_proxy.replace(reload_interval=0.0)).test_client()
    meta = page(client, "/a/noise").meta
    assert meta["og:image"] == "https://kb.example.org/a/noise/figures/samples-plot.png"
    assert meta["og:url"] == "https://kb.example.org/a/noise"


def test_answer_without_figures_has_a_small_card(client):
    meta = page(client, "/a/plain").meta
    assert "og:image" not in meta and meta["twitter:card"] == "summary"


def test_long_summary_is_cut_for_previews(client, answers_dir):
    long = "word " * 80
    path = answers_dir / "plain.md"
    path.write_text(path.read_text().replace("summary: Yes, this one only has words.",
                                             f"summary: {long.strip()}"))
    answer = page(client, "/a/plain")
    assert len(answer.meta["og:description"]) <= 250
    assert answer.meta["og:description"].endswith("word…")
    assert "more than 250" in answer.text  # the parser's complaint, in the error box


def test_share_box_has_the_permalink_and_a_forum_snippet(client):
    answer = page(client, "/a/noise?seed=3")
    assert "readonly" in answer.element_by_id("share-link")
    html = client.get("/a/noise?seed=3").get_data(as_text=True)
    # The whole link shows, wrapped if need be: a textarea, not an input cut at its width.
    link = html[html.index('id="share-link">') + len('id="share-link">'):]
    assert link[:link.index("</textarea>")] == answer.meta["og:url"]
    snippet = html[html.index('id="share-markdown">') + len('id="share-markdown">'):]
    snippet = snippet[:snippet.index("</textarea>")]
    assert snippet.startswith("The mean of fifty standard normal samples")
    assert "[How noisy are the samples?](http://localhost/a/noise?seed=3)" in snippet
    assert answer.find("button", class_="copy")  # hidden until the script shows it


def test_related_answers_and_source_thread_close_the_page(client):
    answer = page(client, "/a/noise")
    html = client.get("/a/noise").get_data(as_text=True)
    related = html[html.index('id="related"'):]
    assert "http://localhost/a/plain" in related and "http://localhost/a/broken" in related
    assert "the forum thread “Why does batch norm work?”" in Page(related).text
    assert "/#topic-noise-and-regularization" in answer.anchors


# --- broken answers and changes on disk ---------------------------------------------------


def test_broken_answer_renders_with_an_error_box_and_others_stay_fine(client):
    broken = page(client, "/a/broken")
    html = client.get("/a/broken").get_data(as_text=True)
    assert broken.find("div", class_="error-box", role="alert")
    assert "answers/broken.md:10: unknown front matter key 'colour'" in broken.text
    assert "answers/broken.md:15: demonstration 'bad' failed: RuntimeError" in broken.text
    assert "Before the broken demonstration." in broken.text and "After it;" in broken.text
    assert "claim-unknown" in broken.element_by_id("claim-never")["class"]
    assert "1 could not be checked" in broken.text
    assert "experiment: test_web_broken" not in html
    errors = client.get("/api/answers/broken").get_json()["errors"]
    assert errors[0].startswith("answers/broken.md:10")
    for url in ("/", "/a/noise", "/a/plain", "/search?q=broken"):
        assert client.get(url).status_code == 200


def test_a_failed_demonstration_is_recorded_and_no_worker_computes_it_again(
        app, client, settings, monkeypatch):
    computed, compute = [], kb.run.executor.compute_isolated
    monkeypatch.setattr(kb.run.executor, "compute_isolated",
                        lambda *args, **kw: computed.append(args[0]) or compute(*args, **kw))
    # Another worker: another app over the same data folder (the warm-up recorded the
    # failure of the answer's own settings already).
    other = create_app(settings.replace(reload_interval=0.0), TESTING=True).test_client()
    for each in (client, other, client):
        for url in ("/a/broken", "/api/answers/broken", "/a/broken?seed=3"):
            response = each.get(url)
            assert response.status_code == 200
            assert "failed: RuntimeError: this experiment always fails" in response.get_data(
                as_text=True)
    assert computed == ["test_web_broken"]  # the view at seed 3, once, by the first worker


def test_error_box_names_a_failed_demonstration_once(client):
    broken = page(client, "/a/broken")
    assert broken.text.count("demonstration 'bad' failed") == 3  # error box, its block, the claim


def test_unreadable_answer_file_still_renders(client, answers_dir):
    (answers_dir / "garbage.md").write_text("---\ntitle: [unclosed\n---\n\n# Hello $x^$\n")
    garbage = page(client, "/a/garbage")
    assert "answers/garbage.md:" in garbage.text
    assert page(client, "/").find("a", href="http://localhost/a/garbage")
    assert client.get("/a/noise").status_code == 200


def test_edited_answers_are_reparsed_and_reindexed(client, answers_dir):
    assert page(client, "/a/plain").find("h1")
    path = answers_dir / "plain.md"
    text = path.read_text().replace("A plain answer without demonstrations", "Zebra stripes")
    path.write_text(text)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert "Zebra stripes" in page(client, "/a/plain").text
    hits = client.get("/api/search?q=zebra").get_json()["results"]
    assert [h["slug"] for h in hits] == ["plain"]
    (answers_dir / "plain.md").unlink()
    assert client.get("/a/plain").status_code == 404


def test_index_is_built_on_first_search(client, settings):
    assert not settings.index_dir.exists()
    client.get("/api/search?q=noise")
    assert settings.index_dir.exists()


def test_answer_pages_are_conditional(client):
    first = client.get("/a/noise")
    again = client.get("/a/noise", headers={"If-None-Match": first.headers["ETag"].strip('"')})
    assert again.status_code == 304 and again.headers["ETag"] == first.headers["ETag"]
    assert "Date" not in again.headers  # the server adds its own; two would be malformed


def test_compressed_answer_pages_are_conditional_on_their_own_etag(client):
    gzip_first = client.get("/a/noise", headers={"Accept-Encoding": "gzip"})
    etag = gzip_first.headers["ETag"]
    assert etag.endswith('-gzip"')
    again = client.get("/a/noise", headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag and "Accept-Encoding" in again.vary
    # The compressed page's ETag does not match the plain page, nor the other way round.
    assert client.get("/a/noise", headers={"If-None-Match": etag}).status_code == 200
    plain_etag = client.get("/a/noise").headers["ETag"]
    assert client.get("/a/noise", headers={"Accept-Encoding": "gzip",
                                           "If-None-Match": plain_etag}).status_code == 200


def test_answer_pages_are_compressed_for_clients_that_accept_it(client):
    plain = client.get("/a/noise")
    packed = client.get("/a/noise", headers={"Accept-Encoding": "gzip, deflate"})
    assert packed.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed.vary
    assert gzip.decompress(packed.data) == plain.data
    assert len(packed.data) < len(plain.data) / 2
    assert packed.headers["ETag"] != plain.headers["ETag"]


@pytest.mark.parametrize("url", [
    "/a/%00", "/a/noise?d.n=1e309", "/a/noise?d.=3", "/a/noise?.n=3", "/a/noise?d.n=",
    "/a/noise?seed=%00", "/search?q=%00%ff", "/api/search?q=title:(", "/a/" + "x" * 5000,
    "/api/answers/%E2%9C%93", "/a/noise/figures/..%2F..%2Fetc.png",
])
def test_odd_input_never_causes_a_server_error(client, url):
    assert client.get(url).status_code < 500


# --- the real answers ---------------------------------------------------------------------


def test_every_real_answer_page_renders():
    answers_dir = PROJECT_ROOT / "answers"
    slugs = sorted(p.stem for p in Path(answers_dir).glob("*.md"))
    if not slugs:
        pytest.skip(f"no answers in {answers_dir} yet")
    # The project's own data folder: its demonstration cache is what `kb check` fills.
    client = create_app(Settings.from_env(answers_dir=answers_dir)).test_client()
    for slug in slugs:
        response = client.get(f"/a/{slug}")
        assert response.status_code == 200, slug
        assert Page(response.get_data(as_text=True)).find("h1"), slug
