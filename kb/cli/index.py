"""``kb index`` and ``kb search``: the search index from the command line."""
from __future__ import annotations

import json

import click

from kb.config import Settings
from kb.search.index import SearchIndex
from kb.search.refresh import refresh_index


def answer_url(slug: str, settings: Settings) -> str:
    """The permanent link of an answer, absolute as in /api/search: under the public base URL
    (``KB_BASE_URL``), else under the address ``kb serve`` listens on."""
    base = settings.base_url or f"http://{settings.host}:{settings.port}"
    return f"{base.rstrip('/')}/a/{slug}"


def _refreshed(settings: Settings, force: bool):
    """The index, rebuilt first when stale (or always with ``force``), and what was built."""
    index = SearchIndex(settings.index_dir)
    try:
        return index, refresh_index(index, settings.answers_dir, force=force)
    except (FileNotFoundError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None


@click.command(help="Rebuild the search index atomically.")
@click.pass_obj
def index(settings: Settings) -> int:
    _, build = _refreshed(settings, force=True)
    count = len(build.titles)
    print(f"Indexed {count} answer{'s' * (count != 1)} from {settings.answers_dir} "
          f"in {build.seconds:.2f} s -> {settings.index_dir}")
    width = max(map(len, build.titles), default=0)
    for slug, title in build.titles.items():
        print(f"  {slug:<{width}}  {title}")
    return 0


@click.command(help="Search the answers from the command line.")
@click.argument("query")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON of /api/search.")
@click.pass_obj
def search(settings: Settings, query: str, limit: int, as_json: bool) -> int:
    index_, build = _refreshed(settings, force=False)
    if build is not None:
        click.echo(f"(search index built from {settings.answers_dir} first)", err=True)
    results = index_.search(query, limit=limit)
    if as_json:
        print(json.dumps(results.to_json(lambda slug: answer_url(slug, settings)),
                         indent=2))
        return 0
    if results.suggestion:
        print(f"Did you mean: {results.suggestion}")
    if not results.results:
        print(f"No answers found for {results.query!r}.")
    for rank, hit in enumerate(results.results, start=1):
        print(f"{rank:2d}. {hit.title}  [{hit.slug}]")
        print(f"    {hit.snippet}")
    return 0
