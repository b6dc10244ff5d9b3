"""Where each page of the service lives in the static build, and its links rewritten to match.

The static layout is plain files that any host serves as they are, ``python -m http.server``
included, with no directory indexes, redirects or rewrite rules (only the site's root needs
``index.html``, which every host serves):

========================================  ==========================================
service                                   static build
========================================  ==========================================
``/``                                     ``index.html``
``/search?q=...``                         ``search.html?q=...`` (searched in the browser)
``/a/<slug>``                             ``a/<slug>.html``
``/a/<slug>/figures/<name>.<fmt>``        the same path (svg, phone.svg, png)
``/api/answers``, ``/api/answers/<slug>`` ``api/answers.json``, ``api/answers/<slug>.json``
``/api/search?...``                       ``search-index.json`` (what the search page reads)
``/static/<file>``                        the same path
========================================  ==========================================

Pages are rendered by the service under the public base URL (its path as the script root),
then every link is mapped through the app's own URL map (werkzeug matches it, as for a
request) to its file: links between pages become relative, so the build works under any
sub-path; absolute URLs (link previews, canonical, the share box, the JSON's ``url`` fields)
stay absolute under the base URL. ``404.html``, which a host serves at any path, links under
the base URL's path instead. A link to a page the static build cannot have (another seed, the
health check) is an error naming the page and the link: a static site must not link nowhere.
"""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map

PLACEHOLDER_BASE = "http://localhost/"  # renders the pages when no base URL is given


class BuildError(Exception):
    """The build cannot go on; the message names the answer, page or link."""


def normalize_base(url: str | None, option: str = "--base-url") -> str | None:
    """``url`` as a base URL ending with "/"; BuildError naming ``option`` if it is not an
    http(s) URL without query or fragment."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise BuildError(f"{option} must be an http(s) URL without query or fragment, "
                         f"got {url!r}")
    return url if url.endswith("/") else url + "/"


def static_path(endpoint: str, args: dict, query: str) -> str:
    """The file (relative to the build's root, with a query where the page reads one) that
    stands for the service's ``endpoint`` with ``args``; BuildError when there is none."""
    if query and endpoint not in ("pages.search", "api.search"):
        raise BuildError("the static build has each answer with its own settings only")
    paths = {
        "pages.index": lambda: "index.html",
        "pages.search": lambda: "search.html" + (f"?{query}" if query else ""),
        "pages.answer": lambda: f"a/{args['slug']}.html",
        "pages.figure": lambda: f"a/{args['slug']}/figures/{args['name']}.{args['fmt']}",
        "api.answers": lambda: "api/answers.json",
        "api.answer": lambda: f"api/answers/{args['slug']}.json",
        "api.search": lambda: "search-index.json",
        "static": lambda: f"static/{args['filename']}",
    }
    if endpoint not in paths:
        raise BuildError(f"the static build has no page for {endpoint}")
    return paths[endpoint]()


@dataclass(frozen=True)
class Layout:
    """The links of pages rendered under ``render_base`` rewritten for a build published at
    ``base_url`` (None: unknown, absolute URLs become paths from the site's root)."""

    url_map: Map
    base_url: str | None

    @property
    def render_base(self) -> str:
        """The base URL the service renders the pages under."""
        return self.base_url or PLACEHOLDER_BASE

    @property
    def base_path(self) -> str:
        """The path of the site's root on its host, ending with "/"."""
        return urlsplit(self.render_base).path

    def public(self, path: str) -> str:
        """The absolute URL of the build's file ``path`` (a path from the root without one)."""
        return (self.base_url or "/") + path

    def file_of(self, service_path: str) -> str:
        """The file for a path of the service (from its root, with query and fragment)."""
        parts = urlsplit(service_path)
        try:
            endpoint, args = self.url_map.bind("localhost").match(parts.path, method="GET")
        except HTTPException:  # no route (404), or a redirect to a slash-less path
            raise BuildError(f"no page of the service at {parts.path}") from None
        found = static_path(endpoint, args, parts.query)
        return found + (f"#{parts.fragment}" if parts.fragment else "")

    def rewrite(self, text: str, page: str) -> str:
        """``text`` (HTML or JSON) of the build's file ``page`` with every internal link and
        absolute URL rewritten for the static layout."""
        origin = self.render_base[: -len(self.base_path)]
        root = self.base_path.rstrip("/")
        # Absolute URLs under the base anywhere (attributes, the share box's Markdown, JSON),
        # and paths in attribute values: under the script root as the service makes them, or
        # from the host's root as answer files link each other ("/a/<slug>").
        pattern = re.compile(
            rf"(?P<absolute>{re.escape(origin + root)})(?P<apath>/[^\s\"'<>()\\]*)"
            rf"|(?P<attr>=\")(?:{re.escape(root)})?(?P<path>/(?!/)[^\"]*)\"")

        def replace(match: re.Match) -> str:
            service_path = match["apath"] or match["path"]
            try:
                target = self.file_of(service_path.replace("&amp;", "&"))
            except BuildError as exc:
                raise BuildError(f"{page}: the link {service_path} cannot be published: "
                                 f"{exc}") from None
            if match["absolute"]:
                return self.public(target)
            if page == "404.html":  # served at any path: links from the site's root path
                link = self.base_path + target
            else:
                file, rest = re.match(r"([^?#]*)(.*)", target).groups()
                link = posixpath.relpath(file, posixpath.dirname(page) or ".") + rest
            return f'="{link.replace("&", "&amp;")}"'

        return pattern.sub(replace, text)
