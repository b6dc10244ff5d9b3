"""Full-text search over the answers: schema, analysis, index build and update, query.

This is the only package that imports Whoosh. What it offers:

- ``SearchIndex(index_dir)``: ``build(answers, fingerprint, files)`` writes a complete index
  into a new version folder and swaps it in with one rename, so readers never see half an
  index; ``update(answers, removed, fingerprint, files)`` makes the next version from the
  current one (its segment files linked, not copied) with some answers replaced, added or
  removed, and swaps it in the same way; ``search(query, limit)`` -> ``SearchResults``;
  ``is_current(answers_dir)`` compares the stored fingerprint with the answer files'.
  ``kb.search.refresh.refresh_index`` chooses between the two from the files' hashes.
- Analysis: words are lowercased, synonyms (one word or several) become one canonical token,
  stop words go, the rest is stemmed. Index and query use the same analyzer; each field of an
  answer is analyzed once, and the index keeps its term counts (for BM25F) and, for the
  summary and the body, where each term occurs (for snippets).
- Ranking: BM25F as Whoosh computes it (each field's BM25 times its ``FIELD_BOOSTS`` weight,
  summed), over statistics of the answers the index holds now; posting lists are read into
  arrays once per index version and scored with numpy (see ``kb.search.postings``).
- Typos: a query word missing from the vocabulary (the answers' words with their counts, kept
  in a file beside each version: as postings they were half of all the index's postings) is
  replaced by the closest known word; the corrected query is searched too and offered as
  ``suggestion`` ("did you mean").
- Snippets come as HTML (``Hit.snippet_html``: everything escaped except the ``<mark>``
  around matches) and as plain text (``Hit.snippet``).
- Queries have no syntax: quotes and operators (AND, OR, NOT, -, +, *) are plain text, and
  every word counts. Learners type questions.
- Each process keeps, per index version, one Whoosh reader per thread, the posting arrays
  it has read and the results of recent queries.

On-disk layout, for ``index_dir = .kb/index``::

    .kb/index            symlink -> index.versions/<version>  (swapped atomically)
    .kb/index.versions/  complete indexes; the current and the previous one are kept
    .kb/index.lock       serializes builders (flock)
"""
from __future__ import annotations

import fcntl
import hashlib
import html
import json
import math
import os
import re
import secrets
import shutil
import threading
import time
import unicodedata
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby, islice
from operator import itemgetter
from pathlib import Path

import numpy as np
from cachetools import LRUCache
from whoosh import index as whoosh_index
from whoosh.analysis import (STOP_WORDS, Filter, LowercaseFilter, RegexTokenizer, StemFilter,
                             StopFilter, Token)
from whoosh.columns import CompressedBytesColumn, PickleColumn
from whoosh.fields import COLUMN, ID, STORED, FieldType, Schema
from whoosh.formats import Existence
from whoosh.highlight import (FIRST, BasicFragmentScorer, Formatter, PinpointFragmenter,
                              get_text, top_fragments)
from whoosh.lang.porter import stem
from spellchecker import SpellChecker
from whoosh.support.levenshtein import distance as edit_distance

from kb.model import Answer
from kb.search.document import document_fields
from kb.search.postings import field_lengths, live_documents, term_postings
from kb.search.writer import committed
# Whoosh pickles each segment's codec in the index's table of contents: indexes written
# before kb.search.writer existed name their codec here, and readers may still be on one.
from kb.search.writer import _Codec  # noqa: F401

# Bump when the schema, the analysis or the text extraction (kb.search.document) changes: the
# fingerprint includes it, so existing indexes count as stale and get rebuilt.
INDEX_FORMAT = "kb-search-10"

# A Greek letter is a word of its own ("σ²" -> "σ"); otherwise runs of letters and digits,
# split at underscores so that "running_mean" is "running mean".
WORD_PATTERN = r"[\u0370-\u03ff]|[^\W_\u0370-\u03ff]+"
WORD = re.compile(WORD_PATTERN)
# The words of the spelling vocabulary and of queries being corrected: with their apostrophes
# ("wouldn't"), so that a contraction is neither "corrected" piece by piece nor suggested
# as one ("doesnt" -> "doesn't", not "doesn").
SPELLED_WORD_PATTERN = r"[^\W_]+(?:['’][^\W_]+)*"
SPELLED_WORD = re.compile(SPELLED_WORD_PATTERN)

# canonical token -> the ways people write it (the canonical token itself also counts).
# Variants are matched on stems, so plurals and other inflections need no entry of their own.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "batchnorm": ("bn", "batch norm", "batch normalization", "batch normalisation",
                  "batch normalizing", "batch normalized", "batch normalising", "batch normalised"),
    "ics": ("internal covariate shift", "internal covariance shift", "internal covariant shift"),
    "gamma": ("γ",),
    "beta": ("β",),
    "mu": ("μ",),
    "sigma": ("σ",),
    "epsilon": ("ε", "ϵ"),
    "ewa": ("ema", "running average", "moving average", "exponentially weighted",
            "exponentially weighted average", "exponential moving average",
            "exponentially weighted moving average", "running mean", "running statistics",
            "running stats", "running estimate"),
    "minibatch": ("mini batch", "batch size", "minibatch size", "mini batch size"),
    # British and American spellings (the answers write "colour", the lecture "colored"); the
    # -ized forms are listed because the stemmer leaves them apart from "-ization".
    "colour": ("color",),
    "favour": ("favor",),
    "normalization": ("normalisation", "normalized"),
    "regularization": ("regularisation", "regularized"),
    "generalization": ("generalisation", "generalized"),
}

# Query-time weight of a match in each field.
FIELD_BOOSTS: dict[str, float] = {
    "title": 4.0,
    "question": 3.0,
    "tags": 3.0,
    "aliases": 2.0,
    "headings": 2.0,
    "summary": 2.0,
    "body": 1.0,
    "tables": 1.0,
}

