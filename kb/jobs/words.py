"""What a reader is told about a rerun: its settings, why it failed, why it is refused.

The executor's messages are for developers ("timed out after 60 s", "failed: ValueError: ...");
a reader who changed a few numbers in a form needs to know what happened to *those settings*
and what to try instead, never a file and line of the answer.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from kb.jobs.cost import Estimate, duration


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else f"{value:g}" \
        if isinstance(value, float) else str(value)


def settings_text(seed: int | None, overrides: Mapping[str, Mapping[str, Any]]) -> str:
    """"seed 7", "steps = 2000, width = 256", or both: the settings as the form shows them."""
    parts = [] if seed is None else [f"seed {seed}"]
    parts += [f"{name} = {_text(value)}" for params in overrides.values()
              for name, value in params.items()]
    return ", ".join(parts) or "the answer's own settings"


_REASONS = (
    (r"timed out after ([\d.]+) s",
     "it took longer than the {0} s a rerun may compute on this server"),
    (r"used up its CPU time limit of ([\d.]+) s",
     "it needed more than the {0} s of processor time a rerun may use"),
    (r"stopped at its memory limit of (\d+) MiB",
     "it needed more than the {0} MiB of memory a rerun may use"),
    (r"failed: (.*)", "the computation stopped with an error ({0})"),
    (r"ended without a result", "the computation ended without a result"),
    (r"worker stopped", "the machine computing it stopped before it was done"),
)


def failure_reason(message: str) -> str:
    """The executor's failure ``message`` as a reader's reason."""
    for pattern, text in _REASONS:
        found = re.search(pattern, message)
        if found:
            return text.format(*found.groups())
    return "the computation did not finish"


def failed_notice(settings: str, reasons: list[str]) -> str:
    return (f"The rerun with {settings} did not finish: {'; '.join(reasons)}. This page shows "
            "the answer with its own settings; smaller values usually compute in a few "
            "seconds.")


def refused_notice(settings: str, demo: str, estimate: Estimate, own_seconds: float,
                   limit: float, suggested: tuple[str, int] | None) -> str:
    grown = ", ".join(name for name, _ in estimate.grown[:3]) or "its parameters"
    advice = f"Lower {grown}"
    if suggested is not None:
        advice += f" (for example {suggested[0]} = {suggested[1]})"
    return (f"A rerun with {settings} is not started: demonstration {demo} would take about "
            f"{duration(estimate.seconds)} to compute on this server (its own settings take "
            f"{duration(own_seconds)}), and a rerun may take at most {duration(limit)}. "
            f"{advice}. This page shows the answer with its own settings.")


def full_notice(settings: str, total: bool, retry_after: int) -> str:
    why = ("many readers' reruns are waiting to be computed" if total
           else "you have as many reruns waiting as one reader may")
    return (f"The rerun with {settings} cannot be queued now: {why}. Try again in "
            f"{retry_after} s; this page shows the answer with its own settings.")
