"""What every request and every response passes, around the Flask app (a WSGI middleware):

- the ``Host`` header is checked before anything else runs: a malformed one (an empty or too
  long label, a bad port, characters no host has), or in production one that is not among
  the trusted hosts (``KB_TRUSTED_HOSTS``, checked by werkzeug's ``host_is_trusted``), gets a
  plain 400: no route, template or absolute URL ever sees it;
- every response, static files and figures included, carries the security headers: a
  Content-Security-Policy that allows scripts, styles and images from the site only (the
  pages have no inline script or style) and no framing, ``X-Content-Type-Options: nosniff``,
  ``X-Frame-Options: DENY`` and a ``Referrer-Policy``. An SVG figure opened on its own keeps
  matplotlib's inline styles (``style-src 'unsafe-inline'``; no script runs in it).
"""
from __future__ import annotations

import re
from typing import Any, Callable, Iterable

from werkzeug.sansio.utils import host_is_trusted

# connect-src: a rerun's status is read from the page's JSON twin on the same site.
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; form-action 'self'; base-uri 'none'; "
               "frame-ancestors 'none'")
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"

SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
)

_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9A-Fa-f:.]{{2,45}}\])(?::(\d{{1,5}}))?")
MAX_HOST = 253 + 6  # a full domain name and a port


def well_formed_host(host: str) -> bool:
    """Whether ``host`` (``name[:port]``) is a host name, an IPv4 or a bracketed IPv6
    address, with labels of 1 to 63 characters and a port in [1, 65535]."""
    if len(host) > MAX_HOST:
        return False
    match = _HOST.fullmatch(host)
    return match is not None and (match.group(1) is None or 1 <= int(match.group(1)) <= 65535)


class RequestEdges:
    """Wraps the WSGI ``app``: the Host check and the security headers (see above)."""

    def __init__(self, app: Callable, trusted_hosts: list[str] | None = None):
        self.app = app
        self.trusted_hosts = trusted_hosts

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        host = environ.get("HTTP_HOST")
        if host is not None and not self.acceptable(host):
            body = b"Bad Request: the Host header is not a host this site answers to.\n"
            start_response("400 Bad Request", with_security_headers([
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
            ]))
            return [body]

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            return start_response(status, with_security_headers(headers), exc_info)

        return self.app(environ, start)

    def acceptable(self, host: str) -> bool:
        return well_formed_host(host) and host_is_trusted(host, self.trusted_hosts)


def with_security_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` with the security headers added (the ones already set are kept)."""
    present = {name.lower() for name, _ in headers}
    content_type = next((value for name, value in headers if name.lower() == "content-type"),
                        "")
    policy = SVG_POLICY if content_type.startswith("image/svg+xml") else PAGE_POLICY
    added = [("Content-Security-Policy", policy), *SECURITY_HEADERS]
    return headers + [(name, value) for name, value in added if name.lower() not in present]
