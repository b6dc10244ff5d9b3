"""The search module on a small corpus built for it: synonyms, typos, snippets, rebuilds."""
from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from kb.model import Answer, Claim, Location
from kb.search.document import document_fields
from kb.search.index import (MARKS_CHARLIMIT, Hit, SearchIndex, SearchResults, _marks_of,
                             _pack_marks, _term_marks, answers_fingerprint)


def make_answer(slug: str, title: str, body: str, *, summary: str = "", question: str = "",
                tags: tuple[str, ...] = (), aliases: tuple[str, ...] = (),
                claims: tuple[Claim, ...] = ()) -> Answer:
    return Answer(slug=slug, title=title, question=question or title, thread="a thread",
                  tags=list(tags), aliases=list(aliases), related=[], summary=summary or title,
                  body=body, body_line=8, demonstrations=[], claims=list(claims),
                  inline_values=[], path=Path(f"answers/{slug}.md"))


# Each answer speaks of one synonym group in one of its spellings only, so that a query in
# another spelling can find it through the synonym and nothing else.
CORPUS = [
    make_answer("normalizing-layers", "Rescaling every unit",
                "Batch normalization rescales each unit of a layer during training."),
    make_answer("shift-inside", "Moving inputs of deep layers",
                "Internal covariate shift names the change of a layer's input distribution."),
    make_answer("scale-and-offset", "The two learned parameters",
                "The learned scale γ and the learned offset beta undo nothing by themselves."),
    make_answer("batch-statistics", "Statistics of a sample",
                "The sample mean mu and the standard deviation σ² come from the examples seen."),
    make_answer("test-time", "Predictions after training",
                "At test time the exponentially weighted averages of the statistics are used."),
    make_answer("sample-count", "How many examples per step",
                "A mini-batch of 64 examples gives a noisier estimate than one of 512."),
    make_answer("dropout", "Dropout",
                "Dropout zeroes random units; x < y & <script>alert(1)</script>.",
                summary="Units are switched off at random <b>while training</b>."),
    make_answer("palette", "Fur", "Cats with coloured fur generalize badly to other fur."),
    make_answer("dropout-mentioned", "Regularizers compared",
                "Weight decay shrinks weights. Dropout doesn't come up much. The converse "
                "holds for the convergence of training."),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> SearchIndex:
    index = SearchIndex(tmp_path_factory.mktemp("search") / "index")
    index.build(CORPUS, fingerprint="corpus")
    return index


def top_slug(index: SearchIndex, query: str) -> str | None:
    results = index.search(query).results
    return results[0].slug if results else None


SYNONYM_QUERIES = [
    # batch norm
    ("BN", "normalizing-layers"),
    ("batchnorm", "normalizing-layers"),
    ("batch norm", "normalizing-layers"),
    ("batch-norm", "normalizing-layers"),
    ("Batch Normalisation", "normalizing-layers"),
    # internal covariate shift
    ("ICS", "shift-inside"),
    ("internal covariance shift", "shift-inside"),
    # Greek letters and their names, both ways
    ("gamma", "scale-and-offset"),
    ("β", "scale-and-offset"),
    ("μ", "batch-statistics"),
    ("sigma", "batch-statistics"),
    # exponentially weighted averages
    ("EWA", "test-time"),
    ("running average", "test-time"),
    ("moving average", "test-time"),
    ("running_mean", "test-time"),
    # mini-batches
    ("minibatch", "sample-count"),
    ("mini batch", "sample-count"),
    ("batch size", "sample-count"),
    # British and American spellings
    ("colored", "palette"),
    ("generalisation", "palette"),
    ("regularisation", "dropout-mentioned"),
]


@pytest.mark.parametrize("query, slug", SYNONYM_QUERIES)
def test_each_synonym_finds_the_answer_written_with_another(index, query, slug):
    assert top_slug(index, query) == slug


def test_a_synonym_phrase_is_one_highlighted_match(index):
    [hit] = index.search("BN").results
    assert "<mark>Batch normalization</mark>" in hit.snippet_html


def test_a_word_of_a_phrase_still_finds_the_phrase(index):
    assert top_slug(index, "normalization") == "normalizing-layers"


def test_stemming_matches_other_forms_of_a_word(index):
    assert top_slug(index, "rescaling units") == "normalizing-layers"
    assert top_slug(index, "estimates") == "sample-count"


def test_a_title_match_outranks_a_body_match(index):
    slugs = [hit.slug for hit in index.search("dropout").results]
    assert slugs[:2] == ["dropout", "dropout-mentioned"]


@pytest.mark.parametrize("typo, fixed, slug", [
    ("batchnrom", "batchnorm", "normalizing-layers"),
    ("dropuot", "dropout", "dropout"),
    ("rescaling untis", "rescaling units", "normalizing-layers"),  # a swap in a short word
    ("exponentialy weigted averages", "exponentially weighted averages", "test-time"),
])
def test_typos_are_corrected_and_found(index, typo, fixed, slug):
    results = index.search(typo)
    assert results.suggestion == fixed
    assert results.results[0].slug == slug


def test_an_english_word_the_answers_lack_is_not_corrected_into_one_they_use(tmp_path):
    index = SearchIndex(tmp_path / "index")
    index.build([make_answer("memory", "Memory", "Networks forget what earlier layers learned.")])
    # "forgot" is one letter from the answers' "forget", but spelled right: no "did you mean".
    results = index.search("I forgot how layers learned")
    assert results.suggestion is None
    assert [hit.slug for hit in results.results] == ["memory"]  # found by its other words
    # A misspelling of the same word is still corrected, and finds the answer.
    results = index.search("why do networks forgte")
    assert results.suggestion == "why do networks forget"
    assert [hit.slug for hit in results.results] == ["memory"]


def test_the_suggestion_keeps_the_rest_of_the_query(index):
    assert index.search("Why does DROPUOT help?").suggestion == "Why does dropout help?"
    # Contractions, numbers and symbols are not typos.
    assert (index.search("why wouldn't dropuot help 64 σ² x_i?").suggestion
            == "why wouldn't dropout help 64 σ² x_i?")
    # A contraction without its apostrophe is corrected as a whole word.
    assert index.search("doesnt it").suggestion == "doesn't it"


def test_known_words_and_inflections_get_no_suggestion(index):
    assert index.search("dropout zeroes units").suggestion is None
    results = index.search("dropouts")  # a plural, not a typo
    assert results.suggestion is None
    assert results.results[0].slug == "dropout"
    # Not in the answers, but its stem is ("convergence"): no respelling into "converse".
    results = index.search("converge")
    assert results.suggestion is None
    assert results.results[0].slug == "dropout-mentioned"
    # Too far from any known word to guess.
    assert index.search("xylophone").suggestion is None
    # Real words one edit from a known one, by their ending ("than", "weight", "units").
    assert index.search("thank you, weigh the unite").suggestion is None


def test_snippets_escape_everything_but_the_marks(index):
    for query in ("script alert", "x y", "<script>", "dropout units"):
        for hit in index.search(query).results:
            bare = re.sub(r"</?mark>", "", hit.snippet_html)
            assert "<" not in bare and ">" not in bare, hit.snippet_html
    [hit] = index.search("alert").results
    assert "&lt;script&gt;<mark>alert</mark>(1)&lt;/script&gt;" in hit.snippet_html
    assert hit.snippet.endswith("<script>alert(1)</script>.")


def test_a_matching_summary_is_the_snippet(index):
    hit = index.search("switched off").results[0]
    assert hit.slug == "dropout"
    assert hit.snippet_html == ("Units are <mark>switched</mark> <mark>off</mark> at random "
                           "&lt;b&gt;while training&lt;/b&gt;.")


def test_a_long_body_snippet_is_cut_around_the_match_and_says_so(tmp_path):
    body = " ".join(["filler words here."] * 50 + ["The rare zeppelin appears."]
                    + ["more filler words."] * 50)
    index = SearchIndex(tmp_path / "index")
    index.build([make_answer("long", "Long", body)])
    [hit] = index.search("zeppelin").results
    assert "<mark>zeppelin</mark>" in hit.snippet_html
    assert hit.snippet.startswith("… ") and hit.snippet.endswith(" …")
    assert len(hit.snippet) < 300


def test_marks_stop_at_whooshs_highlighting_limit():
    far = MARKS_CHARLIMIT + 100
    text = "A zeppelin here." + " filler" * (far // 7) + " zeppelin again, and a walrus."
    packed = _pack_marks(_term_marks(text))
    assert list(_marks_of(packed, "zeppelin")) == [2, 10]  # the second is past the limit
    assert _marks_of(packed, "walrus") is None
    assert list(_marks_of(packed, "filler"))[:2] == [17, 23]
    short = "A zeppelin, another zeppelin."
    assert list(_marks_of(_pack_marks(_term_marks(short)), "zeppelin")) == [
        2, 10, 20, 28]


def test_limit_is_respected_and_checked(index):
    assert len(index.search("the units examples layer dropout", limit=2).results) == 2
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="limit"):
            index.search("dropout", limit=bad)


@pytest.mark.parametrize("query", ["", "   ", '"', "AND", "OR NOT", "-", "+", "*", "?",
                                   "\x00\x07", "\udcff", "a" * 10_000, "the of and"])
def test_odd_queries_give_no_results_rather_than_errors(index, query):
    results = index.search(query)
    assert isinstance(results, SearchResults)
    assert results.results == []


def test_json_shape(index):
    results = index.search("dropout", limit=1)
    data = results.to_json(lambda slug: f"https://kb.example/a/{slug}")
    assert list(data) == ["query", "results", "suggestion"]
    [hit] = data["results"]
    assert list(hit) == ["slug", "title", "url", "score", "snippet", "snippet_html"]
    assert hit["url"] == "https://kb.example/a/dropout"
    assert hit["score"] > 0
    # The plain snippet is the highlighted one's text: no markup, no entities.
    assert hit["snippet"] == "Dropout zeroes random units; x < y & <script>alert(1)</script>."
    assert hit["snippet_html"] == ("<mark>Dropout</mark> zeroes random units; x &lt; y &amp; "
                                   "&lt;script&gt;alert(1)&lt;/script&gt;.")


def test_document_fields_keep_prose_and_claims_but_not_block_yaml():
    body = (
        "Short answer, moved {{drift.ratio:.1f}} times.\n\n"
        "## Where it *comes* from\n\n"
        "```demo drift\nexperiment: batch_stat_noise\nparams: {max_batch: 64}\nseed: 3\n```\n\n"
        "See [the paper](https://arxiv.org/abs/1502.03167).\n\n"
        "It is measured in\n[If γ and β keep changing, how can it work?](/a/ics)\n"
        "and [robust layers](/a/robust), as [Ioffe and Szegedy](https://x.org) said.\n\n"
        "```claim noise-shrinks\ntext: The noise shrinks with the batch.\n"
        "check: drift.ratio > 2\n```\n\n"
        "| batch | spread |\n|---|:-:|\n| 8 | {{drift.spread8:.2f}} |\n\n"
        "With $\\mu_{\\mathcal B}$ and $\\sigma^2_B$ clipped to $r_{\\max}$:\n\n"
        "$$\\hat x = \\frac{x - \\mu}{\\sigma}$$\n"
    )
    claim = Claim("noise-shrinks", "The noise shrinks with the batch.", "drift.ratio > 2", None,
                  Location("answers/x.md", 20))
    fields = document_fields(make_answer("x", "T", body, tags=("a b", "c"), claims=(claim,)))
    # Another answer's title, linked mid-sentence, is quoted so that the sentence still reads
    # as one; other links are words of their sentence. Math is Unicode, as in all plain text.
    assert fields["body"] == ("Short answer, moved … times. See the paper. "
                              "It is measured in “If γ and β keep changing, how can it work?” "
                              "and robust layers, as Ioffe and Szegedy said. "
                              "The noise shrinks with the batch. "
                              "With μB and σ²B clipped to rₘₐₓ: …")
    assert fields["headings"] == "Where it comes from"
    assert fields["tables"] == "batch ; spread ; 8 ; …"
    assert "a b" in fields["tags"] and "c" in fields["tags"]


def test_a_synonym_phrase_does_not_run_across_punctuation(tmp_path):
    index = SearchIndex(tmp_path / "index")
    index.build([make_answer("a", "A", "The inputs moved: averaged over pixels, they differ."),
                 make_answer("b", "B", "Nothing here.")])
    assert index.search("moving average").results == []


def test_fields_beyond_the_body_are_searched(tmp_path):
    index = SearchIndex(tmp_path / "index")
    index.build([make_answer("renamed", "Title", "Body.", tags=("zebra stripes",),
                             aliases=("old-quagga-name",)),
                 make_answer("other", "Other", "## Okapi facts\n\nBody.")])
    assert top_slug(index, "zebra") == "renamed"
    assert top_slug(index, "quagga") == "renamed"
    assert top_slug(index, "okapi") == "other"


def test_duplicate_slugs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="duplicate slug 'a'"):
        SearchIndex(tmp_path / "index").build([make_answer("a", "A", "x"),
                                               make_answer("a", "B", "y")])


