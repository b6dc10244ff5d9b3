"""Whoosh postings and field lengths read as numpy arrays, a whole list at a time.

Scoring every answer that contains a query word through Whoosh's matchers costs a few Python
calls per posting and per matcher (a union of eight fields times every query word): at
10,000 answers that was 95% of a query's time. Reading each posting list once into arrays
and scoring them with numpy does the same arithmetic in a few calls per list.

Whoosh has no public call for a posting list as arrays, so this module reads the blocks of
the codec the index is written with (``W3LeafMatcher``: a pickled tuple of delta-encoded
ids, weights and values per block) and the byte-per-document length columns. Anything else
(another codec, a matcher of another kind) goes through the public matcher interface, which
gives the same arrays more slowly; the tests compare the two.
"""
from __future__ import annotations

import numpy as np
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher, _lenfield
from whoosh.matching.wrappers import FilterMatcher
from whoosh.util.numeric import byte_to_length

# byte -> field length, as Whoosh decodes the lengths it stores in one byte per document.
_LENGTH_OF_BYTE = np.array([byte_to_length(b) for b in range(256)], dtype=np.float64)
_EMPTY_IDS = np.zeros(0, dtype=np.int64)
_EMPTY_WEIGHTS = np.zeros(0, dtype=np.float64)


def term_postings(reader, field: str, term: str) -> tuple[np.ndarray, np.ndarray]:
    """The ids (global document numbers) and weights of ``term`` in ``field``, deleted
    documents included (the caller masks them)."""
    ids, weights = [], []
    for segment, offset in reader.leaf_readers():
        if (field, term) not in segment:
            continue
        segment_ids, segment_weights = matcher_arrays(segment.postings(field, term))
        ids.append(segment_ids + offset)
        weights.append(segment_weights)
    if not ids:
        return _EMPTY_IDS, _EMPTY_WEIGHTS
    if len(ids) == 1:
        return ids[0], weights[0]
    return np.concatenate(ids), np.concatenate(weights)


def matcher_arrays(matcher) -> tuple[np.ndarray, np.ndarray]:
    """Every (id, weight) a fresh matcher would give, deleted documents included."""
    if isinstance(matcher, FilterMatcher):  # a segment's deletions: masked by the caller
        matcher = matcher.child
    if type(matcher) is W3LeafMatcher:
        return _block_arrays(matcher)
    return slow_matcher_arrays(matcher)


def slow_matcher_arrays(matcher) -> tuple[np.ndarray, np.ndarray]:
    """The same through the public matcher interface, a posting at a time."""
    ids, weights = [], []
    while matcher.is_active():
        ids.append(matcher.id())
        weights.append(matcher.weight())
        matcher.next()
    return np.array(ids, dtype=np.int64), np.array(weights, dtype=np.float64)


def _block_arrays(matcher: W3LeafMatcher) -> tuple[np.ndarray, np.ndarray]:
    ids, weights = [], []
    while True:
        if matcher._data is None:
            matcher._read_data()
        block_ids, block_weights, _ = matcher._data
        count = matcher._blocklength
        ids.append(np.cumsum(np.array(block_ids, dtype=np.int64)))  # delta-encoded
        if block_weights is None:
            weights.append(np.ones(count))
        elif isinstance(block_weights, float):
            weights.append(np.full(count, block_weights))
        else:
            weights.append(np.array(block_weights, dtype=np.float64))
        if matcher._lastblock:
            break
        matcher._goto(matcher._nextoffset)
    if len(ids) == 1:
        return ids[0], weights[0]
    return np.concatenate(ids), np.concatenate(weights)


def field_lengths(reader, field: str) -> np.ndarray:
    """Each document's length in ``field`` (by global document number) as Whoosh scores it:
    decoded from the one byte it keeps per document."""
    parts = []
    for segment, _ in reader.leaf_readers():
        count = segment.doc_count_all()
        try:
            column = segment._perdoc._cached_reader(_lenfield(field), LENGTHS_COLUMN)
            if column is None:
                codes = np.zeros(count, dtype=np.uint8)
            else:
                stored = min(column._count, count)
                codes = np.zeros(count, dtype=np.uint8)
                codes[:stored] = np.frombuffer(column._dbfile.get(column._basepos, stored),
                                               dtype=np.uint8)
            parts.append(_LENGTH_OF_BYTE[codes])
        except AttributeError:  # another codec: ask for each document
            parts.append(slow_field_lengths(segment, field))
    return np.concatenate(parts) if parts else np.zeros(0)


def slow_field_lengths(segment, field: str) -> np.ndarray:
    return np.array([segment.doc_field_length(docnum, field, 0) or 0
                     for docnum in range(segment.doc_count_all())], dtype=np.float64)


def live_documents(reader) -> np.ndarray:
    """A mask of the documents not deleted, by global document number."""
    live = np.ones(reader.doc_count_all(), dtype=bool)
    for segment, offset in reader.leaf_readers():
        if segment.has_deletions():
            live[offset:offset + segment.doc_count_all()] = False
            live[np.fromiter(segment.all_doc_ids(), dtype=np.int64) + offset] = True
    return live
