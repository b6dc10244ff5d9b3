"""Full-text search over the answers: schema, analysis, index build and query.

This is the only module that imports Whoosh. What it offers:

- ``SearchIndex(index_dir)``: ``build(answers, fingerprint)`` writes a complete index into a new
  version folder and swaps it in with one rename, so readers never see half an index;
  ``search(query, limit)`` -> ``SearchResults``; ``is_current(answers_dir)`` compares the
  stored fingerprint with ``answers_fingerprint(answers_dir)``.
- Analysis: words are lowercased, synonyms (one word or several) become one canonical token,
  stop words go, the rest is stemmed. Index and query use the same analyzer.
- Typos: a query word missing from the vocabulary is replaced by the closest known word; the
  corrected query is searched too and offered as ``suggestion`` ("did you mean").
- Snippets are HTML-safe: everything is escaped except the ``<mark>`` around matches.
- Queries have no syntax: quotes and operators (AND, OR, NOT, -, +, *) are plain text, and
  every word counts (BM25F over the fields, with ``FIELD_BOOSTS``). Learners type questions.

On-disk layout, for ``index_dir = .kb/index``::

    .kb/index            symlink -> index.versions/<version>  (swapped atomically)
    .kb/index.versions/  complete indexes; the current and the previous one are kept
    .kb/index.lock       serializes builders (flock)
"""
from __future__ import annotations

import fcntl
import hashlib
import html
import os
import re
import secrets
import shutil
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from whoosh import index as whoosh_index
from whoosh.analysis import (STOP_WORDS, Filter, LowercaseFilter, RegexTokenizer, StemFilter,
                             StopFilter)
from whoosh.fields import ID, TEXT, Schema
from whoosh.highlight import Formatter, PinpointFragmenter, get_text
from whoosh.lang.porter import stem
from whoosh.query import Or, Term
from whoosh.scoring import BM25F
from whoosh.support.levenshtein import distance as edit_distance

from kb.model import Answer
from kb.search.document import document_fields

# Bump when the schema, the analysis or the text extraction (kb.search.document) changes: the
# fingerprint includes it, so existing indexes count as stale and get rebuilt.
INDEX_FORMAT = "kb-search-6"

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

SNIPPET_CHARS = 240
VERSIONS_KEPT = 2  # the current index and the one before it, for readers still on it


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


def _text_analyzer():
    # Synonyms before stop words: the stop filter drops one-letter tokens such as "σ".
    return (RegexTokenizer(WORD_PATTERN) | LowercaseFilter() | SynonymFilter(SYNONYMS)
            | StopFilter() | StemFilter())


def _word_analyzer():
    """Plain lowercase words, unstemmed: the vocabulary that typos are corrected against."""
    return RegexTokenizer(SPELLED_WORD_PATTERN) | LowercaseFilter()


def _schema() -> Schema:
    analyzer = _text_analyzer()

    def text(stored=False):
        # Stored fields keep each match's characters: snippets are cut from them directly
        # instead of analyzing the whole text again for every hit.
        return TEXT(analyzer=analyzer, stored=stored, chars=stored, phrase=False)

    return Schema(
        slug=ID(stored=True, unique=True),
        title=text(stored=True),
        question=text(),
        tags=text(),
        aliases=text(),
        headings=text(),
        summary=text(stored=True),
        body=text(stored=True),
        tables=text(),
        words=TEXT(analyzer=_word_analyzer(), phrase=False),
    )


SCHEMA = _schema()
_QUERY_ANALYZER = SCHEMA["body"].analyzer
# Words typos are corrected towards besides the answers' own: the one-word synonyms, so that
# "batchnrom" finds "batchnorm". Words of several-word variants are left out: some are
# misnomers ("covariance shift") that would otherwise become suggestions themselves.
_VOCABULARY_EXTRAS = " ".join(
    word for canonical, variants in SYNONYMS.items()
    for word in (canonical, *variants) if len(WORD.findall(word)) == 1)


# --- results ---------------------------------------------------------------------------------

_MARK = re.compile(r"</?mark>")


