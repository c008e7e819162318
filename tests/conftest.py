"""Shared fixtures: a sandbox API on loopback and a helper to write small CSV inputs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bulkimport.sandbox import SANDBOX_TOKEN, Sandbox

DATA = Path(__file__).parent / "data"
SAMPLES = Path(__file__).parent.parent / "sample_data"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(engagements=(1234, 555)) as server:
        yield server


@pytest.fixture
def api_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ENGAGESPARK_API_KEY", SANDBOX_TOKEN)
    return SANDBOX_TOKEN


def write_csv(path: Path, header: str, *lines: str) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path
