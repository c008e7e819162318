"""Keep secrets and phone numbers out of logs and messages: one implementation for all.

The CLI installs :class:`Redact` on every log handler, so ``-vv`` masks what the
nightly log masks; the client redacts the key from every message it builds.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence

from bulkimport.contacts import mask_phone

_PHONE_LIKE = re.compile(r"(?<!\d)\+?(\d{9,15})(?!\d)")
# Whatever follows "Token" in a text is taken for a key, whichever key it is.
_TOKEN_VALUE = re.compile(r"(Token\s+)[^\s'\",;)}\]]+", re.IGNORECASE)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with each secret, and any value after ``Token``, replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _TOKEN_VALUE.sub(r"\1***", text)


def mask_phones(text: str) -> str:
    """Return ``text`` with every phone-like run of digits masked (``63917*****67``)."""
    return _PHONE_LIKE.sub(lambda m: mask_phone(m.group(1)), text)


class Redact(logging.Filter):
    """Masks phone-like digit runs and the given secrets in every log record it sees."""

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = mask_phones(redact(message, self._secrets))
        if cleaned != message:  # a record with nothing to hide keeps its arguments
            record.msg, record.args = cleaned, None
        return True


def redact_logs(secrets: Sequence[str] = ()) -> Redact:
    """Install a :class:`Redact` on every handler of the root logger and return it."""
    redacting = Redact(secrets)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, Redact) for f in handler.filters):
            handler.addFilter(redacting)
    return redacting
