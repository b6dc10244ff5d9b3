"""The WSGI app for production servers, configured from the environment (every ``KB_``
variable of ``kb.config``, listed in the README)::

    gunicorn -w 2 --threads 4 -b 127.0.0.1:8000 kb.wsgi:app

This is the one module-level app: every worker builds its own from the same settings and
shares the on-disk search index and demonstration cache with the others. Each worker also
warms the cache in the background, as ``kb serve`` does; the cache computes each result once
across workers.
"""
from kb.config import Settings
from kb.web.app import create_app
from kb.web.warm import warm_in_background

app = create_app(Settings.from_env())
app.extensions["kb"].index.ensure_current(force=True)  # builds it if missing or stale
warm_in_background(app.extensions["kb"])
