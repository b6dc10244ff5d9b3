"""``kb index`` and ``kb search`` through the command line's front door, on tmp folders."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from kb.cli import main


def write_answer(folder: Path, slug: str, title: str, body: str, summary: str = "") -> Path:
    """An answer file in ``folder``; its question is its title, and so is its summary unless
    one is given."""
    summary = summary or title
    path = folder / f"{slug}.md"
    path.write_text(textwrap.dedent(f"""\
        ---
        slug: {slug}
        title: {title}
        question: {title}
        thread: A test thread
        tags: [testing]
        summary: >-
          {summary}
        ---

        """) + body)
    return path


@pytest.fixture
def folders(tmp_path, monkeypatch) -> tuple[Path, Path]:
    monkeypatch.delenv("KB_BASE_URL", raising=False)
    answers = tmp_path / "answers"
    answers.mkdir()
    write_answer(answers, "dropout-noise", "How is batch norm's noise like dropout?",
                 "Dropout zeroes units at random.\n\n## Where the noise comes from\n\n"
                 "The batch mean moves from one mini-batch to the next.\n",
                 "Both make hidden units unreliable during training.")
    write_answer(answers, "covariate-shift", "What is covariate shift?",
                 "Black cats in training, colored cats at test time: the inputs moved.\n",
                 "The input distribution differs between training and test.")
    return answers, tmp_path / "data"


def kb(folders, *args) -> int:
    answers, data = folders
    return main(["--answers", str(answers), "--data", str(data), *args])


def test_index_reports_what_it_indexed(folders, capsys):
    assert kb(folders, "index") == 0
    out = capsys.readouterr().out
    assert out.startswith("Indexed 2 answers from ")
    assert "covariate-shift  What is covariate shift?" in out
    assert "dropout-noise" in out
    assert (folders[1] / "index").is_symlink()


def test_search_on_a_fresh_checkout_builds_the_index_first(folders, capsys):
    assert kb(folders, "search", "colored cats") == 0
    captured = capsys.readouterr()
    assert "search index built" in captured.err
    lines = captured.out.splitlines()
    assert lines[0] == " 1. What is covariate shift?  [covariate-shift]"
    assert "<mark>" not in captured.out
    assert "colored cats" in lines[1]

    assert kb(folders, "search", "colored cats") == 0
    assert capsys.readouterr().err == ""  # the index was current: not rebuilt


def test_search_rebuilds_after_an_answer_changes(folders, capsys):
    assert kb(folders, "index") == 0
    write_answer(folders[0], "covariate-shift", "What is covariate shift?",
                 "Zebras in training, okapis at test time.\n", "Inputs move.")
    assert kb(folders, "search", "okapis") == 0
    assert "[covariate-shift]" in capsys.readouterr().out


def test_search_json_is_the_api_shape(folders, capsys):
    assert kb(folders, "search", "dropout", "--json", "--limit", "1") == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["query", "results", "suggestion"]
    assert data["query"] == "dropout"
    [hit] = data["results"]
    assert list(hit) == ["slug", "title", "url", "score", "snippet", "snippet_html"]
    assert hit["slug"] == "dropout-noise"
    # Absolute, as in /api/search: without a public base URL, where `kb serve` listens.
    assert hit["url"] == "http://127.0.0.1:8000/a/dropout-noise"
    assert "<mark>" in hit["snippet_html"] and "<" not in hit["snippet"]


def test_search_json_urls_follow_the_serving_address(folders, capsys, monkeypatch):
    monkeypatch.setenv("KB_HOST", "10.0.0.7")
    monkeypatch.setenv("KB_PORT", "8123")
    assert kb(folders, "search", "dropout", "--json") == 0
    urls = [hit["url"] for hit in json.loads(capsys.readouterr().out)["results"]]
    assert urls[0] == "http://10.0.0.7:8123/a/dropout-noise"


def test_search_json_urls_use_the_public_base_url(folders, capsys, monkeypatch):
    monkeypatch.setenv("KB_BASE_URL", "https://kb.example/")
    assert kb(folders, "search", "dropout", "--json") == 0
    urls = [hit["url"] for hit in json.loads(capsys.readouterr().out)["results"]]
    assert urls[0] == "https://kb.example/a/dropout-noise"


def test_search_prints_the_suggestion_and_says_when_nothing_matches(folders, capsys):
    assert kb(folders, "search", "dropuot") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "Did you mean: dropout"
    assert "[dropout-noise]" in out
    assert kb(folders, "search", "\"AND* -") == 0
    assert capsys.readouterr().out == "No answers found for '\"AND* -'.\n"


def test_search_limit(folders, capsys):
    def ranks(*args) -> list[str]:
        assert kb(folders, "search", "training test batch dropout", *args) == 0
        return [line[:3] for line in capsys.readouterr().out.splitlines() if line[2:4] == ". "]

    assert ranks() == [" 1.", " 2."]
    assert ranks("--limit", "1") == [" 1."]
    assert kb(folders, "search", "x", "--limit", "0") == 2
    assert "Invalid value for '--limit': 0 is not in the range x>=1" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["index"], ["search", "x"]])
def test_a_missing_answers_folder_is_a_clear_error(tmp_path, capsys, command):
    assert main(["--answers", str(tmp_path / "nowhere"), "--data", str(tmp_path / "data"),
                 *command]) == 2
    assert f"answers folder not found: {tmp_path / 'nowhere'}" in capsys.readouterr().err
