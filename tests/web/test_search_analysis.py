"""The index's analysis without Whoosh's filter chain gives the chain's tokens exactly."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kb.answers.parse import load_answers
from kb.config import PROJECT_ROOT
from kb.search.document import document_fields
from kb.search.index import _ANALYZER, SYNONYMS, _index_tokens


def chain_tokens(text: str) -> list[tuple[str, int, int]]:
    return [(t.text, t.startchar, t.endchar) for t in _ANALYZER(text, mode="index", chars=True)]


ANSWERS_DIR = PROJECT_ROOT / "answers"


@pytest.mark.skipif(not ANSWERS_DIR.is_dir(), reason="no answers folder")
def test_every_field_of_every_answer_analyzes_alike():
    for answer in load_answers(ANSWERS_DIR):
        for name, text in document_fields(answer).items():
            assert _index_tokens(text) == chain_tokens(text), (answer.slug, name)


PIECES = ([variant for canonical, variants in SYNONYMS.items()
           for variant in (canonical, *variants)]
          + ["the", "a", "of", "x", "σ²", "μ_B", "batch", "norm", "normalization", "running",
             "mean", "moving", "averaged", "size", "mini", "shift", "covariate", "internal",
             "don't", "1/sqrt", "BN's", "Batch-Norm", "Ünïcode", "running_mean"]
          + [",", ".", ":", " ; ", "  ", "\n", "-", "(", ")", "'"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30).map(" ".join)
       | st.lists(st.sampled_from(PIECES), max_size=30).map("".join)
       | st.text(max_size=200))
def test_generated_text_analyzes_alike(text):
    assert _index_tokens(text) == chain_tokens(text)

