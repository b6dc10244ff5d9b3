"""The HTML pages: home, search, answers (rendered once per view, sent compressed when the
client accepts it, 304 when it has them already) and figures. Each page renders its view's
context (``kb.web.context``), whose ``data`` is also its JSON twin."""
from __future__ import annotations

import gzip
import hashlib
import logging
from dataclasses import dataclass
from typing import Mapping

from flask import Blueprint, Response, jsonify, render_template, request

from engine.registry import ParameterError
from kb.answers.parse import display_path
from kb.model import Answer
from kb.run.figures import FigureError
from kb.web.context import answer_body, answer_context, index_context, search_context
from kb.web.errors import error_response
from kb.web.lookup import find_answer, find_view, permanent_redirect, search_args
from kb.web.render import RenderedBody, error_box
from kb.web.site import BUSY, Outcome, Rerun, View, parse_view
from kb.web.urls import public_url, site

logger = logging.getLogger(__name__)

pages = Blueprint("pages", __name__)


@pages.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@pages.get("/")
def index() -> str:
    return render_template("index.html", **index_context().page())


@pages.get("/search")
def search() -> str:
    return render_template("search.html", **search_context(*search_args()).page())


@pages.get("/a/<slug>/")
def answer_with_slash(slug: str) -> Response:
    """``/a/<slug>/``, as some forums and hand-typed links write it: moved permanently."""
    answer, _ = find_answer(slug, "pages.answer")
    return permanent_redirect("pages.answer", slug=answer.slug)


@pages.get("/a/<slug>")
def answer(slug: str) -> Response:
    answer, generation = find_answer(slug, "pages.answer")
    try:
        view = parse_view(answer, request.args)
    except ParameterError as exc:
        return _refused(answer, generation, exc)
    # The public root is part of the key: the page holds absolute URLs (og:image, og:url).
    key = (slug, view, generation, public_url("/"))
    page = site().pages.peek(key)
    if page is None:
        # Outside the page memo: a rerun's request waits for its job a moment, and a request
        # for the same page meanwhile must not wait for that.
        outcome = site().outcome(answer, view, generation, client_address())
        page = site().pages.get_or_make(key, lambda: _render_answer(outcome),
                                        keep_for=lambda page: page.keep_for)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        response = Response(page.gzipped, mimetype="text/html")
        response.set_etag(page.etag + "-gzip")  # the same page, other bytes: another ETag
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(page.html, mimetype="text/html")
        response.set_etag(page.etag)
    response.vary.add("Accept-Encoding")
    return rerun_headers(conditional(response), page.rerun)


def client_address() -> str:
    """The reader's address, whose share of the rerun queue a rerun counts against (from
    X-Forwarded-For only behind ``KB_TRUSTED_PROXIES`` proxies: see ``kb.web.app``)."""
    return request.remote_addr or "unknown"


def rerun_headers(response: Response, rerun: Rerun | None) -> Response:
    """A page or JSON showing a rerun not done yet is not cached by anyone; one that cannot
    be queued (the queue is full) is a 503 with Retry-After, though it shows the answer."""
    if rerun is not None and (rerun.pending or rerun.state == BUSY):
        response.headers["Cache-Control"] = "no-store"
        if rerun.state == BUSY:
            response.status_code = 503
            response.headers["Retry-After"] = str(rerun.retry_after)
    return response


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
    rerun: Rerun | None


def _refused(answer: Answer, generation: int, refused: ParameterError) -> Response:
    """Settings that cannot be run: the answer with its own settings (400), the form holding
    what was asked for and the reason next to the field at fault.

    The page differs with what was asked, so it is not kept; its body, the answer at its own
    settings (most of the work), is, so that a stream of bad links costs little more than
    good ones."""
    outcome = site().outcome(answer, View(), generation)
    body = site().pages.get_or_make(("body", answer.slug, generation, public_url("/")),
                                    lambda: _body(outcome), keep_for=lambda _: outcome.keep_for())
    page = _render_answer(outcome, refused=refused, asked=request.args, body=body)
    response = Response(page.html, status=400, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _body(outcome: Outcome) -> tuple[RenderedBody, str | None]:
    """The answer's body as HTML, and why it could not be rendered (None when it could)."""
    answer = outcome.answer
    try:
        return answer_body(outcome), None
    except Exception as exc:  # a bug meeting an odd answer: show what we know, log the rest
        logger.exception("rendering %s failed", answer.path)
        where = display_path(answer.path, site().settings.answers_dir.parent)
        failure = f"{where}: could not be rendered: {exc!r}"
        return RenderedBody(error_box([failure], "This answer could not be rendered"), []), failure


def _render_answer(outcome: Outcome, refused: ParameterError | None = None,
                   asked: Mapping[str, str] | None = None,
                   body: tuple[RenderedBody, str | None] | None = None) -> _RenderedPage:
    rendered, failure = body or _body(outcome)
    context = answer_context(outcome, refused, asked)
    html = render_template("answer.html", **context.page(), body_html=rendered.html,
                           toc=rendered.toc, failure=failure).encode()
    return _RenderedPage(html, gzip.compress(html, mtime=0), hashlib.sha1(html).hexdigest(),
                         outcome.keep_for(), outcome.rerun)


@pages.get("/a/<slug>/figures/<name>.<any(png, svg):fmt>")
@pages.get("/a/<slug>/figures/<name>.phone.svg", defaults={"fmt": "phone.svg"})
def figure(slug: str, name: str, fmt: str) -> Response:
    answer, generation = find_answer(slug, "pages.figure", name=name, fmt=fmt)
    view = find_view(answer)
    # SVG is text and shrinks about fivefold; PNG is compressed already.
    gzipped = fmt != "png" and "gzip" in request.headers.get("Accept-Encoding", "")
    try:
        data = site().figure(answer, name, fmt, view, generation, gzipped=gzipped)
    except LookupError as exc:
        return error_response(404, str(exc))
    except FigureError as exc:
        return error_response(404, f"Figure '{name}' is not available: {exc}")
    response = Response(data, mimetype="image/png" if fmt == "png" else "image/svg+xml")
    response.add_etag()  # of the bytes sent: the gzipped figure has its own
    if gzipped:
        response.headers["Content-Encoding"] = "gzip"
    if fmt != "png":
        response.vary.add("Accept-Encoding")
    response.headers["Cache-Control"] = "public, max-age=300"
    return conditional(response)
