"""Every setting can come from a KB_ variable; a value that does not fit names the variable."""
from __future__ import annotations

from pathlib import Path

import pytest

from kb.cli import main
from kb.config import PROJECT_ROOT, SETTINGS, ConfigError, Settings


def test_defaults_need_no_configuration():
    settings = Settings.from_env({})
    assert settings.answers_dir == PROJECT_ROOT / "answers"
    assert settings.data_dir == PROJECT_ROOT / ".kb"
    assert (settings.base_url, settings.demo_timeout, settings.job_workers) == (None, 60.0, 1)
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_every_field_has_its_variable_and_the_variables_are_read():
    fields = {f for f in Settings.__dataclass_fields__}
    assert {s.field for s in SETTINGS} == fields
    assert all(s.variable == "KB_" + s.variable[3:] and s.doc for s in SETTINGS)
    settings = Settings.from_env({
        "KB_ANSWERS": "/srv/answers", "KB_DATA": "/srv/data", "KB_BASE_URL": "https://kb.example",
        "KB_DEMO_TIMEOUT": "12.5", "KB_JOB_WORKERS": "3", "KB_MEMO_SIZE": "0",
        "KB_RELOAD_INTERVAL": "0", "KB_INDEX_INTERVAL": "30", "KB_HOST": "0.0.0.0",
        "KB_PORT": "9000"})
    assert settings == Settings(Path("/srv/answers"), Path("/srv/data"), "https://kb.example",
                                12.5, 3, 0, 0.0, 30.0, "0.0.0.0", 9000)


def test_explicit_overrides_win_over_the_environment():
    settings = Settings.from_env({"KB_DATA": "/from/env"}, data_dir="/from/option",
                                 answers_dir=None)
    assert settings.data_dir == Path("/from/option")
    assert settings.answers_dir == PROJECT_ROOT / "answers"


@pytest.mark.parametrize("variable, text, message", [
    ("KB_JOB_WORKERS", "0", "KB_JOB_WORKERS must be an integer in [1, 64], got 0"),
    ("KB_JOB_WORKERS", "two", "KB_JOB_WORKERS must be an integer in [1, 64], got 'two'"),
    ("KB_QUEUE_URL", "http://redis", "KB_QUEUE_URL must be a redis:// or rediss:// URL, "
                                     "got 'http://redis'"),
    ("KB_RERUN_WAIT", "-1", "KB_RERUN_WAIT must be a number in [0, 60], got -1.0"),
    ("KB_DEMO_TIMEOUT", "nan", "KB_DEMO_TIMEOUT must be a number >= 0.001, got nan"),
    ("KB_PORT", "70000", "KB_PORT must be an integer in [0, 65535], got 70000"),
    ("KB_BASE_URL", "kb.example.org", "KB_BASE_URL must be an http(s) URL, got 'kb.example.org'"),
    ("KB_DATA", " ", "KB_DATA must be a path, got ''"),
])
def test_a_value_that_does_not_fit_names_the_variable_and_the_range(variable, text, message):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: text})
    assert str(raised.value) == message


def test_values_given_in_code_obey_the_same_rules(tmp_path):
    with pytest.raises(ConfigError, match=r"job_workers must be an integer in \[1, 64\], got True"):
        Settings(tmp_path, tmp_path, job_workers=True)
    assert Settings(str(tmp_path), tmp_path).answers_dir == tmp_path  # paths as text are paths


def test_the_command_line_reports_a_bad_variable_as_a_usage_error(monkeypatch, capsys):
    monkeypatch.setenv("KB_MEMO_SIZE", "-1")
    assert main(["index"]) == 2
    assert "KB_MEMO_SIZE must be an integer >= 0, got -1" in capsys.readouterr().err
