"""``kb build``: the small answers of the web tests built into a tmp folder (no browser here;
``test_build_browser.py`` drives Chromium over the built site)."""
from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kb.build.build import build_site
from kb.build.layout import BuildError
from kb.build.output import MANIFEST
from kb.cli import main

BASE = "https://host.example/course/kb/"
RERUN = "https://live.example/kb/"
ATTRIBUTE = re.compile(r'\s(href|src|action)="([^"]*)"')


def build(settings, out: Path, **options):
    lines: list[str] = []
    report = build_site(settings, out, progress=lines.append, **options)
    return report, lines


@pytest.fixture
def site(settings, tmp_path):
    out = tmp_path / "site"
    report, lines = build(settings, out, base_url=BASE)
    return out, report, lines


def meta(page: str, name: str) -> str:
    found = re.search(rf'<meta (?:property|name)="{re.escape(name)}" content="([^"]*)">', page)
    assert found, name
    return found[1]


def test_every_part_of_the_site_is_written(site):
    out, report, lines = site
    for path in ("index.html", "search.html", "404.html", "search-index.json",
                 "a/noise.html", "a/plain.html", "a/broken.html",
                 "a/noise/figures/samples-plot.svg", "a/noise/figures/samples-plot.png",
                 "a/noise/figures/samples-plot.phone.svg",
                 "api/answers.json", "api/answers/noise.json", "api/answers/plain.json",
                 "static/style.css", "static/answer.js", "static/search.js",
                 "static/vendor/minisearch/minisearch.js",
                 "static/vendor/minisearch/LICENSE.txt"):
        assert (out / path).is_file(), path
    assert (out / "a/noise/figures/samples-plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "a/noise/figures/samples-plot.svg").read_text().lstrip().startswith("<?xml")
    # The broken answer's page is there, with the failure shown as the service shows it.
    assert "this experiment always fails" in (out / "a/broken.html").read_text()
    # Progress: one line per answer with its time, problems named, a summary.
    assert any(re.match(r"\[\d/3\] noise: \d+\.\d\d s \(\d+ runs computed", l) for l in lines)
    assert any("shown on its page" in l and "broken.md" in l for l in lines)
    assert re.search(r"\d+ files written", lines[-1])


def test_every_link_of_every_page_resolves_to_a_file(site):
    out, _, _ = site
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html"))
    assert len(pages) == 7  # home, search, 404, three answers, one old slug
    for page in pages:
        text = (out / page).read_text()
        for _, link in ATTRIBUTE.findall(text):
            parts = urlsplit(link.replace("&amp;", "&"))
            if parts.scheme or link.startswith("#") or link.startswith("data:"):
                assert parts.scheme in ("", "data", "https"), (page, link)
                if parts.scheme == "https":  # only absolute links are the site's own
                    assert link.startswith(BASE), (page, link)
                continue
            if page == "404.html":  # served at any path: from the site's root path
                assert parts.path.startswith("/course/kb/"), link
                target = parts.path[len("/course/kb/"):]
            else:
                assert not parts.path.startswith("/"), (page, link)
                target = posixpath.normpath(posixpath.join(posixpath.dirname(page), parts.path))
            assert (out / target).is_file(), (page, link)


def test_link_previews_and_json_carry_absolute_urls_under_the_base(site):
    out, _, _ = site
    page = (out / "a/noise.html").read_text()
    assert meta(page, "og:url") == BASE + "a/noise.html"
    assert meta(page, "og:image") == BASE + "a/noise/figures/samples-plot.png"
    assert f'<link rel="canonical" href="{BASE}a/noise.html">' in page
    assert f'id="share-link">{BASE}a/noise.html</textarea>' in page  # the share box
    assert f"]({BASE}a/noise.html)" in page  # the Markdown for the forum
    data = json.loads((out / "api/answers/noise.json").read_text())
    urls = [data["url"], *(f[k] for f in data["figures"] for k in ("svg", "svg_phone", "png")),
            *(r["url"] for r in data["related"])]
    listed = json.loads((out / "api/answers.json").read_text())
    urls += [a["url"] for t in listed["topics"] for a in t["answers"]]
    for url in urls:
        assert url.startswith(BASE), url
        assert (out / url[len(BASE):]).is_file(), url
    # The static page carries the service's policy itself: a static host sends no header.
    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', page)
    assert policy and "script-src 'self'" in policy[1] and "default-src 'none'" in policy[1]
    assert "<script>" not in page and " style=" not in page


def test_without_a_rerun_url_the_form_is_a_note(site):
    out, _, _ = site
    page = (out / "a/noise.html").read_text()
    assert 'class="rerun-form"' not in page
    assert 'class="rerun-note"' in page


def test_a_rerun_url_sends_the_form_to_the_live_service(settings, tmp_path):
    out = tmp_path / "site"
    build(settings, out, base_url=BASE, rerun_url=RERUN)
    page = (out / "a/noise.html").read_text()
    form = re.search(r'<form method="get" action="([^"]*)" class="rerun-form">', page)
    assert form and form[1].split("#")[0] == RERUN + "a/noise"  # the service's anchor kept
    assert 'name="d.n"' in page and 'class="rerun-note"' not in page
    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', page)
    assert "form-action 'self' https://live.example" in policy[1]


def test_a_second_build_computes_and_writes_nothing(settings, tmp_path):
    out = tmp_path / "site"
    first, _ = build(settings, out, base_url=BASE)
    assert first.computed > 0 and first.written
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    second, lines = build(settings, out, base_url=BASE)
    assert second.computed == 0 and second.cached == first.computed + first.cached
    assert second.written == [] and second.removed == []
    assert second.unchanged == len(first.written)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == mtimes
    assert "0 files written" in lines[-1]


def test_a_changed_answer_rewrites_its_files_and_a_removed_one_goes(settings, tmp_path):
    out = tmp_path / "site"
    build(settings, out, base_url=BASE)
    plain = settings.answers_dir / "plain.md"
    plain.write_text(plain.read_text().replace("Only words here.", "Only new words here."))
    report, _ = build(settings, out, base_url=BASE)
    assert set(report.written) == {"a/plain.html", "search-index.json"}  # not its JSON
    assert report.computed == 0
    plain.unlink()
    report, _ = build(settings, out, base_url=BASE)
    assert {"a/plain.html", "api/answers/plain.json"} <= set(report.removed)
    assert not (out / "a/plain.html").exists()
    assert "a/plain.html" not in json.loads((out / MANIFEST).read_text())["files"]


def test_old_slugs_lead_to_the_answer(site):
    out, _, _ = site
    page = (out / "a/sample-noise.html").read_text()
    assert '<meta http-equiv="refresh" content="0; url=noise.html">' in page
    assert f'<link rel="canonical" href="{BASE}a/noise.html">' in page


def test_the_404_page_links_under_the_base_path(site):
    out, _, _ = site
    page = (out / "404.html").read_text()
    assert "<h1>Not found</h1>" in page
    assert '<p class="error-reason">There is no page at this address.</p>' in page
    assert 'href="/course/kb/static/style.css"' in page
    assert 'action="/course/kb/search.html"' in page


def test_without_a_base_url_links_stay_relative(settings, tmp_path):
    out = tmp_path / "site"
    _, lines = build(settings, out)
    page = (out / "a/noise.html").read_text()
    assert 'href="../static/style.css"' in page
    assert meta(page, "og:url") == "/a/noise.html"
    assert "localhost" not in page
    assert "no --base-url" in lines[-1]


def test_the_command_line(settings, tmp_path, capsys):
    out = tmp_path / "site"
    args = ["--answers", str(settings.answers_dir), "--data", str(settings.data_dir), "build",
            "--out", str(out)]
    assert main([*args, "--base-url", "ftp://host/"]) == 2
    assert "--base-url must be an http(s) URL" in capsys.readouterr().err
    assert main([*args, "--base-url", BASE, "--jobs", "2"]) == 0
    assert "3 answers into" in capsys.readouterr().err
    assert (out / "a/noise.html").is_file()
    (out / "a/plain.html").unlink()
    (out / "a/plain.html").mkdir()  # a page the build cannot write (as root, too)
    assert main([*args, "--base-url", BASE]) == 1
    assert f"cannot write {out / 'a/plain.html'}: Is a directory" in capsys.readouterr().err


def test_a_link_the_static_site_cannot_have_stops_the_build(settings, tmp_path):
    noise = settings.answers_dir / "noise.md"
    noise.write_text(noise.read_text().replace("Some `code`", "[Health](/healthz) `code`"))
    with pytest.raises(BuildError, match=r"a/noise.html: the link /healthz cannot be published"):
        build(settings, tmp_path / "site", base_url=BASE)
