"""The Flask app: HTML pages and their JSON twins.

``create_app(settings)`` builds an app from explicit settings (no module-level app: see
``kb/wsgi.py`` for the one gunicorn imports). Routes only translate HTTP to calls on the
app's ``Site`` (``kb.web.site``) and back: answers, views and caches live there, HTML snippets
in ``kb.web.render``. User input never causes a 5xx: bad parameters give 400 with the reason,
unknown answers 404 with suggestions, in HTML or, under ``/api/``, in JSON.
"""
from __future__ import annotations

import difflib
import gzip
import hashlib
import logging
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import numpy as np
from flask import (
    Blueprint, Flask, Response, current_app, jsonify, redirect, render_template, request, url_for,
)
from werkzeug.exceptions import HTTPException

from engine.catalog import get_experiment
from engine.registry import ParameterError
from kb.config import Settings
from kb.run.figures import FigureError
from kb.model import Answer
from kb.answers.parse import SUMMARY_LIMIT, display_path
from kb.web.render import claim_html, error_box, figure_html, render_markdown, slugify
from kb.search.index import MAX_QUERY_CHARS
from engine.registry import MAX_SEED
from kb.web.site import Busy, Outcome, Site, View, parse_view

logger = logging.getLogger(__name__)

MAX_LIMIT = 100  # search results per request

pages = Blueprint("pages", __name__)
api = Blueprint("api", __name__, url_prefix="/api")


def create_app(settings: Settings | None = None, **flask_config: Any) -> Flask:
    """A new app serving ``settings`` (default: from the environment, see ``kb.config``);
    ``flask_config`` goes to Flask's own config (e.g. ``TESTING=True``)."""
    app = Flask(__name__)
    app.config.update(flask_config)
    app.json.sort_keys = False
    app.extensions["kb"] = Site(settings or Settings.from_env())
    app.register_blueprint(pages)
    app.register_blueprint(api)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Busy, _busy)
    app.register_error_handler(Exception, _unexpected_error)
    app.jinja_env.globals.update(error_box=error_box, max_query=MAX_QUERY_CHARS,
                                 max_seed=MAX_SEED)
    return app


def site() -> Site:
    return current_app.extensions["kb"]


# --- URLs -----------------------------------------------------------------------------------


def public_url(path: str) -> str:
    """An absolute URL for ``path``: under the configured public base URL, else this host."""
    # Built from scheme and host directly: request.host_url is several times slower, and
    # this runs on every cached page view.
    base = site().settings.base_url or f"{request.scheme}://{request.host}"
    return base.rstrip("/") + path


def with_query(path: str, view: View) -> str:
    items = view.query_items()
    return f"{path}?{urlencode(items)}" if items else path


def answer_url(slug: str, view: View = View()) -> str:
    return with_query(url_for("pages.answer", slug=slug), view)


def figure_url(slug: str, name: str, fmt: str, view: View) -> str:
    return with_query(url_for("pages.figure", slug=slug, name=name, fmt=fmt), view)


# --- errors ---------------------------------------------------------------------------------


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def error_response(status: int, reason: str, suggestions: list[dict] | None = None,
                   back: dict | None = None) -> Response:
    """The error as a page, or as JSON ``{"error", "status", "suggestions"?}`` under /api/;
    ``back`` (``{"title", "url"}``) is where the page offers to go instead."""
    if _wants_json():
        body: dict[str, Any] = {"error": reason, "status": status}
        if suggestions is not None:
            body["suggestions"] = suggestions
        response = jsonify(body)
    else:
        heading = {400: "That request cannot be shown", 404: "Not found",
                   503: "Busy computing, try again shortly"}.get(status, "Something went wrong")
        response = Response(render_template(
            "error.html", status=status, heading=heading, reason=reason,
            suggestions=suggestions or [], back=back))
    response.status_code = status
    return response


def _http_error(exc: HTTPException) -> Response:
    return error_response(exc.code or 500, exc.description or exc.name)


BUSY_RETRY_AFTER = 10  # seconds: most demonstrations take a few


def _busy(exc: Busy) -> Response:
    back = {"title": f"{exc.answer.title} (with its own settings)",
            "url": answer_url(exc.answer.slug)}
    response = error_response(503, str(exc), back=back)
    response.headers["Retry-After"] = str(BUSY_RETRY_AFTER)
    response.headers["Cache-Control"] = "no-store"
    return response


