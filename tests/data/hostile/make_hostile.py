"""Write the hostile fixtures in this folder; run it again to regenerate them.

    .venv/bin/python tests/data/hostile/make_hostile.py

Files a careless or malicious sender could hand over: junk under a workbook's
name, XML entity bombs and external entities, zip archives that lie about
their sizes or hold a damaged member, an old-style workbook that crashes the
parser, and text files with NUL bytes, mixed line endings or a second phone
column. Each is a few kilobytes; bigger ones are built by the tests
themselves. Zip members get fixed timestamps, so regenerating changes no bytes.
"""

from __future__ import annotations

import binascii
import io
import random
import struct
import zipfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent
FIXED_TIME = (2024, 1, 31, 12, 0, 0)

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
CONTENT_TYPES = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">\
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>\
<Default Extension="xml" ContentType="application/xml"/>\
<Override PartName="/xl/workbook.xml" \
ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>\
<Override PartName="/xl/worksheets/sheet1.xml" \
ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>\
<Override PartName="/xl/sharedStrings.xml" \
ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>\
</Types>"""
PACKAGE_RELS = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="{PACKAGE_REL_NS}"><Relationship Id="rId1" \
Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>""".encode()
WORKBOOK = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><sheets>\
<sheet name="People" sheetId="1" r:id="rId1"/></sheets></workbook>""".encode()
WORKBOOK_RELS = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="{PACKAGE_REL_NS}">\
<Relationship Id="rId1" Type="{REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>\
<Relationship Id="rId2" Type="{REL_NS}/sharedStrings" Target="sharedStrings.xml"/>\
</Relationships>""".encode()
# Row 1 is the header (shared strings 0 and 1), row 2 a person (strings 2 and 3).
SHEET = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="{MAIN_NS}"><sheetData>\
<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>\
<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2" t="s"><v>3</v></c></row>\
</sheetData></worksheet>""".encode()
NAME = "Ana Reyes"

# Ten entities, each ten of the one before: "&lol9;" would expand to a billion "lol"s.
LAUGHS = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{n} "{(f"&lol{n - 1};" if n > 1 else "&lol;") * 10}">' for n in range(1, 10)
    )
    + "]>"
)
SECRET_FILE = "/etc/passwd"  # its text must never reach a cell
EXTERNAL = f'<!DOCTYPE sheet [<!ENTITY secret SYSTEM "file://{SECRET_FILE}">]>'


def shared_strings(name: str, doctype: str = "") -> bytes:
    """Return a sharedStrings part with the header, a phone and ``name`` (raw XML)."""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'{doctype}<sst xmlns="{MAIN_NS}" count="4" uniqueCount="4">'
        f"<si><t>Phone</t></si><si><t>Name</t></si><si><t>639171234570</t></si>"
        f"<si><t>{name}</t></si></sst>"
    ).encode()


def xlsx_parts(**replaced: bytes) -> dict[str, bytes]:
    """Return the parts of a minimal XLSX; ``sheet`` and ``strings`` replace those two."""
    return {
        "[Content_Types].xml": CONTENT_TYPES,
        "_rels/.rels": PACKAGE_RELS,
        "xl/workbook.xml": WORKBOOK,
        "xl/_rels/workbook.xml.rels": WORKBOOK_RELS,
        "xl/worksheets/sheet1.xml": replaced.get("sheet", SHEET),
        "xl/sharedStrings.xml": replaced.get("strings", shared_strings(NAME)),
    }


def zipped(parts: dict[str, bytes], *, stored: tuple[str, ...] = ()) -> bytes:
    """Return a zip of ``parts`` with fixed timestamps (``stored`` ones uncompressed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, payload in parts.items():
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            archive.writestr(info, payload)
    return out.getvalue()


def deflated(payload: bytes) -> bytes:
    """Return ``payload`` as a raw deflate stream, as a zip member holds it."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(payload) + compressor.flush()


def hand_zip(members: list[tuple[str, bytes, int, int]]) -> bytes:
    """Return a zip of (name, deflated bytes, CRC-32, declared size), sizes taken on trust."""
    body, directory = bytearray(), bytearray()
    dos_time, dos_date = 0x6000, (2024 - 1980) << 9 | 1 << 5 | 31
    for name, data, crc, declared in members:
        offset, encoded = len(body), name.encode()
        fields = (20, 0, 8, dos_time, dos_date, crc, len(data), declared, len(encoded))
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields, 0) + encoded + data
        directory += (
            struct.pack("<IH", 0x02014B50, 20)
            + struct.pack("<HHHHHIIIHHHHHII", *fields, 0, 0, 0, 0, 0, offset)
            + encoded
        )
    end = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(directory), len(body), 0
    )
    return bytes(body + directory + end)


def write_workbooks() -> None:
    """Write the XLSX and ODS files that attack the parsers or the zip reader."""
    rng = random.Random(7)
    (HERE / "junk.xlsx").write_bytes(rng.randbytes(2048))
    (HERE / "junk_zip.xlsx").write_bytes(b"PK\x03\x04" + rng.randbytes(2044))
    (HERE / "plain.xlsx").write_bytes(zipped(xlsx_parts()))
    (HERE / "billion_laughs.xlsx").write_bytes(
        zipped(xlsx_parts(strings=shared_strings("&lol9;", LAUGHS)))
    )
    (HERE / "external_entity.xlsx").write_bytes(
        zipped(xlsx_parts(strings=shared_strings("&secret;", EXTERNAL)))
    )
    write_laughing_ods()
    write_lying_sizes()
    write_damaged_member()
    write_sheet_bomb()
    write_declared_bomb()


