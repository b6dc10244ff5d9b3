"""The WSGI app for production servers, configured from the environment (every ``KB_``
variable of ``kb.config``, listed in the README)::

    gunicorn -w 2 --threads 4 -b 127.0.0.1:8000 kb.wsgi:app

This is the one module-level app: every worker builds its own from the same settings and
shares the on-disk search index and demonstration cache with the others. The workers starting
together build a missing or stale index once (the first builds, the others find it current).
Each worker also cleans up after killed writers and warms the cache in the background, as
``kb serve`` does; the cache computes each result once across workers.

Settings that do not fit, or a data folder that cannot be used, stop the start with one line
on stderr and exit code 4, which gunicorn takes as "the app failed to load" and stops.
"""
import logging
import sys

from kb.config import ConfigError, Settings
from kb.gunicorn_conf import APP_LOAD_ERROR
from kb.web.app import create_app
from kb.web.warm import warm_in_background

try:
    app = create_app(Settings.from_env())
except ConfigError as exc:
    print(f"kb: {exc}", file=sys.stderr, flush=True)
    sys.exit(APP_LOAD_ERROR)
if app.extensions["kb"].settings.base_url is None:
    logging.getLogger("kb.wsgi").warning(
        "KB_BASE_URL is not set: absolute links (og:url, og:image) use the Host header of "
        "each request; set it (and KB_TRUSTED_HOSTS) in production")
app.extensions["kb"].index.ensure_current(force=True)  # builds it if missing or stale
warm_in_background(app.extensions["kb"])
