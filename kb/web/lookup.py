"""From a request to what it asks for: an answer, a view of it, a search. What cannot be
served ends the request here (``Answered``): a 301 for an old slug, a 400 with the reason, a
404 with suggestions."""
from __future__ import annotations

import difflib
import re
from typing import Any

from flask import Response, redirect, request, url_for

from engine.registry import ParameterError
from kb.model import Answer
from kb.web.errors import Answered, error_response, is_api_request
from kb.web.site import SearchUnavailable, View, parse_view
from kb.web.urls import answer_ref, answer_url, site

MAX_LIMIT = 100  # search results per request


def find_answer(slug: str, endpoint: str, **values: Any) -> tuple[Answer, int]:
    """The answer at ``slug`` and the generation of the answers it is from. An alias or the
    slug in other letter cases redirects permanently (keeping the query string) to
    ``endpoint`` under the current slug; an unknown slug ends in a 404 with suggestions."""
    answers = site().answers.current()
    answer = answers.get(slug)
    if answer is not None:
        return answer, answers.generation
    target = canonical_slug(slug)
    if target is not None:
        raise Answered(permanent_redirect(endpoint, slug=target, **values))
    raise Answered(error_response(
        404, f"There is no answer at '{slug}'.", _suggestions(slug)))


def canonical_slug(slug: str) -> str | None:
    """The current slug that ``slug`` names: itself, an alias, or either in other letter cases
    (slugs are lowercase, and readers retype links from titles)."""
    answers = site().answers.current()
    for name in (slug, slug.lower()):
        if answers.get(name) is not None:
            return name
        target = answers.alias_target(name)
        if target is not None:
            return target
    return None


def permanent_redirect(endpoint: str, **values: Any) -> Response:
    """A 301 to ``endpoint`` with this request's query string."""
    location = url_for(endpoint, **values)
    if request.query_string:
        location += "?" + request.query_string.decode("latin-1")
    return redirect(location, 301)


def not_found() -> Response:
    """The 404 of a path no route serves: the site's page, with the answers its words suggest
    (JSON under /api/)."""
    words = " ".join(w for w in re.split(r"[^0-9A-Za-z]+", request.path) if w and w != "a")
    if is_api_request():
        return error_response(404, f"There is nothing at {request.path}.")
    return error_response(404, f"There is no page at {request.path}.",
                          _suggestions(words) if words else [], query=words)


def _suggestions(words: str, limit: int = 5) -> list[dict]:
    """Answers close to ``words``: close slugs first, then search hits."""
    answers = site().answers.current().by_slug
    slugs = difflib.get_close_matches(words.lower(), list(answers), n=limit, cutoff=0.6)
    try:
        hits = site().search(words.replace("-", " "), limit).results
    except SearchUnavailable:  # close slugs are suggestions enough
        hits = []
    for hit in hits:
        if hit.slug not in slugs and hit.slug in answers:
            slugs.append(hit.slug)
    return [answer_ref(answers[s]) for s in slugs[:limit]]


def find_view(answer: Answer) -> View:
    try:
        return parse_view(answer, request.args)
    except ParameterError as exc:
        back = {"title": f"{answer.title} (with its own settings)", "url": answer_url(answer.slug)}
        raise Answered(error_response(400, str(exc), back=back)) from None


def search_args() -> tuple[str, int]:
    """The query (``q``) and the number of results asked for (``limit``, 400 if out of range)."""
    query = request.args.get("q", "").strip()
    text = request.args.get("limit", "10")
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise Answered(error_response(
            400, f"limit must be an integer in [1, {MAX_LIMIT}], got {text!r}"))
    return query, limit
