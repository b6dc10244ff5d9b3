"""What a page of the static build has that the service's page has not: the service's
Content-Security-Policy as a ``<meta>`` tag (a static host sends no such header), the search
page's scripts, and the rerun form pointed at a live service or replaced by a note.

These edits find markup that the service's templates make; when a template changes so that
one is not found, the build stops with an error naming the page rather than publish a page
without its policy or with a dead form.
"""
from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

from kb.build.layout import BuildError
from kb.web.edges import PAGE_POLICY

_HEAD = re.compile(r"<head>\n?")
_HEAD_END = "</head>"
_RERUN_FORM = re.compile(r'<form method="get" action="[^"]*" class="rerun-form">.*?</form>',
                         re.DOTALL)
_REASON = re.compile(r'(<p class="error-reason">)[^<]*(</p>)')
_FORM_ACTION = re.compile(r'(<form method="get" action=")[^"#]*(#[^"]*)?(" class="rerun-form">)')

SEARCH_SCRIPTS = ("/static/vendor/minisearch/minisearch.js", "/static/search.js")
NOT_FOUND = "There is no page at this address."
RERUN_NOTE = ('<p class="rerun-note">This copy of the answers is static: its demonstrations '
              'ran with the answer\'s own settings when it was published. Rerunning them with '
              'other seeds or parameters needs the live service.</p>')


def static_policy(rerun_url: str | None) -> str:
    """The service's page policy as a static page can carry it: ``frame-ancestors`` goes
    (a ``<meta>`` policy cannot have it), the search page may fetch its index, and the rerun
    form may be sent to the live service."""
    directives = dict(part.strip().split(" ", 1) for part in PAGE_POLICY.split(";"))
    directives.pop("frame-ancestors", None)
    directives["connect-src"] = "'self'"
    if rerun_url:
        parts = urlsplit(rerun_url)
        directives["form-action"] += f" {parts.scheme}://{parts.netloc}"
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def with_policy(page: str, name: str, policy: str) -> str:
    meta = f'<meta http-equiv="Content-Security-Policy" content="{html.escape(policy, quote=False)}">\n'
    return _edit(_HEAD, lambda m: m[0] + meta, page, name, "<head>")


def with_search_scripts(page: str, name: str, root: str) -> str:
    """The search page with the vendored MiniSearch and the script that uses it (service
    paths under ``root``, rewritten with the page's other links)."""
    if _HEAD_END not in page:
        raise BuildError(f"{name}: no {_HEAD_END} found in the page the service made")
    scripts = "".join(f'<script src="{root}{src}" defer></script>\n' for src in SEARCH_SCRIPTS)
    return page.replace(_HEAD_END, scripts + _HEAD_END, 1)


def with_rerun(page: str, name: str, slug: str, rerun_url: str | None) -> str:
    """The answer page whose rerun form goes to the live service at ``rerun_url`` (its own
    page of the answer, at the same anchor), or, without one, is replaced by a note. An answer with nothing to
    rerun has no form."""
    if 'class="rerun-form"' not in page:
        return page
    if rerun_url is None:
        return _edit(_RERUN_FORM, lambda m: RERUN_NOTE, page, name, "rerun form")
    action = html.escape(f"{rerun_url}a/{slug}")  # the service's address of the answer
    return _edit(_FORM_ACTION, lambda m: m[1] + action + (m[2] or "") + m[3], page, name,
                 "rerun form")


def not_found(page: str, name: str) -> str:
    """The service's "no page at <path>" page for any path: a host serves it for every
    address it does not have."""
    return _edit(_REASON, lambda m: m[1] + NOT_FOUND + m[2], page, name, "error reason")


def alias_page(target: str, public_target: str) -> str:
    """A page at an old slug that sends the reader on to the answer's page (the service
    answers 301; a static host can only do this)."""
    link, public = html.escape(target), html.escape(public_target)
    return ('<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="refresh" content="0; url={link}">\n'
            f'<link rel="canonical" href="{public}">\n<meta name="robots" content="noindex">\n'
            f'<title>Moved</title>\n</head>\n<body>\n<p>This answer has moved to '
            f'<a href="{link}">{public}</a>.</p>\n</body>\n</html>\n')


def _edit(pattern: re.Pattern, replace, page: str, name: str, what: str) -> str:
    edited, count = pattern.subn(replace, page, count=1)
    if count != 1:
        raise BuildError(f"{name}: the {what} was not found in the page the service made "
                         f"(kb/build/pages.py must follow the templates)")
    return edited
