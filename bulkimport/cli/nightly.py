"""`bulkimport nightly`: the scheduled import."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bulkimport.cli.sending import sender_for
from bulkimport.cli.stopping import exit_now_if_abandoned, graceful_stop
from bulkimport.credentials import ApiKey, describe_env, load_api_key
from bulkimport.errors import BulkImportError, InputError

if TYPE_CHECKING:
    from bulkimport.jobs.config import NightlyConfig
    from bulkimport.jobs.nightly import (
        NightPlan,
    )


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    metavar="FILE",
    help="The nightly import's TOML file (see sample_data/nightly.toml).",
)
@click.option(
    "--check-config",
    is_flag=True,
    help="Validate the config and show which files match now and which would be skipped; "
    "sends nothing.",
)
def nightly(config_path: Path, check_config: bool) -> None:
    """Import new exports, for cron or a timer.

    The config file names the inputs and every setting of `run`.

    First sends the rows earlier runs left pending or unknown, then imports each
    input file that is new and no longer being written. A file already imported
    is skipped; people already subscribed are skipped, so a grown export costs
    only its new rows. Log lines go to stderr (and the log file); one JSON line
    goes to stdout. Exit code: 0 all done, 1 rows need attention, 2 config or
    input error, 3 the API refused, 4 another run holds the ledger, 5 the API
    stayed unavailable, 6 nothing wrong: the rest waits for its send window.

    With send_window set, people are messaged only inside it, in their own
    time; with wait_for_window (the default) the night stays after reading
    every file and sends as the windows open. A night never asks a question.

    \b
    Example:
      bulkimport nightly --config /etc/bulkimport/import.toml --check-config
      bulkimport nightly --config /etc/bulkimport/import.toml
    """
    from bulkimport.jobs.config import check_paths, load_config
    from bulkimport.jobs.nightly import (
        failure_json,
        night_log,
        preview_night,
        run_night,
    )
    from bulkimport.output.progress import LogProgress
    from bulkimport.send.client import EngageSparkClient, Timeouts

    if check_config:
        config = load_config(config_path)
        check_paths(config)
        _print_plan(config, preview_night(config))
        return
    try:
        config = load_config(config_path)
        check_paths(config)
        key = _load_key(config)
        client = EngageSparkClient(key, config.api_url, Timeouts(read=config.timeout))
        with (
            night_log(config.log_file, secrets=(key,)),
            client,
            graceful_stop() as signals,
        ):
            summary = run_night(config, sender_for(client, signals, progress=LogProgress()))
    except BulkImportError as error:
        line = failure_json(config_path, error, error.exit_code)
        click.echo(json.dumps(line, ensure_ascii=False))
        raise
    click.echo(json.dumps(summary.to_json(), ensure_ascii=False))
    for part in summary.parts:
        exit_now_if_abandoned(part, int(summary.exit_code))
    sys.exit(int(summary.exit_code))


_PLAN_WORDS = {  # FileOutcome values
    "new": "new: would be imported",
    "skipped": "would be skipped (identical to a file already imported)",
    "unreadable": "cannot be read",
}


def _print_plan(config: NightlyConfig, plan: NightPlan) -> None:
    from bulkimport.jobs.nightly import (
        FileOutcome,
    )

    click.echo(f"{config.path}: the config is valid.")
    click.echo(f"  engagement {config.engagement} at {config.api_url}")
    click.echo(f"  API key: {_key_note(config)}")
    click.echo(f"  ledger: {config.ledger}")
    for pattern, paths in plan.patterns:
        found = f"{len(paths)} file(s) now" if paths else "no file now"
        click.echo(f"  inputs {pattern!r}: {found}")
    for item in plan.files:
        words = _PLAN_WORDS.get(item.outcome.value, item.outcome.value)
        click.echo(f"    {config.show(item.path)}: {words}")
        if item.outcome is FileOutcome.UNREADABLE:
            click.secho(f"      {item.reason}", fg="yellow")
    click.echo(f"  results: {config.results_dir or 'not written (set results_dir)'}")
    after = f"moved to {config.archive_dir}" if config.archive_dir else "left where they are"
    click.echo(f"  imported files: {after}")
    click.echo(f"  log file: {config.log_file or 'none (log lines go to stderr only)'}")
    click.echo(f"  {_window_note(config)}")
    if config.settle_seconds:
        click.echo(
            f"  A file whose size or time changes within {config.settle_seconds:g} s "
            "is left for the next run (checked when the night runs)."
        )
    else:
        click.echo("  Files are not checked for still being written (settle_seconds = 0).")


def _window_note(config: NightlyConfig) -> str:
    """Say when people get the message: the window, the zones, the wait, the pace."""
    from bulkimport.send.windows import SendWindow

    window = SendWindow.from_settings(config.send_settings())
    if window is None:
        text = "send window: none (people are messaged at any hour, as the night runs)"
    else:
        wait = (
            "the night waits and sends as windows open"
            if config.wait_for_window
            else "rows outside wait for the next night (exit code 6)"
        )
        text = f"send window: {window.describe()}; {wait}"
    if config.max_per_minute:
        text += f"; at most {config.max_per_minute:,} people a minute"
    return text + f"; lost answers: {config.unknown}"


def _load_key(config: NightlyConfig) -> ApiKey:
    """Return the key the config names; a missing key's message names the config's keys."""
    return load_api_key(
        os.environ,
        config.api_key_file,
        config.api_key_env,
        instead=f"name a key file with api_key_file in {config.path.name}",
    )


def _key_note(config: NightlyConfig) -> str:
    where = (
        f"file {config.api_key_file}" if config.api_key_file else describe_env(config.api_key_env)
    )
    try:
        _load_key(config)
    except InputError as error:
        return f"from {where}, NOT available in this shell ({error})"
    return f"from {where} (available in this shell)"
