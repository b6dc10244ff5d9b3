"""``kb worker``: computes reruns from the shared queue (``KB_QUEUE_URL``), on any machine.

Start as many as there are cores to spare, on as many machines as share the data folder
(``KB_DATA``): each takes one job at a time and computes it under the same limits as the
service (``KB_DEMO_TIMEOUT``, ``KB_DEMO_CPU``, ``KB_DEMO_MEMORY``) into the shared cache.
"""
from __future__ import annotations

import logging

import click
from redis.exceptions import ConnectionError as RedisConnectionError

from kb.config import Settings
from kb.run.cache import Cache
from kb.run.executor import Executor


@click.command(help="Compute reruns from the queue at $KB_QUEUE_URL into the shared cache.")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@click.option("--name", default=None, help="The worker's name in the queue (default: RQ's).")
@click.pass_obj
def worker(settings: Settings, burst: bool, name: str | None) -> int:
    if not settings.queue_url:
        raise click.UsageError("kb worker needs KB_QUEUE_URL (e.g. redis://127.0.0.1:6379/0)")
    from kb.jobs.redis_queue import serve_jobs  # rq: only for this command

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    # No size bound here: the service processes prune the cache, knowing which results are
    # the answers' own and must stay.
    cache = Cache(settings.cache_dir, failure_ttl=settings.failure_ttl)
    try:
        serve_jobs(settings, Executor.for_settings(cache, settings), name=name, burst=burst)
    except RedisConnectionError as exc:
        raise click.ClickException(f"cannot reach the queue at {settings.queue_url}: {exc}")
    return 0
