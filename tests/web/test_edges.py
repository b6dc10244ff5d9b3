"""Request edges: a bad Host is a plain 400 before anything renders, trusted hosts in
production, the security headers on every response, no inline script or style, every
parameter (lists included) validated before anything is computed, and a fuzz of methods,
paths, query strings and headers that never gets a server error."""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

import kb.run.executor
from engine.registry import Param, ParameterError, experiment
from kb.config import PROJECT_ROOT
from kb.jobs.queue import QueueFull
from kb.web.app import create_app
from kb.web.edges import PAGE_POLICY, SVG_POLICY, well_formed_host
from kb.web.site import AnswerStore, parse_view


def parse_sizes(text: str) -> list[int]:
    """The experiment's own reading of its list parameter: the registry's check finds it."""
    sizes = [int(part) for part in text.split(",")]
    if not sizes or sorted(set(sizes)) != sizes:
        raise ParameterError(f"parameter 'sizes' = {text!r} must list increasing integers")
    return sizes


@experiment("test_edges_listy", params={"sizes": Param(str, "2,4", doc="batch sizes")})
def listy(rng, sizes):
    return {"count": len(parse_sizes(sizes))}


LISTY = """\
---
slug: listy
title: A list parameter
question: Is a list parameter checked?
thread: Edges
tags: []
aliases: []
related: []
summary: Before anything is computed.
---

It has {{ l.count }} sizes.

```demo l
experiment: test_edges_listy
seed: 0
```
"""

ROUTES = ["/", "/search?q=noise", "/a/noise", "/a/broken", "/a/plain", "/a/noise?seed=3",
          "/a/noise/figures/samples-plot.png", "/static/style.css", "/static/answer.js",
          "/api/answers", "/api/search?q=noise", "/api/answers/noise", "/healthz",
          "/a/nothing-here", "/nothing/here", "/a/noise?d.n=1", "/api/answers/noise?d.n=1"]


def assert_security_headers(response, policy: str = PAGE_POLICY) -> None:
    assert response.headers["Content-Security-Policy"] == policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


@pytest.mark.parametrize("host", ["a..b", "a" * 64, "a" * 64 + ".example.org", "x y",
                                  "<script>", "example.org:99999", "example.org:", "-a.org",
                                  "." * 3, "é.example", "a" * 300, "web_1"])
@pytest.mark.parametrize("path", ["/a/noise", "/", "/static/style.css", "/api/answers",
                                  "/healthz", "/a/nothing-here"])
def test_a_bad_host_is_a_plain_400_before_anything_renders(client, host, path):
    response = client.get(path, headers={"Host": host})
    assert response.status_code == 400 and response.mimetype == "text/plain"
    assert host not in response.get_data(as_text=True)
    assert_security_headers(response)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1:8000", "kb.example.org",
                                  "[::1]:8000", "a" * 63 + ".example.org", "web-1:8000"])
def test_well_formed_hosts_are_served(client, host):
    assert well_formed_host(host)
    response = client.get("/a/noise", headers={"Host": host})
    assert response.status_code == 200
    assert f'content="http://{host}/a/noise"' in response.get_data(as_text=True)


