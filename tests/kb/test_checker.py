"""`kb check` end to end on tiny answers, through the real executor and cache."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from engine.catalog import get_experiment
from kb.cli import main
from kb.answers.expr import format_quantity
from kb.answers.stats import Effect
from kb.run.claims import describe_effect


@pytest.fixture
def check(answers_dir, tmp_path, monkeypatch, capsys):
    """``check(*args) -> (exit code, stdout, stderr)`` of ``kb check`` on the tmp answers."""
    monkeypatch.chdir(tmp_path)  # files are shown as answers/<slug>.md

    def run(*args: str):
        code = main(
            ["--answers", str(answers_dir), "--data", str(tmp_path / "data"), "check", *args]
        )
        out, err = capsys.readouterr()
        return code, out, err

    return run


def drift_answer(threshold: float | str = 1, n: int = 64, extra: str = "") -> str:
    return f"""\
        Ratio {{{{drift.ratio:.2f}}}}.

        ```demo drift
        experiment: test_drift
        params: {{n: {n}}}
        seed: 3
        ```

        ```claim drift-is-large
        kind: check
        text: The drift ratio is large.
        check: drift.ratio >= {threshold}
        ```
        {extra}"""


def ratios(seeds):
    exp = get_experiment("test_drift")
    return {seed: exp.run(exp.resolve({}), seed)["ratio"] for seed in seeds}


def test_passing_answers_print_a_line_each_a_time_table_and_the_totals(write_answer, check):
    write_answer("beta", drift_answer())
    write_answer(
        "alpha",
        drift_answer(extra="""
        ```demo other
        experiment: test_sleep
        ```
        """),
    )
    code, out, err = check()
    assert code == 0
    lines = out.splitlines()
    assert re.fullmatch(r"alpha: 1 passed, 0 failed \(\d+\.\d s\)", lines[0])
    assert re.fullmatch(r"beta: 1 passed, 0 failed \(\d+\.\d s\)", lines[1])
    table = lines[
        lines.index("demonstration run times, slowest first (seconds: slowest seed):") + 1 :
    ][:3]
    assert sorted(re.search(r"\S+/\S+", row).group() for row in table) == [
        "alpha/drift",
        "alpha/other",
        "beta/drift",
    ]
    seconds = [float(row.split()[0]) for row in table]
    assert seconds == sorted(seconds, reverse=True)
    assert lines[-1] == "2 passed, 0 failed"
    # Progress: one line per demonstration run, with seed 0 replacing the file's seed 3.
    progress = [line for line in err.splitlines() if line.startswith("  ")]
    assert sorted(line.split(":")[0].strip() for line in progress) == [
        "alpha/drift seed 0",
        "alpha/other seed 0",
        "beta/drift seed 0",
    ]


def test_a_claim_failing_for_one_seed_fails_and_names_that_seed(write_answer, check, line_of):
    by_seed = ratios(range(3))
    threshold = sorted(by_seed.values())[1]  # exactly one seed falls below it
    worst = min(by_seed, key=by_seed.get)
    path = write_answer("drifty", drift_answer(threshold=repr(threshold)))
    code, out, _ = check("--seeds", "3")
    assert code == 1
    line = line_of(path, "```claim drift-is-large")
    expected = (
        f'answers/drifty.md:{line}: claim "The drift ratio is large." failed: '
        f"drift.ratio = {format_quantity(by_seed[worst])} (needs >= {threshold!r}) at seed {worst}"
    )
    assert expected in out.splitlines()
    assert re.search(r"^drifty: 0 passed, 1 failed", out, re.M)
    assert out.splitlines()[-1] == "0 passed, 1 failed"


def test_seed_offset_chooses_the_seeds(write_answer, check):
    by_seed = ratios(range(5, 7))
    write_answer("offset", drift_answer(threshold=repr(max(by_seed.values()) + 1)))
    code, out, err = check("--seeds", "2", "--seed-offset", "5")
    assert code == 1
    assert re.findall(r"drift seed (\d+)", err) == ["5", "6"]
    assert (
        out.count(f"at seed {min(by_seed, key=by_seed.get)}") == 1
    )  # the seed farthest from passing


def test_junit_has_a_testcase_per_claim_with_file_and_line(write_answer, check, tmp_path, line_of):
    path = write_answer(
        "junit-answer",
        drift_answer(extra="""
        ```claim impossible
        kind: check
        text: The ratio is enormous.
        check: drift.ratio > 1000
        ```
        """),
    )
    report = tmp_path / "report.xml"
    code, _, _ = check("--junit", str(report))
    assert code == 1
    root = ET.parse(report).getroot()
    assert (root.get("tests"), root.get("failures")) == ("2", "1")
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert set(cases) == {"drift-is-large", "impossible"}
    for claim_id, case in cases.items():
        assert case.get("classname") == "answers.junit-answer.checks"
        assert case.get("file") == "answers/junit-answer.md"
        assert case.get("line") == str(line_of(path, f"```claim {claim_id}"))
    assert cases["drift-is-large"].find("failure") is None
    failure = cases["impossible"].find("failure")
    assert failure.get("message").startswith(
        f"answers/junit-answer.md:{line_of(path, '```claim impossible')}: "
    )
    assert "(needs > 1000)" in failure.text


def test_broken_parts_count_as_failures_each_with_its_line(write_answer, check, line_of):
    broken = write_answer(
        "broken-file",
        """\
        ```demo d
        experiment: test_drift
        params: {n: 1}
        ```
        """,
    )
    failing = write_answer(
        "failing-demo",
        """\
        Never shown: {{boom.x}}. Shown but wrong: {{fine.ratio:d}}.

        ```demo boom
        experiment: test_broken
        ```

        ```demo fine
        experiment: test_drift
        ```

        ```claim on-boom
        kind: check
        text: Boom is fine.
        check: boom.x > 0
        ```
        """,
    )
    code, out, _ = check()
    assert code == 1
    lines = out.splitlines()
    assert (
        f"answers/broken-file.md:{line_of(broken, 'params: {n: 1}')}: "
        "parameter 'n' = 1 is outside its range [2, 4096]" in lines
    )
    demo_line = line_of(failing, "```demo boom")
    assert (
        f"answers/failing-demo.md:{demo_line}: demonstration 'boom' failed: "
        "RuntimeError: this experiment always fails at seed 0" in lines
    )
    value_line = line_of(failing, "Never shown")
    assert any(
        line.startswith(
            f"answers/failing-demo.md:{value_line}: inline value {{{{fine.ratio:d}}}} failed: "
        )
        for line in lines
    )
    claim_line = line_of(failing, "```claim on-boom")
    assert any(
        line.startswith(f'answers/failing-demo.md:{claim_line}: claim "Boom is fine." failed: ')
        for line in lines
    )
    # The value on the failed demonstration is not counted again: 1 + 1 + 1 + 1 failures.
    assert lines[-1] == "0 passed, 4 failed"


def test_timeout_fails_the_demonstration_and_the_rest_still_runs(write_answer, check, line_of):
    path = write_answer(
        "slow",
        drift_answer(extra="""
        ```demo nap
        experiment: test_sleep
        params: {seconds: 30}
        ```
        """),
    )
    code, out, _ = check("--timeout", "0.5")
    assert code == 1
    assert (
        f"answers/slow.md:{line_of(path, '```demo nap')}: demonstration 'nap' timed out after 0.5 s at seed 0"
        in out
    )
    assert out.splitlines()[-1] == "1 passed, 1 failed"


def test_jobs_give_the_same_report(write_answer, check):
    # Different sizes: answers sharing a computation could be served from the cache in one run.
    for n, slug in enumerate(("one", "two", "three"), start=10):
        write_answer(slug, drift_answer(threshold=3.5, n=n))

    def results(out: str) -> str:  # the report up to the time table, without the times
        return re.sub(r"\(\d+\.\d s\)", "", out.split("demonstration run times")[0])

    serial = check("--seeds", "2")
    parallel = check("--seeds", "2", "--jobs", "2")
    assert serial[0] == parallel[0] == 1
    assert results(serial[1]) == results(parallel[1])
    assert results(serial[1]).count("claim") == 3
    assert serial[1].splitlines()[-1] == parallel[1].splitlines()[-1] == "0 passed, 3 failed"


def test_slugs_select_answers_and_unknown_ones_are_refused(write_answer, check):
    write_answer("chosen", drift_answer())
    write_answer("ignored", drift_answer(threshold=1000))
    code, out, _ = check("chosen")
    assert code == 0 and "ignored" not in out and out.splitlines()[-1] == "1 passed, 0 failed"
    code, out, err = check("chosen", "nope")
    assert code == 2 and out == ""
    assert "unknown answer 'nope' (known: chosen, ignored)" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "0"], "Invalid value for '--seeds': 0 is not in the range x>=1"),
        (["--jobs", "0"], "Invalid value for '--jobs': 0 is not in the range x>=1"),
        (["--seed-offset", "-1"], "Invalid value for '--seed-offset': -1 is not in the range"),
        (["--timeout", "0"], "Invalid value for '--timeout': 0.0 is not in the range x>0"),
    ],
)
def test_bad_options_exit_2(write_answer, check, args, message):
    write_answer("any", drift_answer())
    code, _, err = check(*args)
    assert code == 2 and message in err


def test_cached_reuses_results_and_default_recomputes(write_answer, check, line_of):
    path = write_answer("cache-me", drift_answer())
    check()
    _, out_cached, err_cached = check("--cached")
    _, _, err_fresh = check()
    assert "cache-me/drift seed 0: cached" in err_cached
    assert "cached" not in err_fresh
    assert (
        f"x1  cache-me/drift (answers/cache-me.md:{line_of(path, '```demo drift')}) cached"
        in out_cached
    )


FINDING = """\
    ```demo drift
    experiment: test_drift
    ```

    ```claim drifts
    kind: finding
    text: The drifted spread is larger on average.
    check: ci_low(drift.ratio) > {low}
    ```
    """


def test_findings_run_over_the_declared_sample_and_print_their_effect(
        write_answer, check, tmp_path):
    write_answer("sampled", FINDING.format(low=1), seeds=10)
    report = tmp_path / "report.xml"
    code, out, err = check("--junit", str(report))
    assert code == 0, out
    assert "kb check: 1 answer, each over its own sample of seeds from 0" in err
    ratios_ = np.array(list(ratios(range(10)).values()))
    effect = describe_effect(Effect.of("drift.ratio", tuple(range(10)), ratios_))
    assert f"  finding drifts: drift.ratio {effect}" in out.splitlines()
    shown = float(re.search(r"mean (\S+),", effect)[1])
    assert abs(shown - ratios_.mean()) < 0.01 * abs(ratios_.mean())  # the seeds' own mean
    assert out.splitlines()[-1] == "1 passed, 0 failed"
    (case,) = ET.parse(report).getroot().iter("testcase")
    assert case.get("classname") == "answers.sampled.findings"
    assert case.find("system-out").text.startswith("finding drifts: drift.ratio mean ")


def test_seeds_and_offset_replace_the_sample_and_a_failing_finding_names_its_line(
        write_answer, check, line_of):
    path = write_answer("sampled", FINDING.format(low=100),
                        seeds=10)
    code, out, err = check("--seeds", "3", "--seed-offset", "1000")
    assert code == 1
    assert "seeds 1000..1002" in err
    assert "over 3 seeds" in out
    line = line_of(path, "```claim drifts")
    assert any(l.startswith(f"answers/sampled.md:{line}: claim \"The drifted spread is larger "
                            f"on average.\" failed: ci_low(drift.ratio) = ") for l in
               out.splitlines())
    assert out.splitlines()[-1] == "0 passed, 1 failed"
