"""gunicorn settings of the service, loaded with ``-c python:kb.gunicorn_conf``::

    gunicorn -c python:kb.gunicorn_conf -w 2 --threads 4 -b 127.0.0.1:8000 kb.wsgi:app

``on_starting``: the settings and the data folder are checked once, in the master, before any
worker starts: one that does not fit stops gunicorn with one line and exit code 4 (rather
than every worker failing in turn).

``post_fork``: each worker dies with the master (Linux's parent-death signal). Without it, a
master killed with SIGKILL leaves its workers running until they notice, and a worker waits
out its graceful timeout for requests in flight before it closes its copy of the listening
socket: a new master cannot bind the port meanwhile. A worker's computations die with the
worker in turn (``kb.run.executor``), so nothing of the old server is left.
"""
import sys

from kb.config import ConfigError, Settings
from kb.run.executor import die_with_parent
from kb.web.site import check_data_dir

APP_LOAD_ERROR = 4  # gunicorn's exit code for "the app failed to load": it stops, no respawn


def on_starting(server) -> None:
    try:
        check_data_dir(Settings.from_env().data_dir)
    except ConfigError as exc:
        print(f"kb: {exc}", file=sys.stderr, flush=True)
        sys.exit(APP_LOAD_ERROR)


def post_fork(server, worker) -> None:
    die_with_parent(server.pid)
