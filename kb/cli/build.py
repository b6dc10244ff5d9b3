"""``kb build``: the whole knowledge base as static files (see ``kb.build``)."""
from __future__ import annotations

from pathlib import Path

import click

from kb.build.build import build_site
from kb.build.layout import BuildError, normalize_base
from kb.config import Settings


@click.command(help="Write the whole knowledge base as static files for any static host.")
@click.option("--out", required=True, metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the site into (files are written only when they change).")
@click.option("--base-url", metavar="URL",
              help="Public URL of the site's root, e.g. https://host/course/kb/ (absolute "
                   "links in link previews and the JSON); pages link relatively either way.")
@click.option("--rerun-url", metavar="URL",
              help="A live service (kb serve) the rerun form is sent to; without it the form "
                   "is replaced by a note.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, metavar="N", show_default=True,
              help="Answers built in parallel (each computation in a process of its own).")
@click.pass_obj
def build(settings: Settings, out: Path, base_url: str | None, rerun_url: str | None,
          jobs: int) -> int:
    try:
        normalize_base(base_url)
        normalize_base(rerun_url, "--rerun-url")
    except BuildError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        build_site(settings, out, base_url=base_url, rerun_url=rerun_url, jobs=jobs,
                   progress=lambda line: click.echo(line, err=True))
    except BuildError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # the output folder cannot be written (full, read-only, ...)
        raise click.ClickException(f"cannot write {exc.filename or out}: "
                                   f"{exc.strerror or exc}") from None
    return 0