@dataclass(frozen=True)
class Hit:
    slug: str
    title: str
    score: float
    snippet: str  # HTML: escaped text, matches wrapped in <mark>

    @property
    def snippet_text(self) -> str:
        """The snippet as plain text, for terminals."""
        return html.unescape(_MARK.sub("", self.snippet))

    def to_json(self, url: str) -> dict:
        """One result of /api/search (and of ``kb search --json``)."""
        return {"slug": self.slug, "title": self.title, "url": url,
                "score": round(self.score, 4), "snippet": self.snippet}


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
    """What one ``SearchIndex.build`` wrote."""

    titles: dict[str, str]  # slug -> title, in the order given
    version_dir: Path
    seconds: float


def answers_fingerprint(answers_dir: Path) -> str:
    """A hash of the answer files' names and contents (and of the index format)."""
    digest = hashlib.sha256(INDEX_FORMAT.encode())
    for path in sorted(Path(answers_dir).glob("*.md")):
        try:
            content = path.read_bytes()
        except FileNotFoundError:  # removed while we looked: hash what is there
            continue
        digest.update(path.name.encode() + b"\0")
        digest.update(hashlib.sha256(content).digest())
    return digest.hexdigest()


# --- the index -------------------------------------------------------------------------------

_FINGERPRINT_FILE = "answers.fingerprint"


