"""Answer files -> ``Answer``: front matter, demonstration and claim blocks, inline values.

Parsing is separate from running: nothing here executes an experiment, but every parameter,
figure and expression is checked against the experiment registry and the expression
whitelist, and every problem is an ``AnswerError`` naming ``file:line``.

``parse_answer`` is strict (raises the first problem); ``load_answer`` and ``load_answers``
are lenient for the web service: problems go to ``Answer.errors`` and the broken parts are
dropped, so one broken answer never takes the service down.

The file's Markdown is read by ``kb.answers.regions`` alone; this module turns its regions
(front matter, demonstration and claim blocks, inline values) into the ``Answer``.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from engine.catalog import get_experiment
from engine.registry import Experiment, ParameterError, UnknownExperimentError, check_seed
from kb.config import PROJECT_ROOT
from kb.answers.expr import parse_condition, parse_expression
from kb.answers.regions import Kind, Region, split_answer
from kb.model import (
    Answer,
    AnswerError,
    Claim,
    Demonstration,
    FigureSpec,
    InlineValue,
    Location,
)

SLUG = re.compile(r"[a-z0-9-]+")
SUMMARY_LIMIT = 250
FRONT_MATTER_REQUIRED = ("slug", "title", "question", "thread", "summary")
FRONT_MATTER_LISTS = ("tags", "aliases", "related")
FRONT_MATTER_OPTIONAL = ("seeds", "source", "topic")
# The home page's sections, in the order a learner meets the questions (what batch norm
# computes, then why it helps, then how it behaves in practice). Every answer names one; one
# that does not is listed last, under OTHER_TOPIC.
TOPICS = (
    "What batch norm computes",
    "Internal covariate shift",
    "Why it speeds up training",
    "Noise and regularization",
    "Training and inference",
    "Where it goes, and the alternatives",
)
OTHER_TOPIC = "More questions"
# Where a question comes from: a forum thread (named by `thread`), or what learners commonly
# ask next (no thread of their own: their `thread` reads LEARNER_QUESTIONS).
SOURCES = ("forum", "learners")
LEARNER_QUESTIONS = "Common learner questions"
FRONT_MATTER_CHOICES = {  # keys taking one of a few values: what the key says, the values
    "source": ("where the question comes from", SOURCES),
    "topic": ("the home page section that lists the answer", TOPICS),
}
# A finding's sample: enough seeds for its interval to mean something, few enough to check.
MIN_SEEDS, MAX_SEEDS = 10, 200
CLAIM_KINDS = ("finding", "check")


def display_path(path: Path, root: Path | None = None) -> str:
    """How a file is named to people: relative to ``root``, else to the working directory or
    the project, else as ``<folder>/<file>`` (so answers read "answers/x.md" everywhere)."""
    path = Path(path).absolute()
    for base in ([root] if root is not None else []) + [Path.cwd(), PROJECT_ROOT]:
        try:
            return path.relative_to(Path(base).absolute()).as_posix()
        except ValueError:
            continue
    return f"{path.parent.name}/{path.name}"


def parse_answer(path: Path, display_path: str | None = None) -> Answer:
    """The answer in ``path``; raises AnswerError for the first problem (by line)."""
    answer = load_answer(path, display_path)
    if answer.errors:
        raise answer.errors[0]
    return answer


def load_answer(path: Path, display_path: str | None = None) -> Answer:
    """The answer in ``path`` with its problems in ``errors`` and its broken parts dropped."""
    return _AnswerParser(Path(path), display_path).parse()


def load_answers(directory: Path, display_root: Path | None = None) -> list[Answer]:
    """Every ``*.md`` answer in ``directory``, sorted by slug, leniently loaded.

    Also checks what needs all answers at once: aliases must not be another answer's slug or
    alias, and ``related`` must name existing slugs.
    """
    parsers = [
        _AnswerParser(path, display_path(path, display_root))
        for path in sorted(Path(directory).glob("*.md"))
    ]
    answers = [parser.parse() for parser in parsers]
    owners = {
        answer.slug: f"the slug of {parser.display}" for answer, parser in zip(answers, parsers)
    }
    for answer, parser in zip(answers, parsers):
        for alias in answer.aliases:
            if alias in owners:
                parser.error("aliases", f"alias '{alias}' is already {owners[alias]}")
            else:
                owners[alias] = f"an alias in {parser.display}"
    slugs = {answer.slug for answer in answers}
    for answer, parser in zip(answers, parsers):
        missing = [slug for slug in answer.related if slug not in slugs]
        if missing:
            parser.error("related", f"related answer '{missing[0]}' does not exist")
        answer.errors.sort(key=lambda e: e.location.line)
    return sorted(answers, key=lambda a: a.slug)


@dataclass
class _Mapping:
    """A YAML mapping with the file line of each key (and of each value's first line)."""

    values: dict[str, Any]
    key_lines: dict[str, int]
    value_lines: dict[str, int]
    nodes: dict[str, yaml.Node]
    first_line: int


def _yaml_mapping(text: str, first_line: int, what: str, path: str) -> _Mapping:
    """Parse ``text`` (starting at file line ``first_line``) as a YAML mapping."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None and not isinstance(node, yaml.MappingNode):
            raise AnswerError(
                Location(path, first_line + node.start_mark.line), f"{what} must be a YAML mapping"
            )
        values = loader.construct_document(node) if node is not None else {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = first_line + (mark.line if mark else 0)
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise AnswerError(Location(path, line), f"invalid YAML in {what}: {problem}") from None
    except yaml.YAMLError as exc:
        raise AnswerError(Location(path, first_line), f"invalid YAML in {what}: {exc}") from None
    finally:
        loader.dispose()
    return _mapping_from_node(node, values, first_line, what, path)


def _mapping_from_node(
    node: yaml.MappingNode | None, values: dict, first_line: int, what: str, path: str
) -> _Mapping:
    key_lines: dict[str, int] = {}
    value_lines: dict[str, int] = {}
    nodes: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value if node is not None else ():
        key = key_node.value
        line = first_line + key_node.start_mark.line
        if not isinstance(key_node, yaml.ScalarNode) or not isinstance(key, str):
            raise AnswerError(Location(path, line), f"{what}: keys must be names")
        if key in key_lines:
            raise AnswerError(
                Location(path, line),
                f"{what}: '{key}' is given twice (also at line {key_lines[key]})",
            )
        key_lines[key] = line
        # A block scalar (| or >) starts on the line after its indicator.
        block = isinstance(value_node, yaml.ScalarNode) and value_node.style in ("|", ">")
        value_lines[key] = first_line + value_node.start_mark.line + (1 if block else 0)
        nodes[key] = value_node
    return _Mapping(
        {str(k): v for k, v in values.items()}, key_lines, value_lines, nodes, first_line
    )


def _yaml_text(region: Region) -> str:
    """A block's or the front matter's lines without the last line end: at the end of the
    text YAML would count it as one more line, and name that line in its errors."""
    return region.content.removesuffix("\n")


class _AnswerParser:
    def __init__(self, path: Path, display: str | None):
        self.path = path
        self.display = display or display_path(path)
        self.errors: list[AnswerError] = []
        self.key_lines: dict[str, int] = {}  # front matter keys, for errors found later

    def at(self, line: int) -> Location:
        return Location(self.display, line)

    def error(self, front_matter_key: str, message: str) -> None:
        """Record a problem with a front matter key (found after parsing, e.g. across answers)."""
        self.errors.append(AnswerError(self.at(self.key_lines.get(front_matter_key, 1)), message))

    def attempt(self, parse: Callable[[], Any]) -> Any:
        """``parse()``, or None with its AnswerError recorded: the broken part is dropped."""
        try:
            return parse()
        except AnswerError as exc:
            self.errors.append(exc)
            return None

    def parse(self) -> Answer:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.errors.append(AnswerError(self.at(1), f"cannot read the answer: {exc}"))
            text = ""
        split = split_answer(text)
        # A value's problem comes after the value's own, as the line is read left to right.
        self.errors += [AnswerError(self.at(p.line), p.message)
                        for p in split.problems if p.kind is not Kind.VALUE]
        front = next((r for r in split.regions if r.kind is Kind.FRONT_MATTER), None)
        meta = self.front_matter(self.front_mapping(front))
        body = [r for r in split.regions if r.kind is not Kind.FRONT_MATTER]
        # The answer's own blocks, closed and named (the others are problems already).
        blocks = [r for r in body if r.kind in (Kind.DEMO, Kind.CLAIM) and r.closed and r.name]

        demos: list[Demonstration] = []
        demo_lines: dict[str, int] = {}
        figure_lines: dict[str, int] = {}
        for block in (b for b in blocks if b.kind is Kind.DEMO):
            demo = self.attempt(lambda: self.demonstration(block, demo_lines, figure_lines))
            if demo is not None:
                demos.append(demo)
        # Claims and values may name a broken demonstration: that is reported once, at the
        # demonstration, and not again at every use.
        names = set(demo_lines)
        claims: list[Claim] = []
        claim_lines: dict[str, int] = {}
        for block in (b for b in blocks if b.kind is Kind.CLAIM):
            claim = self.attempt(lambda: self.claim(block, names, claim_lines, meta["seeds"]))
            if claim is not None:
                claims.append(claim)
        values: list[InlineValue] = []
        for region in (r for r in body if r.kind is Kind.VALUE):
            value = self.attempt(lambda: self.inline_value(region.content, self.at(region.line),
                                                           names, meta["seeds"]))
            if value is not None:
                values.append(value)
        self.errors += [AnswerError(self.at(p.line), p.message)
                        for p in split.problems if p.kind is Kind.VALUE]

        self.errors.sort(key=lambda e: e.location.line)
        return Answer(
            slug=meta["slug"],
            title=meta["title"],
            question=meta["question"],
            thread=meta["thread"],
            tags=meta["tags"],
            aliases=meta["aliases"],
            related=meta["related"],
            summary=meta["summary"],
            seeds=meta["seeds"],
            source=meta["source"],
            topic=meta["topic"],
            body="".join(region.text for region in body),
            body_line=front.end_line + 1 if front is not None else 1,
            demonstrations=demos,
            claims=claims,
            inline_values=values,
            path=self.path,
            errors=self.errors,
            regions=split.regions,
        )

    # --- front matter ---------------------------------------------------------------------

    def front_mapping(self, front: Region | None) -> _Mapping | None:
        """The front matter's YAML; None when it is missing or never closed (a problem already)
        or not YAML (recorded)."""
        if front is None or not front.closed:
            return None
        return self.attempt(lambda: _yaml_mapping(
            _yaml_text(front), front.content_line, "front matter", self.display))

    def front_matter(self, front: _Mapping | None) -> dict[str, Any]:
        stem = self.path.stem
        meta: dict[str, Any] = {key: "" for key in FRONT_MATTER_REQUIRED}
        meta.update({key: [] for key in FRONT_MATTER_LISTS})
        meta["seeds"] = ()
        meta["source"] = "forum"
        meta["topic"] = OTHER_TOPIC
        meta["slug"] = stem
        meta["title"] = stem
        if front is None:
            return meta
        self.key_lines = front.key_lines
        for key, value in front.values.items():
            line = self.at(front.key_lines[key])
            if key in FRONT_MATTER_REQUIRED:
                if isinstance(value, str) and value.strip():
                    meta[key] = value.strip()
                else:
                    self.errors.append(AnswerError(line, f"'{key}' must be non-empty text"))
            elif key in FRONT_MATTER_LISTS:
                if isinstance(value, list) and all(isinstance(v, str) for v in value):
                    meta[key] = value
                else:
                    self.errors.append(AnswerError(line, f"'{key}' must be a list of text"))
            elif key in FRONT_MATTER_CHOICES:
                meaning, choices = FRONT_MATTER_CHOICES[key]
                if value in choices:
                    meta[key] = value
                else:
                    self.errors.append(AnswerError(
                        line, f"'{key}' is {meaning}: one of "
                              f"{', '.join(repr(c) for c in choices)}; got {value!r}"))
            elif key == "seeds":
                if type(value) is int and MIN_SEEDS <= value <= MAX_SEEDS:
                    meta[key] = tuple(range(value))
                else:
                    self.errors.append(AnswerError(
                        line, f"'seeds' is the size of the sample findings are measured on: "
                              f"an integer in [{MIN_SEEDS}, {MAX_SEEDS}], got {value!r}"))
            else:
                known = ", ".join((*FRONT_MATTER_REQUIRED, *FRONT_MATTER_LISTS,
                                   *FRONT_MATTER_OPTIONAL))
                self.errors.append(
                    AnswerError(line, f"unknown front matter key '{key}' (known: {known})")
                )
        if meta["source"] == "learners" and "thread" not in front.values:
            meta["thread"] = LEARNER_QUESTIONS
        missing = [key for key in FRONT_MATTER_REQUIRED
                   if key not in front.values and not (key == "thread" and meta["thread"])]
        if missing:
            self.errors.append(AnswerError(self.at(1), f"front matter lacks '{missing[0]}'"))
        if "slug" in front.values and meta["slug"] != stem:
            self.errors.append(
                AnswerError(
                    self.at(front.key_lines["slug"]),
                    f"slug '{meta['slug']}' must equal the file name '{stem}'",
                )
            )
            meta["slug"] = stem  # the file name is the address the site serves
        for key in ("slug", "aliases", "related"):
            for slug in [meta[key]] if key == "slug" else meta[key]:
                if not SLUG.fullmatch(slug):
                    self.errors.append(
                        AnswerError(
                            self.at(front.key_lines.get(key, 1)),
                            f"'{slug}' in '{key}' is not a slug (lowercase letters, digits and '-')",
                        )
                    )
        if len(meta["summary"]) > SUMMARY_LIMIT:
            self.errors.append(
                AnswerError(
                    self.at(front.key_lines["summary"]),
                    f"summary has {len(meta['summary'])} characters, more than {SUMMARY_LIMIT}",
                )
            )
        return meta

    # --- body -----------------------------------------------------------------------------

    def block_mapping(
        self, block: Region, allowed: tuple[str, ...], required: tuple[str, ...]
    ) -> _Mapping:
        what = f"{block.kind.value} '{block.name}'"
        mapping = _yaml_mapping(_yaml_text(block), block.content_line, what, self.display)
        for key in mapping.values:
            if key not in allowed:
                raise AnswerError(
                    self.at(mapping.key_lines[key]),
                    f"{what} has an unknown key '{key}' (allowed: {', '.join(allowed)})",
                )
        for key in required:
            if key not in mapping.values:
                raise AnswerError(self.at(block.line), f"{what} lacks '{key}'")
        return mapping

    def demonstration(
        self, block: Region, demo_lines: dict[str, int], figure_lines: dict[str, int]
    ) -> Demonstration:
        name = block.name
        if not name.isidentifier() or keyword.iskeyword(name):
            raise AnswerError(
                self.at(block.line), f"demonstration name '{name}' must be an identifier"
            )
        if name in demo_lines:
            raise AnswerError(
                self.at(block.line),
                f"demonstration '{name}' is already defined at line {demo_lines[name]}",
            )
        demo_lines[name] = block.line
        mapping = self.block_mapping(
            block, ("experiment", "params", "seed", "figures"), ("experiment",)
        )
        values, key_at = mapping.values, lambda key: self.at(mapping.key_lines[key])
        try:
            experiment = get_experiment(str(values["experiment"]))
        except UnknownExperimentError as exc:
            raise AnswerError(key_at("experiment"), str(exc)) from None

        overrides = values.get("params") or {}
        if not isinstance(overrides, dict):
            raise AnswerError(key_at("params"), f"params of '{name}' must be a mapping")
        params = self.resolve_params(experiment, overrides, mapping)

        try:
            seed = check_seed(values.get("seed", 0))
        except ParameterError as exc:
            raise AnswerError(key_at("seed"), str(exc)) from None

        figures = self.figures(experiment, mapping, figure_lines) if "figures" in values else ()
        return Demonstration(
            name, experiment.name, params, dict(overrides), seed, figures, self.at(block.line)
        )

    def resolve_params(self, experiment: Experiment, overrides: dict, mapping: _Mapping) -> dict:
        params_node = mapping.nodes.get("params")
        param_lines = (
            _mapping_from_node(
                params_node, overrides, mapping.first_line, "params", self.display
            ).key_lines
            if isinstance(params_node, yaml.MappingNode)
            else {}
        )
        # One parameter at a time, so the error points at the offending key's line.
        for key, value in overrides.items():
            try:
                experiment.resolve({key: value})
            except ParameterError as exc:
                line = param_lines.get(str(key), mapping.key_lines["params"])
                raise AnswerError(self.at(line), str(exc)) from None
        return experiment.resolve(overrides)

    def figures(
        self, experiment: Experiment, mapping: _Mapping, figure_lines: dict[str, int]
    ) -> tuple[FigureSpec, ...]:
        items, node = mapping.values["figures"], mapping.nodes["figures"]
        if not isinstance(items, list) or not isinstance(node, yaml.SequenceNode):
            raise AnswerError(self.at(mapping.key_lines["figures"]), "figures must be a list")
        specs = []
        for item, item_node in zip(items, node.value):
            item_line = mapping.first_line + item_node.start_mark.line
            if not isinstance(item, dict) or not isinstance(item_node, yaml.MappingNode):
                raise AnswerError(
                    self.at(item_line), "each figure is a mapping {name, drawing, caption}"
                )
            fig = _mapping_from_node(item_node, item, mapping.first_line, "figure", self.display)
            for key in fig.values:
                if key not in ("name", "drawing", "caption"):
                    raise AnswerError(
                        self.at(fig.key_lines[key]),
                        f"figure has an unknown key '{key}' (allowed: name, drawing, caption)",
                    )
            for key in ("name", "drawing", "caption"):
                if not isinstance(fig.values.get(key), str) or not fig.values[key].strip():
                    line = fig.key_lines.get(key, item_line)
                    raise AnswerError(self.at(line), f"figure needs '{key}' as non-empty text")
            fig_name, drawing = fig.values["name"], fig.values["drawing"]
            if not SLUG.fullmatch(fig_name):
                raise AnswerError(
                    self.at(fig.key_lines["name"]),
                    f"figure name '{fig_name}' must use lowercase letters, digits and '-'",
                )
            if fig_name in figure_lines:
                raise AnswerError(
                    self.at(fig.key_lines["name"]),
                    f"figure name '{fig_name}' is already used at line {figure_lines[fig_name]}",
                )
            if drawing not in experiment.figure_names:
                raise AnswerError(
                    self.at(fig.key_lines["drawing"]),
                    f"experiment '{experiment.name}' has no figure '{drawing}'"
                    f" (it has: {', '.join(experiment.figure_names) or 'none'})",
                )
            figure_lines[fig_name] = item_line
            specs.append(
                FigureSpec(fig_name, drawing, fig.values["caption"].strip(), self.at(item_line))
            )
        return tuple(specs)

    def claim(self, block: Region, demo_names: set[str], claim_lines: dict[str, int],
              seeds: tuple[int, ...]) -> Claim:
        claim_id = block.name
        if not SLUG.fullmatch(claim_id):
            raise AnswerError(
                self.at(block.line),
                f"claim id '{claim_id}' must use lowercase letters, digits and '-'",
            )
        if claim_id in claim_lines:
            raise AnswerError(
                self.at(block.line),
                f"claim '{claim_id}' is already defined at line {claim_lines[claim_id]}",
            )
        claim_lines[claim_id] = block.line
        mapping = self.block_mapping(block, ("kind", "text", "check"), ("text", "check"))
        kind = mapping.values.get("kind")
        if kind not in CLAIM_KINDS:
            where = self.at(mapping.key_lines.get("kind", block.line))
            raise AnswerError(where, f"claim '{claim_id}' needs 'kind: finding' (an effect "
                                     f"measured over seeds) or 'kind: check' (true by "
                                     f"construction), got {kind!r}")
        if kind == "finding" and not seeds:
            raise AnswerError(self.at(mapping.key_lines["kind"]),
                              f"claim '{claim_id}' is a finding, measured over a sample of "
                              f"seeds: the front matter needs 'seeds: N' (N >= {MIN_SEEDS})")
        for key in ("text", "check"):
            value = mapping.values[key]
            if not isinstance(value, str) or not value.strip():
                raise AnswerError(
                    self.at(mapping.key_lines[key]), f"claim '{claim_id}': '{key}' must be text"
                )
        condition = mapping.values["check"].strip()
        expr = parse_condition(condition, self.at(mapping.value_lines["check"]), demo_names, kind)
        return Claim(claim_id, " ".join(mapping.values["text"].split()), condition, expr,
                     self.at(block.line), kind)

    @staticmethod
    def inline_value(source: str, location: Location, demo_names: set[str],
                     seeds: tuple[int, ...]) -> InlineValue:
        expression, colon, spec = source.rpartition(":")
        if not colon:
            expression, spec = source, ""
        spec = spec.strip()
        if not any(_formats(sample, spec) for sample in (0.5, 1, True)):
            raise AnswerError(
                location,
                f"'{spec}' in {{{{{source}}}}} is not a format spec (like .2f, .1%, d, .3g)",
            )
        parsed = parse_expression(expression, location, demo_names)
        if parsed.over_seeds and not seeds:
            raise AnswerError(location, f"{{{{{source}}}}} is measured over a sample of seeds: "
                                        f"the front matter needs 'seeds: N' (N >= {MIN_SEEDS})")
        return InlineValue(source, parsed, spec, location)


def _formats(sample: Any, spec: str) -> bool:
    try:
        format(sample, spec)
        return True
    except ValueError:
        return False
