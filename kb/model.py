"""The data that flows through the service, one stage after another:

answer file -> ``Answer`` (parsed) -> ``AnswerRun`` (demonstrations executed, cached)
-> ``ClaimOutcome`` / inline values (evaluated) -> rendered page and index entry.

Every parsed piece keeps its ``Location`` so that any error names ``answers/<file>.md:<line>``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kb.answers.regions import Region


@dataclass(frozen=True)
class Location:
    path: str  # as shown to people, e.g. "answers/covariate-shift.md"
    line: int  # 1-based

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


class AnswerError(Exception):
    """A problem in an answer file, always with the place it was found."""

    def __init__(self, location: Location, message: str):
        super().__init__(f"{location}: {message}")
        self.location = location
        self.message = message

    def __reduce__(self):
        # The default would call __init__ with the formatted text only; processes exchange these.
        return (type(self), (self.location, self.message))


@dataclass(frozen=True)
class FigureSpec:
    name: str  # unique within an answer: anchor "figure-<name>", URL /a/<slug>/figures/<name>.png
    drawing: str  # the experiment's declared figure that draws it
    caption: str
    location: Location


@dataclass(frozen=True)
class Demonstration:
    name: str  # how prose and claims refer to its results: {{name.field}}
    experiment: str
    params: dict[str, Any]  # fully resolved and validated (defaults filled in)
    overrides: dict[str, Any]  # what the answer file itself set
    seed: int
    figures: tuple[FigureSpec, ...]
    location: Location


@dataclass(frozen=True)
class Claim:
    id: str  # stable, anchor "claim-<id>"
    text: str  # the human sentence
    condition: str  # the source of the condition, as written
    expr: Any  # the parsed, whitelisted expression tree (kb.answers.expr)
    location: Location
    kind: str = "check"  # "finding": measured over seeds; "check": true by construction


@dataclass(frozen=True)
class InlineValue:
    source: str  # the text between {{ and }}
    expr: Any
    format_spec: str
    location: Location


@dataclass
class Answer:
    slug: str
    title: str
    question: str
    thread: str
    tags: list[str]
    aliases: list[str]
    related: list[str]
    summary: str
    body: str  # Markdown after the front matter, blocks still in place
    body_line: int  # file line number of the body's first line
    demonstrations: list[Demonstration]
    claims: list[Claim]
    inline_values: list[InlineValue]
    path: Path
    errors: list[AnswerError] = field(default_factory=list)  # non-fatal, shown in an error box
    seeds: tuple[int, ...] = ()  # the sample its findings are measured on (front matter)
    source: str = "forum"  # where the question comes from: "forum" (its thread) or "learners"
    topic: str = ""  # the home page section listing it (one of kb.answers.parse.TOPICS)
    # The file as the parser read it, split once (kb.answers.regions); empty when made by hand.
    regions: tuple[Region, ...] = field(default=(), repr=False)

    def demonstration(self, name: str) -> Demonstration:
        for demo in self.demonstrations:
            if demo.name == name:
                return demo
        raise KeyError(name)


@dataclass
class DemoResult:
    demonstration: str
    seed: int
    params: dict[str, Any]
    values: dict[str, Any] | None  # None when it failed
    error: str | None  # "answers/x.md:12: demonstration 'drift' timed out after 30 s"
    seconds: float  # compute time (of the original computation when cached)
    cached: bool
    key: str | None = None  # cache key


@dataclass
class AnswerRun:
    """An answer's demonstrations executed for one seed (or the file's own seeds when None)."""

    answer: Answer
    seed: int | None
    results: dict[str, DemoResult]


@dataclass
class ClaimOutcome:
    claim: Claim
    holds: bool | None  # None: could not be evaluated (a demonstration failed)
    value: Any  # the measured quantity shown to people (the condition's left side)
    detail: str  # e.g. 'drift.ratio = 2.1 (needs >= 3)'
    seed: int | None  # the seed this outcome is for (the worst one across seeds)
    seeds: tuple[int, ...] = ()  # all the seeds it was checked on
    effect: Any = None  # a finding's kb.answers.stats.Effect: its quantity over the seeds
    reading: str = ""  # the measurement for readers: values and bounds, without the names
