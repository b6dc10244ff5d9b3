"""Keeping the index in step with the answer files: an update of the changed answers gives the
index a full build would, readers never see half of one, and the arrays search scores from
are the postings Whoosh holds."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from whoosh import index as whoosh_index

from kb.answers.parse import load_answer
from kb.search import index as search_index
from kb.search.index import SCHEMA, SearchIndex, answers_fingerprint
from kb.search.postings import (field_lengths, live_documents, matcher_arrays,
                                slow_field_lengths, slow_matcher_arrays, term_postings)
from kb.search.refresh import refresh_index
from test_indexing import write_answer  # tests/web is on the path, as for every test here


ANIMALS = {
    "aardvark": ("Aardvarks dig", "Aardvarks dig burrows at night and eat ants.\n"),
    "badger": ("Badgers dig too", "Badgers dig setts; a badger eats worms and roots.\n"),
    "coyote": ("Coyotes howl", "Coyotes howl at night and eat almost anything.\n"),
    "dingo": ("Dingoes roam", "Dingoes roam the outback in packs and eat kangaroos.\n"),
    "eland": ("Elands graze", "Elands graze at dawn; an eland is the largest antelope.\n"),
    "fossa": ("Fossas climb", "Fossas climb trees and hunt lemurs at night.\n"),
}
QUERIES = ["dig", "eat at night", "antelope", "lemurs trees", "howl", "zebra stripes",
           "platypus", "kangaroos packs", "nigth", "burrows ants", "stripes at night",
           "badgr"]


@pytest.fixture
def answers(tmp_path) -> Path:
    folder = tmp_path / "answers"
    folder.mkdir()
    for slug, (title, body) in ANIMALS.items():
        write_answer(folder, slug, title, body)
    return folder


def results(index: SearchIndex, query: str) -> tuple:
    found = index.search(query)
    return found.suggestion, [(hit.slug, hit.title, round(hit.score, 9), hit.snippet_html)
                              for hit in found.results]


def edit(answers: Path) -> None:
    """A change, an addition and a removal, as an author would make them."""
    write_answer(answers, "badger", "Badgers dig too",
                 "Badgers dig setts; zebra stripes are not theirs.\n")
    write_answer(answers, "platypus", "Platypuses", "A platypus lays eggs and digs at night.\n")
    (answers / "coyote.md").unlink()


def test_an_update_gives_the_results_of_a_full_build(answers, tmp_path):
    updated = SearchIndex(tmp_path / "updated")
    first = refresh_index(updated, answers)
    assert first is not None and not first.incremental
    edit(answers)
    update = refresh_index(updated, answers)
    assert update.incremental
    assert set(update.titles) == {"badger", "platypus"}
    assert update.removed == ("coyote",)

    rebuilt = SearchIndex(tmp_path / "rebuilt")
    assert not refresh_index(rebuilt, answers).incremental
    for query in QUERIES:
        assert results(updated, query) == results(rebuilt, query), query
    assert [hit.slug for hit in updated.search("platypus").results] == ["platypus"]
    assert updated.search("howl").results == []  # the removed answer is gone
    assert updated.is_current(answers)
    assert updated.fingerprint() == rebuilt.fingerprint() == answers_fingerprint(answers)


def test_a_word_only_a_removed_answer_used_is_corrected_like_after_a_full_build(answers,
                                                                                 tmp_path):
    index = SearchIndex(tmp_path / "index")
    refresh_index(index, answers)
    assert index.search("howl").suggestion is None  # "howl" is known
    (answers / "coyote.md").unlink()
    assert refresh_index(index, answers).incremental
    rebuilt = SearchIndex(tmp_path / "rebuilt")
    refresh_index(rebuilt, answers)
    for query in ("howl", "howls", "coyotes", "eat at nigth", "badgr"):
        assert index.search(query).suggestion == rebuilt.search(query).suggestion, query


def test_a_renamed_answer_file_moves_the_answer(answers, tmp_path):
    index = SearchIndex(tmp_path / "index")
    refresh_index(index, answers)
    text = (answers / "dingo.md").read_text().replace("slug: dingo", "slug: wild-dog")
    (answers / "wild-dog.md").write_text(text)
    (answers / "dingo.md").unlink()
    update = refresh_index(index, answers)
    assert update.incremental and update.removed == ("dingo",) and list(update.titles) == [
        "wild-dog"]
    assert [hit.slug for hit in index.search("kangaroos").results] == ["wild-dog"]


def test_what_refresh_writes(answers, tmp_path):
    index = SearchIndex(tmp_path / "index")
    assert refresh_index(index, answers) is not None
    assert refresh_index(index, answers) is None  # current: nothing to do
    forced = refresh_index(index, answers, force=True)
    assert not forced.incremental and len(forced.titles) == len(ANIMALS)
    # Many changes at once: a full build.
    for slug in ANIMALS:
        write_answer(answers, slug, "Renamed", "Changed text.\n")
    assert not refresh_index(index, answers).incremental
    # An index built from answers alone (no file hashes) is rebuilt in full once.
    index.build([], fingerprint="from elsewhere")
    assert index.indexed_files() is None
    assert not refresh_index(index, answers).incremental
    write_answer(answers, "aardvark", "Aardvarks", "Changed once more.\n")
    assert refresh_index(index, answers).incremental


def test_an_index_of_another_format_is_rebuilt_in_full(answers, tmp_path, monkeypatch):
    index = SearchIndex(tmp_path / "index")
    refresh_index(index, answers)
    monkeypatch.setattr(search_index, "INDEX_FORMAT", "kb-search-next")
    assert index.indexed_files() is None
    assert not index.is_current(answers)
    build = refresh_index(index, answers)
    assert build is not None and not build.incremental


def test_updates_that_would_leave_many_deleted_answers_merge_everything(answers, tmp_path):
    index = SearchIndex(tmp_path / "index")
    refresh_index(index, answers)
    for round_ in range(4):
        write_answer(answers, "eland", "Elands graze", f"Round {round_}: elands graze.\n")
        assert refresh_index(index, answers).incremental
    reader = index._open(index._current_dir()).reader()
    assert reader.doc_count_all() - reader.doc_count() <= 0.25 * reader.doc_count_all()
    rebuilt = SearchIndex(tmp_path / "rebuilt")
    refresh_index(rebuilt, answers)
    for query in QUERIES + ["round elands"]:
        assert results(index, query) == results(rebuilt, query), query


def test_readers_see_the_old_or_the_new_index_during_updates(answers, tmp_path):
    path = tmp_path / "index"
    refresh_index(SearchIndex(path), answers)
    reader = SearchIndex(path)  # one object shared by the threads, as in the web app
    # Each version holds "marker" in exactly one answer, and every other answer as before.
    versions = ["aardvark", "badger", "dingo", "eland", "fossa"]
    seen, errors, updating = [], [], threading.Event()
    updating.set()

    def read():
        try:
            while updating.is_set():
                found = reader.search("marker digs night")
                seen.append(tuple(sorted(hit.slug for hit in found.results)))
        except Exception as exc:  # collected: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    previous = None
    for slug in versions:
        title, body = ANIMALS[slug]
        write_answer(answers, slug, title, body + "The marker is here.\n")
        if previous:
            write_answer(answers, previous, *ANIMALS[previous])
        assert refresh_index(SearchIndex(path), answers).incremental
        previous = slug
    updating.clear()
    for thread in threads:
        thread.join()
    assert errors == []
    # Whatever the version, the query finds the same answers (marker, dig or night in each).
    whole = {tuple(sorted({"aardvark", "badger", "coyote", "fossa", slug})) for slug in versions}
    assert seen and set(seen) <= whole


def test_concurrent_refreshes_write_once(answers, tmp_path):
    path = tmp_path / "index"
    refresh_index(SearchIndex(path), answers)
    write_answer(answers, "fossa", "Fossas climb", "Fossas climb and hunt.\n")
    builds, errors = [], []

    def refresh():
        try:
            builds.append(refresh_index(SearchIndex(path), answers))
        except Exception as exc:  # collected: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=refresh) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(build is not None for build in builds) == 1
    assert SearchIndex(path).is_current(answers)


def test_repeated_queries_are_remembered_per_version(answers, tmp_path):
    index = SearchIndex(tmp_path / "index")
    refresh_index(index, answers)
    first = index.search("dig")
    again = index.search("dig")
    assert again == first and again.results is not first.results  # a copy callers may change
    write_answer(answers, "aardvark", "Aardvarks", "Aardvarks sleep all day.\n")
    refresh_index(index, answers)
    assert [hit.slug for hit in index.search("dig").results] == ["badger"]
    # The query text is echoed as given, even when only its first part is searched.
    long = "dig " * 400
    assert index.search(long).query == long and index.search(long + "x").query == long + "x"


# --- the arrays scoring reads ----------------------------------------------------------------

def test_posting_arrays_are_the_postings_whoosh_reads(answers, tmp_path):
    index = SearchIndex(tmp_path / "index")
    refresh_index(index, answers)
    # Two segments, and deleted answers in the first (updates merge small segments, so the
    # second is written without merging).
    ix = whoosh_index.open_dir(str(index._current_dir()), schema=SCHEMA)
    writer = ix.writer()
    writer.delete_by_term("slug", "coyote")
    edit(answers)
    writer.update_document(**search_index._document(load_answer(answers / "badger.md"))[0])
    writer.add_document(**search_index._document(load_answer(answers / "platypus.md"))[0])
    writer.commit(merge=False)
    reader = ix.reader()
    assert len(reader.leaf_readers()) == 2 and reader.has_deletions()
    for name in search_index.FIELD_BOOSTS:
        for segment, _ in reader.leaf_readers():
            for term in segment.lexicon(name):
                term = term.decode()
                ids, weights = matcher_arrays(segment.postings(name, term))
                live = np.array([not segment.is_deleted(i) for i in ids], dtype=bool)
                slow = slow_matcher_arrays(segment.postings(name, term))  # without deleted
                assert np.array_equal(ids[live], slow[0]) and np.allclose(weights[live], slow[1])
        for segment, offset in reader.leaf_readers():
            whole = field_lengths(reader, name)[offset:offset + segment.doc_count_all()]
            assert np.array_equal(whole, slow_field_lengths(segment, name)), name
    # Whole lists across segments: ids by global document number, deleted ones included.
    ids, weights = term_postings(reader, "body", "dig")
    expected = sorted(docnum for docnum in range(reader.doc_count_all())
                      if "dig" in reader.stored_fields(docnum)["body"].lower())
    assert sorted(ids.tolist()) == expected and set(weights.tolist()) == {1.0}
    assert live_documents(reader).tolist() == [not reader.is_deleted(docnum)
                                               for docnum in range(reader.doc_count_all())]


def test_posting_arrays_span_many_blocks(tmp_path):
    from kb.model import Answer
    answers = [Answer(slug=f"a{i:04d}", title="Common", question="Common", thread="t",
                      tags=[], aliases=[], related=[], summary="common", body="word " * (i % 7 + 1),
                      body_line=8, demonstrations=[], claims=[], inline_values=[],
                      path=Path(f"a{i:04d}.md")) for i in range(700)]
    index = SearchIndex(tmp_path / "index")
    index.build(answers)
    reader = index._open(index._current_dir()).reader()
    fast = matcher_arrays(reader.postings("body", "word"))
    slow = slow_matcher_arrays(reader.postings("body", "word"))
    assert len(fast[0]) == 700
    assert np.array_equal(fast[0], slow[0]) and np.array_equal(fast[1], slow[1])
    assert fast[1][:7].tolist() == [1, 2, 3, 4, 5, 6, 7]


# --- which files changed ---------------------------------------------------------------------

def test_answer_files_reads_only_files_whose_stat_changed(tmp_path, monkeypatch):
    import os
    import time
    from pathlib import Path as PathClass

    from kb.search.index import answer_files, files_fingerprint

    folder = tmp_path / "answers"
    folder.mkdir()
    for name in ("a.md", "b.md", "c.md"):
        (folder / name).write_text(f"first {name}")
    mtime = (folder / "b.md").stat().st_mtime_ns
    later = time.time_ns() + 3600 * 10**9
    monkeypatch.setattr(search_index, "_now_ns", lambda: later)
    first = answer_files(folder)
    assert set(first.stats) == {"a.md", "b.md", "c.md"}

    read = []
    real_read_bytes = PathClass.read_bytes
    monkeypatch.setattr(PathClass, "read_bytes",
                        lambda self: read.append(self.name) or real_read_bytes(self))
    monkeypatch.setattr(search_index, "_now_ns", time.time_ns)
    (folder / "fresh.md").write_text("just written")
    second = answer_files(folder, known=first)
    assert read == ["fresh.md"] and set(second) == {"a.md", "b.md", "c.md", "fresh.md"}
    assert "fresh.md" not in second.stats  # too recent to trust its stat next time

    read.clear()
    (folder / "b.md").write_text("fIrst b.md")  # same size...
    os.utime(folder / "b.md", ns=(mtime, mtime))  # ...and modification time
    monkeypatch.setattr(search_index, "_now_ns", lambda: later)
    third = answer_files(folder, known=second)
    assert sorted(read) == ["b.md", "fresh.md"]  # b.md's change time moved
    assert third["b.md"] != first["b.md"] and third["a.md"] == first["a.md"]
    assert files_fingerprint(third) == files_fingerprint(answer_files(folder))