MAX_QUERY_CHARS = 1000  # longer queries are cut: a question never needs more
MAX_QUERY_TERMS = 48
MAX_CORRECTION_LOOKUPS = 6  # per query; each walks the vocabulary (known ones are memoized)
MAX_CORRECTABLE_LENGTH = 24
MIN_CORRECTABLE_LENGTH = 4

# BM25F's free parameters, Whoosh's defaults.
BM25_B = 0.75
BM25_K1 = 1.2

SNIPPET_CHARS = 240
SNIPPET_FIELDS = ("summary", "body")  # the snippet is cut from the first that matches
STORED_TEXT = ("title", "summary", "body")
# Matches this far into a text are not marked (Whoosh's highlighting limit), so not kept.
MARKS_CHARLIMIT = PinpointFragmenter().charlimit

VERSIONS_KEPT = 2  # the current index and the one before it, for readers still on it
# An update that would leave more than this share of the index's documents deleted (each
# replaced answer leaves its old copy deleted until segments merge) merges everything.
MAX_DELETED_SHARE = 0.25
SEGMENT_ANSWERS = 2500  # answers per segment in a full build

# Per index version and process: results of this many recent queries, and posting arrays up
# to this many bytes.
RESULTS_KEPT = 1024
POSTINGS_KEPT_BYTES = 64 * 1024 * 1024


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return stem(word)


class SynonymFilter(Filter):
    """Rewrites every synonym, of one word or several, as its group's canonical token.

    The canonical token spans the characters of the whole phrase, so highlighting marks
    "batch norm" as one match. When indexing, the words of a several-word phrase are kept as
    well (after the canonical token), so that "normalization" alone still finds
    "batch normalization"; queries get the canonical token only.
    """

    def __init__(self, groups: dict[str, tuple[str, ...]]):
        self.phrases: dict[tuple[str, ...], str] = {}
        for canonical, variants in groups.items():
            for variant in (canonical, *variants):
                key = tuple(_stem(w) for w in WORD.findall(variant.lower()))
                if key in self.phrases and self.phrases[key] != canonical:
                    raise ValueError(f"synonym {variant!r} is in groups {self.phrases[key]!r} "
                                     f"and {canonical!r}")
                self.phrases[key] = canonical
        # Every beginning of a phrase: while the words read ahead are one, keep reading.
        self.prefixes = {key[:n] for key in self.phrases for n in range(1, len(key) + 1)}

    def __call__(self, tokens: Iterable) -> Iterator:
        # Words that cannot begin a synonym pass straight through; the others are read ahead,
        # as copies because the tokenizer reuses one Token object.
        ahead: list[tuple[object, str]] = []  # (token, stem)
        for token in tokens:
            stem_ = _stem(token.text)
            if ahead and token.chars and token.startchar - ahead[-1][0].endchar > 1:
                # A phrase does not run across punctuation ("it moved: averaged over").
                while ahead:
                    yield from self._take_first(ahead)
            if not ahead and (stem_,) not in self.prefixes:
                yield token
                continue
            ahead.append((token.copy(), stem_))
            while ahead and tuple(s for _, s in ahead) not in self.prefixes:
                yield from self._take_first(ahead)
        while ahead:
            yield from self._take_first(ahead)

    def _take_first(self, ahead: list) -> Iterator:
        """Emit the longest synonym at the start of ``ahead`` (or its first word) and drop it."""
        stems = tuple(s for _, s in ahead)
        n = next((n for n in range(len(stems), 0, -1) if stems[:n] in self.phrases), 0)
        if n == 0:
            yield ahead.pop(0)[0]
            return
        first = ahead[0][0]
        merged = first.copy()
        merged.text = self.phrases[stems[:n]]
        if merged.chars:
            merged.endchar = ahead[n - 1][0].endchar
        yield merged
        if n > 1 and first.mode == "index":
            yield from (token for token, _ in ahead[:n])
        del ahead[:n]


_SYNONYM_FILTER = SynonymFilter(SYNONYMS)
_STOP_FILTER = StopFilter()


def _text_analyzer():
    # Synonyms before stop words: the stop filter drops one-letter tokens such as "σ".
    return (RegexTokenizer(WORD_PATTERN) | LowercaseFilter() | _SYNONYM_FILTER
            | _STOP_FILTER | StemFilter())


_ANALYZER = _text_analyzer()


