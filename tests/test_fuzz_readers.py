"""Fuzzing the readers: whatever the bytes, a file gives rows or an InputError, nothing else.

Three kinds of input, each under every supported name: random bytes; real
fixtures with bytes flipped, cut or inserted (mostly damaging the zip
container); and real workbooks whose XML members are mutated and zipped
again, so the bytes reach the XML parsers themselves.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkimport.errors import InputError
from bulkimport.read.sources import open_source

DATA = Path(__file__).parent / "data"
SUFFIXES = (".csv", ".txt", ".xlsx", ".ods")
FIXTURES = {
    path.name: path.read_bytes()
    for path in sorted([*DATA.iterdir(), *(DATA / "hostile").iterdir()])
    if path.suffix in {".csv", ".txt", ".xlsx", ".ods", ".xls"}
    # Refused from the zip directory alone, or slow to refuse: little to learn from mutants.
    and path.name not in {"zip_bomb.xlsx", "declared_bomb.xlsx", "crashing.xls"}
}


def _members(data: bytes) -> list[tuple[str, bytes]] | None:
    """Return a sound zip's members in order, or None for anything else."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return [(info.filename, archive.read(info)) for info in archive.infolist()]
    except (zipfile.BadZipFile, zlib.error):
        return None


ZIPPED = {name: members for name, data in FIXTURES.items() if (members := _members(data))}
FUZZ = settings(
    max_examples=300,
    deadline=5000,  # milliseconds: a reader that hangs on some bytes fails here
    derandomize=True,  # the same examples on every run, so a failure is repeatable
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


# Fragments that break XML, spreadsheet structure or number parsing in the middle of a part.
MARKUP = (b"<", b">", b"</row>", b"<c>", b'r="XFD1048576"', b"&amp", b"&x;", b"<!DOCTYPE a>",
          b"]]>", b"<v>", b"\xff\xfe", b'"')  # fmt: skip


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def read_everything(path: Path) -> int:
    """Return how many rows the file yields; InputError is the only way to fail."""
    with open_source(path) as table:
        assert isinstance(table.header, tuple)
        count = 0
        for row in table.rows:
            assert all(isinstance(cell, str) for cell in row.cells)
            assert row.row > table.header_row
            count += 1
        return count


def outcome(folder: Path, data: bytes, suffix: str) -> str:
    """Write the bytes under the suffix, read them, and return "rows" or "input error"."""
    path = folder / f"fuzzed{suffix}"
    path.write_bytes(data)
    try:
        read_everything(path)
    except InputError as error:
        message = str(error)
        assert message.strip(), "an input error must say something"
        assert "\n" not in message.strip(), "an input error is one line"
        return "input error"
    return "rows"


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """Return a fixture with a few bytes flipped, inserted, deleted, or its tail cut."""
    data = bytearray(FIXTURES[draw(st.sampled_from(sorted(FIXTURES)))])
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        match draw(st.sampled_from(["flip", "insert", "delete", "cut", "nul", "quote"])):
            case "flip":
                data[at] ^= 1 << draw(st.integers(0, 7))
            case "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=16))
            case "delete":
                del data[at : at + draw(st.integers(1, 64))]
            case "cut":
                del data[at:]
            case "nul":
                data[at] = 0
            case "quote":
                data[at:at] = b'"'
    return bytes(data)


@st.composite
def rezipped(draw: st.DrawFn) -> bytes:
    """Return a real workbook with one XML member mutated and the archive rebuilt around it."""
    members = list(ZIPPED[draw(st.sampled_from(sorted(ZIPPED)))])
    xml = [i for i, (name, _) in enumerate(members) if name.endswith((".xml", ".rels"))]
    index = draw(st.sampled_from(xml))
    name, payload = members[index]
    text = bytearray(payload)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(len(text) - 1, 0)))
        match draw(st.sampled_from(["flip", "cut", "insert", "markup", "number"])):
            case "flip" if text:
                text[at] ^= 1 << draw(st.integers(0, 7))
            case "cut":
                del text[at:]
            case "insert":
                text[at:at] = draw(st.binary(min_size=1, max_size=8))
            case "markup":
                text[at:at] = draw(st.sampled_from(MARKUP))
            case "number":
                text[at:at] = str(draw(st.integers(-(2**63), 2**63))).encode()
    members[index] = (name, bytes(text))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members:
            archive.writestr(member, data)
    return out.getvalue()


@FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes_give_rows_or_an_input_error(folder: Path, data: bytes, suffix: str) -> None:
    assert outcome(folder, data, suffix) in {"rows", "input error"}


@FUZZ
@given(data=mutated(), suffix=st.sampled_from(SUFFIXES))
def test_mutated_fixtures_give_rows_or_an_input_error(
    folder: Path, data: bytes, suffix: str
) -> None:
    assert outcome(folder, data, suffix) in {"rows", "input error"}


@FUZZ
@given(data=rezipped(), suffix=st.sampled_from((".xlsx", ".ods")))
def test_workbooks_with_mutated_xml_give_rows_or_an_input_error(
    folder: Path, data: bytes, suffix: str
) -> None:
    assert outcome(folder, data, suffix) in {"rows", "input error"}


def test_the_fuzzers_reach_both_outcomes(folder: Path) -> None:
    """The harness can tell rows from errors: a fixture read as is gives rows."""
    assert outcome(folder, FIXTURES["pipe.txt"], ".txt") == "rows"
    assert outcome(folder, FIXTURES["numeric_phones.xlsx"], ".xlsx") == "rows"
    assert outcome(folder, b"\x00" * 64, ".csv") == "input error"
