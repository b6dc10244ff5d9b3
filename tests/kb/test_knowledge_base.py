"""The real answers folder, as a whole: every answer parses without errors, and each one keeps
the shape the knowledge base promises (answers/*.md, docs/answer-format.md).

Nothing is run here: demonstrations and claims are checked by ``kb check`` and
``pytest answers/``. These tests only read the files.
"""
from __future__ import annotations

import math
import re
import textwrap

import pytest

from engine.catalog import get_experiment
from engine.registry import Param, experiment
from kb.config import PROJECT_ROOT, Settings
from kb.run.cache import Cache
from kb.run.evaluate import evaluate
from kb.run.executor import Executor
from kb.model import Answer
from kb.answers.parse import display_path, load_answers, parse_answer
from kb.answers.regions import BLOCK_KINDS, Kind, body_regions, split_inline

ANSWERS_DIR = PROJECT_ROOT / "answers"

# The permanent addresses /a/<slug> of the forum's questions: a slug never changes once
# published (a renamed answer keeps its old slug as an alias).
SLUGS = {
    "robust-to-earlier-layers",
    "weaker-coupling-between-layers",
    "covariate-shift",
    "batch-size-and-regularization",
    "noise-like-dropout",
    "why-gamma-beta-dont-undo-bn",
    "can-shift-help-generalization",
    "running-averages-during-training",
    "learned-distribution-vs-covariate-shift",
    "generalizing-to-shifted-data",
    "why-bn-speeds-up-training",
    "why-later-layers-benefit-most",
    "bn-backward-gradient",
    # Questions learners ask next (source: learners)
    "train-vs-eval-mode",
    "batchnorm-vs-layernorm",
    "batchnorm-in-convnets",
    "before-or-after-activation",
    "batchnorm-with-dropout",
}

PROSE_LINK = re.compile(r"\]\(/a/([^)#\s]*)")
HEADING = re.compile(r"^#{1,6} ", re.M)
# Dots that do not end a sentence: abbreviations in citations and prose.
ABBREVIATION = re.compile(r"\b(?:e\.g|i\.e|et al|Sec|Secs|Fig|vs|cf)\.")
SENTENCE_END = re.compile(r"[.!?][\"')*]*(?=\s+[\"'(*]*[A-Z0-9]|\s*$)")

# Numbers that read like measurements: decimals, percentages, factors ("14x"). Integers alone
# are sizes, counts and layer numbers. Dotted section numbers ("4.2.1") are not read.
MEASURED_LOOKING = re.compile(
    r"(?<![\w.])(?P<number>\d+(?:\.\d+)?)(?P<unit>\s?%|x\b|×)?(?![\d.]*\d)")
CITED = re.compile(r"\b(?:19|20)\d\d\b|arXiv")  # the sentence quotes the literature
NUMBERED_PART = re.compile(
    r"(?:Sections?|Sec\.|Definition|Figure|Fig\.|Table|Algorithm|Eq\.|and)\s+$")
# Hand-typed numbers that are neither measured nor cited, each with why it may stay.
NOT_MEASURED = {
    ("running-averages-during-training", "33%"): "chance level of three classes",
    ("weaker-coupling-between-layers", "0.3"): "a made-up rule in the two-teams analogy",
    ("why-bn-speeds-up-training", "14x"): "Ioffe & Szegedy's figure, cited in that paragraph",
}

ANSWERS = load_answers(ANSWERS_DIR)
BY_SLUG = {answer.slug: answer for answer in ANSWERS}


def short_answer(body: str) -> str:
    """The text before the body's first heading (the answer's opening)."""
    heading = HEADING.search(body)
    return body[:heading.start() if heading else len(body)].strip()


def blocks_before_first_heading(answer: Answer) -> list[int]:
    """The lines of the blocks (demonstrations, claims, code) before the body's first heading."""
    heading = HEADING.search(answer.body)
    end = answer.body_line + answer.body[:heading.start()].count("\n") if heading else math.inf
    return [r.line for r in body_regions(answer) if r.kind in BLOCK_KINDS and r.line < end]


def count_sentences(text: str) -> int:
    # Math, inline values and code, whose dots and capitals are not prose, count as a word.
    text = "".join(r.text if r.kind is Kind.PROSE else "x" for r in split_inline(text).regions)
    prose = ABBREVIATION.sub(lambda m: m.group(0)[:-1], text)
    return len(SENTENCE_END.findall(" ".join(prose.split())))


