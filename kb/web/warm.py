"""Warming the demonstration cache in the background when a server starts."""
from __future__ import annotations

import logging
import threading
import time

from kb.search.index import load_english_words
from kb.web.site import Site

logger = logging.getLogger("kb.warm")


def warm_in_background(site: Site) -> threading.Event:
    """Read the search's English word list, remove leftovers of killed writes and builds and
    bound the cache, then compute every answer's demonstrations and figures, in a daemon
    thread; set the returned event to stop early.

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
        load_english_words()
        site.housekeeping()
        count = site.warm(stop)
    except Exception:  # warming is an optimisation: pages compute on demand anyway
        logger.exception("warming the demonstration cache failed")
        return
    logger.info("demonstration cache warm: %d answers in %.1f s", count,
                time.perf_counter() - started)
