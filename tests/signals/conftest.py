"""Fixtures of the signal tests: the session's trained run, a signal cache per test."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from tests.signals.runs import TrainedRun, trained_run


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return trained_run(tmp_path_factory)


@pytest.fixture()
def engine(tmp_path: Path) -> Engine:
    """An empty signal cache (SQLite in tmp_path)."""
    from rltrade.db import connect

    return connect(f"sqlite:///{tmp_path / 'signals.db'}")