def _index_tokens(text: str) -> list[tuple[str, int, int]]:
    """(term, start, end) of each token ``_ANALYZER(text, mode="index", chars=True)`` gives.

    The same steps without Whoosh's chain of generators and its shared Token object, which
    cost most of an index build: words (``WORD``), lowercased; synonyms by
    ``SynonymFilter``'s rules (a phrase within punctuation, the longest first, its words kept
    after the canonical token); stop words and one-letter words out; stems. A test compares
    the two on every answer and on generated text.
    """
    phrases, prefixes = _SYNONYM_FILTER.phrases, _SYNONYM_FILTER.prefixes
    stops, shortest = _STOP_FILTER.stops, _STOP_FILTER.min
    stem_of, info_of = _stem, _WORD_INFO.get
    kept: list[tuple[str, int, int]] = []
    keep = kept.append
    # Words that may begin a synonym phrase wait here until the phrase is known:
    # (word, stem, start, end), and their stems as a tuple.
    ahead: list[tuple[str, str, int, int]] = []
    ahead_stems: tuple[str, ...] = ()

    def take_first() -> None:
        """Keep the longest synonym at the start of ``ahead`` (or its first word); drop it."""
        nonlocal ahead_stems
        n = next((n for n in range(len(ahead_stems), 0, -1) if ahead_stems[:n] in phrases), 0)
        if n == 0:
            word, stem_, start, end = ahead.pop(0)
            if len(word) >= shortest and word not in stops:
                keep((stem_, start, end))
        else:
            canonical = phrases[ahead_stems[:n]]
            if len(canonical) >= shortest and canonical not in stops:
                keep((stem_of(canonical), ahead[0][2], ahead[n - 1][3]))
            if n > 1:  # and the phrase's words, as the index keeps them
                kept.extend((stem_, start, end) for word, stem_, start, end in ahead[:n]
                            if len(word) >= shortest and word not in stops)
            del ahead[:n]
        ahead_stems = ahead_stems[len(ahead_stems) - len(ahead):]

    for match in WORD.finditer(text):
        word = match.group().lower()
        stem_, term, begins = info_of(word) or _word_info(word)
        if not ahead:
            if not begins:  # most words: no phrase to wait for
                if term:
                    start, end = match.span()
                    keep((term, start, end))
                continue
        else:
            start = match.start()
            if start - ahead[-1][3] > 1:  # a phrase does not run across punctuation
                while ahead:
                    take_first()
                if not begins:
                    if term:
                        keep((term, start, match.end()))
                    continue
        start, end = match.span()
        ahead.append((word, stem_, start, end))
        ahead_stems += (stem_,)
        while ahead and ahead_stems not in prefixes:
            take_first()
    while ahead:
        take_first()
    return kept


_FIRST_STEMS = frozenset(key[0] for key in _SYNONYM_FILTER.prefixes)
# word -> (its stem, the term it gives alone or "" when it is dropped, whether it may begin a
# synonym phrase): what ``_index_tokens`` needs of each word, looked up once per word rather
# than computed at each of its occurrences (a fifth of a build's analysis).
_WORD_INFO: dict[str, tuple[str, str, bool]] = {}
WORD_INFO_KEPT = 1 << 18


def _word_info(word: str) -> tuple[str, str, bool]:
    stem_ = _stem(word)
    info = (stem_, stem_ if len(word) >= _STOP_FILTER.min and word not in _STOP_FILTER.stops
            else "", stem_ in _FIRST_STEMS)
    if len(_WORD_INFO) >= WORD_INFO_KEPT:
        _WORD_INFO.clear()
    _WORD_INFO[word] = info
    return info


def _term_counts(text: str) -> dict[str, int]:
    """How often each term occurs in ``text``, analyzed as the index analyzes it."""
    return Counter(map(itemgetter(0), _index_tokens(text)))


def _term_marks(text: str) -> dict[str, list[int]]:
    """Where each term occurs in ``text``: its start and end characters, one after the other."""
    marks: dict[str, list[int]] = {}
    for term, start, end in _index_tokens(text):
        spans = marks.get(term)
        if spans is None:
            marks[term] = [start, end]
        else:
            spans += (start, end)
    return marks


@lru_cache(maxsize=1)
def _english() -> frozenset[str]:
    """The words of English (pyspellchecker's list, read at the first correction or by
    ``load_english_words``; its frequencies are dropped, which halves the memory it holds)."""
    return frozenset(SpellChecker(language="en", distance=1).word_frequency.dictionary)


def load_english_words() -> None:
    """Read the English word list of "did you mean" now (about 0.3 s, once per process), so
    that a reader's first search with a typo does not wait for it (servers do this at start)."""
    _english()


def _is_english(word: str) -> bool:
    """Whether ``word`` (lowercase) is a word of English: a learner's "forgot" is spelled
    right even when no answer uses it, and must not become "forget"."""
    return word in _english()


def _words(text: str) -> list[str]:
    """The plain lowercase words of ``text``, unstemmed: what typos are corrected against (as
    Whoosh's RegexTokenizer and LowercaseFilter would give them)."""
    return SPELLED_WORD.findall(text.lower())


class _Counted(FieldType):
    """A field indexed from term counts made beforehand (``{term: count}``): each posting holds
    the count as its weight, nothing else. A field's length is the sum of its counts."""

    def __init__(self, stored: bool = False):
        super().__init__(Existence(), analyzer=_ANALYZER, scorable=True, stored=stored)

    def index(self, value, **kwargs):
        return [(term.encode("utf-8"), count, float(count), b"")
                for term, count in value.items()]


def _schema() -> Schema:
    return Schema(
        slug=ID(stored=True, unique=True),
        # The text fields hold term counts; the stored ones keep their text (for results and
        # snippets) and ``marks`` the characters of each term in the snippet fields.
        **{name: _Counted(stored=name in STORED_TEXT) for name in FIELD_BOOSTS},
        marks=STORED(),
        lengths=STORED(),  # each field's exact length, to leave deleted answers out of the mean
        # Each answer's vocabulary ({word: count}), read back when the answer is replaced
        # or removed, to take its words out of the index's vocabulary.
        words=COLUMN(PickleColumn(CompressedBytesColumn())),
    )


SCHEMA = _schema()
# Words typos are corrected towards besides the answers' own: the one-word synonyms, so that
# "batchnrom" finds "batchnorm". Words of several-word variants are left out: some are
# misnomers ("covariance shift") that would otherwise become suggestions themselves.
_VOCABULARY_EXTRAS = " ".join(
    word for canonical, variants in SYNONYMS.items()
    for word in (canonical, *variants) if len(WORD.findall(word)) == 1)


