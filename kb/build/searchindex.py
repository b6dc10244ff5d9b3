"""The static build's search index: the answers' search documents (``kb.search.document``, as
the Whoosh index reads them) indexed at build time in MiniSearch's serialization format, which
the search page loads with ``MiniSearch.loadJSON`` (the library is vendored in
``kb/web/static/vendor/minisearch``) and queries in the browser.

Written here rather than by MiniSearch itself so the build needs no JavaScript runtime; it
does what ``new MiniSearch(options).addAll(documents)`` then ``JSON.stringify`` do in
MiniSearch 7 (serialization version 2): its default tokenizer (split at runs of Unicode
spaces, punctuation and newlines), its default term processing (lower case), term counts per
field and document, field lengths in distinct tokens and their running averages. The browser
test loads the same documents into the vendored library and compares the two indexes.
"""
from __future__ import annotations

import re
import unicodedata

from kb.model import Answer
from kb.search.document import document_fields
from kb.search.index import FIELD_BOOSTS

FIELDS = tuple(FIELD_BOOSTS)  # the Whoosh index's fields, weighted as it weighs them
STORED = ("title", "summary")  # shown in the results list
SEARCH_OPTIONS = {"boost": FIELD_BOOSTS, "prefix": True, "fuzzy": 0.2, "combineWith": "OR"}


def _separators(text: str) -> re.Pattern:
    """MiniSearch's ``/[\\n\\r\\p{Z}\\p{P}]+/u`` for the characters of ``text`` (Python's
    ``re`` has no Unicode property classes)."""
    chars = {c for c in set(text)
             if c in "\n\r" or unicodedata.category(c)[0] in "ZP"}
    if not chars:
        return re.compile(r"(?!)")
    return re.compile("[" + "".join(re.escape(c) for c in sorted(chars)) + "]+")


def tokenize(text: str) -> list[str]:
    """MiniSearch's default tokenizer: empty strings at the ends included, as ``split``
    gives them (they count towards a field's length, and are not indexed)."""
    return _separators(text).split(text)


def documents(answers: list[Answer]) -> list[dict[str, str]]:
    """What is indexed of each answer, by slug."""
    return [document_fields(answer) for answer in sorted(answers, key=lambda a: a.slug)]


def minisearch_index(docs: list[dict[str, str]]) -> dict:
    """MiniSearch's serialized index of ``docs`` (``idField`` "slug", ``FIELDS``, ``STORED``)."""
    field_ids = {field: i for i, field in enumerate(FIELDS)}
    index: dict[str, dict[int, dict[int, int]]] = {}
    field_length: dict[int, list[int]] = {}
    average = [0.0] * len(FIELDS)  # a running average over the documents added so far
    for short_id, doc in enumerate(docs):
        lengths = field_length.setdefault(short_id, [0] * len(FIELDS))
        for field, field_id in field_ids.items():
            tokens = tokenize(doc[field])
            lengths[field_id] = len(set(tokens))
            # As MiniSearch computes it (every document has every field): the same floats.
            average[field_id] = (average[field_id] * short_id + lengths[field_id]) / (short_id + 1)
            for token in tokens:
                term = token.lower()
                if term:
                    freqs = index.setdefault(term, {}).setdefault(field_id, {})
                    freqs[short_id] = freqs.get(short_id, 0) + 1
    return {
        "documentCount": len(docs),
        "nextId": len(docs),
        "documentIds": {str(i): doc["slug"] for i, doc in enumerate(docs)},
        "fieldIds": field_ids,
        "fieldLength": {str(i): lengths for i, lengths in field_length.items()},
        "averageFieldLength": average,
        "storedFields": {str(i): {f: doc[f] for f in STORED} for i, doc in enumerate(docs)},
        "dirtCount": 0,
        "index": [[term, {str(f): {str(d): n for d, n in docs_.items()}
                          for f, docs_ in fields.items()}]
                  for term, fields in sorted(index.items())],
        "serializationVersion": 2,
    }


def search_index(answers: list[Answer]) -> dict:
    """The file the search page reads: MiniSearch's options and the index."""
    return {
        "options": {"idField": "slug", "fields": list(FIELDS), "storeFields": list(STORED),
                    "searchOptions": SEARCH_OPTIONS},
        "index": minisearch_index(documents(answers)),
    }
