"""`subscribe`, `results` and `status` for Python: the import and the ledger, without a shell.

Nothing here prints, prompts or exits: what the CLI says in a one-line error
is raised as the same message, in the package's typed exceptions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import pandas as pd

from bulkimport.credentials import ApiKey, check_api_key, load_api_key
from bulkimport.errors import ApiRefused, ApiUnavailable
from bulkimport.face.reading import Data, import_options, source_input
from bulkimport.jobs import sending
from bulkimport.jobs.importing import run_import
from bulkimport.jobs.summary import RunSummary
from bulkimport.ledger.store import Ledger
from bulkimport.output.progress import NoProgress
from bulkimport.output.results import chosen_sources, result_table
from bulkimport.output.tables import column_labels
from bulkimport.send.client import EngageSparkClient, Timeouts
from bulkimport.settings import DEFAULT_LEDGER, SendSettings, SettingError

LedgerPath = str | PathLike[str]
KEY_ARGUMENT = "the api_key argument"


def subscribe(
    data: Data,
    *,
    engagement: int,
    ledger: LedgerPath = DEFAULT_LEDGER,
    country: str | None = None,
    mapping: Mapping[str, str] | None = None,
    api_url: str | None = None,
    api_key: str | None = None,
    api_key_file: str | PathLike[str] | None = None,
    source: str | None = None,
    sheet: str | int | None = None,
    header_row: int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    groups: Sequence[int] = (),
    organization: int | None = None,
    always_create: bool = False,
    resubscribe: bool = False,
    allow_possible: bool = False,
    mobile_only: bool = False,
    allow_duplicates: bool = False,
    batch_size: int | None = None,
    concurrency: int | None = None,
    timeout: float | None = None,
    send_window: str | None = None,
    timezone: str | None = None,
    timezone_for_all: str | None = None,
    max_per_minute: int | None = None,
    limit: int | None = None,
    unknown: str | None = None,
    wait: bool = False,
) -> pd.DataFrame:
    """Subscribe the valid rows of a file or a DataFrame to an engagement; return the results.

    This is `bulkimport run`: every row is recorded in ``ledger`` before the
    first request, requests are retried as the CLI retries them, and numbers
    already subscribed to the engagement are skipped, so calling it again
    with the same data sends nothing. engageSPARK sends the engagement's SMS
    or call to each person at once.

    A DataFrame is a source of its own in the ledger, known by a digest of
    its cells (named ``source``, by default ``DataFrame`` and the digest's
    first 12 digits: give the same ``source`` to a frame that grows each day,
    as to a file exported again). Its cells are read as text: text as it is,
    a whole number as its digits (``9171234567.0`` gives ``9171234567``), a
    date in ISO form, NaN and None as an empty cell; a list or another object
    is refused with an :class:`~bulkimport.errors.InputError` naming the
    column. Its rows are numbered from 2 (the header is row 1), unless its
    index is named ``row``, as :func:`read_table` gives it.

    The API key is ``api_key``, else the file ``api_key_file``, else the
    environment variable ``ENGAGESPARK_API_KEY``; it is never stored. The
    other arguments are the `run` command's options of the same names (their
    defaults are those of :mod:`bulkimport.settings`): ``send_window``
    (``"08:00-20:00"`` in each person's time; rows outside it stay pending and
    ``frame.attrs["waiting"]`` counts them), ``timezone``, ``timezone_for_all``,
    ``max_per_minute``, ``limit`` (a canary: at most that many people now),
    ``unknown`` (``"resend"`` or ``"hold"``) and ``wait`` (stay and send as
    the windows open, up to a day). It never asks before sending: calling it
    is the decision.

    Returns the rows as `bulkimport results` gives them (``source``, ``sheet``,
    ``row``, ``status``, ``contact_id``, ``phone``, ``reason``, then the data's
    own columns); ``frame.attrs["run"]`` is the run's number in the ledger.
    Raises :class:`~bulkimport.errors.ApiRefused` when the API refused the run
    (key, funds, organization, engagement, URL) and
    :class:`~bulkimport.errors.ApiUnavailable` when it stayed unavailable: the
    rows not sent stay pending for `bulkimport retry`. Raises
    :class:`~bulkimport.errors.InputError` for unusable data or options, and
    :class:`~bulkimport.errors.LedgerLocked` while another run holds the ledger.
    """
    options = import_options(
        country=country,
        mapping=mapping,
        sheet=sheet,
        header_row=header_row,
        encoding=encoding,
        delimiter=delimiter,
        allow_possible=allow_possible,
        mobile_only=mobile_only,
        allow_duplicates=allow_duplicates,
        groups=groups,
        organization=organization,
    )
    inputs, options = source_input(data, options, name=source)
    settings = SendSettings(_engagement(engagement)).updated(
        {},
        api_url=api_url,
        reuse=not always_create,
        batch_size=batch_size,
        concurrency=concurrency,
        timeout=timeout,
        send_window=send_window,
        timezone=timezone,
        timezone_for_all=timezone_for_all,
        max_per_minute=max_per_minute,
        unknown=unknown,
    )
    key = _api_key(api_key, api_key_file)
    with Ledger.locked(Path(ledger)) as book:
        sender = _sender(key, settings, limit=limit, wait=wait)
        with closing(sender.client):
            summary = run_import([inputs], options, settings, book, sender, resubscribe=resubscribe)
        _raise_refusal(summary)
        frame = _results_frame(*result_table(book, source_ids=summary.source_ids))
    frame.attrs["run"] = summary.run_id
    frame.attrs["waiting"] = summary.waiting_rows  # rows that wait for their send window
    return frame


def results(
    ledger: LedgerPath = DEFAULT_LEDGER, *, run: int | None = None, history: bool = False
) -> pd.DataFrame:
    """Return the ledger's rows with their outcome, as `bulkimport results` writes them.

    One line per row of each file's newest version, in the file's order.
    Every row has ``source``, ``sheet``, ``row``, ``status``, ``contact_id``
    (an integer, or missing), ``subscribed_at``, ``phone`` and ``reason``,
    then the files' own columns (a column named like one of those gets
    `` (again)``). ``run`` gives the files of one run as it read them (see
    :func:`status`); ``history`` every version of every file. Raises
    :class:`~bulkimport.errors.LedgerError` when there is no ledger or no such run.
    """
    with Ledger.existing(Path(ledger)) as book:
        source_ids = chosen_sources(book, run_id=run, history=history)
        return _results_frame(*result_table(book, source_ids=source_ids))


@dataclass(frozen=True)
class Run:
    """A run in the ledger, as `bulkimport status --json` shows it."""

    id: int
    command: str  # run, retry or nightly
    engagement: int
    started: str  # ISO 8601, UTC
    finished: str | None  # None: it did not finish
    exit_code: int | None  # the exit code the command ended with
    files: list[str]
    rows: dict[str, int]  # rows by status
    incomplete: list[str]  # files not read to their end, each in a sentence


@dataclass(frozen=True)
class Engagement:
    """An engagement in the ledger, as `bulkimport status --json` shows it."""

    engagement: int
    people_subscribed: int  # one per person
    rows: dict[str, int]  # every row of the engagement by status, each row once

    @property
    def rows_open(self) -> int:
        """Rows still to be sent: pending, unknown, or left sending by a stopped run."""
        return sum(self.rows.get(s, 0) for s in ("pending", "unknown", "sending"))


@dataclass(frozen=True)
class Status:
    """What `bulkimport status` shows: the engagements, then the runs, newest first."""

    engagements: list[Engagement]
    runs: list[Run]


def status(ledger: LedgerPath = DEFAULT_LEDGER) -> Status:
    """Return the engagements (people, open and failed rows) and the runs, newest first.

    Raises :class:`~bulkimport.errors.LedgerError` when there is no ledger.
    """
    with Ledger.existing(Path(ledger)) as book:
        engagements = [
            Engagement(info.engagement_id, info.people, dict(info.counts))
            for info in book.engagements()
        ]
        runs = [
            Run(
                info.id,
                info.command,
                info.engagement_id,
                info.started_at,
                info.finished_at,
                info.exit_code,
                list(info.files),
                dict(info.counts),
                [item.describe() for item in info.incomplete],
            )
            for info in book.runs()
        ]
    return Status(engagements, runs)


def _engagement(engagement: object) -> int:
    if isinstance(engagement, bool) or not isinstance(engagement, int) or engagement < 1:
        raise SettingError("engagement", engagement, "an engagement id (a whole number)")
    return engagement


def _api_key(api_key: str | None, key_file: str | PathLike[str] | None) -> ApiKey:
    if api_key is not None:
        return ApiKey(check_api_key(api_key, KEY_ARGUMENT), KEY_ARGUMENT)
    path = None if key_file is None else Path(key_file)
    return load_api_key(os.environ, path, instead="pass api_key or api_key_file")


def _sender(
    key: ApiKey, settings: SendSettings, *, limit: int | None = None, wait: bool = False
) -> sending.Sender:
    """Return the Sender of a run from Python: the CLI's, without a display or a question.

    ``sending.Sender`` is looked up here, at call time, as the CLI does, so a
    test can give every command a retry policy that does not sleep.
    """
    client = EngageSparkClient(key, settings.api_url, Timeouts(read=settings.timeout))
    return sending.Sender(client, progress=NoProgress(), limit=limit, wait_for_window=wait)


def _raise_refusal(summary: RunSummary) -> None:
    """Raise what ended the run with exit code 3 or 5, with the sentence the CLI prints."""
    if summary.refused:
        raise ApiRefused(summary.stopped, summary.refused_status, summary.refused_cause)
    if summary.unavailable:
        raise ApiUnavailable(summary.stopped)


def _results_frame(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> pd.DataFrame:
    """Return result lines as a frame: distinct column names, whole numbers as integers."""
    frame = pd.DataFrame([list(row) for row in rows], columns=pd.Index(column_labels(columns)))
    if "row" in frame.columns:
        frame["row"] = frame["row"].astype("int64")
    if "contact_id" in frame.columns:  # missing for rows not subscribed: not a float NaN
        frame["contact_id"] = frame["contact_id"].astype("Int64")
    return frame
