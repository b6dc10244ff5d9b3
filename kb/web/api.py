"""The JSON twins of the pages, under ``/api/``: each is its page's context's ``data``
(``kb.web.context``)."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from kb.web.context import answer_context, index_context, search_context
from kb.web.lookup import find_answer, find_view, search_args
from kb.web.pages import client_address, rerun_headers
from kb.web.urls import site

api = Blueprint("api", __name__, url_prefix="/api")


@api.get("/answers")
def answers() -> Response:
    return jsonify(index_context().data)


@api.get("/search", endpoint="search")
def api_search() -> Response:
    return jsonify(search_context(*search_args()).data)


@api.get("/answers/<slug>", endpoint="answer")
def api_answer(slug: str) -> Response:
    answer, generation = find_answer(slug, "api.answer")
    view = find_view(answer)
    outcome = site().outcome(answer, view, generation, client_address())
    return rerun_headers(jsonify(answer_context(outcome).data), outcome.rerun)
