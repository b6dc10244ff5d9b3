"""Answer files: good ones parse completely; every malformed one names its exact file:line."""

from __future__ import annotations

import pytest

from kb.model import AnswerError
from kb.answers.parse import OTHER_TOPIC, TOPICS, load_answer, load_answers, parse_answer
from kb.config import PROJECT_ROOT


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # so files are shown as "answers/<slug>.md"


def test_good_answer_parses_every_part(write_answer, good_body, line_of):
    path = write_answer("good", good_body)
    answer = parse_answer(path)

    assert (answer.slug, answer.title, answer.tags, answer.summary) == (
        "good",
        "Does it drift?",
        ["testing"],
        "A short summary.",
    )
    assert answer.body_line == line_of(path, "The drift ratio is")
    assert answer.body.startswith("The drift ratio is")
    assert answer.errors == []

    (demo,) = answer.demonstrations
    assert (demo.name, demo.experiment, demo.seed) == ("drift", "test_drift", 3)
    assert demo.params == {"n": 32, "scale": 2.0}
    assert demo.overrides == {"n": 32, "scale": 2.0}
    assert str(demo.location) == f"answers/good.md:{line_of(path, '```demo drift')}"
    (figure,) = demo.figures
    assert (figure.name, figure.drawing, figure.caption) == (
        "drift-figure",
        "drift_plot",
        "The drift.",
    )
    assert figure.location.line == line_of(path, "- name: drift-figure")

    (claim,) = answer.claims
    assert (claim.id, claim.text, claim.condition) == (
        "drift-is-large",
        "The drifted spread is larger.",
        "drift.ratio > 1",
    )
    assert claim.location.line == line_of(path, "```claim drift-is-large")
    assert claim.expr.location.line == line_of(path, "check: drift.ratio > 1")

    assert [(v.source, v.expr.source, v.format_spec) for v in answer.inline_values] == [
        ("drift.ratio:.2f", "drift.ratio", ".2f"),
        ("drift.n", "drift.n", ""),
    ]
    assert {v.location.line for v in answer.inline_values} == {line_of(path, "The drift ratio is")}


def test_defaults_fill_parameters_and_seed(write_answer, line_of):
    path = write_answer(
        "defaults",
        """\
        Ratio {{ d.ratio : .1f }}; code and math are literal: `{{ x }}`, $x^{{2}}$, $$\\frac{{a}}{b}$$.

        ```python
        print("{{ not an inline value }}")
        ```

        ```demo d
        experiment: test_drift
        ```

        ```claim multi-line
        kind: check
        text: >-
          A claim written
          over two lines.
        check: |
          d.ratio > 0 and
          d.n == 64
        ```
        """,
    )
    answer = parse_answer(path)
    (demo,) = answer.demonstrations
    assert demo.params == {"n": 64, "scale": 1.0} and demo.overrides == {} and demo.seed == 0
    assert demo.figures == ()
    assert [(v.expr.source, v.format_spec) for v in answer.inline_values] == [("d.ratio", ".1f")]
    (claim,) = answer.claims
    assert claim.text == "A claim written over two lines."
    assert claim.expr.location.line == line_of(path, "d.ratio > 0 and")


