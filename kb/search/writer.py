"""Whoosh's segment writer, with postings kept grouped by term and written a term at a time.

Whoosh's writer puts every posting in a pool as a tuple, sorts them all when the segment is
committed, and hands them to the codec one call at a time, each checked and accounted for: at
10,000 answers that was a third of an index build. The postings of one segment arrive term
by term in document order anyway, so ``_Pool`` keeps each term's document numbers and weights
in two arrays as they come, only the terms are sorted, and ``_FieldWriter`` cuts each term's
arrays into the blocks ``W3PostingsWriter.add_posting`` would have made. The files written
are byte for byte those of Whoosh's own writer (a test compares them).

Whoosh offers no way to give a writer another pool (``SegmentWriter`` ignores its
``poolclass`` argument), hence the subclass; the postings writer's block buffer is filled
through its own attributes, as ``add_posting`` fills it.
"""
from __future__ import annotations

from array import array
from contextlib import contextmanager

from whoosh.codec.whoosh3 import W3Codec, W3FieldWriter, W3PostingsWriter
from whoosh.writing import SegmentWriter

# Posting blocks are compressed with zlib at this level (Whoosh's default).
POSTINGS_COMPRESSION = 3


class _Pool:
    """A segment's postings: for each (field, term), its document numbers and weights.

    Holds everything in memory, 8 bytes a posting and about 330 a term (Whoosh's pool held a
    tuple of five per posting and sorted through files past a size): a full build writes
    answers in segments of a bounded size, and an update that merges every segment holds the
    whole index's postings (34 MB of them at 10,000 generated answers, and the terms).
    """

    def __init__(self):
        self._terms: dict[tuple[str, bytes], tuple[array, array]] = {}

    def add(self, item: tuple) -> None:
        fieldname, btext, docnum, weight, value = item
        if value:
            raise ValueError(f"posting values are not kept (field {fieldname!r}): this pool "
                             "serves formats without them")
        key = (fieldname, btext)
        postings = self._terms.get(key)
        if postings is None:
            self._terms[key] = (array("I", (docnum,)), array("f", (weight,)))
            return
        ids, weights = postings
        # Whoosh's writer numbers added documents first, then those of merged segments after
        # them, and each segment's postings come in order: a term's documents only increase.
        if docnum <= ids[-1]:
            raise ValueError(f"postings of {fieldname}:{btext!r} out of document order "
                             f"({docnum} after {ids[-1]})")
        ids.append(docnum)
        weights.append(weight)

    def iter_postings(self) -> _TermPostings:
        return _TermPostings(self)

    def terms(self):
        """(field, term, document numbers, weights) in the order Whoosh writes them."""
        for key in sorted(self._terms):
            ids, weights = self._terms[key]
            yield key[0], key[1], ids, weights

    def cleanup(self) -> None:
        self._terms.clear()


class _TermPostings:
    """The pool's postings for ``_FieldWriter``; also the (field, term, document, weight,
    value) tuples any other field writer reads."""

    def __init__(self, pool: _Pool):
        self.pool = pool

    def __iter__(self):
        for fieldname, btext, ids, weights in self.pool.terms():
            for docnum, weight in zip(ids, weights):
                yield fieldname, btext, docnum, weight, b""


class _PostingsWriter(W3PostingsWriter):
    def add_postings(self, ids: array, weights: array) -> None:
        """All of a term's postings (increasing document numbers, no values or lengths):
        the blocks ``add_posting`` makes from them one at a time."""
        limit = self._blocklimit
        for start in range(0, len(ids), limit):
            if self._ids:  # the block before is full: written as add_posting writes it
                self._write_block()
            self._ids = ids[start:start + limit]
            self._weights = weights[start:start + limit]
            self._maxweight = max(0, max(self._weights))


class _FieldWriter(W3FieldWriter):
    def add_postings(self, schema, lengths, items) -> None:
        if not isinstance(items, _TermPostings) or lengths is not None:
            super().add_postings(schema, lengths, items)
            return
        field = None
        for fieldname, btext, ids, weights in items.pool.terms():
            if fieldname != field:
                if field is not None:
                    self.finish_field()
                field = fieldname
                self.start_field(fieldname, schema[fieldname])
            self.start_term(btext)
            self._postwriter.add_postings(ids, weights)
            self.finish_term()
        if field is not None:
            self.finish_field()


class _Codec(W3Codec):
    """Whoosh's codec with the term-at-a-time field writer, and without the shortest and
    longest field length of each block of postings: those serve Whoosh's block-skipping, which
    scoring from arrays does not use, and the writer looks up the length of every posting's
    document to keep them (a tenth of a build).

    Pickled by name in every index's table of contents: renamed, older indexes could not be
    read (``kb.search.index`` keeps the name it had before this module).
    """

    length_stats = False

    def __init__(self):
        super().__init__(compression=POSTINGS_COMPRESSION)

    def field_writer(self, storage, segment):
        return _FieldWriter(self, storage, segment)

    def postings_writer(self, dbfile, byteids=False):
        return _PostingsWriter(dbfile, blocklimit=self._blocklimit, byteids=byteids,
                               compression=self._compression, inlinelimit=self._inlinelimit)


CODEC = _Codec()


class _SegmentWriter(SegmentWriter):
    def __init__(self, ix, **kwargs):
        super().__init__(ix, codec=CODEC, **kwargs)
        self.pool = _Pool()


@contextmanager
def committed(ix, **commit):
    """A writer of ``ix`` that commits (with ``commit``'s options) unless its block fails."""
    writer = _SegmentWriter(ix)
    try:
        yield writer
    except BaseException:
        writer.cancel()
        raise
    writer.commit(**commit)