def test_searching_without_an_index_says_how_to_make_one(tmp_path):
    index = SearchIndex(tmp_path / "index")
    assert not index.exists()
    with pytest.raises(FileNotFoundError, match="kb index"):
        index.search("anything")


# --- rebuilds -------------------------------------------------------------------------------

def test_rebuild_swaps_in_new_content_under_a_reader(tmp_path):
    path = tmp_path / "index"
    SearchIndex(path).build([make_answer("a", "Aardvark", "Only aardvarks here.")])
    reader = SearchIndex(path)
    assert top_slug(reader, "aardvark") == "a"  # the reader has the first version open

    SearchIndex(path).build([make_answer("b", "Badger", "Only badgers here.")])
    assert top_slug(reader, "badger") == "b"
    assert top_slug(reader, "aardvark") is None

    # Two more rebuilds remove the first version; the reader just follows.
    for word in ("coyote", "dingo"):
        SearchIndex(path).build([make_answer(word, word.title(), f"Only {word}s here.")])
    assert top_slug(reader, "dingo") == "dingo"
    assert len(list(SearchIndex(path).versions_dir.iterdir())) == 2


def test_a_searcher_opened_before_a_rebuild_keeps_reading_its_version(tmp_path):
    path = tmp_path / "index"
    index = SearchIndex(path)
    index.build([make_answer("a", "Aardvark", "Only aardvarks here.")])
    old_version = path.resolve()
    index.build([make_answer("b", "Badger", "Only badgers here.")])
    assert path.resolve() != old_version
    # The previous version stays complete for readers that resolved the link before the swap.
    from whoosh import index as whoosh_index  # the test reads the old version directly
    with whoosh_index.open_dir(str(old_version)).searcher() as searcher:
        assert searcher.doc_count() == 1
        assert searcher.document(slug="a") is not None