# (name, body, text on the offending line, words of the message)
MALFORMED = [
    (
        "unclosed block",
        """\
        Text.

        ```demo d
        experiment: test_drift
        """,
        "```demo d",
        "never closed",
    ),
    (
        "unclosed plain code block",
        """\
        ~~~~python
        x = 1
        ~~~
        """,
        "~~~~python",
        "never closed",
    ),
    (
        "bad YAML in a block",
        """\
        ```demo d
        experiment: test_drift
        params: {n: 3
        seed: 0
        ```
        """,
        "seed: 0",
        "invalid YAML in demo 'd'",
    ),
    (
        "unknown experiment",
        """\
        ```demo d
        seed: 1
        experiment: no_such_experiment
        ```
        """,
        "experiment: no_such",
        "unknown experiment 'no_such_experiment'",
    ),
    (
        "unknown parameter",
        """\
        ```demo d
        experiment: test_drift
        params:
          n: 8
          depth: 3
        ```
        """,
        "depth: 3",
        "has no parameter 'depth'",
    ),
    (
        "out-of-range parameter",
        """\
        ```demo d
        experiment: test_drift
        params:
          scale: 1.0
          n: 100000
        ```
        """,
        "n: 100000",
        "'n' = 100000 is outside its range [2, 4096]",
    ),
    (
        "wrong parameter type",
        """\
        ```demo d
        experiment: test_drift
        params: {n: many}
        ```
        """,
        "params: {n: many}",
        "'n' must be a whole number",
    ),
    (
        "unknown figure",
        """\
        ```demo d
        experiment: test_drift
        figures:
          - name: fig
            drawing: no_such_drawing
            caption: A figure.
        ```
        """,
        "drawing: no_such_drawing",
        "has no figure 'no_such_drawing' (it has: drift_plot)",
    ),
    (
        "unknown key in a demo",
        """\
        ```demo d
        experiment: test_drift
        sede: 3
        ```
        """,
        "sede: 3",
        "unknown key 'sede'",
    ),
    (
        "negative seed",
        """\
        ```demo d
        experiment: test_drift
        seed: -1
        ```
        """,
        "seed: -1",
        "seed must be an integer in [0, 4294967295], got -1",
    ),
    (
        "duplicate demonstration",
        """\
        ```demo d
        experiment: test_drift
        ```

        ```demo  d
        experiment: test_drift
        ```
        """,
        "```demo  d",
        "already defined at line",
    ),
    (
        "demonstration name not an identifier",
        """\
        ```demo my-demo
        experiment: test_drift
        ```
        """,
        "```demo my-demo",
        "must be an identifier",
    ),
    (
        "unknown name in an inline value",
        """\
        ```demo d
        experiment: test_drift
        ```

        Ratio: {{ e.ratio:.2f }}.
        """,
        "Ratio:",
        "unknown demonstration 'e'",
    ),
    (
        "unclosed inline value",
        """\
        Ratio: {{ d.ratio:.2f .
        """,
        "Ratio:",
        "never closed",
    ),
    (
        "bad format spec",
        """\
        ```demo d
        experiment: test_drift
        ```
        Ratio: {{ d.ratio:.2q }}.
        """,
        "Ratio:",
        "not a format spec",
    ),
    (
        "claim syntax error",
        """\
        ```demo d
        experiment: test_drift
        ```

        ```claim c
        kind: check
        text: It drifts.
        check: d.ratio >> > 1
        ```
        """,
        "check: d.ratio",
        "syntax error",
    ),
    (
        "code smuggled into a claim",
        """\
        ```demo d
        experiment: test_drift
        ```

        ```claim c
        kind: check
        text: It drifts.
        check: __import__('os').system('true') == 0
        ```
        """,
        "check: __import__",
        "cannot be called",
    ),
    (
        "import call in an inline value",
        """\
        Value: {{ __import__('os') }}
        """,
        "Value:",
        "function '__import__' is not allowed",
    ),
    (
        "dunder attribute",
        """\
        ```demo d
        experiment: test_drift
        ```

        ```claim c
        kind: check
        text: It drifts.
        check: d.__class__ == 1
        ```
        """,
        "check: d.__class__",
        "'__class__' is not allowed",
    ),
    (
        "lambda",
        """\
        ```demo d
        experiment: test_drift
        ```

        ```claim c
        kind: check
        text: It drifts.
        check: "(lambda: True)()"
        ```
        """,
        'check: "(lambda',
        "lambda is not allowed",
    ),
    (
        "error on the second line of a block-scalar check",
        """\
        ```demo d
        experiment: test_drift
        ```

        ```claim c
        kind: check
        text: It drifts.
        check: |
          d.ratio > 1 and
          d.ratio.real > 0
        ```
        """,
        "d.ratio.real > 0",
        "one dot only",
    ),
    (
        "claim without check",
        """\
        ```claim c
        kind: check
        text: It drifts.
        ```
        """,
        "```claim c",
        "lacks 'check'",
    ),
    (
        "duplicate claim id",
        """\
        ```demo d
        experiment: test_drift
        ```

        ```claim c
        kind: check
        text: One.
        check: d.ratio > 1
        ```

        ```claim  c
        kind: check
        text: Two.
        check: d.ratio > 1
        ```
        """,
        "```claim  c",
        "already defined at line",
    ),
    (
        "claim id with capitals",
        """\
        ```claim Big
        kind: check
        text: One.
        check: 1 > 0
        ```
        """,
        "```claim Big",
        "must use lowercase letters",
    ),
    (
        "claim that is arithmetic",
        """\
        ```demo d
        experiment: test_drift
        ```

        ```claim c
        kind: check
        text: One.
        check: d.ratio * 2
        ```
        """,
        "check: d.ratio * 2",
        "not true or false",
    ),
]