class SearchIndex:
    """The search index kept at ``index_dir``; safe to share between threads.

    Each ``search`` follows the current version: after a rebuild (by this object or by another
    process) the next search reads the new index.
    """

    def __init__(self, index_dir: Path):
        self.index_dir = Path(index_dir)
        self.versions_dir = self.index_dir.with_name(self.index_dir.name + ".versions")
        self._lock_path = self.index_dir.with_name(self.index_dir.name + ".lock")
        self._opened: _OpenVersion | None = None

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
            opened = self._opened = _OpenVersion(version_dir)
        return opened

    # writing

    def build(self, answers: Iterable[Answer], fingerprint: str = "") -> IndexBuild:
        """Index ``answers`` into a new version folder and swap it in atomically.

        ``fingerprint`` is stored with the index for ``is_current``: pass
        ``answers_fingerprint(folder)`` computed *before* loading the answers, so that an edit
        made while loading makes the index stale rather than wrongly current.
        Builders in several processes are serialized; readers are never blocked.
        """
        started = time.perf_counter()
        answers = list(answers)
        seen: dict[str, Answer] = {}
        for answer in answers:
            if answer.slug in seen:
                raise ValueError(f"duplicate slug {answer.slug!r}: {seen[answer.slug].path} "
                                 f"and {answer.path}")
            seen[answer.slug] = answer
        self.index_dir.parent.mkdir(parents=True, exist_ok=True)
        with self._build_lock():
            self.versions_dir.mkdir(exist_ok=True)
            stamp = time.strftime("%Y%m%dT%H%M%S")
            version_dir = self.versions_dir / f"{stamp}-{os.getpid()}-{secrets.token_hex(4)}"
            version_dir.mkdir()
            ix = whoosh_index.create_in(str(version_dir), SCHEMA)
            with ix.writer() as writer:
                for answer in answers:
                    fields = document_fields(answer)
                    searchable = " ".join(v for k, v in fields.items() if k != "slug")
                    writer.add_document(**fields, words=f"{searchable} {_VOCABULARY_EXTRAS}")
            ix.close()
            (version_dir / _FINGERPRINT_FILE).write_text(fingerprint + "\n")
            self._swap_in(version_dir)
            self._remove_old_versions()
        return IndexBuild(titles={a.slug: a.title for a in answers}, version_dir=version_dir,
                          seconds=time.perf_counter() - started)

    @contextmanager
    def _build_lock(self):
        with open(self._lock_path, "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

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


# --- querying --------------------------------------------------------------------------------

def _clean_query(query: str) -> str:
    """The part of ``query`` worth analyzing: bounded, without control characters."""
    query = query[:MAX_QUERY_CHARS]
    return "".join(" " if unicodedata.category(c) == "Cc" else c for c in query)


def _terms(text: str) -> list[str]:
    terms = dict.fromkeys(token.text for token in _QUERY_ANALYZER(text, mode="query"))
    return list(terms)[:MAX_QUERY_TERMS]


_NOT_LOOKED_UP = object()


class _OpenVersion:
    """One version of the index, opened for reading (a searcher per query: threads may share
    this object), with the corrections already looked up in its vocabulary."""

    CORRECTIONS_KEPT = 4096

    def __init__(self, path: Path):
        self.path = path
        self.index = whoosh_index.open_dir(str(path), readonly=True, schema=SCHEMA)
        self.corrections: dict[str, str | None] = {}

    def search(self, query: str, cleaned: str, limit: int) -> SearchResults:
        with self.index.searcher(weighting=BM25F()) as searcher:
            suggestion = self._corrected(searcher, cleaned)
            terms = _terms(cleaned) + (_terms(suggestion) if suggestion else [])
            terms = list(dict.fromkeys(terms))
            if not terms:
                return SearchResults(query=query, results=[], suggestion=suggestion)
            whoosh_query = Or([Term(field, term, boost=boost)
                               for term in terms for field, boost in FIELD_BOOSTS.items()])
            results = searcher.search(whoosh_query, limit=limit, terms=True)
            results.fragmenter = PinpointFragmenter(maxchars=SNIPPET_CHARS, surround=60)
            results.formatter = _MarkFormatter()
            hits = [Hit(slug=hit["slug"], title=hit["title"], score=float(hit.score),
                        snippet=(hit.highlights("summary", top=1) or hit.highlights("body", top=1)
                                 or html.escape(hit["summary"])))
                    for hit in results]
        return SearchResults(query=query, results=hits, suggestion=suggestion)

    def _corrected(self, searcher, query: str) -> str | None:
        """``query`` with each unknown word replaced by its correction; None if none changed."""
        reader = searcher.reader()
        pieces, last, lookups = [], 0, 0
        for match in SPELLED_WORD.finditer(query):
            word = match.group().lower()
            if (word in STOP_WORDS or not word.isalpha()
                    or not MIN_CORRECTABLE_LENGTH <= len(word) <= MAX_CORRECTABLE_LENGTH
                    or ("words", word) in reader):
                continue
            fix = self.corrections.get(word, _NOT_LOOKED_UP)
            if fix is _NOT_LOOKED_UP:
                if lookups == MAX_CORRECTION_LOOKUPS:
                    continue
                lookups += 1
                fix = _correction(searcher, word)
                if len(self.corrections) >= self.CORRECTIONS_KEPT:
                    self.corrections.clear()
                self.corrections[word] = fix
            if fix is not None:
                pieces += [query[last:match.start()], fix]
                last = match.end()
        if not pieces:
            return None
        return "".join(pieces) + query[last:]


def _correction(searcher, word: str) -> str | None:
    """The known word that ``word`` (not itself in the vocabulary) is a misspelling of, if any.

    Only a convincing one: without a dictionary, an unknown word is as likely to be a real
    word the answers do not use. So a word whose stem the answers use ("depending", "dropouts")
    is no typo; the candidate must be one edit away (a swap of two letters counts as one,
    "batchnrom"); another ending ("than" for "thank", "multiply" for "multiple") is no typo;
    and short words, where a changed letter too often turns one real word into another
    ("want", "went"), may only have a swap, or from five letters on a letter added or
    dropped ("nosie", "efect").
    """
    reader = searcher.reader()
    if any((field, term) in reader for term in _terms(word) for field in FIELD_BOOSTS):
        return None
    # The automaton counts a swap as two edits; search that far to find swaps.
    candidates = sorted((edit_distance(candidate, word), -reader.frequency("words", candidate),
                         candidate)
                        for candidate in reader.terms_within("words", word, 2, prefix=1)
                        if candidate != word and candidate not in STOP_WORDS)
    for distance, _, candidate in candidates:
        if distance > 1:
            break
        if (candidate.startswith(word) or word.startswith(candidate)
                or candidate[:-1] == word[:-1]):
            continue  # another ending: more likely another form of a word than a typo
        swap = sorted(candidate) == sorted(word)
        changed_letter = len(candidate) == len(word) and not swap
        if (len(word) <= 4 and not swap) or (len(word) <= 5 and changed_letter):
            continue
        return candidate
    return None
