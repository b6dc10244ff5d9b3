"""``build_site``: the whole knowledge base as static files, made by the service itself.

Every page is rendered by the real Flask app (its test client, under the public base URL), so
the static pages are what the service shows; ``kb.build.layout`` then puts each at its file
and rewrites its links, ``kb.build.pages`` adds what a static page needs. Before an answer's
pages are made, its demonstrations at its own settings (with their figures) and at its sample
of seeds (its findings' measurements) are computed by the service's executor, or read from the
demonstration cache: a second build with nothing changed computes nothing and writes nothing.
Answers are built ``jobs`` at a time, in threads (each computation runs in a child process of
its own, as in the service).
"""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from flask import Flask

from kb.build.layout import BuildError, Layout, normalize_base
from kb.build.output import Output
from kb.build.pages import (
    alias_page, not_found, static_policy, with_policy, with_rerun, with_search_scripts,
)
from kb.build.searchindex import search_index
from kb.config import Settings
from kb.model import Answer
from kb.run.figures import FORMATS
from kb.web.app import create_app


@dataclass(frozen=True)
class AnswerBuilt:
    slug: str
    seconds: float
    computed: int  # demonstration runs computed for this build
    cached: int  # demonstration runs read from the cache
    problems: list[str]  # as the page shows them (file:line first)


@dataclass
class BuildReport:
    answers: list[AnswerBuilt] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def computed(self) -> int:
        return sum(a.computed for a in self.answers)

    @property
    def cached(self) -> int:
        return sum(a.cached for a in self.answers)


class _Builder:
    def __init__(self, app: Flask, layout: Layout, output: Output, rerun_url: str | None):
        self.app = app
        self.site = app.extensions["kb"]
        self.layout = layout
        self.output = output
        self.rerun_url = rerun_url
        self.policy = static_policy(rerun_url)
        self._clients = threading.local()

    def get(self, path: str, expect: tuple[int, ...] = (200,)) -> tuple[int, bytes]:
        client = getattr(self._clients, "client", None)
        if client is None:
            client = self._clients.client = self.app.test_client()
        response = client.get(path, base_url=self.layout.render_base)
        if response.status_code not in expect:
            raise BuildError(f"{path}: the service answered {response.status}: "
                             f"{response.get_data(as_text=True)[:300]}")
        return response.status_code, response.get_data()

    def page(self, path: str, name: str, edit: Callable[[str], str] = lambda page: page,
             expect: tuple[int, ...] = (200,), add: Callable[[str], str] = lambda page: page
             ) -> None:
        """The service's page at ``path`` written as ``name``: ``add`` adds to it (links as
        the service makes them), its links are rewritten, then ``edit`` edits it."""
        _, body = self.get(path, expect)
        text = edit(self.layout.rewrite(add(body.decode("utf-8")), name))
        self.output.write(name, with_policy(text, name, self.policy).encode("utf-8"))

    def json(self, path: str, name: str) -> dict:
        _, body = self.get(path)
        text = self.layout.rewrite(body.decode("utf-8"), name)
        self.output.write(name, text.encode("utf-8"))
        return json.loads(text)

    def answer(self, answer: Answer) -> AnswerBuilt:
        start = time.perf_counter()
        executor = self.site.executor
        seeds = [None, *answer.seeds]
        missing = [len(executor.to_compute(answer, seed)) for seed in seeds]
        # What the page at its own settings reads and is not in the cache: the answer's own
        # settings, then its sample of seeds. (Figures missing from the cache are drawn when
        # the page's figures are asked for.)
        if missing[0]:
            self.site.sampler.compute_own(answer, figures=False)
        if any(missing[1:]):
            self.site.sampler.compute(answer)
        computed = sum(missing)
        slug = answer.slug
        data = self.json(f"/api/answers/{slug}", f"api/answers/{slug}.json")
        if data["computing"]:
            raise BuildError(f"{slug}: still computing {', '.join(data['computing'])} after "
                             "its demonstrations were run")
        self.page(f"/a/{slug}", f"a/{slug}.html",
                  lambda page: with_rerun(page, f"a/{slug}.html", slug, self.rerun_url))
        for figure in data["figures"]:
            for fmt in FORMATS:  # the page's wide and phone renderings, the PNG
                path = f"/a/{slug}/figures/{figure['name']}.{fmt}"
                # 404: its demonstration failed; the page shows why instead of the figure.
                status, body = self.get(path, expect=(200, 404))
                if status == 200:
                    self.output.write(path.lstrip("/"), body)
        total = len(answer.demonstrations) * len(seeds)
        return AnswerBuilt(slug, time.perf_counter() - start, computed, total - computed,
                           list(data["errors"]))

    def site_pages(self, answers: list[Answer], aliases: dict[str, str]) -> None:
        root = self.layout.base_path.rstrip("/")
        self.page("/", "index.html")
        self.page("/search", "search.html",
                  add=lambda page: with_search_scripts(page, "search.html", root))
        # A path no route has, with no words to suggest answers from: the service's own
        # "not found" page.
        self.page("/-", "404.html", lambda page: not_found(page, "404.html"), expect=(404,))
        self.json("/api/answers", "api/answers.json")
        index = json.dumps(search_index(answers), ensure_ascii=False, sort_keys=False,
                           separators=(",", ":"))
        self.output.write("search-index.json", index.encode("utf-8"))
        for alias, slug in sorted(aliases.items()):
            self.output.write(f"a/{alias}.html", alias_page(
                f"{slug}.html", self.layout.public(f"a/{slug}.html")).encode("utf-8"))
        static = Path(self.app.static_folder or "")
        for path in sorted(p for p in static.rglob("*") if p.is_file()):
            self.output.write(f"static/{path.relative_to(static).as_posix()}",
                              path.read_bytes())