def test_concurrent_builders_leave_one_complete_index(tmp_path):
    path = tmp_path / "index"
    words = ["aardvark", "badger", "coyote", "dingo", "eland", "fossa"]
    errors = []

    def build(word):
        try:
            SearchIndex(path).build([make_answer(word, word.title(), f"Only {word}s here."),
                                     make_answer("shared", "Shared", "Every version has it.")])
        except Exception as exc:  # collected: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(word,)) for word in words]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    index = SearchIndex(path)
    assert top_slug(index, "shared") == "shared"
    assert sum(top_slug(index, word) == word for word in words) == 1
    assert len(list(index.versions_dir.iterdir())) == 2
    assert not list(tmp_path.glob(".index.*.link"))


def test_readers_sharing_an_index_see_a_whole_index_throughout_rebuilds(tmp_path):
    path = tmp_path / "index"
    shared = make_answer("shared", "Shared", "Every version has it.")
    SearchIndex(path).build([shared])
    reader = SearchIndex(path)  # one object shared by the threads, as in the web app
    found, errors, building = [], [], threading.Event()
    building.set()

    def read():
        try:
            while building.is_set():
                found.append(top_slug(reader, "shared"))
        except Exception as exc:  # collected: a thread's exception would otherwise vanish
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    for word in ("aardvark", "badger", "coyote", "dingo", "eland"):
        SearchIndex(path).build([shared, make_answer(word, word.title(), f"Only {word}s.")])
    building.clear()
    for thread in readers:
        thread.join()
    assert errors == []
    assert found and set(found) == {"shared"}
    assert top_slug(reader, "eland") == "eland"


