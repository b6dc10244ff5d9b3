"""Every setting of the service, with embedded defaults and a ``KB_`` environment variable each.

Defaults are embedded so that ``kb serve`` works with no configuration: answers from the
project's ``answers/`` folder, the Whoosh index and the demonstration cache under ``.kb/``.
``Settings.from_env()`` reads the variables (so ``gunicorn kb.wsgi:app`` honours them); a
value that does not fit is refused with a ``ConfigError`` naming the variable and its range.
The README lists the variables; ``SETTINGS`` below is that list.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class ConfigError(ValueError):
    """A setting that does not fit; the message names the variable (or field) and the range."""


@dataclass(frozen=True)
class Setting:
    field: str
    variable: str
    kind: type  # Path, str, int or float
    doc: str
    low: float | None = None
    high: float | None = None

    def describe(self) -> str:
        if self.field == "base_url":
            return "an http(s) URL"
        if self.kind in (int, float):
            what = "an integer" if self.kind is int else "a number"
            return f"{what} in [{self.low:g}, {self.high:g}]" if self.high is not None \
                else f"{what} >= {self.low:g}"
        return "a path" if self.kind is Path else "text"

    def check(self, value: Any, name: str) -> Any:
        """``value`` as this setting's type; ConfigError naming ``name`` if it does not fit."""
        fits = {
            Path: lambda v: isinstance(v, (str, Path)) and str(v).strip() != "",
            str: lambda v: isinstance(v, str) and (self.field != "base_url"
                                                  or v.startswith(("http://", "https://"))),
            int: lambda v: type(v) is int,
            float: lambda v: type(v) in (int, float),
        }[self.kind](value)
        if fits and self.kind in (int, float):  # also refuses NaN
            fits = value >= self.low and (self.high is None or value <= self.high)
        if not fits:
            raise ConfigError(f"{name} must be {self.describe()}, got {value!r}")
        return Path(value) if self.kind is Path else value

    def parse(self, text: str) -> Any:
        """The value of the environment variable ``text``."""
        value: Any = text.strip()
        if self.kind in (int, float):
            try:
                value = self.kind(value)
            except ValueError:
                raise ConfigError(f"{self.variable} must be {self.describe()}, "
                                  f"got {text!r}") from None
        return self.check(value, self.variable)


SETTINGS: tuple[Setting, ...] = (
    Setting("answers_dir", "KB_ANSWERS", Path, "folder of answer files (default: answers/)"),
    Setting("data_dir", "KB_DATA", Path,
            "folder of the search index and the demonstration cache (default: .kb/)"),
    Setting("base_url", "KB_BASE_URL", str,
            "public URL prefix for absolute links and link previews behind a proxy "
            "(default: the request's host; for `kb search --json`, http://KB_HOST:KB_PORT)"),
    Setting("demo_timeout", "KB_DEMO_TIMEOUT", float,
            "seconds one demonstration may compute before it is stopped (default 60)", 0.001),
    Setting("compute_slots", "KB_COMPUTE_SLOTS", int,
            "computations for seeds or parameters other than an answer's own at once per "
            "process (default 1); a view that needs one while all are taken gets a 503", 1, 64),
    Setting("memo_size", "KB_MEMO_SIZE", int,
            "pages, evaluations and figures kept in memory per process (default 256)", 0),
    Setting("reload_interval", "KB_RELOAD_INTERVAL", float,
            "seconds between looks at the answers folder for changed files (default 1)", 0),
    Setting("index_interval", "KB_INDEX_INTERVAL", float,
            "seconds between checks that the search index is current (default 5)", 0),
    Setting("host", "KB_HOST", str, "address `kb serve` listens on (default 127.0.0.1)"),
    Setting("port", "KB_PORT", int, "port of `kb serve` (default 8000)", 0, 65535),
    Setting("demo_memory", "KB_DEMO_MEMORY", int,
            "MiB of memory one demonstration's process may allocate beyond the server's own "
            "(default 1024); one that needs more stops with a message", 16),
    Setting("demo_cpu", "KB_DEMO_CPU", float,
            "CPU seconds one demonstration's process may use (default 60)", 1),
    Setting("failure_ttl", "KB_FAILURE_TTL", float,
            "seconds a failed or timed-out demonstration is remembered and not computed again, "
            "by any worker (default 600; 0: not remembered)", 0),
    Setting("cache_size", "KB_CACHE_SIZE", int,
            "MiB the demonstration cache may hold; the least recently used results and figures "
            "go first, never the answers' own (default 1024)", 1),
    Setting("trusted_hosts", "KB_TRUSTED_HOSTS", str,
            "comma-separated host names the service answers to (production; default: any "
            "well-formed host); other Host headers get 400"),
)


@dataclass(frozen=True)
class Settings:
    answers_dir: Path
    data_dir: Path
    base_url: str | None = None
    demo_timeout: float = 60.0
    compute_slots: int = 1
    memo_size: int = 256
    reload_interval: float = 1.0
    index_interval: float = 5.0
    host: str = "127.0.0.1"
    port: int = 8000
    demo_memory: int = 1024
    demo_cpu: float = 60.0
    failure_ttl: float = 600.0
    cache_size: int = 1024
    trusted_hosts: str | None = None

    def __post_init__(self) -> None:
        # Values given in code (tests, command-line options) obey the same rules as variables.
        for setting in SETTINGS:
            value = getattr(self, setting.field)
            if value is not None:
                object.__setattr__(self, setting.field, setting.check(value, setting.field))

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def trusted_host_list(self) -> list[str] | None:
        """``trusted_hosts`` as werkzeug takes them; None: any well-formed host."""
        if not self.trusted_hosts:
            return None
        return [host.strip().lower() for host in self.trusted_hosts.split(",") if host.strip()]

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Defaults, then the ``KB_`` variables of ``environ`` (default: the process's), then
        ``overrides`` that are not None (command-line options)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {"answers_dir": PROJECT_ROOT / "answers",
                                  "data_dir": PROJECT_ROOT / ".kb"}
        for setting in SETTINGS:
            text = environ.get(setting.variable)
            optional = setting.field in ("base_url", "trusted_hosts")
            if text is not None and not (optional and not text.strip()):
                values[setting.field] = setting.parse(text)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
