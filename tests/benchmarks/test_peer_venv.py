"""The Python 3.13 venv for kalshi-python-async: what it lacks, and why it cannot be had."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import _peer_venv
import pytest


def test_without_python_313_the_peer_is_skipped_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_peer_venv, "VENV_DIR", tmp_path / "venv")
    monkeypatch.setattr(_peer_venv, "find_python", lambda: None)

    peer = _peer_venv.ensure_venv()

    assert peer.python is None
    assert peer.reason.startswith("skipped: needs Python >= 3.13")
    assert not (tmp_path / "venv").exists()


def test_only_what_is_missing_or_at_another_version_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.23.0")
    ready = {"kalshi-python-async": _peer_venv.KPA_VERSION, "uvloop": "0.23.0"}

    assert _peer_venv._requirements(ready) == []
    assert _peer_venv._requirements({"uvloop": "0.19.0"}) == [
        f"kalshi-python-async=={_peer_venv.KPA_VERSION}",
        "uvloop==0.23.0",
    ]
