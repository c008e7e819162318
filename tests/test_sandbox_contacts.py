"""The sandbox with an account's existing contacts, and the ids of the contacts it makes."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

import bulkimport.sandbox
from bulkimport.cli import main
from bulkimport.errors import InputError
from bulkimport.read.sources import open_source
from bulkimport.sandbox import FIRST_CONTACT_ID, SANDBOX_TOKEN, Sandbox, load_contacts
from tests.conftest import DATA, SAMPLES, write_csv

EXPORT = SAMPLES / "engagespark_export.xlsx"
CSV_EXPORT = DATA / "sandbox_contacts_export.csv"
AUTH = {"Authorization": f"Token {SANDBOX_TOKEN}"}


def export_rows() -> list[dict[str, str]]:
    """Return the sample export's rows as header -> cell, read independently of the sandbox."""
    with open_source(EXPORT) as table:
        return [dict(zip(table.header, row.cells, strict=False)) for row in table.rows]


def export_ids() -> list[int]:
    return [int(row["ID"]) for row in export_rows() if row["ID"]]


def subscribe(sandbox: Sandbox, body: Any, *, reuse: bool = False) -> requests.Response:
    params = {"try_using_existing": "newest"} if reuse else None
    return requests.post(
        f"{sandbox.url}/engagements/1234/contacts/",
        json=body,
        params=params,
        headers=AUTH,
        timeout=10,
    )


def new_numbers(count: int) -> list[str]:
    return [str(639180000000 + i) for i in range(count)]


@pytest.fixture
def loaded() -> Iterator[Sandbox]:
    with Sandbox(contacts=EXPORT) as sandbox:
        yield sandbox


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


# --- reading an export ------------------------------------------------------------------


def test_the_sample_export_loads_one_contact_per_row() -> None:
    contacts = load_contacts(EXPORT)

    rows = export_rows()
    assert len(contacts) == len(rows) == 30
    for contact, row in zip(contacts, rows, strict=True):
        assert contact["id"] == int(row["ID"])
        assert contact["fullPhoneNumber"] == row["Full Phone Number"]
        assert (contact["firstName"], contact["lastName"]) == (row["First Name"], row["Last Name"])
        assert contact["createdDate"] == row["Created Date"]
        assert contact["groups"] == [int(g) for g in row["Groups"].split(",") if g.strip()]


def test_a_csv_export_with_national_numbers_gets_the_dialing_code_in_front() -> None:
    contacts = load_contacts(CSV_EXPORT)

    assert [c["fullPhoneNumber"] for c in contacts] == [
        "639171110001",
        "639171110002",
        "639171110003",
    ]
    assert [c["groups"] for c in contacts] == [[4417, 4418], [], [4417]]  # names left out
    assert "createdDate" not in contacts[1]


@pytest.mark.parametrize(
    ("header", "line", "message"),
    [
        ("Name,Mobile No.", "Ana,09171234567", "has no ID column"),
        ("ID,First Name", "20000001,Ana", "has no phone number column"),
        ("ID,Full Phone Number", "abc,639171234567", "row 2: the ID 'abc' is not a contact id"),
        ("ID,Full Phone Number", "20000001,0917", "row 2: the phone number"),
    ],
)
def test_a_file_that_is_not_a_usable_export_is_an_input_error(
    tmp_path: Path, header: str, line: str, message: str
) -> None:
    path = write_csv(tmp_path / "contacts.csv", header, line)

    with pytest.raises(InputError, match=re.escape(message)):
        load_contacts(path)


def test_an_id_given_twice_is_an_input_error(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "contacts.csv",
        "ID,Full Phone Number",
        "20000001,639171234567",
        "20000001,639171234568",
    )

    with pytest.raises(InputError, match="20000001 twice"):
        load_contacts(path)
    with pytest.raises(InputError, match="id 5 twice"):
        Sandbox(contacts=[{"id": 5, "fullPhoneNumber": "63917"}] * 2)


def test_a_bad_phone_number_in_an_export_is_masked_in_the_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "contacts.csv", "ID,Full Phone Number", "20000001,6391712345678901")

    with pytest.raises(InputError) as raised:
        load_contacts(path)

    assert "6391712345678901" not in str(raised.value)


# --- existing contacts in the sandbox ---------------------------------------------------


def test_every_row_of_the_sample_export_subscribes_by_id(loaded: Sandbox) -> None:
    ids = export_ids()

    response = subscribe(loaded, {"contacts": [{"id": cid} for cid in ids]})

    assert response.status_code == 201
    by_id = {row["ID"]: row for row in export_rows()}
    for contact in response.json()["data"]:
        row = by_id[str(contact["id"])]
        assert contact["fullPhoneNumber"] == row["Full Phone Number"]
        assert contact["firstName"] == row["First Name"]
        assert contact["organizationId"] == 853
    assert loaded.subscriptions(1234) == ids
    assert loaded.contact_count() == 30
    assert loaded.state()["contactsLoaded"] == 30


def test_reuse_takes_the_loaded_contact_of_a_number(loaded: Sandbox) -> None:
    row = export_rows()[3]

    response = subscribe(
        loaded, {"fullPhoneNumber": row["Full Phone Number"], "firstName": "Other"}, reuse=True
    )

    (contact,) = response.json()["data"]
    assert (contact["id"], contact["firstName"]) == (int(row["ID"]), row["First Name"])
    assert loaded.contact_count() == 30


