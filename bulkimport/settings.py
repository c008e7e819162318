"""Every default, limit and validator of an import setting, written down once.

The CLI options (click types and help texts), the nightly config's TOML keys
and the library face all read this module, so a default or a range cannot
differ between them. It imports only the standard library and
:mod:`bulkimport.errors`: the CLI reads it at start-up.

A validator takes the value and the name to show in its error: the flag for
the CLI (``--delimiter``), the key and its line for the nightly config
(``"delimiter" in nightly.toml line 12``), the argument's name for Python.
"""

from __future__ import annotations

import codecs

from bulkimport.errors import InputError

# --- reading CSV -------------------------------------------------------------------------

# Names a person may give instead of the character itself (case does not matter).
DELIMITER_NAMES = {
    "\\t": "\t",
    "tab": "\t",
    "comma": ",",
    "semicolon": ";",
    "pipe": "|",
}


def check_encoding(encoding: str | None, name: str = "encoding") -> str | None:
    """Return the encoding if Python knows it (``None`` means detect it)."""
    if encoding is None:
        return None
    try:
        codecs.lookup(encoding)
    except (LookupError, ValueError) as exc:  # ValueError: a NUL in the name
        raise InputError(
            f"Unknown encoding {encoding!r} for {name}: "
            "use a name such as utf-8, cp1252 or latin-1."
        ) from exc
    return encoding


def check_delimiter(delimiter: str | None, name: str = "delimiter") -> str | None:
    """Return the delimiter as one character (``None`` means detect it).

    A name from :data:`DELIMITER_NAMES` stands for its character: "tab" and
    "\\t" for a tab, "semicolon" for ``;``.
    """
    if delimiter is None:
        return None
    character = DELIMITER_NAMES.get(delimiter.lower(), delimiter)
    if len(character) != 1:
        raise InputError(
            f"Delimiter {delimiter!r} for {name} is not one character: "
            "use one such as , ; | or tab."
        )
    return character
