"""`bulkimport sandbox`: the local stand-in for engageSPARK."""

from __future__ import annotations

import logging
from pathlib import Path

import click


@click.command()
@click.option("--port", type=int, default=8765, show_default=True, help="Port on 127.0.0.1.")
@click.option("--token", default=None, help="The API key the sandbox accepts (sandbox-token).")
@click.option(
    "--engagement",
    "engagements",
    type=int,
    multiple=True,
    help="Engagement ids that exist (default 1234). Repeatable.",
)
@click.option("--latency-ms", type=float, default=0, help="Delay every answer, like a real API.")
@click.option(
    "--faults",
    default="",
    help='Misbehave on purpose, e.g. "429=0.1,500=0.05,reset=0.05,slow=0.05,shuffle=0.5,'
    'nodata=0.05,trickle=0.05". nodata: a 2xx without the contact list (bare list, HTML page '
    "or 204); trickle: the answer one byte every trickle_ms (default 1000). Also "
    "slow_seconds, retry_after.",
)
@click.option("--seed", type=int, default=0, help="Seed for the faults, to repeat a rehearsal.")
@click.option(
    "--contacts",
    "contacts_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Start with the account's existing contacts, from an engageSPARK contacts export "
    "(CSV or XLSX with ID and Full Phone Number): its rows then subscribe by id.",
)
def sandbox(
    port: int,
    token: str | None,
    engagements: tuple[int, ...],
    latency_ms: float,
    faults: str,
    seed: int,
    contacts_file: Path | None,
) -> None:
    """Run a local stand-in for the engageSPARK API.

    Rehearse an import against it before the real thing.

    \b
    Example:
      bulkimport sandbox --port 8765 &
      ENGAGESPARK_API_KEY=sandbox-token bulkimport run applicants.xlsx \\
          --engagement 1234 --country PH --api-url http://127.0.0.1:8765/api/v1
    """
    from bulkimport.sandbox import SANDBOX_TOKEN, Faults, load_contacts, serve

    chosen_faults = Faults.parse(faults)
    contacts = load_contacts(contacts_file) if contacts_file is not None else []
    logging.getLogger("bulkimport.sandbox").setLevel(logging.INFO)
    click.echo(f"Sandbox at http://127.0.0.1:{port}/api/v1 (API key: {token or SANDBOX_TOKEN})")
    if contacts_file is not None:
        click.echo(_loaded(len(contacts), contacts_file))
    serve(
        host="127.0.0.1",
        port=port,
        token=token or SANDBOX_TOKEN,
        engagements=engagements or (1234,),
        latency_ms=latency_ms,
        faults=chosen_faults,
        seed=seed,
        contacts=contacts,
    )


def _loaded(count: int, path: Path) -> str:
    """Return the line that says how many existing contacts the sandbox starts with."""
    noun = "contact" if count == 1 else "contacts"
    return f"Loaded {count} existing {noun} from {path}; they subscribe by id."