def test_without_reuse_a_known_number_gets_a_new_contact_above_the_export(
    loaded: Sandbox,
) -> None:
    row = export_rows()[3]

    (contact,) = subscribe(loaded, {"fullPhoneNumber": row["Full Phone Number"]}).json()["data"]

    assert contact["id"] == FIRST_CONTACT_ID
    assert len(loaded.contacts_for(row["Full Phone Number"])) == 2


def test_contacts_as_python_objects_take_the_sandboxs_organization() -> None:
    with Sandbox(
        organization_id=77, contacts=[{"id": 5, "fullPhoneNumber": "639171234567"}]
    ) as sandbox:
        (contact,) = subscribe(sandbox, {"contacts": [{"id": 5}]}).json()["data"]

    assert contact["organizationId"] == 77
    assert (contact["dialingCode"], contact["phoneNumber"]) == ("63", "9171234567")
    assert contact["groups"] == []


@pytest.mark.parametrize("bad", [{"id": "5", "fullPhoneNumber": "639171234567"}, {"id": 5}])
def test_an_existing_contact_needs_an_integer_id_and_a_number(bad: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        Sandbox(contacts=[bad])


# --- the ids of new contacts ------------------------------------------------------------


def test_a_new_contact_never_takes_an_id_from_the_exports_range() -> None:
    low, high = min(export_ids()), max(export_ids())
    for contacts in ([], EXPORT):
        with Sandbox(contacts=contacts) as sandbox:
            data = subscribe(sandbox, [{"fullPhoneNumber": n} for n in new_numbers(50)]).json()
            ids = [contact["id"] for contact in data["data"]]
        assert min(ids) >= FIRST_CONTACT_ID > high
        assert not any(low <= cid <= high for cid in ids)


def test_new_contacts_are_numbered_above_the_highest_loaded_id() -> None:
    existing = [{"id": FIRST_CONTACT_ID + 500, "fullPhoneNumber": "639171234567"}]
    with Sandbox(contacts=existing) as sandbox:
        data = subscribe(sandbox, [{"fullPhoneNumber": n} for n in new_numbers(2)]).json()

    assert [c["id"] for c in data["data"]] == [FIRST_CONTACT_ID + 501, FIRST_CONTACT_ID + 502]


# --- rehearsing the export with `bulkimport run` ----------------------------------------


def run_export(sandbox: Sandbox, ledger: Path) -> tuple[int, str]:
    return invoke(
        "run", str(EXPORT), "--engagement", "1234", "--country", "PH",
        "--api-url", sandbox.url, "--ledger", str(ledger),
    )  # fmt: skip


@pytest.mark.usefixtures("api_env")
def test_rehearsing_the_export_after_other_imports_subscribes_each_row_to_its_own_contact(
    tmp_path: Path,
) -> None:
    with Sandbox(contacts=EXPORT) as sandbox:
        subscribe(sandbox, [{"fullPhoneNumber": n} for n in new_numbers(200)])

        code, output = run_export(sandbox, tmp_path / "ledger.sqlite")

        assert code == 0, output
        subscribed = sandbox.subscriptions(1234)[200:]
        assert sorted(subscribed) == sorted(export_ids())
        assert sandbox.contact_count() == 230


@pytest.mark.usefixtures("api_env")
def test_without_the_export_loaded_no_row_of_it_subscribes_someone_else(tmp_path: Path) -> None:
    with Sandbox() as sandbox:
        subscribe(sandbox, [{"fullPhoneNumber": n} for n in new_numbers(200)])

        code, output = run_export(sandbox, tmp_path / "ledger.sqlite")

        assert code != 0, output
        assert len(sandbox.subscriptions(1234)) == 200  # only the 200 new contacts


# --- `bulkimport sandbox --contacts` ----------------------------------------------------


def test_the_command_loads_the_contacts_file_before_serving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served: dict[str, Any] = {}
    monkeypatch.setattr(bulkimport.sandbox, "serve", lambda **kwargs: served.update(kwargs))

    code, output = invoke("sandbox", "--port", "8799", "--contacts", str(EXPORT))

    assert code == 0, output
    assert [c["id"] for c in served["contacts"]] == export_ids()
    assert f"Loaded 30 existing contacts from {EXPORT}" in output


def test_the_command_without_contacts_starts_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    served: dict[str, Any] = {}
    monkeypatch.setattr(bulkimport.sandbox, "serve", lambda **kwargs: served.update(kwargs))

    code, output = invoke("sandbox", "--port", "8799")

    assert code == 0, output
    assert list(served["contacts"]) == []
    assert "Loaded" not in output


def test_the_command_refuses_a_file_that_is_not_an_export(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(bulkimport.sandbox, "serve", lambda **kwargs: pytest.fail("served"))
    path = write_csv(tmp_path / "people.csv", "Name,Mobile No.", "Ana,09171234567")

    code, output = invoke("sandbox", "--contacts", str(path))

    assert code == 2
    assert "not an engageSPARK contacts export" in output


# --- logs -------------------------------------------------------------------------------


def test_log_lines_never_show_a_whole_phone_number(caplog: pytest.LogCaptureFixture) -> None:
    phones = [row["Full Phone Number"] for row in export_rows()]
    with caplog.at_level(logging.DEBUG), Sandbox(contacts=EXPORT) as sandbox:
        subscribe(sandbox, [{"fullPhoneNumber": p} for p in phones[:5]], reuse=True)
        subscribe(sandbox, [{"fullPhoneNumber": p} for p in new_numbers(3)])
        subscribe(sandbox, [{"fullPhoneNumber": "999171234567"}])

    assert caplog.records
    for phone in [*phones, *new_numbers(3), "999171234567"]:
        assert phone not in caplog.text