@pytest.mark.parametrize(
    "body, needle, message", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_answer_names_the_exact_line(write_answer, line_of, body, needle, message):
    path = write_answer("broken", body)
    with pytest.raises(AnswerError) as caught:
        parse_answer(path)
    assert str(caught.value.location) == f"answers/broken.md:{line_of(path, needle)}"
    assert message in caught.value.message


FRONT_MATTER_PROBLEMS = [
    (
        "bad YAML",
        """\
        ---
        slug: fm
        title: [unclosed
        question: Q?
        ---
        """,
        "question: Q?",
        "invalid YAML in front matter",
    ),
    ("missing front matter", "Just text.\n", "Just text.", "missing front matter"),
    (
        "unclosed front matter",
        """\
        ---
        slug: fm
        """,
        "---",
        "never closed",
    ),
    (
        "slug differs from file name",
        """\
        ---
        slug: other
        title: T
        question: Q
        thread: Th
        summary: S
        ---
        """,
        "slug: other",
        "must equal the file name 'fm'",
    ),
    (
        "unknown key",
        """\
        ---
        slug: fm
        title: T
        question: Q
        thread: Th
        summary: S
        author: me
        ---
        """,
        "author: me",
        "unknown front matter key 'author'",
    ),
    (
        "summary too long",
        f"""\
        ---
        slug: fm
        title: T
        question: Q
        thread: Th
        summary: {'x' * 251}
        ---
        """,
        "summary:",
        "251 characters, more than 250",
    ),
    (
        "tags not a list",
        """\
        ---
        slug: fm
        title: T
        question: Q
        thread: Th
        summary: S
        tags: batch norm
        ---
        """,
        "tags:",
        "'tags' must be a list",
    ),
    (
        "duplicate key",
        """\
        ---
        slug: fm
        title: T
        title: U
        question: Q
        thread: Th
        summary: S
        ---
        """,
        "title: U",
        "'title' is given twice",
    ),
    (
        "unknown topic",
        """\
        ---
        slug: fm
        title: T
        question: Q
        thread: Th
        topic: Batch norm tricks
        summary: S
        ---
        """,
        "topic: Batch norm tricks",
        "'topic' is the home page section that lists the answer: one of 'What batch norm "
        "computes', 'Internal covariate shift',",
    ),
    (
        "missing title",
        """\
        ---
        slug: fm
        question: Q
        thread: Th
        summary: S
        ---
        """,
        "---",
        "lacks 'title'",
    ),
]


@pytest.mark.parametrize(
    "front, needle, message",
    [p[1:] for p in FRONT_MATTER_PROBLEMS],
    ids=[p[0] for p in FRONT_MATTER_PROBLEMS],
)
def test_front_matter_problems_name_the_exact_line(write_answer, line_of, front, needle, message):
    path = write_answer("fm", "", front=front)
    with pytest.raises(AnswerError) as caught:
        parse_answer(path)
    expected_line = 1 if needle == "---" else line_of(path, needle)
    assert str(caught.value.location) == f"answers/fm.md:{expected_line}"
    assert message in caught.value.message


def test_strict_parse_raises_the_earliest_problem(write_answer, line_of):
    path = write_answer(
        "two",
        """\
        Value {{ d.nope + }}.

        ```demo d
        experiment: missing_experiment
        ```
        """,
    )
    with pytest.raises(AnswerError) as caught:
        parse_answer(path)
    assert caught.value.location.line == line_of(path, "Value {{")


def test_lenient_load_keeps_what_works_and_lists_the_problems(write_answer, line_of):
    path = write_answer(
        "mixed",
        """\
        Good {{ good.ratio:.1f }}, broken {{ bad.ratio }}.

        ```demo good
        experiment: test_drift
        ```

        ```demo bad
        experiment: test_drift
        params: {n: 1}
        ```

        ```claim uses-good
        kind: check
        text: Good.
        check: good.ratio > 0
        ```

        ```claim uses-bad
        kind: check
        text: Bad.
        check: bad.ratio > 0
        ```

        ```claim smuggled
        kind: check
        text: Evil.
        check: __import__('os')
        ```
        """,
    )
    answer = load_answer(path)
    assert [d.name for d in answer.demonstrations] == ["good"]
    # A claim on the broken demonstration is kept: the problem is reported once, at the demo.
    assert [c.id for c in answer.claims] == ["uses-good", "uses-bad"]
    assert [v.expr.source for v in answer.inline_values] == ["good.ratio", "bad.ratio"]
    assert [e.location.line for e in answer.errors] == [
        line_of(path, "params: {n: 1}"),
        line_of(path, "check: __import__"),
    ]


def test_lenient_load_survives_broken_front_matter(write_answer):
    path = write_answer(
        "no-front",
        """\
        ```demo d
        experiment: test_drift
        ```
        """,
        front="---\ntitle: [oops\n---\n",
    )
    answer = load_answer(path)
    assert answer.slug == "no-front" and answer.title == "no-front"
    assert [d.name for d in answer.demonstrations] == ["d"]
    assert [str(e.location) for e in answer.errors] == ["answers/no-front.md:2"]


def test_load_answers_checks_aliases_and_related_across_answers(write_answer, line_of):
    front = """\
        ---
        slug: {slug}
        title: T
        question: Q
        thread: Th
        aliases: {aliases}
        related: {related}
        summary: S
        ---
        """
    write_answer(
        "b-answer", "", front=front.format(slug="b-answer", aliases="[old-b]", related="[a-answer]")
    )
    a_path = write_answer(
        "a-answer",
        "",
        front=front.format(slug="a-answer", aliases="[b-answer]", related="[b-answer]"),
    )
    c_path = write_answer(
        "c-answer", "", front=front.format(slug="c-answer", aliases="[old-b]", related="[gone]")
    )

    answers = load_answers(a_path.parent)
    assert [a.slug for a in answers] == ["a-answer", "b-answer", "c-answer"]
    a, b, c = answers
    assert [(str(e.location), e.message) for e in a.errors] == [
        (
            f"answers/a-answer.md:{line_of(a_path, 'aliases:')}",
            "alias 'b-answer' is already the slug of answers/b-answer.md",
        ),
    ]
    assert b.errors == []
    assert [(str(e.location), e.message) for e in c.errors] == [
        (
            f"answers/c-answer.md:{line_of(c_path, 'aliases:')}",
            "alias 'old-b' is already an alias in answers/b-answer.md",
        ),
        (
            f"answers/c-answer.md:{line_of(c_path, 'related:')}",
            "related answer 'gone' does not exist",
        ),
    ]


def test_display_path_is_given_or_relative(write_answer, good_body, tmp_path, monkeypatch):
    path = write_answer("shown", good_body)
    assert str(parse_answer(path, display_path="x/y.md").claims[0].location).startswith("x/y.md:")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # the file is no longer under the working directory
    assert parse_answer(path).demonstrations[0].location.path == "answers/shown.md"


# --- findings and checks --------------------------------------------------------------------

def test_a_finding_is_measured_over_the_declared_sample(write_answer, line_of):
    path = write_answer("sampled", """\
        The ratio is {{ effect(drift.ratio) : .2f }} over the sample.

        ```demo drift
        experiment: test_drift
        ```

        ```claim drifts
        kind: finding
        text: It drifts.
        check: ci_low(drift.ratio) > 1
        ```

        ```claim same-seed-same-result
        kind: check
        text: It is a ratio.
        check: drift.ratio > 0
        ```
        """, seeds=12)
    answer = parse_answer(path)
    assert answer.seeds == tuple(range(12))
    assert [(c.id, c.kind, c.expr.over_seeds) for c in answer.claims] == [
        ("drifts", "finding", True), ("same-seed-same-result", "check", False)]
    (value,) = answer.inline_values
    assert value.expr.over_seeds


FINDING_PROBLEMS = [
    ("no kind", "", "```claim c",
     "claim 'c' needs 'kind: finding' (an effect measured over seeds) or 'kind: check'"),
    ("unknown kind", "kind: guess", "kind: guess",
     "claim 'c' needs 'kind: finding' (an effect measured over seeds) or 'kind: check'"),
    ("aggregate in a check", "kind: check", "check: ci_low(drift.ratio) > 1",
     "ci_low() is an aggregate over seeds: it cannot be used in a check"),
    ("per-seed reference in a finding", "kind: finding", "check: ci_low(drift.ratio) > 1 "
     "and drift.ratio > 0", "'drift.ratio' is measured over seeds here"),
]


@pytest.mark.parametrize("kind_line, needle, message",
                         [p[1:] for p in FINDING_PROBLEMS], ids=[p[0] for p in FINDING_PROBLEMS])
def test_claim_kinds_are_checked_at_their_line(write_answer, line_of, kind_line, needle, message):
    check = needle if needle.startswith("check:") else "check: ci_low(drift.ratio) > 1"
    path = write_answer("kinds", f"""\
        ```demo drift
        experiment: test_drift
        ```

        ```claim c
        {kind_line}
        text: It drifts.
        {check}
        ```
        """, seeds=12)
    with pytest.raises(AnswerError) as caught:
        parse_answer(path)
    assert caught.value.location.line == line_of(path, needle)
    assert message in caught.value.message


def test_a_finding_without_a_sample_names_the_claim(write_answer, line_of):
    path = write_answer("unsampled", """\
        ```demo drift
        experiment: test_drift
        ```

        ```claim c
        kind: finding
        text: It drifts.
        check: ci_low(drift.ratio) > 1
        ```
        """)
    with pytest.raises(AnswerError) as caught:
        parse_answer(path)
    assert caught.value.location.line == line_of(path, "kind: finding")
    assert ("claim 'c' is a finding, measured over a sample of seeds: the front matter needs "
            "'seeds: N' (N >= 10)") in caught.value.message


def test_a_value_over_seeds_without_a_sample_names_its_line(write_answer, line_of):
    path = write_answer("unsampled-value", """\
        Ratio {{ effect(drift.ratio) }}.

        ```demo drift
        experiment: test_drift
        ```
        """)
    with pytest.raises(AnswerError) as caught:
        parse_answer(path)
    assert caught.value.location.line == line_of(path, "Ratio")
    assert "is measured over a sample of seeds: the front matter needs 'seeds: N'" in str(
        caught.value)


@pytest.mark.parametrize("seeds", ["9", "201", "ten", "[1, 2]"])
def test_the_sample_size_is_checked(write_answer, line_of, seeds):
    path = write_answer("bad-seeds", "Text.\n", seeds=seeds)
    with pytest.raises(AnswerError) as caught:
        parse_answer(path)
    assert caught.value.location.line == line_of(path, "seeds:")
    assert "an integer in [10, 200]" in caught.value.message


def test_a_question_learners_ask_needs_no_forum_thread(write_answer):
    path = write_answer("next", "Text.\n", front="""\
        ---
        slug: next
        title: What next?
        question: What do learners ask next?
        source: learners
        summary: A short summary.
        ---
        """)
    answer = parse_answer(path)
    assert (answer.source, answer.thread) == ("learners", "Common learner questions")
    forum = write_answer("forum", "Text.\n")
    assert parse_answer(forum).source == "forum"


def test_a_forum_question_still_needs_its_thread_and_sources_are_checked(write_answer, line_of):
    path = write_answer("nothread", "Text.\n", front="""\
        ---
        slug: nothread
        title: T
        question: Q?
        summary: S.
        ---
        """)
    with pytest.raises(AnswerError, match="front matter lacks 'thread'"):
        parse_answer(path)
    path = write_answer("badsource", "Text.\n", front="""\
        ---
        slug: badsource
        title: T
        question: Q?
        thread: Th
        source: blog
        summary: S.
        ---
        """)
    with pytest.raises(AnswerError) as caught:
        parse_answer(path)
    assert caught.value.location.line == line_of(path, "source: blog")
    assert "one of 'forum', 'learners'; got 'blog'" in caught.value.message


@pytest.mark.parametrize("topic_line, topic", [
    ("topic: Training and inference", "Training and inference"),
    ("", OTHER_TOPIC),  # listed last on the home page
])
def test_topic_names_the_home_page_section(write_answer, topic_line, topic):
    path = write_answer("topical", "Text.\n", front=f"""\
        ---
        slug: topical
        title: T
        question: Q?
        thread: Th
        {topic_line}
        summary: S.
        ---
        """)
    assert parse_answer(path).topic == topic


def test_every_answer_of_the_knowledge_base_names_a_topic():
    answers = load_answers(PROJECT_ROOT / "answers")
    assert {a.slug: a.topic for a in answers if a.topic not in TOPICS} == {}
    assert {a.topic for a in answers} == set(TOPICS)  # no topic left empty