def write_laughing_ods() -> None:
    """Write the OpenDocument fixture with an entity bomb in its content.xml."""
    with zipfile.ZipFile(DATA / "applicants.ods") as source:
        parts = {info.filename: source.read(info) for info in source.infolist()}
    content = parts["content.xml"].decode()
    declaration_end = content.index("?>") + 2
    content = content[:declaration_end] + LAUGHS + content[declaration_end:]
    parts["content.xml"] = content.replace("José Peña", "&lol9;", 1).encode()
    (HERE / "billion_laughs.ods").write_bytes(zipped(parts, stored=("mimetype",)))


def write_lying_sizes() -> None:
    """Write an XLSX whose sheet inflates to 1 MiB but whose zip directory says 2 KB."""
    rows = b'<row r="3"><c r="A3"><v>1</v></c></row>' * (1024 * 1024 // 40)
    sheet = SHEET.replace(b"</sheetData>", rows + b"</sheetData>")
    members = [
        (name, deflated(payload), binascii.crc32(payload), len(payload))
        for name, payload in xlsx_parts(sheet=sheet).items()
    ]
    members = [
        (name, data, crc, 2048 if name.endswith("sheet1.xml") else size)
        for name, data, crc, size in members
    ]
    (HERE / "lying_sizes.xlsx").write_bytes(hand_zip(members))


def write_damaged_member() -> None:
    """Write an XLSX whose directory is sound but whose sheet's deflate stream is not."""
    members = []
    for name, payload in xlsx_parts().items():
        data = deflated(payload)
        if name.endswith("sheet1.xml"):
            data = data[:8] + bytes(byte ^ 0x5A for byte in data[8:24]) + data[24:]
        members.append((name, data, binascii.crc32(payload), len(payload)))
    (HERE / "damaged_member.xlsx").write_bytes(hand_zip(members))


def write_sheet_bomb() -> None:
    """Write an XLSX whose sheet is 2 MiB of the same row squeezed into a few kilobytes."""
    rows = b'<row r="3"><c r="A3"><v>1</v></c></row>' * (2 * 1024 * 1024 // 40)
    sheet = SHEET.replace(b"</sheetData>", rows + b"</sheetData>")
    (HERE / "sheet_bomb.xlsx").write_bytes(zipped(xlsx_parts(sheet=sheet)))


def write_declared_bomb() -> None:
    """Write an XLSX whose directory declares members adding up to 3 GiB."""
    members = [
        (name, deflated(payload), binascii.crc32(payload), len(payload))
        for name, payload in xlsx_parts().items()
    ]
    members += [(f"xl/media/filler{n}.bin", deflated(b""), 0, 1024**3) for n in range(3)]
    (HERE / "declared_bomb.xlsx").write_bytes(hand_zip(members))


def write_crashing_xls() -> None:
    """Write an old-style workbook on which calamine's parser asks for unbounded memory.

    Twelve bytes inserted into the workbook stream of ``legacy.xls`` are enough.
    """
    legacy = (DATA / "legacy.xls").read_bytes()
    (HERE / "crashing.xls").write_bytes(legacy[:1674] + bytes(12) + legacy[1674:])


def write_text_files() -> None:
    """Write the CSV and TOML fixtures."""
    (HERE / "no_phone_column.csv").write_bytes(b"Name,Notes\r\nAna Reyes,hello\r\n")
    (HERE / "two_phone_columns.csv").write_bytes(
        b"Name,Phone,Mobile\r\nAna Reyes,0917 123 4570,0918 123 4571\r\n"
    )
    (HERE / "nul_bytes.csv").write_bytes(
        b"Name,Mobile\n"
        b"Ana\x00Reyes,0917 123 4570\n"
        b"Ben Cruz,0917\x00123 4571\n"
        b"Cy Lim,0917 123 4572\n"
    )
    (HERE / "mostly_nul.csv").write_bytes(b"Name,Mobile\n" + bytes(600) + b"\n")
    # CR alone (old Mac), LF alone (Unix) and CRLF (Windows) in one file, a blank line
    # and a quoted cell holding a bare CR: rows must keep the numbers Excel shows.
    (HERE / "mixed_line_endings.csv").write_bytes(
        b"Name,Mobile\r"
        b"Ana Reyes,0917 123 4570\n"
        b"Ben Cruz,0917 123 4571\r\n"
        b"\r\n"
        b'"Cy\rLim",0917 123 4572\r'
        b"Dee Go,0917 123 4573\n"
    )
    (HERE / "not_a_ledger.sqlite").write_bytes(b"these are my notes, not a database\n" * 40)
    (HERE / "wrong_types.toml").write_bytes(
        b'engagement = "1234"\ninputs = ["inbox/*.csv"]\nbatch_size = true\n'
    )


def main() -> None:
    """Write every hostile fixture."""
    write_workbooks()
    write_crashing_xls()
    write_text_files()


if __name__ == "__main__":
    main()
