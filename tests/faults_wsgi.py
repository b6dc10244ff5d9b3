"""``kb.wsgi:app`` with the fault experiments of ``faults`` registered first, for gunicorn."""
import faults  # noqa: F401  (registers the experiments)
from kb.wsgi import app  # noqa: F401