def _document(answer: Answer) -> tuple[dict, list[str]]:
    """The keyword arguments of ``writer.add_document`` for one answer, and its words."""
    fields = document_fields(answer)
    document: dict = {"slug": fields["slug"]}
    marks: dict[str, tuple[str, bytes, bytes]] = {}
    lengths: dict[str, int] = {}
    for name in FIELD_BOOSTS:
        text = fields[name]
        if name in SNIPPET_FIELDS:
            spans = _term_marks(text)
            counts = {term: len(chars) // 2 for term, chars in spans.items()}
            marks[name] = _pack_marks(spans)
        else:
            counts = _term_counts(text)
        document[name] = counts
        lengths[name] = sum(counts.values())
        if name in STORED_TEXT:
            document[f"_stored_{name}"] = text
    document["marks"] = marks
    document["lengths"] = lengths
    searchable = " ".join(v for k, v in fields.items() if k != "slug")
    words = _words(f"{searchable} {_VOCABULARY_EXTRAS}")
    document["words"] = dict(Counter(words))
    return document, words


def _pack_marks(marks: dict[str, list[int]]) -> tuple[str, bytes, bytes]:
    """``_term_marks`` in three flat values that unpickle in a few microseconds whatever the
    number of terms: the terms between newlines, where each term's characters end in the
    third value, and those characters (each term's, up to Whoosh's highlighting limit)."""
    terms, ends, chars = [], array("I", [0]), array("I")
    for term, spans in marks.items():
        if spans[-1] > MARKS_CHARLIMIT:  # spans ascend: only then is there one to cut
            for i in range(1, len(spans), 2):
                if spans[i] > MARKS_CHARLIMIT:
                    spans = spans[:i - 1]
                    break
        if spans:
            terms.append(term)
            chars.extend(spans)
            ends.append(len(chars))
    return "\n" + "\n".join(terms) + "\n", ends.tobytes(), chars.tobytes()


def _marks_of(packed: tuple[str, bytes, bytes] | None, term: str) -> memoryview | None:
    """The characters where ``term`` occurs (start, end, start, ...) from ``_pack_marks``."""
    if not packed:
        return None
    terms, ends, chars = packed
    at = terms.find(f"\n{term}\n")
    if at < 0:
        return None
    n = terms.count("\n", 0, at)
    ends = memoryview(ends).cast("I")
    return memoryview(chars).cast("I")[ends[n]:ends[n + 1]]


# --- results -----------------------------------------------------------------------------

_MARK = re.compile(r"</?mark>")


@dataclass(frozen=True)
class Hit:
    slug: str
    title: str
    score: float
    snippet_html: str  # HTML: escaped text, matches wrapped in <mark>

    @property
    def snippet(self) -> str:
        """The snippet as plain text (terminals, the JSON's ``snippet``)."""
        return html.unescape(_MARK.sub("", self.snippet_html))

    def to_json(self, url: str) -> dict:
        """One result of /api/search (and of ``kb search --json``)."""
        return {"slug": self.slug, "title": self.title, "url": url,
                "score": round(self.score, 4), "snippet": self.snippet,
                "snippet_html": self.snippet_html}


@dataclass(frozen=True)
class SearchResults:
    query: str
    results: list[Hit]
    suggestion: str | None = None  # the query with unknown words corrected, if any were

    def to_json(self, url_for: Callable[[str], str]) -> dict:
        """The body of /api/search; ``url_for(slug)`` gives each answer's link."""
        return {"query": self.query,
                "results": [hit.to_json(url_for(hit.slug)) for hit in self.results],
                "suggestion": self.suggestion}


class _MarkFormatter(Formatter):
    """Escapes the text and wraps each match in <mark>."""

    between = " "  # each fragment already says where it was cut

    def _text(self, text):
        return html.escape(text)

    def format_token(self, text, token, replace=False):
        return f"<mark>{html.escape(get_text(text, token, replace))}</mark>"

    def format_fragment(self, fragment, replace=False):
        # Fragments are cut at characters: widen them to whole words, take in the punctuation
        # at the ends of the text, and say where the text was cut.
        text = fragment.text
        start, end = fragment.startchar, fragment.endchar
        while start > 0 and text[start - 1].isalnum():
            start -= 1
        while end < len(text) and text[end].isalnum():
            end += 1
        before = "… " if WORD.search(text, 0, start) else ""
        after = " …" if WORD.search(text, end) else ""
        fragment.startchar = start if before else 0
        fragment.endchar = end if after else len(text)
        return before + super().format_fragment(fragment, replace).strip() + after


@dataclass(frozen=True)
class IndexBuild:
    """What one ``SearchIndex.build`` or ``SearchIndex.update`` wrote."""

    titles: dict[str, str]  # slug -> title of the answers (re)indexed, in the order given
    version_dir: Path
    seconds: float
    removed: tuple[str, ...] = ()  # slugs taken out (updates only)
    incremental: bool = False  # an update of the previous version, not a full build


class AnswerFiles(dict):
    """Each answer file's name -> the SHA-256 of its content, in name order; ``stats`` holds
    the size, times and inode each file had when it was hashed (see ``answer_files``)."""

    def __init__(self, *args, stats: dict[str, list[int]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.stats = dict(stats or {})


# A file changed this recently may change again within one tick of the file system's clock
# and keep its size and times: it is hashed again next time, however its stat looks.
RECENT_NS = 2_000_000_000
_now_ns = time.time_ns


def answer_files(answers_dir: Path, known: AnswerFiles | None = None) -> AnswerFiles:
    """The answer files' hashes (``AnswerFiles``).

    With ``known`` (the files of an earlier call), a file whose size, modification and change
    times and inode are those recorded there keeps its recorded hash without being read: at
    10,000 answers, reading every file takes about a second. A file changed less than two
    seconds before it was hashed has no stat recorded, so it is always read (as git does
    with "racily clean" files).
    """
    files = AnswerFiles()
    now = _now_ns()
    for path in sorted(Path(answers_dir).glob("*.md")):
        try:
            st = path.stat()
            stat = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
            name = path.name
            if known is not None and name in known and known.stats.get(name) == stat:
                files[name] = known[name]
                files.stats[name] = stat
                continue
            content = path.read_bytes()
        except FileNotFoundError:  # removed while we looked: hash what is there
            continue
        files[name] = hashlib.sha256(content).hexdigest()
        if now - max(st.st_mtime_ns, st.st_ctime_ns) > RECENT_NS:
            files.stats[name] = stat
    return files


def files_fingerprint(files: dict[str, str]) -> str:
    """A hash of the answer files' names and contents (``answer_files``) and the index format."""
    digest = hashlib.sha256(INDEX_FORMAT.encode())
    for name in sorted(files):
        digest.update(name.encode() + b"\0")
        digest.update(bytes.fromhex(files[name]))
    return digest.hexdigest()


def answers_fingerprint(answers_dir: Path) -> str:
    """A hash of the answer files' names and contents (and of the index format)."""
    return files_fingerprint(answer_files(answers_dir))


# --- the index -------------------------------------------------------------------------------

_FINGERPRINT_FILE = "answers.fingerprint"
_FILES_FILE = "answers.files"  # {"format": INDEX_FORMAT, "files": answer_files(...)}
_VOCABULARY_FILE = "answers.vocabulary"  # {word: count} over the live answers, as JSON
_OWN_FILES = (_FINGERPRINT_FILE, _FILES_FILE, _VOCABULARY_FILE)


class SearchIndex:
    """The search index kept at ``index_dir``; safe to share between threads.

    Each ``search`` follows the current version: after a rebuild or an update (by this object
    or by another process) the next search reads the new index.
    """

    def __init__(self, index_dir: Path):
        self.index_dir = Path(index_dir)
        self.versions_dir = self.index_dir.with_name(self.index_dir.name + ".versions")
        self._lock_path = self.index_dir.with_name(self.index_dir.name + ".lock")
        self._opened: _OpenVersion | None = None
        self._opening = threading.Lock()
        self._writing = threading.local()  # how deep this thread is in ``writing()``

    # reading

    def exists(self) -> bool:
        return self._current_dir() is not None

    def fingerprint(self) -> str | None:
        """The fingerprint stored with the current index, None when there is no index."""
        current = self._current_dir()
        try:
            return (current / _FINGERPRINT_FILE).read_text().strip() if current else None
        except FileNotFoundError:
            return None

    def indexed_files(self) -> AnswerFiles | None:
        """The ``answer_files`` the current index was made from; None when unknown (no index,
        an index of another format, or one built from answers without their files)."""
        current = self._current_dir()
        try:
            stored = json.loads((current / _FILES_FILE).read_text()) if current else None
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(stored, dict) or stored.get("format") != INDEX_FORMAT:
            return None
        return AnswerFiles(stored["files"], stats=stored.get("stats"))

    def is_current(self, answers_dir: Path) -> bool:
        """True when an index exists and was built from the answer files as they are now."""
        stored = self.fingerprint()
        return stored is not None and stored == answers_fingerprint(answers_dir)

    def search(self, query: str, limit: int = 10) -> SearchResults:
        """The best ``limit`` answers for ``query``; any string is a valid query."""
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"search limit must be an integer >= 1, got {limit!r}")
        if not isinstance(query, str):
            raise TypeError(f"search query must be a str, got {type(query).__name__}")
        # Lone surrogates (undecodable bytes in argv) cannot be encoded as index terms or output.
        query = query.encode("utf-8", "replace").decode("utf-8")
        cleaned = _clean_query(query)
        version_dir = self._current_dir()
        for _ in range(2):
            try:
                return self._open(version_dir).search(query, cleaned, limit)
            except (OSError, whoosh_index.IndexError):
                # Rebuilds may have removed this version between resolving the link and
                # reading it: read the new one. An error on an unchanged version is real.
                newer = self._current_dir()
                if newer == version_dir:
                    raise
                version_dir = newer
        return self._open(version_dir).search(query, cleaned, limit)

    def forget_results(self) -> None:
        """Drop the remembered results of recent queries (benchmarks time the search itself)."""
        opened = self._opened
        if opened is not None:
            opened.forget_results()

    def _current_dir(self) -> Path | None:
        for _ in range(3):  # the link may move on while we look at its target
            try:
                target = os.readlink(self.index_dir)
            except FileNotFoundError:
                return None
            except OSError:  # not a symlink: a plain folder holding an index
                return self.index_dir if whoosh_index.exists_in(self.index_dir) else None
            current = self.index_dir.parent / target
            if current.is_dir():
                return current
        return None

    def _open(self, version_dir: Path | None) -> _OpenVersion:
        if version_dir is None:
            raise FileNotFoundError(f"no search index at {self.index_dir}; run `kb index`")
        opened = self._opened
        if opened is None or opened.path != version_dir:
            with self._opening:  # one thread reads the new version's statistics
                opened = self._opened
                if opened is None or opened.path != version_dir:
                    opened = self._opened = _OpenVersion(version_dir)
        return opened

    # writing

    @contextmanager
    def writing(self):
        """Hold the writers' lock: one build or update at a time, across threads and processes.

        Re-entrant within a thread, so that ``refresh_index`` can decide what to write and
        write it under one hold. Readers are never blocked.
        """
        depth = getattr(self._writing, "depth", 0)
        self._writing.depth = depth + 1
        try:
            if depth:
                yield
                return
            self.index_dir.parent.mkdir(parents=True, exist_ok=True)
            with open(self._lock_path, "a") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(lock_file, fcntl.LOCK_UN)
        finally:
            self._writing.depth = depth

    def build(self, answers: Iterable[Answer], fingerprint: str = "",
              files: dict[str, str] | None = None) -> IndexBuild:
        """Index ``answers`` into a new version folder and swap it in atomically.

        ``fingerprint`` is stored with the index for ``is_current``: pass
        ``answers_fingerprint(folder)`` computed *before* loading the answers, so that an edit
        made while loading makes the index stale rather than wrongly current. ``files``, the
        ``answer_files`` that fingerprint was computed from, lets later refreshes update the
        index answer by answer. Builders in several processes are serialized; readers are
        never blocked.
        """
        started = time.perf_counter()
        answers = list(answers)
        seen: dict[str, Answer] = {}
        for answer in answers:
            if answer.slug in seen:
                raise ValueError(f"duplicate slug {answer.slug!r}: {seen[answer.slug].path} "
                                 f"and {answer.path}")
            seen[answer.slug] = answer
        with self.writing():
            with self._new_version() as version_dir:
                ix = whoosh_index.create_in(str(version_dir), SCHEMA)
                vocabulary: Counter = Counter()
                # A segment per SEGMENT_ANSWERS answers: the writer holds a segment's postings
                # in memory, and at 10,000 answers four segments built faster than one (47.0 s
                # against 50.1 s). Searches read every segment.
                remaining = iter(answers)
                while batch := list(islice(remaining, SEGMENT_ANSWERS)):
                    with committed(ix, merge=False) as writer:
                        for answer in batch:
                            document, words = _document(answer)
                            vocabulary.update(words)
                            writer.add_document(**document)
                ix.close()
                self._record(version_dir, fingerprint, files, vocabulary)
            self._swap_in(version_dir)
            self._remove_old_versions()
        return IndexBuild(titles={a.slug: a.title for a in answers}, version_dir=version_dir,
                          seconds=time.perf_counter() - started)

    def update(self, answers: Iterable[Answer], removed: Iterable[str], fingerprint: str,
               files: dict[str, str] | None = None) -> IndexBuild:
        """A new version made from the current one with ``answers`` added or replacing the
        answers of the same slugs and the answers of the slugs ``removed`` taken out; swapped
        in atomically like a build.

        The current version's files are linked into the new folder (Whoosh never changes a
        segment file once written), a writer adds a small segment and records the deletions
        in the new version's table of contents, and the link moves: readers see the old
        version or the new one, never a mix. ``fingerprint`` and ``files`` as for ``build``.
        """
        started = time.perf_counter()
        answers = list(answers)
        removed = tuple(removed)
        with self.writing():
            current = self._current_dir()
            if current is None:
                raise FileNotFoundError(f"no search index at {self.index_dir} to update")
            with self._new_version() as version_dir:
                self._write_update(current, version_dir, answers, removed, fingerprint, files)
            self._swap_in(version_dir)
            self._remove_old_versions()
        return IndexBuild(titles={a.slug: a.title for a in answers}, version_dir=version_dir,
                          seconds=time.perf_counter() - started, removed=removed,
                          incremental=True)

    def _write_update(self, current: Path, version_dir: Path, answers: list[Answer],
                      removed: tuple[str, ...], fingerprint: str,
                      files: dict[str, str] | None) -> None:
        for entry in current.iterdir():
            if entry.name in _OWN_FILES or entry.name.endswith("LOCK"):
                continue
            try:
                os.link(entry, version_dir / entry.name)
            except OSError:  # a file system without hard links
                shutil.copy2(entry, version_dir / entry.name)
        ix = whoosh_index.open_dir(str(version_dir), schema=SCHEMA)
        documents = [_document(answer)[0] for answer in answers]
        vocabulary = Counter(_read_vocabulary(current))
        with ix.reader() as reader:  # take the outgoing answers' words out
            words = reader.column_reader("words")
            for slug in (*removed, *(document["slug"] for document in documents)):
                if ("slug", slug) in reader:
                    for docnum in reader.postings("slug", slug).all_ids():
                        vocabulary.subtract(words[docnum])
        for document in documents:
            vocabulary.update(document["words"])
        replaced = len(documents) + len(removed)
        merge_all = (ix.doc_count_all() - ix.doc_count() + replaced
                     > MAX_DELETED_SHARE * max(ix.doc_count_all(), 1))
        with committed(ix, optimize=merge_all) as writer:
            for slug in removed:
                writer.delete_by_term("slug", slug)
            for document in documents:
                writer.update_document(**document)
        ix.close()
        self._record(version_dir, fingerprint, files, +vocabulary)

    @contextmanager
    def _new_version(self):
        """A new version folder, removed again if what writes it fails."""
        self.versions_dir.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        version_dir = self.versions_dir / f"{stamp}-{os.getpid()}-{secrets.token_hex(4)}"
        version_dir.mkdir()
        try:
            yield version_dir
        except BaseException:
            shutil.rmtree(version_dir, ignore_errors=True)
            raise

    def _record(self, version_dir: Path, fingerprint: str, files: dict[str, str] | None,
                vocabulary: dict[str, int]) -> None:
        """Write down what ``version_dir`` holds and was made from; the fingerprint last (a
        version without one is a build that did not finish)."""
        (version_dir / _VOCABULARY_FILE).write_text(json.dumps(vocabulary, ensure_ascii=False),
                                                    encoding="utf-8")
        if files is not None:
            (version_dir / _FILES_FILE).write_text(json.dumps(
                {"format": INDEX_FORMAT, "files": files, "stats": getattr(files, "stats", {})}))
        (version_dir / _FINGERPRINT_FILE).write_text(fingerprint + "\n")

    def _swap_in(self, version_dir: Path) -> None:
        if self.index_dir.is_dir() and not self.index_dir.is_symlink():
            # A plain folder cannot be replaced atomically; move it among the versions once.
            self.index_dir.rename(self.versions_dir / f"plain-{secrets.token_hex(4)}")
        link = self.index_dir.with_name(f".{self.index_dir.name}.{secrets.token_hex(4)}.link")
        os.symlink(os.path.relpath(version_dir, self.index_dir.parent), link)
        os.replace(link, self.index_dir)

    def _remove_old_versions(self) -> None:
        """Keep the newest versions (readers may still be on the previous one); drop the rest,
        including folders left by builds that crashed (none is running: we hold the lock)."""
        current = self._current_dir()
        others = sorted((p for p in self.versions_dir.iterdir() if p != current),
                        key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in others[VERSIONS_KEPT - 1:]:
            shutil.rmtree(stale, ignore_errors=True)


def _read_vocabulary(version_dir: Path) -> dict[str, int]:
    try:
        return json.loads((version_dir / _VOCABULARY_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


# --- querying --------------------------------------------------------------------------------

def _clean_query(query: str) -> str:
    """The part of ``query`` worth analyzing: bounded, without control characters."""
    query = query[:MAX_QUERY_CHARS]
    return "".join(" " if unicodedata.category(c) == "Cc" else c for c in query)


def _terms(text: str) -> list[str]:
    terms = dict.fromkeys(token.text for token in _ANALYZER(text, mode="query"))
    return list(terms)[:MAX_QUERY_TERMS]


_NOT_LOOKED_UP = object()
_NO_POSTINGS = (np.zeros(0, dtype=np.int64), np.zeros(0))


class _OpenVersion:
    """One version of the index, opened for reading; threads share it.

    Holds a Whoosh reader per thread (a reader's files are read with seek and read, so a
    reader is not shared between threads), the collection statistics BM25F needs (field
    lengths, their means and the live documents), and three memories, all of this version
    only: each (field, term)'s scored postings, looked-up corrections and recent results.
    """

    CORRECTIONS_KEPT = 4096

    def __init__(self, path: Path):
        self.path = path
        self.index = whoosh_index.open_dir(str(path), readonly=True, schema=SCHEMA)
        self._local = threading.local()
        self._lock = threading.Lock()  # for the memories below (cachetools is not thread-safe)
        self._postings = LRUCache(POSTINGS_KEPT_BYTES,
                                  getsizeof=lambda v: v[0].nbytes + v[1].nbytes + 200)
        self._results = LRUCache(RESULTS_KEPT)
        self.corrections: dict[str, str | None] = {}
        self._vocabulary: dict[str, int] | None = None  # read at the first correction
        self._alphabet = ""

        reader = self.reader()
        self.live = live_documents(reader)
        self.has_deletions = not self.live.all()
        self.live_count = int(self.live.sum())
        self.lengths = {name: field_lengths(reader, name) for name in FIELD_BOOSTS}
        totals = {name: reader.field_length(name) for name in FIELD_BOOSTS}
        if self.has_deletions:  # leave the deleted answers' text out of the mean lengths
            for docnum in np.flatnonzero(~self.live):
                for name, length in reader.stored_fields(int(docnum)).get("lengths", {}).items():
                    totals[name] -= length
        self.mean_lengths = {name: (totals[name] / self.live_count if self.live_count else 0)
                             or 1 for name in FIELD_BOOSTS}

    def reader(self):
        reader = getattr(self._local, "reader", None)
        if reader is None:
            reader = self._local.reader = self.index.reader()
        return reader

    def forget_results(self) -> None:
        with self._lock:
            self._results.clear()

    def search(self, query: str, cleaned: str, limit: int) -> SearchResults:
        key = (cleaned, limit)
        with self._lock:
            found = self._results.get(key)
        if found is None:
            found = self._search(cleaned, limit)
            with self._lock:
                self._results[key] = found
        hits, suggestion = found
        return SearchResults(query=query, results=list(hits), suggestion=suggestion)

    def _search(self, cleaned: str, limit: int) -> tuple[tuple[Hit, ...], str | None]:
        reader = self.reader()
        suggestion = self._corrected(reader, cleaned)
        terms = _terms(cleaned) + (_terms(suggestion) if suggestion else [])
        terms = list(dict.fromkeys(terms))
        if not terms:
            return (), suggestion
        scores = np.zeros(len(self.live))
        for term in terms:
            for name in FIELD_BOOSTS:
                ids, contributions = self._scored_postings(reader, name, term)
                if len(ids):
                    scores[ids] += contributions
        found = np.flatnonzero(scores)
        if len(found) > limit:
            kth = np.partition(scores[found], len(found) - limit)[len(found) - limit]
            found = found[scores[found] >= kth]
        # Best first; equal scores in index order, as Whoosh's collector ranks them.
        ranked = found[np.lexsort((found, -scores[found]))][:limit]
        return tuple(self._hit(reader, int(docnum), float(scores[docnum]), terms)
                     for docnum in ranked), suggestion

    def _scored_postings(self, reader, name: str, term: str) -> tuple[np.ndarray, np.ndarray]:
        """The live documents holding ``term`` in field ``name`` and what it adds to each one's
        score: BM25 (Whoosh's ``bm25``, with its one-byte field lengths) times the field's
        boost."""
        key = (name, term)
        with self._lock:
            scored = self._postings.get(key)
        if scored is not None:
            return scored
        ids, weights = term_postings(reader, name, term)
        if self.has_deletions and len(ids):
            keep = self.live[ids]
            ids, weights = ids[keep], weights[keep]
        if not len(ids):
            scored = _NO_POSTINGS
        else:
            idf = math.log(self.live_count / (len(ids) + 1)) + 1
            norm = BM25_K1 * ((1 - BM25_B)
                              + BM25_B * self.lengths[name][ids] / self.mean_lengths[name])
            scored = (ids, FIELD_BOOSTS[name] * idf
                      * (weights * (BM25_K1 + 1)) / (weights + norm))
        with self._lock:
            self._postings[key] = scored
        return scored

    def _hit(self, reader, docnum: int, score: float, terms: list[str]) -> Hit:
        stored = reader.stored_fields(docnum)
        marks = stored.get("marks", {})
        snippet = next((s for name in SNIPPET_FIELDS
                        if (s := _snippet(stored.get(name, ""), marks.get(name), terms))),
                       None)
        return Hit(slug=stored["slug"], title=stored.get("title", ""), score=score,
                   snippet_html=snippet or html.escape(stored.get("summary", "")))

    # typos

    def _known(self, reader, name: str, term: str) -> bool:
        """Whether a live answer holds ``term`` in field ``name``."""
        if not self.has_deletions:
            return (name, term) in reader
        return len(self._scored_postings(reader, name, term)[0]) > 0

    def vocabulary(self) -> dict[str, int]:
        """Every word of the live answers (and the one-word synonyms) -> how often it occurs."""
        if self._vocabulary is None:
            vocabulary = _read_vocabulary(self.path)
            self._alphabet = "".join(sorted(set("".join(vocabulary))))
            self._vocabulary = vocabulary
        return self._vocabulary

    def _near_words(self, word: str) -> set[str]:
        """The known words one edit from ``word`` (a letter dropped, added or changed, or two
        neighbours swapped) that begin with its first letter."""
        vocabulary, letters = self.vocabulary(), self._alphabet
        head, edits = word[0], set()
        for i in range(1, len(word) + 1):
            before, after = word[:i], word[i:]
            edits.update(before + letter + after for letter in letters)  # added
            if after:
                edits.add(before + after[1:])  # dropped
                edits.update(before + letter + after[1:] for letter in letters)  # changed
                if len(after) > 1:
                    edits.add(before + after[1] + after[0] + after[2:])  # swapped
        if len(word) > 1:  # the first letter: dropped, or swapped with the second
            edits.update((word[1:], word[1] + word[0] + word[2:]))
        return {edit for edit in edits
                if edit != word and edit[:1] == head and edit in vocabulary}

    def _corrected(self, reader, query: str) -> str | None:
        """``query`` with each unknown word replaced by its correction; None if none changed."""
        pieces, last, lookups = [], 0, 0
        vocabulary = self.vocabulary()
        for match in SPELLED_WORD.finditer(query):
            word = match.group().lower()
            if (word in STOP_WORDS or not word.isalpha()
                    or not MIN_CORRECTABLE_LENGTH <= len(word) <= MAX_CORRECTABLE_LENGTH
                    or word in vocabulary):
                continue
            fix = self.corrections.get(word, _NOT_LOOKED_UP)
            if fix is _NOT_LOOKED_UP:
                if lookups == MAX_CORRECTION_LOOKUPS:
                    continue
                lookups += 1
                fix = self._correction(reader, word)
                if len(self.corrections) >= self.CORRECTIONS_KEPT:
                    self.corrections.clear()
                self.corrections[word] = fix
            if fix is not None:
                pieces += [query[last:match.start()], fix]
                last = match.end()
        if not pieces:
            return None
        return "".join(pieces) + query[last:]

    def _correction(self, reader, word: str) -> str | None:
        """The known word that ``word`` (not itself in the vocabulary) is a misspelling of, if
        any.

        Only a convincing one: an unknown word is as likely to be a real word the answers do
        not use. So an English word ("forgot", "thank") is no typo, nor is a word whose stem
        the answers use ("depending", "dropouts", or jargon the dictionary lacks); the
        candidate must be one edit away (a swap of two letters
        counts as one, "batchnrom"); another ending ("than" for "thank", "multiply" for
        "multiple") is no typo; and short words, where a changed letter too often turns one
        real word into another ("want", "went"), may only have a swap, or from five letters on
        a letter added or dropped ("nosie", "efect").
        """
        if _is_english(word) or any(self._known(reader, name, term) for term in _terms(word)
                                    for name in FIELD_BOOSTS):
            return None
        vocabulary = self.vocabulary()
        # The most used first (then alphabetically); a swap counts as one edit.
        candidates = sorted((edit_distance(candidate, word), -vocabulary[candidate], candidate)
                            for candidate in self._near_words(word)
                            if candidate not in STOP_WORDS)
        for _, _, candidate in candidates:
            if (candidate.startswith(word) or word.startswith(candidate)
                    or candidate[:-1] == word[:-1]):
                continue  # another ending: more likely another form of a word than a typo
            swap = sorted(candidate) == sorted(word)
            changed_letter = len(candidate) == len(word) and not swap
            if (len(word) <= 4 and not swap) or (len(word) <= 5 and changed_letter):
                continue
            return candidate
        return None


# --- snippets --------------------------------------------------------------------------------

_FRAGMENTER = PinpointFragmenter(maxchars=SNIPPET_CHARS, surround=60)
_FRAGMENT_SCORER = BasicFragmentScorer()


def _snippet(text: str, marks: tuple[str, bytes, bytes] | None, terms: list[str]) -> str:
    """The best passage of ``text`` around the query's ``terms``, marked up; "" when none of
    them occurs. Whoosh's "pinpoint" highlighting, from the characters kept in ``marks``."""
    tokens = []
    for term in terms:
        chars = _marks_of(marks, term)
        if chars is None:
            continue
        tokens += [Token(text=term, pos=i // 2, startchar=chars[i], endchar=chars[i + 1])
                   for i in range(0, len(chars), 2)]
    if not tokens:
        return ""
    # Where several terms start at one character (a synonym phrase and its first word),
    # the longest is the match.
    tokens.sort(key=lambda t: t.startchar)
    tokens = [max(group, key=lambda t: t.endchar - t.startchar)
              for _, group in groupby(tokens, lambda t: t.startchar)]
    fragments = _FRAGMENTER.fragment_matches(text, tokens)
    fragments = top_fragments(fragments, 1, _FRAGMENT_SCORER, FIRST, minscore=1)
    return _MarkFormatter().format(fragments)
