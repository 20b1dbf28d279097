"""Data tests write their caches to a temporary folder, never to ~/.cache."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SPARSESCALE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
