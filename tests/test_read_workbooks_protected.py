"""Password-protected ODS and XLS say so; a zip with a bad CRC is damaged."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulkimport.errors import InputError
from bulkimport.read.guards import zip_damage
from bulkimport.read.sources import open_source

DATA = Path(__file__).parent / "data"


def refusal(path: Path) -> str:
    with pytest.raises(InputError) as refused, open_source(path) as table:
        list(table.rows)
    return str(refused.value)


def test_password_protected_ods() -> None:
    path = DATA / "wb_protected.ods"

    assert refusal(path) == (
        f"{path} is protected by a password: remove the password in LibreOffice and save again."
    )


def test_password_protected_xls() -> None:
    path = DATA / "wb_protected.xls"

    assert refusal(path) == (
        f"{path} is protected by a password: remove the password in Excel and save again."
    )


def test_encrypted_xlsx_named_xls_is_protected(tmp_path: Path) -> None:
    path = tmp_path / "encrypted.xls"
    path.write_bytes((DATA / "encrypted.xlsx").read_bytes())

    assert refusal(path) == (
        f"{path} is protected by a password: remove the password in Excel and save again."
    )


def test_zip_with_a_bad_crc_is_damaged() -> None:
    path = DATA / "wb_bad_crc.ods"

    assert refusal(path) == (
        f"{path} is damaged or incomplete (Bad CRC-32 for file 'META-INF/manifest.xml'): "
        "download or export it again."
    )
    assert zip_damage(path) == "bad CRC-32 for META-INF/manifest.xml"
    assert zip_damage(DATA / "wb_people.xlsb") is None
