"""The ``kb`` command line: the front door to checking, indexing, searching and serving.

Built with click (which Flask brings): each subcommand lives in a module of its own in this
package and calls library modules; no library module imports a command.
"""
from __future__ import annotations

import sys

import click

from kb.cli.build import build
from kb.cli.check import check
from kb.cli.index import index, search
from kb.cli.serve import serve
from kb.cli.worker import worker
from kb.config import ConfigError, Settings


@click.group(help="Check, index, search and serve the batch-norm answers.", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--answers", type=click.Path(file_okay=False, path_type=str),
              help="Folder of answer files (default: $KB_ANSWERS, else the project's answers/).")
@click.option("--data", type=click.Path(file_okay=False, path_type=str),
              help="Folder for the index and the cache (default: $KB_DATA, else .kb/).")
@click.pass_context
def cli(context: click.Context, answers: str | None, data: str | None) -> None:
    try:
        context.obj = Settings.from_env(answers_dir=answers, data_dir=data)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


for command in (check, serve, index, search, build, worker):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Run ``kb`` with ``argv`` (default: the process's arguments); returns the exit code:
    0 done, 1 something checked failed, 2 the command itself is wrong."""
    try:
        code = cli.main(args=argv, prog_name="kb", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