def _unexpected_error(exc: Exception) -> Response:
    logger.exception("unexpected error on %s", request.full_path)
    return error_response(500, "An unexpected error occurred; it has been logged.")


class _Answered(Exception):
    """A request that ends early with a ready response (redirect, 400, 404)."""

    def __init__(self, response: Response):
        self.response = response


@pages.errorhandler(_Answered)
@api.errorhandler(_Answered)
def _answered(exc: _Answered) -> Response:
    return exc.response


def _suggestions(words: str, limit: int = 5) -> list[dict]:
    """Answers close to ``words``: close slugs first, then search hits."""
    answers = site().answers.current().by_slug
    slugs = difflib.get_close_matches(words, list(answers), n=limit, cutoff=0.6)
    for hit in site().search(words.replace("-", " "), limit).results:
        if hit.slug not in slugs and hit.slug in answers:
            slugs.append(hit.slug)
    return [_answer_ref(answers[s]) for s in slugs[:limit]]


def _answer_ref(answer: Answer) -> dict:
    return {"slug": answer.slug, "title": answer.title, "url": public_url(answer_url(answer.slug))}


def find_answer(slug: str, endpoint: str, **values: Any) -> tuple[Answer, int]:
    """The answer at ``slug`` and the generation of the answers it is from. An alias
    redirects permanently (keeping the query string) to ``endpoint`` under the current slug;
    an unknown slug ends in a 404 with suggestions."""
    answers = site().answers.current()
    answer = answers.get(slug)
    if answer is not None:
        return answer, answers.generation
    target = answers.alias_target(slug)
    if target is not None:
        location = url_for(endpoint, slug=target, **values)
        if request.query_string:
            location += "?" + request.query_string.decode("latin-1")
        raise _Answered(redirect(location, 301))
    raise _Answered(error_response(
        404, f"There is no answer at '{slug}'.", _suggestions(slug)))


def find_view(answer: Answer) -> View:
    try:
        return parse_view(answer, request.args)
    except ParameterError as exc:
        back = {"title": f"{answer.title} (with its own settings)", "url": answer_url(answer.slug)}
        raise _Answered(error_response(400, str(exc), back=back)) from None


# --- pages ----------------------------------------------------------------------------------


@pages.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@pages.get("/")
def index() -> str:
    return render_template("index.html", threads=_threads(), json_url=url_for("api.answers"))


@api.get("/answers")
def answers() -> Response:
    return jsonify(threads=[
        {"thread": t["title"], "answers": t["answers"]} for t in _threads()
    ])


def _threads() -> list[dict]:
    by_thread: dict[str, list[Answer]] = {}
    for answer in site().answers.current().all():
        by_thread.setdefault(answer.thread, []).append(answer)
    return [
        {
            "title": thread,
            "anchor": "thread-" + slugify(thread),
            "answers": [
                {**_answer_ref(a), "summary": a.summary}
                for a in sorted(members, key=lambda a: a.title.lower())
            ],
        }
        for thread, members in sorted(by_thread.items(), key=lambda item: item[0].lower())
    ]


def _search_args() -> tuple[str, int]:
    query = request.args.get("q", "").strip()
    text = request.args.get("limit", "10")
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise _Answered(error_response(
            400, f"limit must be an integer in [1, {MAX_LIMIT}], got {text!r}"))
    return query, limit


def _search_json(query: str, limit: int) -> dict:
    found = site().search(query, limit)
    return found.to_json(lambda slug: public_url(answer_url(slug)))


@pages.get("/search")
def search() -> str:
    query, limit = _search_args()
    found = _search_json(query, limit)
    return render_template(
        "search.html", query=query, results=found["results"], suggestion=found["suggestion"],
        json_url=url_for("api.search", q=query, limit=limit))


@api.get("/search", endpoint="search")
def api_search() -> Response:
    return jsonify(_search_json(*_search_args()))