def test_a_plain_folder_in_the_way_is_replaced(tmp_path):
    path = tmp_path / "index"
    path.mkdir()
    (path / "stray.txt").write_text("left over")
    index = SearchIndex(path)
    index.build([make_answer("a", "Aardvark", "Only aardvarks here.")])
    assert path.is_symlink()
    assert top_slug(index, "aardvark") == "a"


# --- freshness ------------------------------------------------------------------------------

def test_fingerprint_changes_with_any_answer_file(tmp_path):
    answers = tmp_path / "answers"
    answers.mkdir()
    (answers / "a.md").write_text("first")
    (answers / "notes.txt").write_text("not an answer")
    last = [answers_fingerprint(answers)]

    def changed() -> bool:
        last.append(answers_fingerprint(answers))
        return last[-1] != last[-2]

    assert not changed()
    (answers / "notes.txt").write_text("still not an answer")
    assert not changed()
    (answers / "a.md").write_text("fIrst")  # same size, possibly same mtime
    assert changed()
    (answers / "b.md").write_text("second")
    assert changed()
    (answers / "b.md").rename(answers / "c.md")
    assert changed()
    (answers / "c.md").unlink()
    assert changed()


def test_is_current_follows_the_answer_files(tmp_path):
    answers = tmp_path / "answers"
    answers.mkdir()
    (answers / "a.md").write_text("first")
    index = SearchIndex(tmp_path / "index")
    assert not index.is_current(answers)
    index.build([], fingerprint=answers_fingerprint(answers))
    assert index.is_current(answers)
    (answers / "a.md").write_text("edited")
    assert not index.is_current(answers)


def test_hit_plain_text_snippet():
    hit = Hit("a", "A", 1.0, "x &lt; <mark>y</mark> &amp; z &#x27;q&#x27;")
    assert hit.snippet == "x < y & z 'q'"
