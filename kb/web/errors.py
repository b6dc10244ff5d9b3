"""What a request that cannot be served gets: an error page, or JSON under ``/api/``."""
from __future__ import annotations

from typing import Any

from flask import Response, jsonify, render_template, request


def is_api_request() -> bool:
    """Whether this request is answered in JSON."""
    return request.path.startswith("/api/") or request.path == "/healthz"


def error_response(status: int, reason: str, suggestions: list[dict] | None = None,
                   back: dict | None = None, query: str = "") -> Response:
    """The error as a page, or as JSON ``{"error", "status", "suggestions"?}`` under /api/;
    ``back`` (``{"title", "url"}``) is where the page offers to go instead, ``query`` what its
    search box offers to look for."""
    if is_api_request():
        body: dict[str, Any] = {"error": reason, "status": status}
        if suggestions is not None:
            body["suggestions"] = suggestions
        response = jsonify(body)
    else:
        heading = {400: "That request cannot be shown", 404: "Not found",
                   503: "Not available yet, try again shortly"}.get(status, "Something went wrong")
        response = Response(render_template(
            "error.html", status=status, heading=heading, reason=reason,
            suggestions=suggestions or [], back=back, query=query))
    response.status_code = status
    return response


class Answered(Exception):
    """A request that ends early with a ready response (redirect, 400, 404); the app answers
    with ``response``, so that helpers deep in a route need not return it up the calls."""

    def __init__(self, response: Response):
        self.response = response
