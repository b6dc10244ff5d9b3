"""The JSON twins of the pages, under ``/api/``."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from kb.web.context import answer_json, search_json, threads
from kb.web.lookup import find_answer, find_view, search_args
from kb.web.urls import site

api = Blueprint("api", __name__, url_prefix="/api")


@api.get("/answers")
def answers() -> Response:
    return jsonify(threads=[
        {"thread": t["title"], "answers": t["answers"]} for t in threads()
    ])


@api.get("/search", endpoint="search")
def api_search() -> Response:
    return jsonify(search_json(*search_args()))


@api.get("/answers/<slug>", endpoint="answer")
def api_answer(slug: str) -> Response:
    answer, generation = find_answer(slug, "api.answer")
    view = find_view(answer)
    return jsonify(answer_json(site().outcome(answer, view, generation)))
