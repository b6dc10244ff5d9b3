"""``kb serve``: the site on one machine, with werkzeug's threaded WSGI server.

Why werkzeug here and gunicorn in production: werkzeug comes with Flask, runs in this one
process (so the background warm-up below shares its in-memory caches) and serves each
request in a thread, so a page whose demonstrations are computing does not hold up the
others. Several processes sharing the on-disk index and cache are gunicorn's job: see
``kb/wsgi.py`` and the README.
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading
import time

from werkzeug.serving import make_server

from kb.config import Settings
from kb.web.site import Site
from kb.web.app import create_app

logger = logging.getLogger("kb.serve")


def serve_command(settings: Settings, args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not settings.answers_dir.is_dir():
        print(f"kb serve: answers folder not found: {settings.answers_dir}", file=sys.stderr)
        return 2
    app = create_app(settings)
    site = app.extensions["kb"]
    site.index.ensure_current(force=True)  # built (or checked) before the first search
    try:
        server = make_server(args.host, args.port, app, threaded=True)
    except OSError as exc:
        print(f"kb serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    stop = warm_in_background(site)
    print(f"Serving {len(site.answers.current().by_slug)} answers from {settings.answers_dir} "
          f"on http://{args.host}:{server.server_port}/ (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
    return 0


def warm_in_background(site: Site) -> threading.Event:
    """Compute every answer's demonstrations and figures in a daemon thread; set the returned
    event to stop early.

    On a fresh machine each answer's first view would otherwise compute its demonstrations
    (seconds each). Several processes warming at once share the work: the cache computes each
    result once across processes and the others wait for it.
    """
    stop = threading.Event()
    threading.Thread(target=_warm, args=(site, stop), name="kb-warm", daemon=True).start()
    return stop


def _warm(site: Site, stop: threading.Event) -> None:
    started = time.perf_counter()
    try:
        count = site.warm(stop)
    except Exception:  # warming is an optimisation: pages compute on demand anyway
        logger.exception("warming the demonstration cache failed")
        return
    logger.info("demonstration cache warm: %d answers in %.1f s", count,
                time.perf_counter() - started)