@pages.get("/a/<slug>")
def answer(slug: str) -> Response:
    answer, generation = find_answer(slug, "pages.answer")
    view = find_view(answer)
    # The public root is part of the key: the page holds absolute URLs (og:image, og:url).
    key = (slug, view, generation, public_url("/"))
    page = site().pages.get_or_make(key, lambda: _render_answer(answer, view, generation),
                                    keep_for=lambda page: page.keep_for)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        response = Response(page.gzipped, mimetype="text/html")
        response.set_etag(page.etag + "-gzip")  # the same page, other bytes: another ETag
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(page.html, mimetype="text/html")
        response.set_etag(page.etag)
    response.vary.add("Accept-Encoding")
    return conditional(response)


def conditional(response: Response) -> Response:
    """``response``, or a 304 when the client already has its ETag (werkzeug decides)."""
    response.make_conditional(request)
    # make_conditional also sets a Date header: gunicorn sends its own, and two is one too many.
    del response.headers["Date"]
    return response


@dataclass(frozen=True)
class _RenderedPage:
    html: bytes
    gzipped: bytes  # compressed once: pages of MathML shrink about fivefold, phones notice
    etag: str
    keep_for: float  # seconds: as long as the outcome it shows


def _render_answer(answer: Answer, view: View, generation: int) -> _RenderedPage:
    outcome = site().outcome(answer, view, generation)
    try:
        page = _answer_page(outcome)
    except Exception as exc:  # a bug meeting an odd answer: show what we know, log the rest
        logger.exception("rendering %s failed", answer.path)
        where = display_path(answer.path, site().settings.answers_dir.parent)
        page = _answer_page(outcome, failure=f"{where}: could not be rendered: {exc!r}")
    html = render_template("answer.html", page=page, json_url=page["json_url"]).encode()
    return _RenderedPage(html, gzip.compress(html, mtime=0), hashlib.sha1(html).hexdigest(),
                         outcome.keep_for())


@dataclass
class _ParamField:
    field: str  # the query key, "<demo>.<param>"
    name: str
    kind: str
    value: Any
    default: Any  # the answer's own value
    low: Any
    high: Any
    choices: tuple | None
    range: str
    doc: str


def _demonstration_forms(outcome: Outcome) -> list[dict]:
    overrides = outcome.view.overrides_dict()
    forms = []
    for demo in outcome.answer.demonstrations:
        try:
            experiment = get_experiment(demo.experiment)
        except KeyError:
            continue  # already in the error box
        fields = [
            _ParamField(
                field=f"{demo.name}.{name}", name=name, kind=spec.kind.__name__,
                value=overrides.get(demo.name, {}).get(name, demo.params.get(name, spec.default)),
                default=demo.params.get(name, spec.default), low=spec.low, high=spec.high,
                choices=spec.choices, range=spec.describe_range(), doc=spec.doc)
            for name, spec in experiment.params.items()
        ]
        forms.append({"name": demo.name, "experiment": demo.experiment, "params": fields})
    return forms


def _figures(outcome: Outcome) -> list[dict]:
    slug, view = outcome.answer.slug, outcome.view
    return [
        {
            "name": spec.name, "caption": spec.caption, "demonstration": demo.name,
            "svg": figure_url(slug, spec.name, "svg", view),
            "png": figure_url(slug, spec.name, "png", view),
        }
        for demo in outcome.answer.demonstrations
        for spec in demo.figures
    ]


def _body_blocks(outcome: Outcome, figures: list[dict]) -> dict[str, str]:
    blocks = {}
    for demo in outcome.answer.demonstrations:
        result = outcome.run.results.get(demo.name)
        if result is None or result.values is None:
            blocks[f"demo {demo.name}"] = error_box(
                [result.error if result else f"{demo.location}: demonstration did not run"],
                "This demonstration could not run")
            continue
        blocks[f"demo {demo.name}"] = "".join(
            figure_html(f["name"], f["caption"], f["svg"], f["png"])
            for f in figures if f["demonstration"] == demo.name)
    for claim in outcome.claims:
        blocks[f"claim {claim.claim.id}"] = claim_html(claim)
    return blocks


