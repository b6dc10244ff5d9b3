"""The Flask app: ``create_app`` and the errors every route shares.

``create_app(settings)`` builds an app from explicit settings (no module-level app: see
``kb/wsgi.py`` for the one gunicorn imports). Its routes are HTML pages (``kb.web.pages``) and
their JSON twins under ``/api/`` (``kb.web.api``); they only translate HTTP to calls on the
app's ``Site`` (``kb.web.site``) and back. User input never causes a 5xx: bad parameters give
400 with the reason, unknown answers 404 with suggestions, in HTML or, under ``/api/``, in JSON;
a bad Host header is a plain 400 before any of that (``kb.web.edges``, which also adds the
security headers to every response). What cannot be served now gets 503 with a reason and a
``Retry-After``: a figure still computing, a search index that cannot be read, a rerun when
the queue is full (its page still shows the answer's own results).
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from engine.registry import MAX_SEED
from kb.config import Settings
from kb.search.index import MAX_QUERY_CHARS
from kb.web.api import api
from kb.web.edges import RequestEdges
from kb.web.errors import Answered, error_response
from kb.web.lookup import not_found
from kb.web.pages import pages
from kb.web.render import error_box
from kb.web.site import NotYet, SearchUnavailable, Site

logger = logging.getLogger(__name__)

SEARCH_RETRY_AFTER = 10  # seconds: an index build takes a few
NOT_YET_RETRY_AFTER = 5  # seconds: a page being computed is looked at again this often


def create_app(settings: Settings | None = None, **flask_config: Any) -> Flask:
    """A new app serving ``settings`` (default: from the environment, see ``kb.config``);
    ``flask_config`` goes to Flask's own config (e.g. ``TESTING=True``)."""
    app = Flask(__name__)
    app.config.update(flask_config)
    app.json.sort_keys = False
    settings = settings or Settings.from_env()
    app.extensions["kb"] = Site(settings)
    app.config["TRUSTED_HOSTS"] = settings.trusted_host_list
    app.wsgi_app = RequestEdges(app.wsgi_app, settings.trusted_host_list)  # type: ignore
    if settings.trusted_proxies:
        # The client's address (its share of the rerun queue) from X-Forwarded-For, as set by
        # that many proxies; without them the header is anyone's to forge and is ignored.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore
    app.register_blueprint(pages)
    app.register_blueprint(api)
    app.register_error_handler(Answered, lambda exc: exc.response)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(NotYet, _not_yet)
    app.register_error_handler(SearchUnavailable, _search_unavailable)
    app.register_error_handler(Exception, _unexpected_error)
    app.jinja_env.globals.update(error_box=error_box,
                                 max_query=MAX_QUERY_CHARS, max_seed=MAX_SEED)
    return app


def _http_error(exc: HTTPException) -> Response:
    if exc.code == 404:
        return not_found()
    return error_response(exc.code or 500, exc.description or exc.name)


def _not_yet(exc: NotYet) -> Response:
    return _unavailable(error_response(503, str(exc)), NOT_YET_RETRY_AFTER)


def _search_unavailable(exc: SearchUnavailable) -> Response:
    return _unavailable(error_response(
        503, f"Search is not available right now: the search index cannot be read or built "
             f"({exc}). Every answer is listed on the home page.",
        back={"title": "All answers", "url": "/"}), SEARCH_RETRY_AFTER)


def _unavailable(response: Response, retry_after: int) -> Response:
    response.headers["Retry-After"] = str(retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response


def _unexpected_error(exc: Exception) -> Response:
    logger.exception("unexpected error on %s", request.full_path)
    try:
        return error_response(500, "An unexpected error occurred; it has been logged.")
    except Exception:  # the error page itself failed: plain text, never a second traceback
        logger.exception("the error page failed too")
        return Response("An unexpected error occurred; it has been logged.\n", 500,
                        mimetype="text/plain")
