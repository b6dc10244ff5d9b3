"""Keeping the search index in step with the answer files."""
from __future__ import annotations

from pathlib import Path

from kb.answers.parse import load_answers
from kb.search.index import IndexBuild, SearchIndex, answers_fingerprint


def refresh_index(index: SearchIndex, answers_dir: Path, force: bool = False) -> IndexBuild | None:
    """Rebuild ``index`` from ``answers_dir`` if it is missing or stale (always with ``force``).

    Returns what was built, or None when the index was already current.
    """
    if not Path(answers_dir).is_dir():
        raise FileNotFoundError(f"answers folder not found: {answers_dir}")
    if not force and index.is_current(answers_dir):
        return None
    # Fingerprint first: an answer edited while loading leaves the index stale, not wrong.
    fingerprint = answers_fingerprint(answers_dir)
    return index.build(load_answers(answers_dir), fingerprint)
