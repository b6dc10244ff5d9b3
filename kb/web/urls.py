"""The app's ``Site`` and the URLs of its pages: paths for links, absolute ones for sharing."""
from __future__ import annotations

from urllib.parse import urlencode

from flask import current_app, request, url_for

from kb.model import Answer
from kb.web.render import slugify
from kb.web.site import Site, View


def site() -> Site:
    return current_app.extensions["kb"]


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


def topic_anchor(topic: str) -> str:
    """The id of a topic's section on the home page."""
    return "topic-" + slugify(topic)


def answer_ref(answer: Answer) -> dict:
    """How lists link to an answer: slug, title and absolute URL."""
    return {"slug": answer.slug, "title": answer.title, "url": public_url(answer_url(answer.slug))}
