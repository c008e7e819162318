"""Where the API key comes from: an environment variable or a key file, never argv."""

from __future__ import annotations

import logging
import stat
from collections.abc import Mapping
from pathlib import Path

from bulkimport.errors import InputError

log = logging.getLogger(__name__)

API_KEY_ENV = "ENGAGESPARK_API_KEY"


def load_api_key(
    environ: Mapping[str, str], key_file: Path | None = None, env_name: str = API_KEY_ENV
) -> str:
    """Return the API key from ``key_file`` when given, else from ``environ[env_name]``."""
    if key_file is not None:
        try:
            mode = key_file.stat().st_mode
            key = key_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise InputError(
                f"Cannot read the key file {key_file} ({error.strerror}): check the path."
            ) from error
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning(
                "key file %s can be read by other users: run `chmod 600 %s`", key_file, key_file
            )
        if not key:
            raise InputError(
                f"The key file {key_file} is empty: put your engageSPARK API key in it."
            )
        return key
    key = environ.get(env_name, "").strip()
    if not key:
        raise InputError(
            f"No API key: set {env_name} or pass --api-key-file "
            "(find the key in engageSPARK under Account Settings > API Key)."
        )
    return key
