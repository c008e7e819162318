"""Write the web report fixtures (HTML tables saved as .xls); run it again to regenerate them.

    .venv/bin/python tests/data/html_make_fixtures.py

Web-based HR tools export "Excel" files that are HTML pages; these are small
hand-written ones in the shapes such tools produce. Needs nothing beyond Python.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

# An HR tool's export as Excel's own "Web Page" format names its namespaces, in cp1252.
REPORT = """<html xmlns:o="urn:schemas-microsoft-com:office:office"
 xmlns:x="urn:schemas-microsoft-com:office:excel">
<head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">
<title>Applicants</title></head>
<body>
<table border="1">
<thead>
<tr><th>Applicant No.</th><th>Name</th><th>Mobile No.</th><th>Salary</th>
<th>Note</th><th>Note</th><th></th></tr>
</thead>
<tbody>
<tr><td>0001</td><td>José Peña</td><td>09171234567</td><td>12,500</td>
<td>first</td><td>second</td><td>x</td></tr>
<tr><td>0002</td><td>Zoë Ñuñez</td><td>+63 918 123 4567</td><td>1.50</td>
<td></td><td></td><td></td></tr>
<tr><td>0003</td><td>Ana Reyes</td><td>call me</td><td>NaN</td>
<td>NA</td><td>TRUE</td><td></td></tr>
</tbody>
</table>
</body>
</html>
"""

# No <th>, no charset: the first row names the columns; UTF-8.
NO_HEADER_CELLS = """<table>
<tr><td>phone</td><td>name</td></tr>
<tr><td>639171234570</td><td>Cebú</td></tr>
<tr><td>639181234571</td><td>Dávao</td></tr>
</table>
"""

THREE_TABLES = """<!DOCTYPE html>
<html><body>
<table><tr><td>Report</td><td>Applicants</td></tr></table>
<table><tr><th>phone</th><th>name</th></tr><tr><td>639171234570</td><td>Ana</td></tr></table>
<table><tr><td>Printed</td><td>2024-01-31</td></tr></table>
</body></html>
"""

NO_TABLE = """<!DOCTYPE html>
<html><body><p>Your session has expired. Please log in again.</p></body></html>
"""


def main() -> None:
    (HERE / "web_report.xls").write_bytes(REPORT.encode("cp1252"))
    (HERE / "web_report_no_th.xls").write_bytes(NO_HEADER_CELLS.encode("utf-8"))
    (HERE / "web_three_tables.xls").write_bytes(THREE_TABLES.encode("utf-8"))
    (HERE / "web_no_table.xls").write_bytes(NO_TABLE.encode("utf-8"))


if __name__ == "__main__":
    main()