def sentences(paragraph: str) -> list[tuple[int, str]]:
    """(offset, text) of each sentence of ``paragraph`` (abbreviations do not end one)."""
    masked = ABBREVIATION.sub(lambda m: m.group(0)[:-1] + "_", paragraph)
    cuts = [0] + [m.end() for m in SENTENCE_END.finditer(masked)] + [len(paragraph)]
    return [(a, paragraph[a:b]) for a, b in zip(cuts, cuts[1:]) if paragraph[a:b].strip()]


def prose_lines(answer: Answer) -> list[tuple[int, str, str]]:
    """The body's lines outside every block, as the parser reads them (its regions): (file
    line, text, text with code spans, math and inline values blanked out)."""
    lines: dict[int, tuple[str, str]] = {}
    for region in body_regions(answer):
        if region.kind in BLOCK_KINDS:
            continue
        pieces = region.text.split("\n")
        for number, piece in enumerate(pieces, region.line):
            if number <= region.end_line:
                blanked = piece if region.kind is Kind.PROSE else " " if number == region.line else ""
                text, prose = lines.get(number, ("", ""))
                lines[number] = (text + piece, prose + blanked)
    return [(number, text, prose) for number, (text, prose) in sorted(lines.items())]


def prose_paragraphs(answer: Answer) -> list[tuple[list[tuple[int, int]], str]]:
    """The summary and every paragraph of the body's prose (see ``prose_lines``):
    ([(offset, file line) of each line], text). A blank line or a block between two lines
    ends a paragraph."""
    front = answer.path.read_text(encoding="utf-8").split("\n")
    summary_line = next((i for i, line in enumerate(front, 1) if line.startswith("summary:")), 1)
    paragraphs = [([(0, summary_line)], answer.summary)]
    lines: list[tuple[int, int]] = []
    text, previous = "", None
    for number, line, prose in prose_lines(answer) + [(None, "", "")]:
        if lines and (not line.strip() or number != previous + 1):
            paragraphs.append((lines, text))
            lines, text = [], ""
        if line.strip():
            text += " " if text else ""
            lines.append((len(text), number))
            text += prose
        previous = number
    return paragraphs


def demonstration_settings(answer: Answer) -> set[float]:
    """Every numeric parameter of the answer's demonstrations, defaults included."""
    values = set()
    for demo in answer.demonstrations:
        for value in get_experiment(demo.experiment).resolve(demo.params).values():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values.add(float(value))
    return values


def hand_typed_numbers(answer: Answer) -> list[str]:
    """Measurement-like numbers typed into prose, as "file:line: number in sentence": not an
    inline value, not in a sentence that cites the literature, not a section or figure
    number, not one of the demonstrations' own settings (a percentage counts as its
    fraction), and not in NOT_MEASURED."""
    settings = demonstration_settings(answer)
    where = display_path(answer.path, PROJECT_ROOT)
    found = []
    for lines, paragraph in prose_paragraphs(answer):
        for offset, sentence in sentences(paragraph):
            for match in MEASURED_LOOKING.finditer(sentence):
                number, unit = match["number"], (match["unit"] or "").strip()
                if "." not in number and not unit or (answer.slug, match[0]) in NOT_MEASURED:
                    continue
                if CITED.search(sentence) or NUMBERED_PART.search(sentence[:match.start()]):
                    continue
                value = float(number) / (100 if unit == "%" else 1)
                if any(math.isclose(value, s, rel_tol=1e-9) for s in settings):
                    continue
                line = max(n for start, n in lines if start <= offset + match.start())
                found.append(f"{where}:{line}: {match[0]!r} in {sentence.strip()!r}")
    return found


def test_count_sentences_ignores_math_values_and_abbreviations():
    text = ("With $g_i = \\gamma\\,\\partial L/\\partial y_i$. the value is {{a.b:.2f}}. "
            "Ioffe & Szegedy (2015, Sec. 3.3) and Santurkar et al. (2018) agree, e.g. here.\n"
            "A third one? Yes.")
    assert count_sentences(text) == 4
    assert count_sentences("One sentence without a final stop") == 0