def short_description(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters (with an ellipsis)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:.") + "…"


def _answer_page(outcome: Outcome, failure: str | None = None) -> dict:
    answer, view = outcome.answer, outcome.view
    figures = _figures(outcome)
    errors = outcome.errors + ([failure] if failure else [])
    body = (error_box([failure], "This answer could not be rendered") if failure
            else render_markdown(answer.body, _body_blocks(outcome, figures), outcome.values))
    permalink = public_url(answer_url(answer.slug, view))
    main_figure = figures[0] if figures else None
    return {
        "title": answer.title,
        "question": answer.question,
        "summary": answer.summary,
        "description": short_description(answer.summary),
        "thread": answer.thread,
        "thread_url": url_for("pages.index") + "#thread-" + slugify(answer.thread),
        "url": url_for("pages.answer", slug=answer.slug),
        "plain_url": answer_url(answer.slug),
        "json_url": with_query(url_for("api.answer", slug=answer.slug), view),
        "permalink": permalink,
        "canonical_url": public_url(answer_url(answer.slug)),
        "image_url": public_url(main_figure["png"]) if main_figure else None,
        "image_alt": main_figure["caption"] if main_figure else "",
        "share_markdown": (
            f"{short_description(answer.summary)}\n\n"
            f"Full answer, with figures and checked claims: [{answer.title}]({permalink})"
        ),
        "errors": errors,
        "body_html": body,
        "seed": view.seed,
        "overridden": bool(view.overrides),
        "claims_total": len(outcome.claims),
        "claims_holding": sum(1 for c in outcome.claims if c.holds),
        "claims_unknown": sum(1 for c in outcome.claims if c.holds is None),
        "demonstrations": _demonstration_forms(outcome),
        "related": _related(answer),
    }


def _related(answer: Answer) -> list[dict]:
    """The related answers that exist (a missing one is in the error box already)."""
    answers = site().answers.current()
    found = (answers.get(slug) for slug in answer.related)
    return [_answer_ref(a) for a in found if a is not None]


def _plain(value: Any) -> Any:
    """A JSON-ready copy: numpy to Python; non-finite floats as strings ("nan", "inf")."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@api.get("/answers/<slug>", endpoint="answer")
def api_answer(slug: str) -> Response:
    answer, generation = find_answer(slug, "api.answer")
    view = find_view(answer)
    outcome = site().outcome(answer, view, generation)
    forms = {form["name"]: form["params"] for form in _demonstration_forms(outcome)}
    return jsonify({
        "slug": answer.slug,
        "title": answer.title,
        "question": answer.question,
        "thread": answer.thread,
        "summary": answer.summary,
        "tags": answer.tags,
        "url": public_url(answer_url(answer.slug, view)),
        "seed": view.seed,
        "figures": [{**f, "svg": public_url(f["svg"]), "png": public_url(f["png"])}
                    for f in _figures(outcome)],
        "demonstrations": [
            {
                "name": demo.name,
                "experiment": demo.experiment,
                "seed": result.seed,
                "params": {
                    p.name: {"value": _plain(result.params.get(p.name, p.value)),
                             "default": _plain(p.default), "range": p.range, "query": p.field}
                    for p in forms.get(demo.name, [])
                },
                "error": result.error,
            }
            for demo in answer.demonstrations
            for result in [outcome.run.results[demo.name]]
        ],
        "claims": [
            {
                "id": c.claim.id,
                "text": c.claim.text,
                "check": c.claim.condition,
                "holds": c.holds,
                "value": _plain(c.value),
                "detail": c.detail,
                "seeds": list(c.seeds),
                "anchor": f"claim-{c.claim.id}",
            }
            for c in outcome.claims
        ],
        "related": _related(answer),
        "errors": outcome.errors,
    })


@pages.get("/a/<slug>/figures/<name>.<any(png, svg):fmt>")
def figure(slug: str, name: str, fmt: str) -> Response:
    answer, generation = find_answer(slug, "pages.figure", name=name, fmt=fmt)
    view = find_view(answer)
    try:
        data = site().figure(answer, name, fmt, view, generation)
    except LookupError as exc:
        return error_response(404, str(exc))
    except FigureError as exc:
        return error_response(404, f"Figure '{name}' is not available: {exc}")
    response = Response(data, mimetype="image/png" if fmt == "png" else "image/svg+xml")
    response.add_etag()
    response.headers["Cache-Control"] = "public, max-age=300"
    return conditional(response)
