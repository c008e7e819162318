"""Reading: spreadsheet files in, rows of text out (CSV/TSV, XLSX/XLS/ODS, guards)."""