def test_trusted_hosts_answer_only_to_their_names(settings):
    app = create_app(settings.replace(trusted_hosts="kb.example.org, .kb.test",
                                      base_url="https://kb.example.org"), TESTING=True)
    client = app.test_client()
    for host in ("kb.example.org", "kb.example.org:8000", "www.kb.test"):
        assert client.get("/a/plain", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example", "localhost", "kb.example.org.evil.example"):
        response = client.get("/a/plain", headers={"Host": host})
        assert response.status_code == 400 and response.mimetype == "text/plain", host
    page = client.get("/a/plain", headers={"Host": "www.kb.test"}).get_data(as_text=True)
    assert 'content="https://kb.example.org/a/plain"' in page  # never the Host header


@pytest.mark.parametrize("url", ROUTES)
def test_every_response_carries_the_security_headers(client, url):
    assert_security_headers(client.get(url))


def test_svg_figures_keep_their_inline_styles_and_nothing_else(client):
    response = client.get("/a/noise/figures/samples-plot.svg")
    assert response.status_code == 200
    assert_security_headers(response, SVG_POLICY)
    assert "script-src" not in SVG_POLICY and "default-src 'none'" in SVG_POLICY


def test_405_and_busy_responses_carry_them_too(app, client, monkeypatch):
    assert_security_headers(client.post("/a/noise"))

    def full(job, client):
        raise QueueFull(total=True)

    monkeypatch.setattr(app.extensions["kb"].jobs, "submit", full)
    busy = client.get("/a/noise?d.n=77")
    assert busy.status_code == 503
    assert_security_headers(busy)


@pytest.mark.parametrize("url", ["/", "/search?q=noise", "/a/noise", "/a/broken",
                                 "/a/noise?seed=4", "/a/nothing-here", "/a/noise?d.n=1"])
def test_pages_have_no_inline_script_or_style(client, url):
    html = client.get(url).get_data(as_text=True)
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert all(" src=" in tag for tag in scripts), scripts
    assert not re.search(r"<style\b", html) and not re.search(r"\sstyle\s*=", html)
    assert not re.search(r"\son[a-z]+\s*=", html)  # no inline event handlers either


def test_every_real_answer_page_is_free_of_inline_script_and_style():
    client = create_app(TESTING=True).test_client()
    for path in sorted((PROJECT_ROOT / "answers").glob("*.md")):
        html = client.get(f"/a/{path.stem}").get_data(as_text=True)
        assert not re.search(r"<style\b|\sstyle\s*=|<script(?![^>]*\ssrc=)", html), path.stem


def test_a_list_parameter_is_validated_before_anything_is_computed(client, answers_dir,
                                                                  monkeypatch):
    (answers_dir / "listy.md").write_text(LISTY)
    computed = []
    monkeypatch.setattr(kb.run.executor, "compute_isolated",
                        lambda *args, **kw: computed.append(args) or ({"count": 0}, 0.0))
    for url in ("/a/listy?l.sizes=<script>", "/api/answers/listy?l.sizes=4,2",
                "/a/listy/figures/x.png?l.sizes=,"):
        response = client.get(url)
        # The refused page shows the answer's own settings, which the background sampler may
        # compute as for any reader; the refused values themselves never reach a computation.
        asked = [args[1] for args in computed if args[1] != {"sizes": "2,4"}]
        assert response.status_code in (400, 404) and asked == [], url
    body = client.get("/api/answers/listy?l.sizes=<script>").get_json()
    assert body["status"] == 400 and "parameter 'sizes'" in body["error"]


def test_the_real_list_parameter_is_refused_with_its_reason():
    answer = AnswerStore(PROJECT_ROOT / "answers").current().get(
        "running-averages-during-training")
    if answer is None or "ewa" not in {d.name for d in answer.demonstrations}:
        pytest.skip("the answer with the list parameter has changed")
    with pytest.raises(ParameterError, match="batch_sizes"):
        parse_view(answer, {"ewa.batch_sizes": "<script>"})


# --- the fuzz -------------------------------------------------------------------------------

_text = st.text(st.characters(codec="latin-1", exclude_categories=["Cs"]), max_size=40)
_paths = st.sampled_from([
    "/", "/search", "/a/noise", "/a/broken", "/a/plain", "/a/sample-noise", "/api/answers",
    "/api/search", "/api/answers/noise", "/a/noise/figures/samples-plot.png",
    "/a/noise/figures/samples-plot.svg", "/static/style.css", "/healthz", "/a/",
]) | st.builds(lambda a, b: f"/{a}/{b}", st.sampled_from(["a", "api/answers", "static"]),
               st.text(st.characters(codec="ascii", exclude_characters="/?#%"), max_size=20))
_query = st.lists(st.tuples(
    st.sampled_from(["seed", "d.n", "d.scale", "d.kind", "q", "limit", "d.", "x.y"]) | _text,
    st.sampled_from(["3", "-1", "1e309", "nan", "uniform", "0", "99999999999"]) | _text,
), max_size=4)
_header_text = st.text(st.characters(codec="latin-1", exclude_categories=["Cs", "Cc"]),
                       max_size=40)  # what an HTTP server passes on: no line breaks
_headers = st.dictionaries(
    st.sampled_from(["Host", "Accept-Encoding", "If-None-Match", "Accept", "Cookie", "Range",
                     "X-Forwarded-For", "Content-Type"]),
    st.sampled_from(["gzip", "*", "\"abc\"", "bytes=0-1", "localhost", "a..b"]) | _header_text,
    max_size=3)


@hypothesis_settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])
@given(method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH",
                               "PROPFIND"]),
       path=_paths, query=_query, headers=_headers)
def test_no_request_gets_a_server_error(client, method, path, query, headers):
    response = client.open(path, method=method, query_string=query, headers=headers)
    assert response.status_code < 500 or response.status_code == 503, (
        method, path, query, headers, response.get_data(as_text=True)[:500])
    assert response.headers["X-Content-Type-Options"] == "nosniff"
