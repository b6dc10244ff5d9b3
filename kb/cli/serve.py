"""``kb serve``: the site on one machine, with werkzeug's threaded WSGI server.

Why werkzeug here and gunicorn in production: werkzeug comes with Flask, runs in this one
process (so the background warm-up shares its in-memory caches) and serves each request in a
thread, so a page whose demonstrations are computing does not hold up the others. Several
processes sharing the on-disk index and cache are gunicorn's job: see ``kb/wsgi.py`` and the
README.
"""
from __future__ import annotations

import logging

import click
from werkzeug.serving import WSGIRequestHandler, make_server

from kb.config import ConfigError, Settings
from kb.web.app import create_app
from kb.web.warm import warm_in_background


class _Handler(WSGIRequestHandler):
    """werkzeug's request handler, without its version banner in the ``Server`` header."""

    def version_string(self) -> str:
        return "kb"


class StartError(click.ClickException):
    """A start that cannot go on: one line (``Error: ...``), exit code 2."""

    exit_code = 2


@click.command(help="Serve the site on one machine.")
@click.option("--host", default=None, help="Address to listen on (default: $KB_HOST, else "
                                           "127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port (default: $KB_PORT, else 8000).")
@click.pass_obj
def serve(settings: Settings, host: str | None, port: int | None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not settings.answers_dir.is_dir():
        raise click.UsageError(f"answers folder not found: {settings.answers_dir}")
    host = host or settings.host
    port = settings.port if port is None else port
    try:
        app = create_app(settings)
    except ConfigError as exc:
        raise StartError(str(exc)) from None
    site = app.extensions["kb"]
    site.index.ensure_current(force=True)  # built (or checked) before the first search
    try:
        server = make_server(host, port, app, threaded=True, request_handler=_Handler)
    except OSError as exc:
        raise click.UsageError(f"cannot listen on {host}:{port}: {exc}") from None
    stop = warm_in_background(site)
    print(f"Serving {len(site.answers.current().by_slug)} answers from {settings.answers_dir} "
          f"on http://{host}:{server.server_port}/ (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
    return 0
