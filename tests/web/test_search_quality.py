"""Search quality over the real answers: learners' questions, in their words, find the answer.

The queries paraphrase how the forum threads (shared/seeds) ask, with their loose wording and
misspellings; each maps to the answer that settles it.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kb.config import PROJECT_ROOT
from kb.answers.parse import load_answers
from kb.search.index import SearchIndex, answers_fingerprint

ANSWERS_DIR = PROJECT_ROOT / "answers"
EXPECTED_ANSWERS = 18
TOP = 3
MIN_HIT_RATE = 0.9

QUERIES = [
    ("what does it mean that the weights of layer 10 are more robust to changes in layer 1",
     "robust-to-earlier-layers"),
    ("deeper layer weights robust to changes of earlier layer weights", "robust-to-earlier-layers"),
    ("batch norm weakens the coupling between early and later layers",
     "weaker-coupling-between-layers"),
    ("each layer learns by itself a little more independently of the other layers",
     "weaker-coupling-between-layers"),
    ("black cats vs colored cats example", "covariate-shift"),
    ("what is covariate shift and why is it a problem for hidden layers", "covariate-shift"),
    ("why is the regularization effect of batch norm only slight", "batch-size-and-regularization"),
    ("bigger mini-batch 512 instead of 64 reduces the regularization",
     "batch-size-and-regularization"),
    ("how is batch norm noise similar to dropout", "noise-like-dropout"),
    ("downstream hidden units not rely too much on any one hidden unit", "noise-like-dropout"),
    ("why wouldn't backprop cancel out batch norm using the beta and gamma parameters",
     "why-gamma-beta-dont-undo-bn"),
    ("can gradient descent learn γ and β to undo the normalization",
     "why-gamma-beta-dont-undo-bn"),
    ("could a shift in the distribution of the features during training favor better "
     "generalization", "can-shift-help-generalization"),
    ("isn't a changing distribution in training like data augmentation",
     "can-shift-help-generalization"),
    ("small batch size of 32 gives noisy estimates of mean and variance, why not use the "
     "exponentially weighted average during training", "running-averages-during-training"),
    ("use the running mean and variance in training like at test time",
     "running-averages-during-training"),
    ("the network is still learning the distribution with gamma and beta so how does it solve "
     "internal covariance shift", "learned-distribution-vs-covariate-shift"),
    ("how can BN fix ICS if the distribution of each layer keeps changing",
     "learned-distribution-vs-covariate-shift"),
    ("how does it help to generalize at test time on similar data with different characters",
     "generalizing-to-shifted-data"),
    ("does batch norm adapt to a shifted test set", "generalizing-to-shifted-data"),
    ("how does batch norm speed up training like input features normalization",
     "why-bn-speeds-up-training"),
    ("why does BN make training converge faster", "why-bn-speeds-up-training"),
    ("why is the effect more significant in later layers than earlier ones",
     "why-later-layers-benefit-most"),
    ("why is the adaptation of later layers to early layer changes reduced",
     "why-later-layers-benefit-most"),
    ("gradient of the loss with respect to the input x_i of a batch normalized layer",
     "bn-backward-gradient"),
    ("does 1/sqrt(sigma^2 + epsilon) avoid exploding or vanishing gradients",
     "bn-backward-gradient"),
    # Questions learners ask next (source: learners).
    ("forgetting to switch batch norm to evaluation mode", "train-vs-eval-mode"),
    ("fine-tuning with batch size 2 batch norm freeze", "train-vs-eval-mode"),
    ("use dropout and batch norm together", "batchnorm-with-dropout"),
    ("where to put dropout with batchnorm variance shift", "batchnorm-with-dropout"),
    ("batch norm before or after relu", "before-or-after-activation"),
    ("why no bias before batch norm", "before-or-after-activation"),
    ("difference between batch norm and layer norm", "batchnorm-vs-layernorm"),
    ("why do transformers use layer normalization instead of batch norm",
     "batchnorm-vs-layernorm"),
    ("batch norm in CNN per channel mean over height width", "batchnorm-in-convnets"),
    ("how does batch normalization work after a convolution layer", "batchnorm-in-convnets"),
]

# (misspelled query, the answer, the "did you mean" expected). "covarient" gets no suggestion:
# its stem is that of "covariate", so it is searched as such, like an inflection.
TYPO_QUERIES = [
    ("covarient shift cats", "covariate-shift", None),
    ("batchnrom backward gradiant", "bn-backward-gradient", "batchnorm backward gradient"),
    ("regularisation efect of mini batch size", "batch-size-and-regularization",
     "regularisation effect of mini batch size"),
    ("dropuot noise", "noise-like-dropout", "dropout noise"),
    ("exponentialy weighted averge during training", "running-averages-during-training",
     "exponentially weighted average during training"),
]


def test_the_query_set_covers_every_question():
    assert len(QUERIES) >= 20
    assert len({slug for _, slug in QUERIES}) == EXPECTED_ANSWERS


@pytest.fixture(scope="module")
def real_index(tmp_path_factory) -> SearchIndex:
    """An index of whatever answers exist now (possibly none)."""
    index = SearchIndex(tmp_path_factory.mktemp("quality") / "index")
    index.build(load_answers(ANSWERS_DIR) if ANSWERS_DIR.is_dir() else [],
                fingerprint=answers_fingerprint(ANSWERS_DIR))
    return index


@pytest.fixture(scope="module")
def all_answers_index(real_index) -> SearchIndex:
    count = len(list(ANSWERS_DIR.glob("*.md")))
    if count < EXPECTED_ANSWERS:
        pytest.skip(f"only {count} of the {EXPECTED_ANSWERS} answers exist in {ANSWERS_DIR}; "
                    "search quality is measured over all of them")
    return real_index


def top_slugs(index: SearchIndex, query: str) -> list[str]:
    return [hit.slug for hit in index.search(query, limit=TOP).results]


def test_learners_questions_find_their_answer_in_the_top_three(all_answers_index):
    misses = [(query, slug, found) for query, slug in QUERIES
              if slug not in (found := top_slugs(all_answers_index, query))]
    hit_rate = 1 - len(misses) / len(QUERIES)
    assert hit_rate >= MIN_HIT_RATE, "\n".join(
        [f"top-{TOP} hit rate {hit_rate:.2f} < {MIN_HIT_RATE}; misses:"]
        + [f"  {query!r}: wanted {slug}, got {found}" for query, slug, found in misses])


@pytest.mark.parametrize("query, slug, suggestion", TYPO_QUERIES)
def test_misspelled_questions_find_their_answer_and_a_correction(all_answers_index, query, slug,
                                                                 suggestion):
    results = all_answers_index.search(query, limit=TOP)
    assert slug in [hit.slug for hit in results.results]
    assert results.suggestion == suggestion


def test_correctly_spelled_questions_get_no_suggestion(all_answers_index):
    # Learners write words the answers never use ("please", "thank", "multiple"); they must
    # not be "corrected" into words the answers do use.
    queries = [query for query, _ in QUERIES] + [
        "please can you help me understand, I want to feel sure. Thank you so much",
        "multiple layers accumulated changes; I don't mind",
    ]
    assert {query: all_answers_index.search(query).suggestion for query in queries} == {
        query: None for query in queries}


OPERATORS = ['"', "'", "AND", "OR", "NOT", "-", "+", "*", "?", "~", "^", ":", "(", ")", "[",
             "]", "{", "}", "\\", "/", "TO", "<", ">", "=", "batch", "norm", "γ", "σ²"]
QUERY_TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(OPERATORS), max_size=12).map(" ".join),
    st.lists(st.sampled_from(OPERATORS), max_size=12).map("".join),
    st.text(st.characters(categories=["Cc", "Cs", "Zs", "So", "Mn"]), max_size=50),
)


@settings(max_examples=200, deadline=None)
@given(query=QUERY_TEXT)
def test_no_query_string_raises(real_index, query):
    results = real_index.search(query)
    for hit in results.results:
        assert hit.slug and hit.snippet is not None


@pytest.mark.parametrize("query", ["covariate shift " * 640, "x" * 10_240, "ä€😀 " * 1_024,
                                   "dropuot batchnrom covarient " * 400])
def test_ten_kilobyte_queries_are_answered(real_index, query):
    assert len(query.encode()) >= 10_240
    assert real_index.search(query).query == query
