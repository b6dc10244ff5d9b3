"""The term-at-a-time segment writer writes what Whoosh's own writer writes, byte for byte."""
from __future__ import annotations

from array import array
from pathlib import Path

import pytest
from whoosh import index as whoosh_index
from whoosh.codec.whoosh3 import W3Codec
from whoosh.writing import SegmentWriter

from kb.answers.parse import load_answers
from kb.config import PROJECT_ROOT
from kb.search.index import SCHEMA, SearchIndex, _document
from kb.search.writer import CODEC, POSTINGS_COMPRESSION, _Pool, _SegmentWriter
from tests.web.test_search import make_answer

ANSWERS_DIR = PROJECT_ROOT / "answers"


class _WhooshCodec(W3Codec):
    """Whoosh's codec and writer classes with this project's settings."""

    length_stats = CODEC.length_stats

    def __init__(self):
        super().__init__(compression=POSTINGS_COMPRESSION)


def _answers():
    answers = load_answers(ANSWERS_DIR) if ANSWERS_DIR.is_dir() else []
    # Terms in many answers fill several blocks of postings (Whoosh's blocks hold 128).
    many = [make_answer(f"g{i}", f"Generated {i}", f"Batch norm {'scale ' * (i % 7)}shift "
                        f"word{i % 13} word{i % 29}.") for i in range(300)]
    return [*answers, *many]


def _segment_files(folder: Path) -> dict[str, bytes]:
    """Each segment file's bytes, by the file's kind and the segment's place in the index."""
    ix = whoosh_index.open_dir(str(folder))
    files = {}
    for n, segment in enumerate(ix._segments()):
        prefix = segment.segment_id()
        for path in folder.glob(f"{prefix}*"):
            files[f"{n}{path.name[len(prefix):]}"] = path.read_bytes()
    ix.close()
    return files


def _write(folder: Path, make_writer, documents, **commit) -> None:
    ix = whoosh_index.create_in(str(folder), SCHEMA) if not whoosh_index.exists_in(folder) \
        else whoosh_index.open_dir(str(folder))
    writer = make_writer(ix)
    for document in documents:
        writer.update_document(**document)
    writer.commit(**commit)
    ix.close()


def test_segments_are_byte_for_byte_those_of_whooshs_writer(tmp_path):
    documents = [_document(answer)[0] for answer in _answers()]
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for folder, make_writer in (
            (ours, lambda ix: _SegmentWriter(ix, compound=False)),
            (theirs, lambda ix: SegmentWriter(ix, codec=_WhooshCodec(), compound=False))):
        folder.mkdir()
        # Two segments, then a third replacing some answers, then everything merged (the
        # merge reads the old segments' postings back into the pool).
        _write(folder, make_writer, documents[:150], merge=False)
        _write(folder, make_writer, documents[150:], merge=False)
        _write(folder, make_writer, documents[100:120], merge=False)
        first = _segment_files(folder)
        _write(folder, make_writer, documents[10:12], optimize=True)
        merged = _segment_files(folder)
        assert {"0.trm", "0.pst", "0._stored.col", "2.pst"} <= first.keys()
        if folder == ours:
            ours_first, ours_merged = first, merged
    assert ours_first.keys() == first.keys() and len(first) >= 25
    for name in first:
        assert ours_first[name] == first[name], name
    assert ours_merged.keys() == merged.keys()
    for name in merged:
        assert ours_merged[name] == merged[name], name


def test_the_pool_gives_each_terms_postings_in_order_and_refuses_what_it_cannot_keep():
    pool = _Pool()
    for docnum, weight in ((0, 1.0), (2, 3.0), (5, 1.0), (9, 2.0)):
        pool.add(("body", b"shift", docnum, weight, b""))
    pool.add(("body", b"scale", 1, 4.0, None))
    pool.add(("aliases", b"shift", 3, 1.0, b""))
    assert [(f, t, list(ids), list(w)) for f, t, ids, w in pool.terms()] == [
        ("aliases", b"shift", [3], [1.0]),
        ("body", b"scale", [1], [4.0]),
        ("body", b"shift", [0, 2, 5, 9], [1.0, 3.0, 1.0, 2.0])]
    assert list(pool.iter_postings())[:2] == [("aliases", b"shift", 3, 1.0, b""),
                                              ("body", b"scale", 1, 4.0, b"")]
    assert isinstance(next(pool.terms())[2], array)
    with pytest.raises(ValueError, match="posting values are not kept"):
        pool.add(("body", b"x", 1, 1.0, b"\x01"))
    with pytest.raises(ValueError, match="out of document order"):
        pool.add(("body", b"shift", 4, 1.0, b""))


def test_an_index_written_in_segments_finds_what_one_segment_finds(tmp_path, monkeypatch):
    answers = _answers()
    whole = SearchIndex(tmp_path / "whole")
    whole.build(answers)
    monkeypatch.setattr("kb.search.index.SEGMENT_ANSWERS", 7)
    pieces = SearchIndex(tmp_path / "pieces")
    pieces.build(answers)
    for query in ("batch norm shift", "word7", "scale", "running mean", "gamma beta"):
        assert ([(h.slug, round(h.score, 6)) for h in pieces.search(query).results]
                == [(h.slug, round(h.score, 6)) for h in whole.search(query).results]), query


def test_indexes_written_before_the_writer_module_still_name_a_codec():
    """Whoosh pickles the codec class by name in each table of contents; older indexes name
    it ``kb.search.index._Codec``."""
    import pickle

    assert pickle.loads(b"ckb.search.index\n_Codec\n.") is type(CODEC)
