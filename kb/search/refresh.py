"""Keeping the search index in step with the answer files."""
from __future__ import annotations

from pathlib import Path

from kb.answers.parse import load_answer, load_answers
from kb.search.index import IndexBuild, SearchIndex, answer_files, files_fingerprint

# Changes to more than a quarter of the answers (and more than a few) are indexed by a full
# build: each change costs a parse and an update either way, and a full build leaves no
# deleted documents behind.
MAX_INCREMENTAL_SHARE = 0.25
MAX_INCREMENTAL_ALWAYS = 4


def refresh_index(index: SearchIndex, answers_dir: Path, force: bool = False) -> IndexBuild | None:
    """Bring ``index`` up to date with ``answers_dir`` if it is missing or stale (with
    ``force``: rebuild it in full whatever its state).

    The index keeps the hash of every answer file it was made from, so a few changed, added or
    removed files are an update of those answers alone (only they are parsed); a missing
    index, one of another format, or many changes are a full build. Returns what was written,
    or None when the index was already current.
    """
    answers_dir = Path(answers_dir)
    if not answers_dir.is_dir():
        raise FileNotFoundError(f"answers folder not found: {answers_dir}")
    # Hashes first: an answer edited while loading leaves the index stale, not wrong. Files
    # whose stat the index recorded are not read again.
    indexed = index.indexed_files()
    files = answer_files(answers_dir, known=indexed)
    fingerprint = files_fingerprint(files)
    if not force and index.fingerprint() == fingerprint:
        return None
    with index.writing():  # decide and write under one hold: another process may be ahead
        if not force and index.fingerprint() == fingerprint:
            return None
        indexed = None if force else index.indexed_files()
        if indexed is not None:
            changed = [name for name, digest in files.items() if indexed.get(name) != digest]
            removed = [name for name in indexed if name not in files]
            if len(changed) + len(removed) <= max(MAX_INCREMENTAL_ALWAYS,
                                                  MAX_INCREMENTAL_SHARE * len(indexed)):
                # An answer's slug is its file name (the parser sees to it).
                return index.update([load_answer(answers_dir / name) for name in changed],
                                    [Path(name).stem for name in removed], fingerprint, files)
        return index.build(load_answers(answers_dir), fingerprint, files)
