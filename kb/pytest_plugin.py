"""pytest collects every claim of ``answers/*.md`` as a test item.

``pytest answers/`` gives one item per claim, named ``answers/<file>.md::<claim-id>``, plus
``::file_errors`` when the answer file has problems (each named at its ``file:line``) and
``::demos_and_values`` when it has demonstrations or inline values (every demonstration
runs, every inline value can be computed). Only ``.md`` files in a folder named
``answers`` that start with front matter are collected.

An answer's demonstrations run once per session (and process, under pytest-xdist) over the
sample of seeds the answer declares (``seeds: N`` in its front matter: seeds 0..N-1), as
``kb check`` runs them; an answer without a sample runs with the seeds written in its
demonstrations. Checks must hold for every seed; findings are measured over the sample.
They go through the on-disk cache
(``.kb/cache``, or ``$KB_DATA/cache``): its keys include the engine's source, numpy's and
matplotlib's versions, so a cached result is exactly what a fresh run would compute; xdist
workers that need the same answer compute it once (the cache locks per key); and a rerun
with unchanged code is instant. ``kb check`` is the command that recomputes everything.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

# The kb modules (numpy, yaml, the engine) are imported on first use: every pytest run in
# this environment loads the plugin, most of them without collecting a single answer.
if TYPE_CHECKING:
    from kb.model import Answer, Claim
    from kb.run.evaluate import Evaluation
    from kb.run.executor import Executor

_ANSWERS = pytest.StashKey["dict[Path, dict[Path, Answer]]"]()  # folder -> file -> answer
_EVALUATIONS = pytest.StashKey["dict[Path, Evaluation]"]()
_EXECUTOR = pytest.StashKey["Executor"]()


class AnswerFailure(Exception):
    """A failure whose message already names the answer's file:line; shown without traceback."""


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_ANSWERS] = {}
    config.stash[_EVALUATIONS] = {}


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix != ".md" or file_path.parent.name != "answers":
        return None
    with file_path.open(encoding="utf-8", errors="replace") as text:
        if text.readline().rstrip() != "---":
            return None  # not an answer: e.g. a README
    return AnswerFile.from_parent(parent, path=file_path)


def _answer(config: pytest.Config, path: Path) -> Answer:
    # The whole folder is loaded (once) because aliases and related links span answers.
    folders = config.stash[_ANSWERS]
    if path.parent not in folders:
        from kb.answers.parse import load_answers

        answers = load_answers(path.parent, display_root=config.rootpath)
        folders[path.parent] = {answer.path: answer for answer in answers}
    return folders[path.parent][path]


def _evaluation(config: pytest.Config, answer: Answer) -> Evaluation:
    evaluations = config.stash[_EVALUATIONS]
    if answer.path not in evaluations:
        from kb.run.evaluate import OWN_SEEDS, evaluate

        if _EXECUTOR not in config.stash:
            from kb.config import Settings
            from kb.run.cache import Cache
            from kb.run.executor import Executor

            config.stash[_EXECUTOR] = Executor(Cache(Settings.from_env().cache_dir))
        # The answer's sample of seeds, as `kb check` runs it: findings are measured over it.
        seeds = list(answer.seeds) or OWN_SEEDS
        evaluations[answer.path] = evaluate(answer, config.stash[_EXECUTOR], seeds)
    return evaluations[answer.path]


class AnswerFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        answer = _answer(self.config, self.path)
        if answer.errors:
            yield FileErrorsItem.from_parent(self, name="file_errors", answer=answer)
        for claim in answer.claims:
            yield ClaimItem.from_parent(self, name=claim.id, answer=answer, claim=claim)
        if answer.demonstrations or answer.inline_values:
            yield DemosAndValuesItem.from_parent(self, name="demos_and_values", answer=answer)


class AnswerItem(pytest.Item):
    line = 1  # the Markdown line this item is about

    def __init__(self, *, answer: Answer, **kwargs):
        super().__init__(**kwargs)
        self.answer = answer

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None):
        if isinstance(excinfo.value, AnswerFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.line - 1, f"{self.answer.slug}::{self.name}"


class FileErrorsItem(AnswerItem):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.line = self.answer.errors[0].location.line

    def runtest(self) -> None:
        raise AnswerFailure("\n".join(str(error) for error in self.answer.errors))


class ClaimItem(AnswerItem):
    def __init__(self, *, claim: Claim, **kwargs):
        super().__init__(**kwargs)
        self.claim = claim
        self.line = claim.location.line

    def runtest(self) -> None:
        from kb.run.claims import describe_outcome

        claims = _evaluation(self.config, self.answer).claims
        outcome = next(o for o in claims if o.claim.id == self.claim.id)
        if not outcome.holds:
            raise AnswerFailure(describe_outcome(outcome))


class DemosAndValuesItem(AnswerItem):
    def runtest(self) -> None:
        problems = [problem.message for problem in _evaluation(self.config, self.answer).problems
                    if problem.kind != "file"]  # the file's own errors are file_errors' item
        if problems:
            raise AnswerFailure("\n".join(problems))
