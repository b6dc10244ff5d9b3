"""The pytest plugin: every claim of answers/*.md is an item; failures point at the Markdown."""

from __future__ import annotations

import importlib.metadata
import textwrap
from pathlib import Path

import pytest

# Imported here, before pytester's in-process runs, which forget the modules first imported
# during a run: importing the engine's experiments again would register them twice.
import engine.catalog  # noqa: F401  (registers the engine's experiments)
import kb.run.cache  # noqa: F401
import kb.run.claims  # noqa: F401
import kb.run.executor  # noqa: F401
import kb.answers.parse  # noqa: F401

pytest_plugins = ["pytester"]

EXPERIMENTS = Path(__file__).with_name("conftest.py")

# Loads the test experiments where the registry lacks them: in xdist workers (new processes),
# not in this process, which already registered them.
CONFTEST = f"""
import importlib.util
from engine.catalog import experiments

if "test_drift" not in experiments():
    spec = importlib.util.spec_from_file_location("kb_test_experiments", {str(EXPERIMENTS)!r})
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
"""

FRONT = """\
---
slug: {slug}
title: T
question: Q
thread: Th
summary: S
---
"""

ANSWER = """\
Ratio {{drift.ratio:.2f}}.

```demo drift
experiment: test_drift
seed: 1
```

```claim holds
kind: check
text: The ratio is positive.
check: drift.ratio > 0
```

```claim fails
kind: check
text: The ratio is enormous.
check: drift.ratio > 1000
```
"""


@pytest.fixture
def project(pytester, monkeypatch):
    monkeypatch.setenv("KB_DATA", str(pytester.path / ".kb"))  # not the project's cache
    # Only the plugin under test (and xdist where asked for): the other installed plugins
    # would be imported afresh, and their modules assertion-rewritten, in every run.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeini("[pytest]\naddopts = -p kb.pytest_plugin\n")
    pytester.makeconftest(CONFTEST)
    (pytester.path / "answers").mkdir()

    def write(slug: str, body: str, front: str = FRONT) -> Path:
        path = pytester.path / "answers" / f"{slug}.md"
        path.write_text(front.format(slug=slug) + textwrap.dedent(body))
        return path

    return write


def line(path: Path, needle: str) -> int:
    (number,) = [i for i, text in enumerate(path.read_text().splitlines(), 1) if needle in text]
    return number


def test_every_claim_is_an_item_and_failures_show_the_markdown_line(pytester, project):
    path = project("ratio", ANSWER)
    result = pytester.runpytest("answers", "-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "answers/ratio.md::holds PASSED*",
            "answers/ratio.md::fails FAILED*",
            "answers/ratio.md::demos_and_values PASSED*",
        ]
    )
    fails_line = line(path, "```claim fails")
    result.stdout.fnmatch_lines(
        [
            f'answers/ratio.md:{fails_line}: claim "The ratio is enormous." failed: '
            "drift.ratio = * (needs > 1000) at seed 1",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_k_selects_claims_by_name(pytester, project):
    project("ratio", ANSWER)
    project("other", ANSWER)
    result = pytester.runpytest("answers", "-k", "holds")
    result.assert_outcomes(passed=2, deselected=4)
    result = pytester.runpytest("answers", "-k", "other and fails")
    result.assert_outcomes(failed=1, deselected=5)


def test_a_broken_answer_is_a_failing_item_at_its_line(pytester, project):
    path = project(
        "broken",
        """\
        ```demo drift
        experiment: test_drift
        params: {n: 1}
        ```

        ```claim uses-drift
        kind: check
        text: Drift.
        check: drift.ratio > 0
        ```
        """,
    )
    result = pytester.runpytest("answers", "-v")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "answers/broken.md::file_errors FAILED*",
            f"answers/broken.md:{line(path, 'params: {n: 1}')}: parameter 'n' = 1 is outside its range*",
            f'answers/broken.md:{line(path, "```claim uses-drift")}: claim "Drift." failed: '
            "demonstration 'drift' did not run: its block has errors",
        ]
    )


def test_failing_demonstrations_and_values_fail_their_item(pytester, project):
    path = project(
        "values",
        """\
        Shown: {{fine.ratio:d}}.

        ```demo fine
        experiment: test_drift
        ```

        ```demo boom
        experiment: test_broken
        ```
        """,
    )
    result = pytester.runpytest("answers")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"answers/values.md:{line(path, '```demo boom')}: demonstration 'boom' failed: RuntimeError: *",
            f"answers/values.md:{line(path, 'Shown:')}: inline value {{{{fine.ratio:d}}}} failed: cannot format*",
        ]
    )


def test_only_answer_files_are_collected(pytester, project):
    project("real", ANSWER)
    (pytester.path / "answers" / "README.md").write_text("# Answers\n\nNo front matter here.\n")
    (pytester.path / "notes").mkdir()
    (pytester.path / "notes" / "draft.md").write_text(FRONT.format(slug="draft") + ANSWER)
    result = pytester.runpytest("--collect-only", "-q", ".")
    result.stdout.fnmatch_lines(
        ["answers/real.md::holds", "answers/real.md::fails", "*3 tests collected*"]
    )
    assert "README" not in result.stdout.str() and "draft" not in result.stdout.str()


def test_demonstrations_run_once_per_session_per_answer(pytester, project, monkeypatch):
    project("ratio", ANSWER)
    project("second", ANSWER)
    runs = []
    real_run = kb.run.executor.Executor.run

    def counting_run(self, answer, *args, **kwargs):
        runs.append(answer.slug)
        return real_run(self, answer, *args, **kwargs)

    monkeypatch.setattr(kb.run.executor.Executor, "run", counting_run)
    result = pytester.runpytest("answers")
    result.assert_outcomes(passed=4, failed=2)
    assert sorted(runs) == ["ratio", "second"]  # three items each, one run each
    assert list((pytester.path / ".kb" / "cache" / "results").rglob("*.npz"))  # the on-disk cache


def test_works_with_xdist(pytester, project):
    path = project("ratio", ANSWER)
    project("second", ANSWER.replace("seed: 1", "seed: 2"))
    result = pytester.runpytest("answers", "-p", "xdist", "-n", "2")
    result.assert_outcomes(passed=4, failed=2)
    assert "2 workers" in result.stdout.str()
    result.stdout.fnmatch_lines(
        [f'answers/ratio.md:{line(path, "```claim fails")}: claim * at seed 1']
    )


def test_the_plugin_is_registered_for_every_pytest_run():
    plugins = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="pytest11")}
    assert plugins["kb_answers"] == "kb.pytest_plugin"
