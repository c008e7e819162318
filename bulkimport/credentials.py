"""Where the API key comes from: an environment variable or a key file, never argv.

One rule for both sources (:func:`check_api_key`): one trailing line break is
dropped, and anything else that is not a printable ASCII character (a space,
a second line, a control character, a curly quote) is refused before anything
is read or sent. No message ever shows the key or a part of it.
"""

from __future__ import annotations

import logging
import re
import stat
import unicodedata
from collections.abc import Mapping
from pathlib import Path

from bulkimport.errors import InputError
from bulkimport.settings import API_KEY_ENV as API_KEY_ENV  # still importable from here

log = logging.getLogger(__name__)

WHERE_TO_FIND = "Account Settings > API Key"
# A name no one would mistake for a key: upper case, words joined by underscores.
_PLAIN_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")


def check_api_key(key: str, source: str) -> str:
    """Return ``key`` without its one trailing line break; raise InputError if it is not a key.

    ``source`` says where the key came from, as the message should name it:
    ``"the key file /srv/bulkimport/api-key"`` or ``"the environment variable
    ENGAGESPARK_API_KEY"``.

    The same rule holds for a key file and for an environment variable: exactly
    one trailing ``\\n`` or ``\\r\\n`` is dropped (what ``echo key > file`` and
    most editors write). Nothing else is stripped, surrounding spaces of a file
    included: a second line (a comment, a blank line), a space or tab around or
    inside the key, a control character or a non-ASCII character (a curly
    quote or a non-breaking space pasted from a document, a byte order mark, a
    byte that is not UTF-8) is refused with a one-line InputError that names
    the source, where (how many lines, or which character) and what kind of
    character it is, and says what to do. The message never holds the key or any part of it.
    Calling it again on a key it returned gives the same key.
    """
    if key.endswith("\r\n"):
        key = key[:-2]
    elif key.endswith("\n"):
        key = key[:-1]
    where = _capital(source)
    if not key:
        raise InputError(
            f"{where} is empty: put your engageSPARK API key in it (engageSPARK, {WHERE_TO_FIND})."
        )
    lines = key.split("\n")
    if len(lines) > 1:
        first = lines[0].removesuffix("\r")
        raise InputError(
            f"{where} has {len(lines)} lines (line 1 ends after character {len(first)}): "
            "keep only the key, on one line, and remove comments and blank lines."
        )
    for index, char in enumerate(key):
        if "!" <= char <= "~":  # printable ASCII, space excluded
            continue
        what, fix = _describe(char, index, key)
        raise InputError(f"{where} has {what} at character {index + 1}: {fix}.")
    return key


def _describe(char: str, index: int, key: str) -> tuple[str, str]:
    """Return what ``char`` is, in words, and what to do about it (never the key itself)."""
    again = f"copy the key again from engageSPARK ({WHERE_TO_FIND})"
    code = f"U+{ord(char):04X}"
    if char in " \t":
        name = "a space" if char == " " else "a tab"
        if key[:index].strip(" \t") and key[index:].strip(" \t"):
            return name, f"an API key has no spaces inside; {again}"
        return name, "remove the spaces and tabs around the key"
    if 0xDC80 <= ord(char) <= 0xDCFF:  # a byte that is not UTF-8, kept by surrogateescape
        return (
            f"a byte that is not UTF-8 text (0x{ord(char) - 0xDC00:02X})",
            f"save the file as plain text (UTF-8) holding only the key, or {again}",
        )
    if char == "\ufeff":
        return (
            f"a byte order mark ({code})",
            "save the file as UTF-8 without a byte order mark (BOM), holding only the key",
        )
    if char == "\r":
        return f"a carriage return ({code})", "save the key on one line with a plain text editor"
    if unicodedata.category(char).startswith("C"):
        return f"a control character ({code})", again
    name = unicodedata.name(char, "").lower()
    named = f"{code} {name}" if name else code
    pasted = "quotation mark" in name or "apostrophe" in name or char.isspace()
    hint = "a document or chat changed quotes or spaces, so " if pasted else ""
    return f"a non-ASCII character ({named})", f"{hint}{again} and paste it as plain text"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def describe_env(env_name: str) -> str:
    """Return how a message names the variable ``env_name`` without echoing what may be a key.

    A name such as ``ENGAGESPARK_API_KEY`` or ``MY_ORG_KEY`` is shown; anything
    else (a key pasted where a name belongs) is only referred to.
    """
    if _plainly_a_name(env_name):
        return f"the environment variable {env_name}"
    return "the environment variable named by api_key_env"


def _plainly_a_name(env_name: str) -> bool:
    return env_name == API_KEY_ENV or bool(_PLAIN_NAME.fullmatch(env_name))


class ApiKey(str):
    """An API key that knows where it came from, for messages that must name its source.

    ``source`` is worded as :func:`check_api_key` takes it (``"the key file
    /srv/bulkimport/api-key"``, ``"the environment variable ORG_KEY"``); it never
    holds the key. The repr hides the key, so a log line or traceback cannot show it.
    """

    source: str

    def __new__(cls, key: str, source: str) -> ApiKey:
        instance = super().__new__(cls, key)
        instance.source = source
        return instance

    def __repr__(self) -> str:
        return f"ApiKey(<hidden>, source={self.source!r})"


def load_api_key(
    environ: Mapping[str, str],
    key_file: Path | None = None,
    env_name: str = API_KEY_ENV,
    *,
    instead: str = "pass --api-key-file",
) -> ApiKey:
    """Return the API key from ``key_file`` when given, else from ``environ[env_name]``.

    Both go through :func:`check_api_key`. A key file is read as UTF-8 (a byte
    that is not UTF-8 is refused like any other non-ASCII character). The key
    returned carries its source (:class:`ApiKey`). ``instead`` is how a missing
    key's message names the other way to give one: the CLI's flag by default,
    ``api_key_file`` in its config for the nightly import.
    """
    if key_file is not None:
        try:
            mode = key_file.stat().st_mode
            raw = key_file.read_bytes()
        except OSError as error:
            raise InputError(
                f"Cannot read the key file {key_file} ({error.strerror}): check the path."
            ) from error
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning(
                "key file %s can be read by other users: run `chmod 600 %s`", key_file, key_file
            )
        text = raw.decode("utf-8", errors="surrogateescape")
        if not text.strip():
            raise InputError(
                f"The key file {key_file} is empty: put your engageSPARK API key in it."
            )
        source = f"the key file {key_file}"
        return ApiKey(check_api_key(text, source), source)
    value = environ.get(env_name, "")
    where = describe_env(env_name)
    if not value.strip():
        shown = env_name if _plainly_a_name(env_name) else where
        raise InputError(
            f"No API key: set {shown} or {instead} "
            f"(find the key in engageSPARK under {WHERE_TO_FIND})."
        )
    return ApiKey(check_api_key(value, where), where)
