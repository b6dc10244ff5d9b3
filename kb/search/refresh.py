"""``kb index`` and ``kb search``, and keeping the search index in step with the answer files."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kb.config import Settings
from kb.answers.parse import load_answers
from kb.search.index import IndexBuild, SearchIndex, answers_fingerprint


def answer_url(slug: str, base_url: str | None = None) -> str:
    """The permanent link of an answer: ``/a/<slug>``, absolute when a public base URL is set."""
    path = f"/a/{slug}"
    return f"{base_url.rstrip('/')}{path}" if base_url else path


def refresh_index(index: SearchIndex, answers_dir: Path, force: bool = False) -> IndexBuild | None:
    """Rebuild ``index`` from ``answers_dir`` if it is missing or stale (always with ``force``).

    Returns what was built, or None when the index was already current.
    """
    if not Path(answers_dir).is_dir():
        raise FileNotFoundError(f"answers folder not found: {answers_dir}")
    if not force and index.is_current(answers_dir):
        return None
    # Fingerprint first: an answer edited while loading leaves the index stale, not wrong.
    fingerprint = answers_fingerprint(answers_dir)
    return index.build(load_answers(answers_dir), fingerprint)


def index_command(settings: Settings, args: argparse.Namespace) -> int:
    index = SearchIndex(settings.index_dir)
    try:
        build = refresh_index(index, settings.answers_dir, force=True)
    except (FileNotFoundError, ValueError) as exc:
        print(f"kb index: {exc}", file=sys.stderr)
        return 2
    count = len(build.titles)
    print(f"Indexed {count} answer{'s' * (count != 1)} from {settings.answers_dir} "
          f"in {build.seconds:.2f} s -> {settings.index_dir}")
    width = max(map(len, build.titles), default=0)
    for slug, title in build.titles.items():
        print(f"  {slug:<{width}}  {title}")
    return 0


def search_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.limit < 1:
        print(f"kb search: --limit must be at least 1, got {args.limit}", file=sys.stderr)
        return 2
    index = SearchIndex(settings.index_dir)
    try:
        build = refresh_index(index, settings.answers_dir)
    except (FileNotFoundError, ValueError) as exc:
        print(f"kb search: {exc}", file=sys.stderr)
        return 2
    if build is not None:
        print(f"(search index built from {settings.answers_dir} first)", file=sys.stderr)
    results = index.search(args.query, limit=args.limit)

    if args.json:
        print(json.dumps(results.to_json(lambda slug: answer_url(slug, settings.base_url)),
                         indent=2))
        return 0
    if results.suggestion:
        print(f"Did you mean: {results.suggestion}")
    if not results.results:
        print(f"No answers found for {results.query!r}.")
    for rank, hit in enumerate(results.results, start=1):
        print(f"{rank:2d}. {hit.title}  [{hit.slug}]")
        print(f"    {hit.snippet_text}")
    return 0