def test_the_folder_holds_exactly_the_eighteen_answers():
    assert {path.stem for path in ANSWERS_DIR.glob("*.md")} == SLUGS
    assert set(BY_SLUG) == SLUGS


@pytest.mark.parametrize("slug", sorted(SLUGS))
def test_answer_parses_strictly(slug):
    answer = BY_SLUG[slug]
    assert answer.errors == [], [str(error) for error in answer.errors]
    assert answer.path.stem == answer.slug == slug


@pytest.mark.parametrize("slug", sorted(SLUGS))
def test_demonstrations_with_figures_and_claims(slug):
    answer = BY_SLUG[slug]
    assert any(demo.figures for demo in answer.demonstrations), "no demonstration with a figure"
    findings = [claim.id for claim in answer.claims if claim.kind == "finding"]
    assert len(findings) >= 2, f"findings: {findings}"
    assert len(answer.seeds) >= 10


@pytest.mark.parametrize("slug", sorted(SLUGS))
def test_every_finding_reports_its_effect_with_an_interval(slug):
    # Over the answer's sample, through the on-disk cache that `pytest answers/` fills too.
    answer = BY_SLUG[slug]
    evaluation = evaluate(answer, Executor(Cache(Settings.from_env().cache_dir)),
                          list(answer.seeds))
    for outcome in evaluation.claims:
        if outcome.claim.kind != "finding":
            continue
        effect = outcome.effect
        assert effect is not None, f"{outcome.claim.location}: {outcome.detail}"
        low, high = effect.ci
        assert math.isfinite(low) and low <= effect.mean <= high, effect
        assert len(effect.values) == len(answer.seeds)


@pytest.mark.parametrize("slug", sorted(SLUGS))
def test_related_answers_exist_and_are_others(slug):
    related = BY_SLUG[slug].related  # that they exist, the parser checks
    assert related, "no related answers"
    assert slug not in related
    assert len(set(related)) == len(related), related


@pytest.mark.parametrize("slug", sorted(SLUGS))
def test_prose_links_point_at_existing_answers(slug):
    links = PROSE_LINK.findall(BY_SLUG[slug].body)
    assert set(links) <= SLUGS, set(links) - SLUGS
    assert slug not in links


@pytest.mark.parametrize("slug", sorted(SLUGS))
def test_opens_with_a_short_answer_of_two_to_four_sentences(slug):
    opening = short_answer(BY_SLUG[slug].body)
    assert opening, "the body starts with a heading"
    assert "\n\n" not in opening, "the short answer is one paragraph"
    assert blocks_before_first_heading(BY_SLUG[slug]) == [], "a block before the first heading"
    assert 2 <= count_sentences(opening) <= 4, opening


@pytest.mark.parametrize("slug", sorted(SLUGS))
def test_measured_numbers_in_prose_come_from_the_engine(slug):
    assert hand_typed_numbers(BY_SLUG[slug]) == []


@experiment("test_kb_typed", params={"lr": Param(float, 0.01, 1e-4, 1.0, "learning rate")})
def typed_experiment(rng, lr):
    """Stands for a demonstration with a learning rate; never run here."""
    return {"drop": lr}


def test_hand_typed_measurements_are_found(tmp_path):
    path = tmp_path / "typed.md"
    path.write_text(textwrap.dedent("""\
        ---
        slug: typed
        title: T
        question: Q
        thread: Th
        summary: Batch norm made training 2.5x faster.
        ---

        The loss fell by {{ d.drop:.2f }}, to 0.42 (typed by hand).
        With learning rate 0.1 it took
        12% fewer steps. Ioffe & Szegedy (2015, Section 4.2) report 4.9% top-5 error.
        Section 3.1 says so; `0.77` is code and $0.5 x$ is math.

        ```demo d
        experiment: test_kb_typed
        params: {lr: 0.1}
        ```
        """), encoding="utf-8")
    found = hand_typed_numbers(parse_answer(path))
    assert [entry.split(": ", 1)[1].split(" in ")[0] for entry in found] == [
        "'2.5x'", "'0.42'", "'12%'"]
    where = display_path(path, PROJECT_ROOT)
    assert [entry.split(": ", 1)[0] for entry in found] == [f"{where}:6", f"{where}:9",
                                                            f"{where}:11"]
