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


# Settings that are URLs, with the schemes they accept.
_URL_SCHEMES = {"base_url": ("http://", "https://"), "queue_url": ("redis://", "rediss://")}


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
        if self.field == "queue_url":
            return "a redis:// or rediss:// URL"
        if self.kind in (int, float):
            what = "an integer" if self.kind is int else "a number"
            return f"{what} in [{self.low:g}, {self.high:g}]" if self.high is not None \
                else f"{what} >= {self.low:g}"
        return "a path" if self.kind is Path else "text"

    def check(self, value: Any, name: str) -> Any:
        """``value`` as this setting's type; ConfigError naming ``name`` if it does not fit."""
        fits = {
            Path: lambda v: isinstance(v, (str, Path)) and str(v).strip() != "",
            str: lambda v: isinstance(v, str) and v.startswith(_URL_SCHEMES.get(self.field, "")),
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
    Setting("job_workers", "KB_JOB_WORKERS", int,
            "reruns (seeds or parameters other than an answer's own) computed at once by each "
            "service process's own job pool (default 1; unused with KB_QUEUE_URL)", 1, 64),
    Setting("queue_url", "KB_QUEUE_URL", str,
            "redis:// URL of the RQ queue that reruns go to, run by `kb worker` processes "
            "(default: none, each service process runs its own)"),
    Setting("queue_size", "KB_QUEUE_SIZE", int,
            "reruns waiting in the queue at most; beyond, a rerun gets 503 (default 64)", 1),
    Setting("queue_per_client", "KB_QUEUE_PER_CLIENT", int,
            "reruns one client address may have waiting or running at once (default 4)", 1),
    Setting("rerun_wait", "KB_RERUN_WAIT", float,
            "seconds a request waits for its rerun before it answers with the job's state "
            "(default 1: quick reruns show their results at once)", 0, 60),
    Setting("trusted_proxies", "KB_TRUSTED_PROXIES", int,
            "proxies in front of the service whose X-Forwarded-For is trusted for the client's "
            "address (default 0: the connection's address)", 0, 8),
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
    job_workers: int = 1
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
    queue_url: str | None = None
    queue_size: int = 64
    queue_per_client: int = 4
    rerun_wait: float = 1.0
    trusted_proxies: int = 0

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
            optional = setting.field in ("base_url", "trusted_hosts", "queue_url")
            if text is not None and not (optional and not text.strip()):
                values[setting.field] = setting.parse(text)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
