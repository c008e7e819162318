"""The `bulkimport` command: the only package that prints, prompts or exits.

One module per command; each imports the stages it needs when it runs.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from bulkimport.cli import check, discard, nightly, results, retry, run, sandbox, status
from bulkimport.cli.display import shown
from bulkimport.errors import BulkImportError, ExitCode
from bulkimport.redaction import redact_logs


class BulkImportGroup(click.Group):
    """Turns every BulkImportError into one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BulkImportError as error:
            click.secho(f"Error: {shown(error)}", err=True, fg="red")
            ctx.exit(int(error.exit_code))
        except KeyboardInterrupt:
            click.secho(
                "Interrupted: the ledger is consistent; run the same command again to continue.",
                err=True,
                fg="yellow",
            )
            ctx.exit(int(ExitCode.ROWS_NEED_ATTENTION))


def _print_version(ctx: click.Context, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from bulkimport import __version__

        click.echo(f"bulkimport, version {__version__}")
        ctx.exit()


@click.group(cls=BulkImportGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, param, value: _print_version(ctx, value),
    help="Show the version and exit.",
)
@click.option("-v", "--verbose", count=True, help="More log lines (-vv for debug).")
def main(verbose: int) -> None:
    """Subscribe the people in a spreadsheet to an engageSPARK engagement.

    Start with `bulkimport check FILE` to see what is wrong with a file, then
    `bulkimport run FILE --engagement ID` (try it against `bulkimport sandbox` first).
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(format="%(levelname)s %(message)s")
    logging.getLogger().setLevel(max(level, logging.DEBUG))
    redact_logs()  # -vv shows no whole phone number either


for command in (
    check.check,
    run.run,
    retry.retry,
    results.results,
    status.status,
    discard.discard,
    sandbox.sandbox,
    nightly.nightly,
):
    main.add_command(command)