def build_site(settings: Settings, out: Path, *, base_url: str | None = None,
               rerun_url: str | None = None, jobs: int = 1,
               progress: Callable[[str], None] = print) -> BuildReport:
    """Build the site from ``settings``' answers and cache into ``out``; progress (one line
    per answer with its time) goes to ``progress``. BuildError when it cannot be built."""
    start = time.perf_counter()
    base_url = normalize_base(base_url)
    rerun_url = normalize_base(rerun_url, "--rerun-url")
    if not settings.answers_dir.is_dir():
        raise BuildError(f"no answers folder at {settings.answers_dir}")
    # Absolute links come from the base URL given here, and every host is the build's own.
    app = create_app(settings.replace(base_url=None, trusted_hosts=None))
    builder = _Builder(app, Layout(app.url_map, base_url), Output(out), rerun_url)
    loaded = builder.site.answers.current()
    answers = loaded.all()
    report = BuildReport()
    progress(f"kb build: {len(answers)} answers into {out}")
    with ThreadPoolExecutor(max(1, min(jobs, len(answers) or 1))) as pool:
        futures = {pool.submit(builder.answer, answer): answer for answer in answers}
        for done, future in enumerate(as_completed(futures), 1):
            try:
                built = future.result()
            except BuildError as exc:
                for other in futures:
                    other.cancel()
                raise BuildError(f"{futures[future].slug}: {exc}") from None
            report.answers.append(built)
            progress(f"[{done:>{len(str(len(answers)))}}/{len(answers)}] {built.slug}: "
                     f"{built.seconds:.2f} s ({built.computed} runs computed, "
                     f"{built.cached} from the cache)")
            for problem in built.problems:
                progress(f"  shown on its page: {problem}")
    builder.site_pages(answers, dict(loaded.aliases))
    builder.output.finish()
    report.answers.sort(key=lambda a: a.slug)
    report.written = builder.output.written
    report.unchanged = builder.output.unchanged
    report.removed = builder.output.removed
    report.seconds = time.perf_counter() - start
    progress(f"{len(report.written)} files written, {report.unchanged} unchanged, "
             f"{len(report.removed)} removed; {report.computed} runs computed, "
             f"{report.cached} from the cache; {report.seconds:.1f} s")
    if base_url is None:
        progress("no --base-url: link previews and the JSON's urls are paths from the site's "
                 "root, not absolute URLs")
    return report
