"""Subscribe the people in a spreadsheet to an engageSPARK engagement."""
